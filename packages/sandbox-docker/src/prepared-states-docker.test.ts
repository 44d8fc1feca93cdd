import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { createLocalGitHost, ErrorCode, runAgentTask, type AgentTaskEvent } from "@running-agent/core";
import { createTestRepository, startScriptedModelServer, workingDirectoryOf, type ScriptedModelServer, type ScriptedTurn, type TestRepository } from "@running-agent/core/testing";
import { describe, expect, it } from "vitest";
import { createDockerPreparedStateCache, PREPARED_CACHE_LABEL, type DockerPreparedStateCache } from "./docker-prepared-state-cache.js";
import { docker, expectNoContainers, scopedProvider } from "./test-engine.js";

const run = promisify(execFile);
const API_KEY = "prepared-docker-key-0123456789";
// The setup's product lives in an ignored folder (as node_modules would) and counts its runs.
const SETUP = "mkdir -p .deps && echo installed >> .deps/runs && cat package-lock.json > .deps/from-lock && echo setup ran";

interface Seen {
  runs: string;
  lock: string;
  app: string;
  image: string;
}

/** What the agent's container held when the model was first asked (read with `docker exec`), then an edit of app.js. */
function inspectingScript(seen: Seen[], sandboxId: () => string): ScriptedTurn[] {
  return [
    async (request) => {
      const id = sandboxId();
      const read = async (path: string) => (await run("docker", ["exec", id, "sh", "-c", 'cat "$0" 2>/dev/null || echo missing', `/workspace/${path}`])).stdout;
      const image = (await docker.getContainer(id).inspect()).Image;
      seen.push({ runs: await read(".deps/runs"), lock: await read(".deps/from-lock"), app: await read("app.js"), image });
      return { toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/app.js`, content: "edited by the agent\n" } }] };
    },
    { text: "Edited app.js." },
  ];
}

async function commitOnMain(repo: TestRepository, files: Record<string, string>): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), "running-agent-prepared-work-"));
  try {
    await repo.git("--work-tree", work, "checkout", "main", "--", ".");
    for (const [path, content] of Object.entries(files)) await writeFile(join(work, path), content);
    await repo.git("--work-tree", work, "add", ...Object.keys(files));
    await repo.git("--work-tree", work, "-c", "user.name=T", "-c", "user.email=t@example.invalid", "commit", "-q", "-m", "base moves");
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

describe("runAgentTask with Docker prepared states", () => {
  it("the second task on a key starts from the committed image and skips the setup; a moved base branch (new lockfile) prepares again on the new commit; a failed or cancelled setup keeps nothing; close() leaves no image or container", async () => {
    await using repo = await createTestRepository({ "app.js": "original\n", "package-lock.json": '{"v":1}\n', ".gitignore": ".deps/\n" });
    const cache: DockerPreparedStateCache = createDockerPreparedStateCache({ name: `test-${randomUUID().slice(0, 8)}` });
    const { provider, run: runLabel } = scopedProvider({ network: "host", preparedStates: cache });
    const seen: Seen[] = [];
    let sandboxId = "";
    await using model: ScriptedModelServer = await startScriptedModelServer({ apiKey: API_KEY, script: [1, 2, 3].flatMap(() => inspectingScript(seen, () => sandboxId)) });
    const task = async (setupCommands: string[], cancelOnSetupOutput = false) => {
      const events: AgentTaskEvent[] = [];
      const controller = new AbortController();
      const result = await runAgentTask({
        signal: controller.signal,
        repo: repo.path,
        task: "Edit app.js",
        model: { provider: "openai-compatible", model: "scripted", baseURL: model.url, apiKey: API_KEY },
        sandbox: provider,
        gitHost: createLocalGitHost(),
        setupCommands,
        onEvent: (event) => {
          events.push(event);
          if (event.type === "sandbox") sandboxId = event.sandboxId;
          if (event.type === "command.output" && cancelOnSetupOutput) controller.abort();
        },
      });
      return { result, setupRan: events.some((event) => event.type === "command.output") };
    };
    try {
      const first = await task([SETUP]);
      expect([first.result.status, first.setupRan]).toEqual(["completed", true]);
      expect(await cache.keys()).toHaveLength(1);

      // Same repository, commit and command: the container starts from the image; the agent's edit of
      // app.js in the first task (after the commit) is not in it.
      const second = await task([SETUP]);
      expect([second.result.status, second.setupRan]).toEqual(["completed", false]);
      expect(second.result.changes).toEqual([expect.objectContaining({ path: "app.js", status: "modified" })]);

      // The base branch moves, with a new lockfile: the task gets the new commit and prepares again.
      await commitOnMain(repo, { "app.js": "moved\n", "package-lock.json": '{"v":2}\n' });
      const third = await task([SETUP]);
      expect([third.result.status, third.setupRan]).toEqual(["completed", true]);

      const [prepared] = await docker.listImages({ filters: { label: [`${PREPARED_CACHE_LABEL}=${cache.name}`] } }).then((images) => images.map((image) => image.Id));
      expect(seen.map(({ image, ...files }) => ({ ...files, fromState: image !== seen[0]!.image }))).toEqual([
        { runs: "installed\n", lock: '{"v":1}\n', app: "original\n", fromState: false },
        { runs: "installed\n", lock: '{"v":1}\n', app: "original\n", fromState: true },
        { runs: "installed\n", lock: '{"v":2}\n', app: "moved\n", fromState: false },
      ]);
      expect(await cache.keys()).toHaveLength(2);
      expect(prepared).toBeDefined();

      // A setup that fails, or is cancelled, keeps no state.
      await expect(task([SETUP, "exit 3"])).rejects.toMatchObject({ code: ErrorCode.SETUP_FAILED, phase: "setup" });
      await expect(task(["echo started && sleep 120"], true)).rejects.toMatchObject({ code: ErrorCode.ABORTED, phase: "setup" });
      expect(await cache.keys()).toHaveLength(2);

      await cache.close();
      expect(await docker.listImages({ all: true, filters: { label: [`${PREPARED_CACHE_LABEL}=${cache.name}`] } })).toEqual([]);
      await expectNoContainers(runLabel);
    } finally {
      await cache.invalidate().catch(() => undefined);
    }
  });
});
