import { describe, expect, it } from "vitest";
import { ErrorCode } from "../errors.js";
import { ChangeBudget, DEFAULT_CHANGE_LIMITS, SecretScanner } from "./change-checks.js";

describe("SecretScanner", () => {
  const secret = "sk-live-0123456789abcdef";

  it("finds a secret split across two chunks at every offset, and in one byte per chunk", () => {
    const bytes = Buffer.concat([Buffer.alloc(100, 0xff), Buffer.from(secret), Buffer.alloc(100, 0)]);
    for (let cut = 1; cut < bytes.length; cut++) {
      const scanner = new SecretScanner(["short-other-secret", secret]);
      const found = [scanner.push(bytes.subarray(0, cut)), scanner.push(bytes.subarray(cut))];
      expect(found.includes(true), `cut at ${cut}`).toBe(true);
    }
    const scanner = new SecretScanner([secret]);
    expect([...bytes].some((byte) => scanner.push(Uint8Array.of(byte)))).toBe(true);
  });

  it("finds nothing in a near miss, and starts clean after reset", () => {
    const scanner = new SecretScanner([secret]);
    expect(scanner.push(Buffer.from(secret.slice(0, -1)))).toBe(false);
    scanner.reset();
    // The tail of the previous file must not join the next one's first bytes.
    expect(scanner.push(Buffer.from(secret.slice(-1)))).toBe(false);
    expect(new SecretScanner([]).push(Buffer.from(secret))).toBe(false);
    expect(new SecretScanner([secret]).holds(`/tmp/${secret}/x`)).toBe(true);
  });
});

describe("ChangeBudget", () => {
  it("fails with CHANGES_TOO_LARGE past each limit, naming the limit", () => {
    const budget = new ChangeBudget({ maxFileBytes: 10, maxTotalBytes: 15, maxFiles: 2 });
    budget.addFile("a", 10);
    expect(() => budget.addFile("b", 11)).toThrow(expect.objectContaining({ code: ErrorCode.CHANGES_TOO_LARGE, details: expect.objectContaining({ limit: "maxFileBytes", path: "b" }) }));
    const total = new ChangeBudget({ ...DEFAULT_CHANGE_LIMITS, maxTotalBytes: 15 });
    total.addFile("a", 10);
    expect(() => total.addFile("b", 6)).toThrow(expect.objectContaining({ details: expect.objectContaining({ limit: "maxTotalBytes" }) }));
    const count = new ChangeBudget({ ...DEFAULT_CHANGE_LIMITS, maxFiles: 1 });
    count.addFile("a", 1);
    expect(() => count.addFile("b", 1)).toThrow(expect.objectContaining({ details: expect.objectContaining({ limit: "maxFiles" }) }));
  });
});
