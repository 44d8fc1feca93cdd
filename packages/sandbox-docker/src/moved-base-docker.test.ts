import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { promisify } from "node:util";
import { createSandboxPool, keepPrepared, prepareRepository, runAgentTask, type AgentTaskEvent, type AgentTaskOptions, type AgentTaskResult } from "@running-agent/core";
import { createServedGitHost, createTestRepository, startGitHttpServer, startScriptedModelServer, workingDirectoryOf, type ScriptedTurn } from "@running-agent/core/testing";
import { describe, expect, it } from "vitest";
import { createDockerPreparedStateCache, PREPARED_CACHE_LABEL, PREPARED_COMMIT_LABEL, PREPARED_LINEAGE_LABEL } from "./docker-prepared-state-cache.js";
import { docker, expectNoContainers, scopedProvider } from "./test-engine.js";

const run = promisify(execFile);
const API_KEY = "moved-base-docker-key-0123456789";
const GIT_TOKEN = "tok_moved_base_docker_5ecret";
const GIT_USER = "x-access-token";
// The setup's product lives in an ignored folder (as node_modules would) and counts its runs.
const SETUP = "mkdir -p .deps && echo installed >> .deps/runs && cat package-lock.json > .deps/from-lock && echo setup ran";

interface Seen {
  runs: string;
  files: string;
  head: string;
  image: string;
}

/** What the agent's container held when the model was first asked (read with `docker exec`), then an edit of app.js. */
function inspectingScript(seen: Seen[], sandboxId: () => string): ScriptedTurn[] {
  return [
    async (request) => {
      const id = sandboxId();
      const inside = async (script: string) => (await run("docker", ["exec", "-w", "/workspace", id, "sh", "-c", script])).stdout;
      seen.push({
        runs: await inside("cat .deps/runs"),
        files: await inside("for f in app.js lib/util.js lib/new.js old.js; do echo \"$f: $(cat $f 2>/dev/null || echo missing)\"; done"),
        head: (await inside("git -c safe.directory='*' rev-parse HEAD")).trim(),
        image: (await docker.getContainer(id).inspect()).Image,
      });
      return { toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/app.js`, content: "edited by the agent\n" } }] };
    },
    { text: "Edited app.js." },
  ];
}

const setupRan = (events: AgentTaskEvent[]) => events.some((event) => event.type === "command.output");
const logLine = (events: AgentTaskEvent[], start: string) => events.find((event): event is Extract<AgentTaskEvent, { type: "log" }> => event.type === "log" && event.message.startsWith(start))?.message;

describe("Docker prepared states on a moved base (git over HTTP)", () => {
  it("a task on a later commit starts from the older state's image and brings in what changed (no setup, PR of its own change only); a changed lockfile starts cold; a pooled container from keepPrepared serves a moved base", async () => {
    await using repo = await createTestRepository({ "app.js": "original\n", "lib/util.js": "util v1\n", "old.js": "old\n", "package-lock.json": '{"v":1}\n', ".gitignore": ".deps/\n" });
    await using server = await startGitHttpServer({ root: repo.root, token: GIT_TOKEN, username: GIT_USER });
    const gitHost = createServedGitHost({ server, repository: repo, username: GIT_USER, token: GIT_TOKEN });
    const url = `${server.url}/repo.git`;
    const cache = createDockerPreparedStateCache({ name: `test-${randomUUID().slice(0, 8)}` });
    const { provider, run: runLabel } = scopedProvider({ network: "host", preparedStates: cache });
    const seen: Seen[] = [];
    let sandboxId = "";
    await using model = await startScriptedModelServer({ apiKey: API_KEY, script: [1, 2, 3].flatMap(() => inspectingScript(seen, () => sandboxId)) });
    const modelConfig = { provider: "openai-compatible" as const, model: "scripted", baseURL: model.url, apiKey: API_KEY };
    const task = async (options: Partial<AgentTaskOptions> = {}): Promise<{ events: AgentTaskEvent[]; result: AgentTaskResult }> => {
      const events: AgentTaskEvent[] = [];
      const result = await runAgentTask({
        repo: url,
        gitHost,
        task: "Edit app.js",
        model: modelConfig,
        sandbox: provider,
        setupCommands: [SETUP],
        ...options,
        onEvent: (event) => {
          events.push(event);
          if (event.type === "sandbox") sandboxId = event.sandboxId;
        },
      });
      expect(result.status).toBe("completed");
      return { events, result };
    };
    const pushedFiles = async (result: AgentTaskResult) => (await repo.git("diff", "--name-only", `${result.commit!}^`, result.commit!)).trim().split("\n");
    try {
      const prepared = await prepareRepository({ repo: url, gitHost, sandbox: provider, setupCommands: [SETUP] });
      const [image] = await docker.listImages({ filters: { label: [`${PREPARED_CACHE_LABEL}=${cache.name}`] } });
      // The host wrote the origin on the image: found by lineage, never read from the container.
      expect([image!.Labels[PREPARED_LINEAGE_LABEL], image!.Labels[PREPARED_COMMIT_LABEL]]).toEqual([prepared.lineage, prepared.commit]);

      const head = await repo.commit({ "lib/util.js": "util v2\n", "lib/new.js": "new\n", "old.js": null });
      const moved = await task();
      expect(setupRan(moved.events)).toBe(false);
      expect(logLine(moved.events, "Started from the prepared state")).toContain(`at ${prepared.commit.slice(0, 12)} and brought it to ${head.slice(0, 12)}: 2 files brought in, 1 removed`);
      expect(seen.at(-1)).toEqual({ runs: "installed\n", files: "app.js: original\nlib/util.js: util v2\nlib/new.js: new\nold.js: missing\n", head, image: image!.Id });
      expect(moved.result.changes.map((change) => change.path)).toEqual(["app.js"]);
      expect(await pushedFiles(moved.result)).toEqual(["app.js"]);
      expect(await repo.git("rev-parse", `${moved.result.commit!}^`)).toBe(`${head}\n`);

      await repo.commit({ "package-lock.json": '{"v":2}\n' });
      const lockfile = await task();
      expect(setupRan(lockfile.events)).toBe(true);
      expect(logLine(lockfile.events, "Not starting from the prepared state")).toContain("setup inputs changed since (package-lock.json)");
      expect(seen.at(-1)!.image).not.toBe(image!.Id);

      const kept = keepPrepared({ repo: url, gitHost, sandbox: provider, setupCommands: [SETUP], everyMs: 600_000 });
      const pool = createSandboxPool(provider, { size: 1, model: modelConfig, prepared: kept });
      try {
        await pool.whenReady();
        const state = kept.last!;
        const later = await repo.commit({ "lib/new.js": "newer\n" });
        const pooled = await task({ sandbox: pool });
        expect(pooled.events.find((event) => event.type === "sandbox")).toMatchObject({ pooled: true });
        expect(setupRan(pooled.events)).toBe(false);
        expect(logLine(pooled.events, "Started from the prepared state")).toContain(`at ${state.commit.slice(0, 12)} and brought it to ${later.slice(0, 12)}: 1 file brought in, 0 removed`);
        expect(seen.at(-1)).toMatchObject({ files: expect.stringContaining("lib/new.js: newer\n"), head: later });
        expect(await pushedFiles(pooled.result)).toEqual(["app.js"]);
      } finally {
        await kept.stop();
        await pool.close();
      }
      await expectNoContainers(runLabel);
    } finally {
      await cache.close().catch(() => undefined);
    }
  });
});
