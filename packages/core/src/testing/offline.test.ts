import { execFile } from "node:child_process";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAppWithBuiltCore } from "../built-core-app.js";

const run = promisify(execFile);

/**
 * `@running-agent/core/offline` is what the demo, the examples and the local GitHub-compatible server import
 * at run time, so it must load in an app that never installed vitest (an optional peer). The package is built
 * into a temp app whose node_modules holds only core's own dependencies: there vitest cannot be resolved.
 */
describe("the offline subpath without vitest installed", () => {
  let app: string;
  beforeAll(async () => {
    // Only the declared dependencies, as a registry install without the optional peers would lay them out.
    app = await createAppWithBuiltCore({ prefix: "running-agent-offline-", type: "module", dependencies: "declared" });
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
      "OFFLINE_NOTE_FILE",
      "blockedRequests",
      "createServedGitHost",
      "createTestRepository",
      "listenOnLoopback",
      "networkProbeScript",
      "parseBasicAuthorization",
      "readRequestBody",
      "serveGitHttpBackend",
      "startGitHttpServer",
      "startLoopbackService",
      "startOfflineModel",
      "startScriptedModelServer",
      "stopGitServer",
      "workingDirectoryOf",
    ]);
    expect(result.answer).toBe("played offline");
    expect(result.chatRequests).toBe(1);
    // The app really cannot see vitest: otherwise the check above would prove nothing.
    expect(result.testing).toMatch(/Cannot find package 'vitest'/);
  });
});
