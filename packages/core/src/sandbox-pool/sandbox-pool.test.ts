import { readdirSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode, createLocalSandbox, runAgentTask } from "../index.js";
import type { AgentTaskEvent } from "../index.js";
import { resolveModel } from "../agent/model-resolution.js";
import { SESSION_ENVIRONMENT_VARIABLE } from "../sandbox-local/local-sandbox.js";
import { createTestRepository, expectRunningAgentError, startScriptedModelServer, workingDirectoryOf, type ScriptedModelServer, usePrivateTmpdir } from "../testing/index.js";
import { createSandboxPool, type SandboxPool, type SandboxPoolEvent, type SandboxPoolStats } from "./sandbox-pool.js";
import { releaseLease } from "./release-lease.js";

const API_KEY = "pool-model-key-0123456789";
const ORIGINAL = "export const greeting = 'hello';\n";
const EDITED = "export const greeting = 'hello, pool';\n";

// Runs use a private TMPDIR, so that the folders counted are this file's own.
usePrivateTmpdir("running-agent-pool-tmp-");

function sessionFolders(): string[] {
  return readdirSync(process.env.TMPDIR!).filter((name) => name.startsWith("running-agent-") && !name.startsWith("running-agent-test-repo-"));
}

/** Pids of this user's processes whose environment marks them as the sandbox's; with "serve", only OpenCode servers (not the bwrap around them). */
function processesOf(sandboxId: string, only?: "serve"): number[] {
  const needle = Buffer.from(`\0${SESSION_ENVIRONMENT_VARIABLE}=${sandboxId}\0`);
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const environment = Buffer.concat([Buffer.from([0]), readFileSync(`/proc/${entry}/environ`)]);
      if (!environment.includes(needle)) continue;
      const argv = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      if (only === "serve" && !(argv[0]!.endsWith("/opencode") && argv[1] === "serve")) continue;
      pids.push(Number(entry));
    } catch {
      // Gone meanwhile, or not ours.
    }
  }
  return pids;
}

function modelFor(server: ScriptedModelServer, apiKey = API_KEY) {
  return { provider: "openai-compatible" as const, model: "scripted", baseURL: server.url, apiKey };
}

/** A pool on the local sandbox whose events are recorded. */
function localPool(model: ScriptedModelServer, options: { size?: number; idleTimeoutMs?: number } = {}): { pool: SandboxPool; events: SandboxPoolEvent[] } {
  const events: SandboxPoolEvent[] = [];
  const pool = createSandboxPool(createLocalSandbox(), { model: modelFor(model), onEvent: (event) => events.push(event), ...options });
  return { pool, events };
}

function readyIds(events: SandboxPoolEvent[]): string[] {
  return events.flatMap((event) => (event.type === "ready" ? [event.sandboxId] : []));
}

describe("createSandboxPool on the local sandbox (bubblewrap)", () => {
  let foldersBefore: string[];
  beforeAll(() => {
    foldersBefore = sessionFolders();
  });
  afterAll(() => {
    expect(sessionFolders().filter((name) => !foldersBefore.includes(name))).toEqual([]);
  });

  it("a pooled task uses the server that was started ahead of it: the model's requests come while only that server runs in the sandbox", async () => {
    await using repo = await createTestRepository({ "src/greeting.ts": ORIGINAL });
    const serversAtRequest: number[][] = [];
    const poolAtRequest: SandboxPoolStats[] = [];
    let pooledId = "";
    let poolOfTask: SandboxPool | undefined;
    await using model = await startScriptedModelServer({
      apiKey: API_KEY,
      script: [
        (request) => {
          serversAtRequest.push(processesOf(pooledId, "serve"));
          if (poolOfTask) poolAtRequest.push(poolOfTask.stats());
          return { toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/src/greeting.ts`, content: EDITED } }] };
        },
        { text: "Changed the greeting." },
      ],
    });
    const { pool, events } = localPool(model);
    await using _pool = pool;
    poolOfTask = pool;
    await pool.whenReady();
    pooledId = readyIds(events)[0]!;
    const warmServers = processesOf(pooledId, "serve");
    expect(warmServers).toHaveLength(1);
    // The warm-up never reached the model.
    expect(model.requests).toHaveLength(0);

    const taskEvents: AgentTaskEvent[] = [];
    const result = await runAgentTask({ repo: repo.path, task: "Change the greeting", model: modelFor(model), sandbox: pool, onEvent: (event) => taskEvents.push(event) });

    expect(result.status).toBe("completed");
    expect(result.changes.map((change) => change.path)).toEqual(["src/greeting.ts"]);
    expect(await repo.git("show", `${result.branch}:src/greeting.ts`)).toBe(EDITED);
    const sandboxEvent = taskEvents.find((event) => event.type === "sandbox");
    expect(sandboxEvent).toMatchObject({ sandboxId: pooledId, pooled: true });
    // The request came from the warm server: the same process, and no other started in the sandbox.
    expect(serversAtRequest).toEqual([warmServers]);
    // While the task started, no replacement took the CPU: it waited for the model's first answer.
    expect(poolAtRequest[0]).toMatchObject({ starting: 0, heldBack: 1 });
    expect(taskEvents.some((event) => event.type === "log" && event.message.startsWith("OpenCode server ready in"))).toBe(false);
    expect(pool.stats().taken).toBe(1);
    // The taken sandbox is gone with its task, and the pool refills with a new one.
    expect(sessionFolders()).not.toContain(pooledId);
    await pool.whenReady();
    expect(readyIds(events)).toHaveLength(2);
    expect(readyIds(events)[1]).not.toBe(pooledId);
  });

  it("a task whose model key differs gets a sandbox of its own, and the pool keeps its sandbox", async () => {
    await using repo = await createTestRepository({ "src/greeting.ts": ORIGINAL });
    await using model = await startScriptedModelServer({ afterScript: { text: "Nothing to change." } });
    const { pool } = localPool(model);
    await using _pool = pool;
    await pool.whenReady();
    const taskEvents: AgentTaskEvent[] = [];
    const result = await runAgentTask({ repo: repo.path, task: "Look", model: modelFor(model, "another-key"), sandbox: pool, onEvent: (event) => taskEvents.push(event) });
    expect(result.status).toBe("no_changes");
    expect(taskEvents.find((event) => event.type === "sandbox")).not.toMatchObject({ pooled: true });
    expect(taskEvents.some((event) => event.type === "log" && event.message.includes("another API key"))).toBe(true);
    expect(pool.stats()).toMatchObject({ idle: 1, taken: 0 });
    // allowRepoAgentConfig needs the repo's config at start: never pooled. Behind the egress proxy the
    // pool keeps the key on the host by default, as a task does: a task that turns that off is not served.
    const resolved = resolveModel(modelFor(model));
    expect(await pool.take({ taskId: "t", model: resolved, modelProxy: false, allowRepoAgentConfig: true })).toEqual({ miss: expect.stringContaining("allowRepoAgentConfig") });
    expect(await pool.take({ taskId: "t", model: resolved, modelProxy: false, allowRepoAgentConfig: false })).toEqual({ miss: expect.stringContaining("modelProxy") });
  });

  it("never gives one sandbox to two tasks: concurrent takes get distinct sandboxes, a third waits for the refill", async () => {
    await using model = await startScriptedModelServer({});
    const { pool } = localPool(model, { size: 2 });
    await using _pool = pool;
    await pool.whenReady();
    const resolved = resolveModel(modelFor(model));
    const takes = await Promise.all([1, 2, 3].map((n) => pool.take({ taskId: `t${n}`, model: resolved, modelProxy: true, allowRepoAgentConfig: false })));
    const leases = takes.map((taken) => ("lease" in taken ? taken.lease : undefined));
    try {
      expect(leases.every(Boolean)).toBe(true);
      const ids = leases.map((lease) => lease!.session.id);
      expect(new Set(ids).size).toBe(3);
      expect(pool.stats()).toMatchObject({ taken: 3, waiting: 0 });
    } finally {
      await Promise.all(leases.map((lease) => releaseLease(lease)));
    }
  });

  it("holds a taken sandbox's replacement back until its task says the agent is under way, unless another task finds none ready", async () => {
    await using model = await startScriptedModelServer({});
    const { pool } = localPool(model);
    await using _pool = pool;
    await pool.whenReady();
    const resolved = resolveModel(modelFor(model));
    const first = await pool.take({ taskId: "t1", model: resolved, modelProxy: true, allowRepoAgentConfig: false });
    const leases = ["lease" in first ? first.lease : undefined];
    try {
      expect(pool.stats()).toMatchObject({ idle: 0, starting: 0, heldBack: 1 });
      leases[0]!.startReplacement();
      expect(pool.stats()).toMatchObject({ starting: 1, heldBack: 0 });
      await pool.whenReady();
      // Held back again, and then a second task with nothing ready: the replacement starts for it at once.
      const second = await pool.take({ taskId: "t2", model: resolved, modelProxy: true, allowRepoAgentConfig: false });
      leases.push("lease" in second ? second.lease : undefined);
      expect(pool.stats()).toMatchObject({ starting: 0, heldBack: 1 });
      const third = await pool.take({ taskId: "t3", model: resolved, modelProxy: true, allowRepoAgentConfig: false });
      leases.push("lease" in third ? third.lease : undefined);
      expect(leases.every(Boolean)).toBe(true);
      expect(new Set(leases.map((lease) => lease!.session.id)).size).toBe(3);
      // A late word from the second task's run starts nothing more than the pool's size.
      leases[1]!.startReplacement();
      leases[1]!.startReplacement();
      expect(pool.stats().starting + pool.stats().idle).toBe(1);
    } finally {
      await Promise.all(leases.map((lease) => releaseLease(lease)));
    }
  });

  it("a task cancelled while it waits for a starting sandbox leaves the pool consistent: the sandbox goes to the next task", async () => {
    await using model = await startScriptedModelServer({});
    const { pool } = localPool(model);
    await using _pool = pool;
    const resolved = resolveModel(modelFor(model));
    const controller = new AbortController();
    const waiting = pool.take({ taskId: "cancelled", model: resolved, modelProxy: true, allowRepoAgentConfig: false, signal: controller.signal });
    expect(pool.stats()).toMatchObject({ starting: 1, waiting: 1 });
    controller.abort();
    expect((await expectRunningAgentError(waiting)).code).toBe(ErrorCode.ABORTED);
    expect(pool.stats()).toMatchObject({ waiting: 0, taken: 0 });
    await pool.whenReady();
    expect(pool.stats()).toMatchObject({ idle: 1, starting: 0, waiting: 0 });
    const next = await pool.take({ taskId: "next", model: resolved, modelProxy: true, allowRepoAgentConfig: false });
    expect("lease" in next).toBe(true);
    await releaseLease("lease" in next ? next.lease : undefined);
  });

  it("a sandbox whose OpenCode server is killed from outside while idle is replaced, and never handed out", async () => {
    await using model = await startScriptedModelServer({});
    const { pool, events } = localPool(model);
    await using _pool = pool;
    await pool.whenReady();
    const first = readyIds(events)[0]!;
    const [server] = processesOf(first, "serve");
    process.kill(server!, "SIGKILL");
    await expect.poll(() => pool.stats().replaced).toBe(1);
    await pool.whenReady();
    const second = readyIds(events)[1]!;
    expect(second).not.toBe(first);
    expect(sessionFolders()).not.toContain(first);
    expect(processesOf(first)).toEqual([]);
    const taken = await pool.take({ taskId: "t", model: resolveModel(modelFor(model)), modelProxy: true, allowRepoAgentConfig: false });
    expect("lease" in taken && taken.lease.session.id).toBe(second);
    await releaseLease("lease" in taken ? taken.lease : undefined);
  });

  it("close() while sandboxes start and after they are ready leaves no process and no folder", async () => {
    await using model = await startScriptedModelServer({});
    const starting = localPool(model, { size: 2 });
    // Waiting for more than the pool will ever hold ends with the pool.
    const neverReady = starting.pool.whenReady(3);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await starting.pool.close();
    await neverReady;
    const ready = localPool(model, { size: 2 });
    await ready.pool.whenReady();
    const ids = readyIds(ready.events);
    expect(ids).toHaveLength(2);
    await ready.pool.close();
    for (const id of [...ids, ...readyIds(starting.events)]) expect(processesOf(id)).toEqual([]);
    expect(sessionFolders().filter((name) => !foldersBefore.includes(name))).toEqual([]);
    // A closed pool hands out nothing and starts nothing.
    expect(await ready.pool.take({ taskId: "t", model: resolveModel(modelFor(model)), modelProxy: true, allowRepoAgentConfig: false })).toEqual({ miss: "the pool is closed" });
    expect(ready.pool.stats()).toMatchObject({ idle: 0, starting: 0 });
  });

  it("an idle sandbox expires after idleTimeoutMs and is not replaced until a task takes one", async () => {
    await using model = await startScriptedModelServer({});
    const { pool, events } = localPool(model, { idleTimeoutMs: 300 });
    await using _pool = pool;
    await pool.whenReady();
    await expect.poll(() => pool.stats().expired).toBe(1);
    const expired = readyIds(events)[0]!;
    await expect.poll(() => sessionFolders().includes(expired)).toBe(false);
    expect(pool.stats()).toMatchObject({ idle: 0, starting: 0 });
  });

  it("with refill: false, a taken sandbox is not replaced (a one-shot run starts nothing it will not use)", async () => {
    await using model = await startScriptedModelServer({});
    const events: SandboxPoolEvent[] = [];
    const pool = createSandboxPool(createLocalSandbox(), { model: modelFor(model), refill: false, onEvent: (event) => events.push(event) });
    await using _pool = pool;
    await pool.whenReady();
    const taken = await pool.take({ taskId: "t", model: resolveModel(modelFor(model)), modelProxy: true, allowRepoAgentConfig: false });
    expect(pool.stats()).toMatchObject({ idle: 0, starting: 0, taken: 1 });
    expect(await pool.take({ taskId: "u", model: resolveModel(modelFor(model)), modelProxy: true, allowRepoAgentConfig: false })).toEqual({ miss: "no sandbox is ready" });
    expect(readyIds(events)).toHaveLength(1);
    await releaseLease("lease" in taken ? taken.lease : undefined);
  });

  it("refuses bad settings before anything starts", () => {
    const provider = createLocalSandbox();
    for (const size of [0, -1, 1.5]) expect(() => createSandboxPool(provider, { size, model: "openai-compatible/x" })).toThrow(/size/);
    expect(() => createSandboxPool(provider, { idleTimeoutMs: 0, model: "openai-compatible/x" })).toThrow(/idleTimeoutMs/);
    expect(() => createSandboxPool(provider, { idleTimeoutMs: 60_000, sandboxTimeoutMs: 30_000, model: "openai-compatible/x" })).toThrow(/sandboxTimeoutMs must be longer/);
    expect(() => createSandboxPool({} as never)).toThrow(/sandbox provider/);
  });
});

