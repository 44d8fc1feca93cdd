import { describe, expect, it } from "vitest";
import { ErrorCode, RunningAgentError } from "@running-agent/core";
import { importAdapter } from "./import-adapter.js";

describe("importAdapter", () => {
  it("turns a package that is not installed into a typed error naming the package to install", async () => {
    const name = "@running-agent/sandbox-not-installed";
    const failure = await importAdapter(name, ErrorCode.SANDBOX_UNAVAILABLE, () => import(/* @vite-ignore */ name)).catch((error: unknown) => error);
    expect(RunningAgentError.isInstance(failure)).toBe(true);
    expect(failure).toMatchObject({ code: "SANDBOX_UNAVAILABLE", details: { package: name } });
    expect((failure as Error).message).toContain(`npm install -g ${name}`);
  });

  it("passes other failures through unchanged", async () => {
    const original = new Error("the adapter's own bug");
    await expect(importAdapter("@running-agent/sandbox-docker", ErrorCode.SANDBOX_UNAVAILABLE, () => Promise.reject(original))).rejects.toBe(original);
  });

  it("returns the module when it loads", async () => {
    const loaded = await importAdapter("node:path", ErrorCode.SANDBOX_UNAVAILABLE, () => import("node:path"));
    expect(typeof loaded.join).toBe("function");
  });
});
