import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { createLocalGitHost, runAgentTask } from "@running-agent/core";
import { createTestRepository, startScriptedModelServer, type ScriptedTurn, workingDirectoryOf } from "@running-agent/core/testing";
import { pack } from "tar-stream";
import { beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_IMAGE } from "./default-image.js";
import { docker, expectNoContainers, scopedProvider } from "./test-engine.js";

// The verify phase with the Docker sandbox: checks run in the container, a failure goes back to
// the same OpenCode session (a second server start in the same container), and the fix is pushed.
// The default image has no Node.js; this test's image adds this machine's `node` binary.
// Its tag names the default image's id: a rebuilt default image (e.g. one that gained socat) gets a new one.
let NODE_IMAGE = "";

async function ensureNodeImage(): Promise<void> {
  const baseId = (await docker.getImage(DEFAULT_IMAGE).inspect()).Id.replace(/^sha256:/, "").slice(0, 12);
  NODE_IMAGE = `running-agent/sandbox-node-test:${DEFAULT_IMAGE.split(":")[1]}-${baseId}-${process.versions.node}`;
  if (await docker.getImage(NODE_IMAGE).inspect().then(() => true, () => false)) return;
  const context = pack();
  const dockerfile = `FROM ${DEFAULT_IMAGE}\nCOPY node /usr/local/bin/node\nRUN node --version\n`;
  context.entry({ name: "Dockerfile" }, dockerfile);
  const size = (await stat(process.execPath)).size;
  const entry = context.entry({ name: "node", size, mode: 0o755 }, () => context.finalize());
  createReadStream(process.execPath).pipe(entry);
  const stream = await docker.buildImage(context, { t: NODE_IMAGE, networkmode: "none" });
  await new Promise<void>((resolve, reject) =>
    docker.modem.followProgress(stream, (error: Error | null, output: Array<{ error?: string }>) => {
      const failed = output?.find((line) => line.error);
      if (error || failed) reject(error ?? new Error(failed!.error));
      else resolve();
    }),
  );
}

const PACKAGE_JSON = `${JSON.stringify({ name: "calculator", type: "module", scripts: { test: "node --test" } })}\n`;
const MATH = "export function add(a, b) {\n  return a + b;\n}\n";
const TEST = 'import { test } from "node:test";\nimport assert from "node:assert/strict";\nimport { add } from "./math.js";\n\ntest("add adds", () => {\n  assert.equal(add(2, 3), 5);\n});\n';
const BROKEN = "export function add(a, b) {\n  return a - b;\n}\n";
const FIXED = "export function add(a, b) {\n  return a + b;\n}\n\nexport function multiply(a, b) {\n  return a * b;\n}\n";

describe("verify with the Docker sandbox", () => {
  beforeAll(ensureNodeImage, 300_000);

  it("a failing check goes back to the agent, which fixes it; the fix is pushed and the PR is ready", async () => {
    await using repo = await createTestRepository({ "package.json": PACKAGE_JSON, "math.js": MATH, "math.test.js": TEST });
    const write = (content: string): ScriptedTurn => (request) => ({ toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/math.js`, content } }] });
    await using model = await startScriptedModelServer({ script: [write(BROKEN), { text: "Added multiply." }, write(FIXED), { text: "Fixed add." }] });
    const { provider, run } = scopedProvider({ network: "host", image: NODE_IMAGE });
    const result = await runAgentTask({
      repo: repo.path,
      task: "Add multiply(a, b) to math.js",
      model: { provider: "openai-compatible", model: "scripted", baseURL: model.url, apiKey: "scripted-docker-verify-key" },
      sandbox: provider,
      gitHost: createLocalGitHost(),
      // The image has node but not npm: the same test through node's own runner.
      checks: [{ name: "test", command: "node --test" }],
    });
    expect(result.verification!.rounds.map((round) => round.passed)).toEqual([false, true]);
    expect(result.verification!.rounds[0]!.checks[0]!.outputTail).toContain("add adds");
    expect(model.chatRequests[2]!.headers["x-session-id"]).toBe(model.chatRequests[0]!.headers["x-session-id"]);
    expect(JSON.stringify(model.chatRequests[2]!.body.messages)).toContain("1 check fails");
    expect(await repo.git("show", `${result.branch}:math.js`)).toBe(FIXED);
    expect(result.pullRequest!.draft).toBe(false);
    await expectNoContainers(run);
  });
});
