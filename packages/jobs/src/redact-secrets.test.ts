import { describe, expect, it } from "vitest";
import { redactSecrets } from "./redact-secrets.js";

describe("redactSecrets", () => {
  it("removes every occurrence, also inside JSON where the secret needs escaping", () => {
    const secret = 'tok"en\\value';
    const json = JSON.stringify({ message: `a ${secret} b ${secret}` });
    expect(json).not.toContain(secret);
    const redacted = redactSecrets(json, [secret]);
    expect(redacted).toBe(JSON.stringify({ message: "a [REDACTED] b [REDACTED]" }));
    expect(redactSecrets(`plain ${secret}`, [secret])).toBe("plain [REDACTED]");
  });

  it("ignores strings too short to be secrets", () => {
    expect(redactSecrets("a b c", ["a", ""])).toBe("a b c");
  });
});
