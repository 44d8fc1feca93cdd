import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { promisify } from "node:util";
import { createSandboxPool, keepPrepared, runAgentTask, type AgentTaskEvent, type SandboxPoolEvent } from "@running-agent/core";
import { createTestRepository, startScriptedModelServer, workingDirectoryOf, type ScriptedModelServer, type ScriptedTurn } from "@running-agent/core/testing";
import { describe, expect, it } from "vitest";
import { createDockerPreparedStateCache, PREPARED_CACHE_LABEL, PREPARED_STATE_LABEL } from "./docker-prepared-state-cache.js";
import { containersOf, docker, expectNoContainers, hostProcessesOf, scopedProvider } from "./test-engine.js";

// The core's sandbox pool over the Docker sandbox: containers opened ahead of time with OpenCode
// started and warmed; host networking so that the servers reach the scripted model on loopback.
const ORIGINAL = "def greet(name):\n    return 'Hello ' + name\n";
const EDITED = `${ORIGINAL}\n\ndef farewell(name):\n    return 'Goodbye ' + name\n`;
const API_KEY = "scripted-docker-pool-key-0123456789";

function modelFor(server: ScriptedModelServer) {
  return { provider: "openai-compatible" as const, model: "scripted", baseURL: server.url, apiKey: API_KEY };
}

function readyIds(events: SandboxPoolEvent[]): string[] {
  return events.flatMap((event) => (event.type === "ready" ? [event.sandboxId] : []));
}

/** The container's OpenCode server processes, seen from this machine. */
async function serversIn(containerId: string): Promise<number[]> {
  return (await hostProcessesOf(containerId)).filter((process) => /^(\S*\/)?opencode serve /.test(process.commandLine)).map((process) => process.pid);
}

describe("createSandboxPool with the Docker sandbox", () => {
  it("a pooled task runs on the container's warm server (no new server starts), and close() leaves no container", async () => {
    await using repo = await createTestRepository({ "greet.py": ORIGINAL });
    let pooledId = "";
    const serversAtRequest: number[][] = [];
    await using model = await startScriptedModelServer({
      apiKey: API_KEY,
      script: [
        async (request) => {
          serversAtRequest.push(await serversIn(pooledId));
          return { toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/greet.py`, content: EDITED } }] };
        },
        { text: "Added farewell." },
      ],
    });
    const { provider, run } = scopedProvider({ network: "host" });
    const events: SandboxPoolEvent[] = [];
    const pool = createSandboxPool(provider, { model: modelFor(model), onEvent: (event) => events.push(event) });
    try {
      await pool.whenReady();
      pooledId = readyIds(events)[0]!;
      const warmServers = await serversIn(pooledId);
      expect(warmServers).toHaveLength(1);
      expect(model.requests).toHaveLength(0);

      const taskEvents: AgentTaskEvent[] = [];
      const result = await runAgentTask({ repo: repo.path, task: "Add a farewell function to greet.py", model: modelFor(model), sandbox: pool, onEvent: (event) => taskEvents.push(event) });
      expect(result.status).toBe("completed");
      expect(await repo.git("show", `${result.branch}:greet.py`)).toBe(EDITED);
      expect(taskEvents.find((event) => event.type === "sandbox")).toMatchObject({ provider: "docker", sandboxId: pooledId, pooled: true });
      expect(serversAtRequest).toEqual([warmServers]);
      // The task's container is gone with the task; the pool has started its replacement.
      await pool.whenReady();
      expect((await containersOf(run)).map((info) => info.Id)).toEqual([readyIds(events)[1]]);
    } finally {
      await pool.close();
    }
    await expectNoContainers(run);
  });

  it("a pooled container killed from outside is replaced, never handed out", async () => {
    await using model = await startScriptedModelServer({});
    const { provider, run } = scopedProvider({ network: "host" });
    const events: SandboxPoolEvent[] = [];
    const pool = createSandboxPool(provider, { model: modelFor(model), onEvent: (event) => events.push(event) });
    try {
      await pool.whenReady();
      const first = readyIds(events)[0]!;
      await docker.getContainer(first).kill();
      await expect.poll(() => pool.stats().replaced, { timeout: 60_000 }).toBe(1);
      await pool.whenReady();
      expect(readyIds(events)[1]).not.toBe(first);
      expect((await containersOf(run)).map((info) => info.Id)).toEqual([readyIds(events)[1]]);
    } finally {
      await pool.close();
    }
    await expectNoContainers(run);
  });
});

const exec = promisify(execFile);
// The setup's product lives in an ignored folder (as node_modules would) and counts its runs.
const SETUP = "mkdir -p .deps && echo installed >> .deps/runs && cat package-lock.json > .deps/from-lock && echo setup ran";

/** What the task's container held when the model was first asked (read with `docker exec`), then an edit of app.js. */
function inspectingScript(seen: Array<{ id: string; runs: string; lock: string }>, sandboxId: () => string): ScriptedTurn[] {
  return [
    async (request) => {
      const id = sandboxId();
      const read = async (path: string) => (await exec("docker", ["exec", id, "sh", "-c", 'cat "$0" 2>/dev/null || echo missing', `/workspace/${path}`])).stdout;
      seen.push({ id, runs: await read(".deps/runs"), lock: await read(".deps/from-lock") });
      return { toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/app.js`, content: "edited by the agent\n" } }] };
    },
    { text: "Edited app.js." },
  ];
}


describe("createSandboxPool from Docker prepared states", () => {
  it("pooled containers start from keepPrepared's committed image: a task takes one and runs no setup; a moved base branch retires the old idle container and the next task gets the new state; close() leaves no container and no image but the cache's", async () => {
    await using repo = await createTestRepository({ "app.js": "original\n", "package-lock.json": '{"v":1}\n', ".gitignore": ".deps/\n" });
    const cache = createDockerPreparedStateCache({ name: `test-${randomUUID().slice(0, 8)}` });
    const { provider, run } = scopedProvider({ network: "host", preparedStates: cache });
    const seen: Array<{ id: string; runs: string; lock: string }> = [];
    let sandboxId = "";
    await using model = await startScriptedModelServer({ apiKey: API_KEY, script: [1, 2].flatMap(() => inspectingScript(seen, () => sandboxId)) });
    const events: SandboxPoolEvent[] = [];
    const waiters: Array<() => void> = [];
    const next = async (match: (event: SandboxPoolEvent) => boolean) => {
      for (;;) {
        const found = events.find(match);
        if (found) return found;
        await new Promise<void>((resolve) => waiters.push(resolve));
      }
    };
    const kept = keepPrepared({ repo: repo.path, sandbox: provider, setupCommands: [SETUP], everyMs: 500 });
    const pool = createSandboxPool(provider, { model: modelFor(model), prepared: kept, onEvent: (event) => (events.push(event), waiters.splice(0).forEach((wake) => wake())) });
    const stateImage = async (key: string) => (await docker.listImages({ filters: { label: [`${PREPARED_CACHE_LABEL}=${cache.name}`, `${PREPARED_STATE_LABEL}=${key}`] } }))[0]?.Id;
    const task = async () => {
      const taskEvents: AgentTaskEvent[] = [];
      const result = await runAgentTask({
        repo: repo.path,
        task: "Edit app.js",
        model: modelFor(model),
        sandbox: pool,
        setupCommands: [SETUP],
        onEvent: (event) => {
          taskEvents.push(event);
          if (event.type === "sandbox") sandboxId = event.sandboxId;
        },
      });
      expect(result.changes.map((change) => change.path)).toEqual(["app.js"]);
      return { sandbox: taskEvents.find((event) => event.type === "sandbox"), setupRan: taskEvents.some((event) => event.type === "command.output") };
    };
    try {
      await pool.whenReady();
      const firstKey = pool.preparedStateKey!;
      const [firstReady] = readyIds(events);
      expect((await docker.getContainer(firstReady!).inspect()).Image).toBe(await stateImage(firstKey));
      const first = await task();
      expect(first).toEqual({ sandbox: expect.objectContaining({ sandboxId: firstReady, pooled: true }), setupRan: false });
      expect(seen.at(-1)).toEqual({ id: firstReady, runs: "installed\n", lock: '{"v":1}\n' });

      // The refill holds the first state until the base branch moves and the schedule prepares the new head.
      await pool.whenReady();
      const refill = readyIds(events)[1]!;
      await repo.commit({ "package-lock.json": '{"v":2}\n' });
      expect(await next((event) => event.type === "retired")).toEqual({ type: "retired", sandboxId: refill, preparedStateKey: firstKey });
      // Told once it is gone.
      expect((await containersOf(run)).map((info) => info.Id)).not.toContain(refill);
      await pool.whenReady();
      const secondKey = pool.preparedStateKey!;
      expect(secondKey).not.toBe(firstKey);
      const fromNewState = readyIds(events).at(-1)!;
      expect((await docker.getContainer(fromNewState).inspect()).Image).toBe(await stateImage(secondKey));
      const second = await task();
      expect(second).toEqual({ sandbox: expect.objectContaining({ sandboxId: fromNewState, pooled: true }), setupRan: false });
      expect(seen.at(-1)).toEqual({ id: fromNewState, runs: "installed\n", lock: '{"v":2}\n' });
    } finally {
      await kept.stop();
      await pool.close();
    }
    await expectNoContainers(run);
    // The pool made no image: what is left is the cache's, and closing the cache removes it.
    await cache.close();
    expect(await docker.listImages({ all: true, filters: { label: [`${PREPARED_CACHE_LABEL}=${cache.name}`] } })).toEqual([]);
  });
});
