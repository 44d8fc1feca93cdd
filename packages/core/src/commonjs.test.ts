import { execFile } from "node:child_process";
import { cp, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { createRequire } from "node:module";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const packageRoot = join(dirname(fileURLToPath(import.meta.url)), "..");

/**
 * A CommonJS app on Node >= 20.19 requires the ESM build (require(esm)). The build goes into a
 * temp copy of the package, so this test never races a developer's own `dist`.
 */
describe("a CommonJS app can require the built package", () => {
  let app: string;
  beforeAll(async () => {
    app = await mkdtemp(join(tmpdir(), "running-agent-cjs-"));
    const installed = join(app, "node_modules", "@running-agent", "core");
    await mkdir(installed, { recursive: true });
    const tsupPackage = createRequire(import.meta.url).resolve("tsup/package.json");
    const tsup = join(dirname(tsupPackage), "dist", "cli-default.js");
    await run(process.execPath, [tsup, "--out-dir", join(installed, "dist"), "--no-dts", "--silent"], { cwd: packageRoot });
    await cp(join(packageRoot, "package.json"), join(installed, "package.json"));
    await symlink(join(packageRoot, "node_modules"), join(installed, "node_modules"));
    await writeFile(join(app, "package.json"), JSON.stringify({ name: "cjs-app", private: true, type: "commonjs" }));
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
