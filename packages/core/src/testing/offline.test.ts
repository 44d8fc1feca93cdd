import { execFile } from "node:child_process";
import { cp, mkdir, mkdtemp, readFile, realpath, rm, symlink, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const packageRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/**
 * `@running-agent/core/offline` is what the demo, the examples and the local GitHub-compatible server import
 * at run time, so it must load in an app that never installed vitest (an optional peer). The package is built
 * into a temp app whose node_modules holds only core's own dependencies: there vitest cannot be resolved.
 */
describe("the offline subpath without vitest installed", () => {
  let app: string;
  beforeAll(async () => {
    app = await mkdtemp(join(tmpdir(), "running-agent-offline-"));
    const installed = join(app, "node_modules", "@running-agent", "core");
    await mkdir(installed, { recursive: true });
    const tsupPackage = createRequire(import.meta.url).resolve("tsup/package.json");
    const tsup = join(dirname(tsupPackage), "dist", "cli-default.js");
    await run(process.execPath, [tsup, "--out-dir", join(installed, "dist"), "--no-dts", "--silent"], { cwd: packageRoot });
    await cp(join(packageRoot, "package.json"), join(installed, "package.json"));
    // Only the declared dependencies, as a registry install without the optional peers would lay them out.
    const manifest = JSON.parse(await readFile(join(packageRoot, "package.json"), "utf8")) as { dependencies: Record<string, string> };
    for (const name of Object.keys(manifest.dependencies)) {
      const link = join(installed, "node_modules", name);
      await mkdir(dirname(link), { recursive: true });
      await symlink(await realpath(join(packageRoot, "node_modules", name)), link);
    }
    await writeFile(join(app, "package.json"), JSON.stringify({ name: "offline-app", private: true, type: "module" }));
    await writeFile(
      join(app, "app.mjs"),
      [
        'const offline = await import("@running-agent/core/offline");',
        'const server = await offline.startScriptedModelServer({ script: [{ text: "played offline" }] });',
        "const response = await fetch(`${server.url}/chat/completions`, {",
        '  method: "POST", headers: { "content-type": "application/json" },',
        '  body: JSON.stringify({ model: "scripted-model", messages: [{ role: "user", content: "hi" }] }),',
        "});",
        "const completion = await response.json();",
        "await server.close();",
        "const testing = await import(\"@running-agent/core/testing\").then(() => \"loaded\", (error) => error.message);",
        "console.log(JSON.stringify({",
        "  exports: Object.keys(offline).sort(),",
        "  answer: completion.choices[0].message.content,",
        "  chatRequests: server.chatRequests.length,",
        "  testing,",
        "}));",
      ].join("\n"),
    );
  }, 180_000);
  afterAll(async () => {
    await rm(app, { recursive: true, force: true });
  });

  it("loads and plays a script, where the testing subpath (which needs vitest) cannot load", async () => {
    const { stdout } = await run(process.execPath, ["app.mjs"], { cwd: app });
    const result = JSON.parse(stdout) as { exports: string[]; answer: string; chatRequests: number; testing: string };
    expect(result.exports).toEqual([
      "createTestRepository",
      "parseBasicAuthorization",
      "readRequestBody",
      "serveGitHttpBackend",
      "startGitHttpServer",
      "startScriptedModelServer",
      "workingDirectoryOf",
    ]);
    expect(result.answer).toBe("played offline");
    expect(result.chatRequests).toBe(1);
    // The app really cannot see vitest: otherwise the check above would prove nothing.
    expect(result.testing).toMatch(/Cannot find package 'vitest'/);
  });
});
