import { execFile } from "node:child_process";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAppWithBuiltCore } from "./built-core-app.js";

const run = promisify(execFile);

/** A CommonJS app on Node >= 20.19 requires the ESM build (require(esm)). */
describe("a CommonJS app can require the built package", () => {
  let app: string;
  beforeAll(async () => {
    app = await createAppWithBuiltCore({ prefix: "running-agent-cjs-", type: "commonjs", dependencies: "workspace" });
    await writeFile(
      join(app, "app.cjs"),
      [
        'const core = require("@running-agent/core");',
        'const testing = require("@running-agent/core/testing");',
        "const error = new core.RunningAgentError({ code: core.ErrorCode.INVALID_TASK, message: 'x' });",
        "console.log(JSON.stringify({",
        "  runAgentTask: typeof core.runAgentTask, startAgentTask: typeof core.startAgentTask,",
        "  createLocalSandbox: typeof core.createLocalSandbox, createLocalGitHost: typeof core.createLocalGitHost,",
        "  startScriptedModelServer: typeof testing.startScriptedModelServer,",
        "  isInstance: core.RunningAgentError.isInstance(error),",
        "}));",
      ].join("\n"),
    );
  }, 180_000);
  afterAll(async () => {
    await rm(app, { recursive: true, force: true });
  });

  it("exposes the API to require() on this Node version", async () => {
    const [major, minor] = process.versions.node.split(".").map(Number) as [number, number];
    expect(major > 20 || (major === 20 && minor >= 19)).toBe(true);
    const { stdout } = await run(process.execPath, ["app.cjs"], { cwd: app });
    expect(JSON.parse(stdout)).toEqual({
      runAgentTask: "function",
      startAgentTask: "function",
      createLocalSandbox: "function",
      createLocalGitHost: "function",
      startScriptedModelServer: "function",
      isInstance: true,
    });
  });
});
