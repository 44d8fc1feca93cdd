import { describe, expect, it } from "vitest";
import { REDACTED, Redactor } from "./redactor.js";

describe("Redactor", () => {
  it("removes every known secret from text, however often it appears", () => {
    const redactor = new Redactor(["ghp_secret_token_123", "sk-model-key-456"]);
    const text = "token ghp_secret_token_123 and key sk-model-key-456 and again ghp_secret_token_123";
    expect(redactor.redactText(text)).toBe(`token ${REDACTED} and key ${REDACTED} and again ${REDACTED}`);
  });

  it("removes the longer of two overlapping secrets whole", () => {
    const redactor = new Redactor(["abcdef", "abcdefghijkl"]);
    expect(redactor.redactText("x abcdefghijkl y")).toBe(`x ${REDACTED} y`);
  });

  it("strips credentials embedded in URLs even when they are not known secrets", () => {
    const redactor = new Redactor();
    expect(redactor.redactText("cloning https://user:p4ss@example.test/o/r.git")).toBe(
      `cloning https://${REDACTED}@example.test/o/r.git`,
    );
    expect(redactor.redactText("https://x-access-token@example.test/o/r.git")).toBe(`https://${REDACTED}@example.test/o/r.git`);
    // Whatever precedes the scheme, the credentials go; the scheme is kept as written.
    expect(redactor.redactText("(git+ssh://me:pw@host/r) 1https://a:b@h _https://c:d@h xhttps://e@h")).toBe(
      `(git+ssh://${REDACTED}@host/r) 1https://${REDACTED}@h _https://${REDACTED}@h xhttps://${REDACTED}@h`,
    );
    // A URL without credentials, and an address that is not in a URL, stay as they are.
    expect(redactor.redactText("see https://example.test/docs or mail me@example.test")).toBe("see https://example.test/docs or mail me@example.test");
  });

  it("redacts strings deep inside objects and arrays without touching the original", () => {
    const redactor = new Redactor(["my-secret-value"]);
    const original = { a: "my-secret-value", b: [{ c: "pre my-secret-value post" }], n: 3 };
    const copy = redactor.redact(original);
    expect(copy).toEqual({ a: REDACTED, b: [{ c: `pre ${REDACTED} post` }], n: 3 });
    expect(original.a).toBe("my-secret-value");
  });

  it("asks its sources for secrets at every redaction, so secrets minted later are redacted too", () => {
    const minted: string[] = [];
    const redactor = new Redactor();
    redactor.addSource(() => minted);
    expect(redactor.redactText("token ghs_minted_later_1")).toBe("token ghs_minted_later_1");
    minted.push("ghs_minted_later_1");
    expect(redactor.redactText("token ghs_minted_later_1")).toBe(`token ${REDACTED}`);
  });

  it("ignores empty and very short secrets that would redact ordinary words", () => {
    const redactor = new Redactor(["", "a", "abc", undefined]);
    expect(redactor.redactText("a abc b")).toBe("a abc b");
  });
});
