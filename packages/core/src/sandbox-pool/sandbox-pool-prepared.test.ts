import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLocalSandbox, createPreparedStateCache, keepPrepared, prepareRepository, runAgentTask, type AgentTaskEvent, type PreparedStateCache } from "../index.js";
import { resolveModel } from "../agent/model-resolution.js";
import { SESSION_ENVIRONMENT_VARIABLE } from "../sandbox-local/local-sandbox.js";
import { createTestRepository, startScriptedModelServer, workingDirectoryOf, type ScriptedModelServer, type ScriptedTurn, type TestRepository, usePrivateTmpdir } from "../testing/index.js";
import { createSandboxPool, type PooledSandboxLease, type SandboxPoolEvent } from "./sandbox-pool.js";
import { releaseLease } from "./release-lease.js";

const API_KEY = "prepared-pool-key-0123456789";
// The setup's product lives in an ignored folder (as node_modules would) and counts its runs.
const SETUP = "mkdir -p .deps && echo installed >> .deps/runs && cat package-lock.json > .deps/from-lock && echo setup ran";

// Runs use a private TMPDIR, so that a sandbox's host folder is found from its id and leftovers are this file's own.
usePrivateTmpdir("running-agent-prepared-pool-tmp-");
const ownFiles = new Set<string>();
const leftovers = () => readdirSync(process.env.TMPDIR!).filter((name) => !ownFiles.has(name));

/** Pids of processes whose environment marks them as the sandbox's. */
function processesOf(sandboxId: string): number[] {
  const needle = Buffer.from(`\0${SESSION_ENVIRONMENT_VARIABLE}=${sandboxId}\0`);
  return readdirSync("/proc").flatMap((entry) => {
    if (!/^\d+$/.test(entry)) return [];
    try {
      return Buffer.concat([Buffer.from([0]), readFileSync(`/proc/${entry}/environ`)]).includes(needle) ? [Number(entry)] : [];
    } catch {
      return [];
    }
  });
}

/** What the agent found in its sandbox's workspace (read on the host while the model is asked), then an edit of app.js. */
function inspectingScript(seen: Array<{ sandboxId: string; runs: string; lock: string }>, sandboxOf: () => string): ScriptedTurn[] {
  return [
    (request) => {
      const sandboxId = sandboxOf();
      const workspace = join(process.env.TMPDIR!, sandboxId, "workspace");
      const read = (path: string) => (existsSync(join(workspace, path)) ? readFileSync(join(workspace, path), "utf8") : "(missing)");
      seen.push({ sandboxId, runs: read(".deps/runs"), lock: read(".deps/from-lock") });
      return { toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/app.js`, content: "edited by the agent\n" } }] };
    },
    { text: "Edited app.js." },
  ];
}

/** Resolves with the first pool event that matches, past or future. */
function poolEvents() {
  const events: SandboxPoolEvent[] = [];
  const waiters: Array<() => void> = [];
  return {
    events,
    onEvent: (event: SandboxPoolEvent) => {
      events.push(event);
      waiters.splice(0).forEach((wake) => wake());
    },
    async next(match: (event: SandboxPoolEvent, index: number) => boolean): Promise<SandboxPoolEvent> {
      for (;;) {
        const found = events.find(match);
        if (found) return found;
        await new Promise<void>((resolve) => waiters.push(resolve));
      }
    },
  };
}

const setupRan = (events: AgentTaskEvent[]) => events.some((event) => event.type === "command.output");
const restored = (events: AgentTaskEvent[]) => events.some((event) => event.type === "log" && event.message.startsWith("Started from the prepared state"));
const missed = (events: AgentTaskEvent[]) => events.find((event) => event.type === "log" && event.message.startsWith("No pooled sandbox"));


describe("a sandbox pool of prepared states (local sandbox, bubblewrap)", () => {
  let repo: TestRepository;
  let cacheDir: string;
  let cache: PreparedStateCache;
  let model: ScriptedModelServer;
  let currentSandbox = "";
  const seen: Array<{ sandboxId: string; runs: string; lock: string }> = [];

  beforeAll(async () => {
    repo = await createTestRepository({ "app.js": "original\n", "package-lock.json": '{"v":1}\n', ".gitignore": ".deps/\n" });
    cacheDir = await mkdtemp(join(tmpdir(), "running-agent-prepared-pool-cache-"));
    cache = createPreparedStateCache({ directory: cacheDir });
    ownFiles.add(basename(repo.root)).add(basename(cacheDir));
    const turns = () => inspectingScript(seen, () => currentSandbox);
    model = await startScriptedModelServer({ apiKey: API_KEY, script: [...turns(), ...turns(), ...turns()] });
  });
  afterAll(async () => {
    await model?.close();
    await repo?.remove();
    if (cacheDir) await rm(cacheDir, { recursive: true, force: true });
  });

  const modelConfig = () => ({ provider: "openai-compatible" as const, model: "scripted", baseURL: model.url, apiKey: API_KEY });
  const provider = () => createLocalSandbox({ preparedStates: cache });
  async function runTask(sandbox: Parameters<typeof runAgentTask>[0]["sandbox"], setupCommands: string[]) {
    const events: AgentTaskEvent[] = [];
    const result = await runAgentTask({
      repo: repo.path,
      task: "Edit app.js",
      model: modelConfig(),
      sandbox,
      setupCommands,
      onEvent: (event) => {
        events.push(event);
        if (event.type === "sandbox") currentSandbox = event.sandboxId;
      },
    });
    expect(result.status).toBe("completed");
    expect(result.changes.map((change) => change.path)).toEqual(["app.js"]);
    return { events, sandbox: events.find((event) => event.type === "sandbox") as Extract<AgentTaskEvent, { type: "sandbox" }> };
  }

  it("follows keepPrepared: a task takes a sandbox that holds the state (no setup, no second server); a new state retires the old sandboxes and no task gets them; another key starts cold; close() leaves nothing", async () => {
    const log = poolEvents();
    const kept = keepPrepared({ repo: repo.path, sandbox: provider(), setupCommands: [SETUP], everyMs: 300 });
    const pool = createSandboxPool(provider(), { size: 1, model: modelConfig(), prepared: kept, onEvent: log.onEvent });
    try {
      // Before the first state there is nothing to hand out, and nothing starts.
      expect(await pool.take({ taskId: "early", model: resolveModel(modelConfig()), modelProxy: true, allowRepoAgentConfig: false })).toEqual({ miss: expect.stringContaining("not ready yet") });
      expect(pool.stats()).toMatchObject({ idle: 0, starting: 0 });

      await pool.whenReady();
      const firstKey = kept.last!.key;
      expect(pool.preparedStateKey).toBe(firstKey);
      const firstReady = (await log.next((event) => event.type === "ready")) as Extract<SandboxPoolEvent, { type: "ready" }>;

      const first = await runTask(pool, [SETUP]);
      expect(first.sandbox).toMatchObject({ sandboxId: firstReady.sandboxId, pooled: true });
      expect([setupRan(first.events), restored(first.events)]).toEqual([false, true]);
      // The host clone (whose commit is in the key) came before the take: the sandbox held the state already.
      expect(first.events.flatMap((event) => (event.type === "sandbox" ? ["sandbox"] : event.type === "log" && event.message.startsWith("Cloned ") ? ["cloned"] : []))).toEqual(["cloned", "sandbox"]);
      // The warm server served it: none was started for the task.
      expect(first.events.some((event) => event.type === "log" && event.message.startsWith("OpenCode server ready in"))).toBe(false);
      // The setup ran once, in the preparation: the sandbox held its output when the model was first asked.
      expect(seen.at(-1)).toEqual({ sandboxId: firstReady.sandboxId, runs: "installed\n", lock: '{"v":1}\n' });

      // The refill after the take holds the first state; then the base branch moves and the schedule prepares anew.
      const refill = (await log.next((event) => event.type === "ready" && event.sandboxId !== firstReady.sandboxId)) as Extract<SandboxPoolEvent, { type: "ready" }>;
      await pool.whenReady();
      await repo.commit({ "package-lock.json": '{"v":2}\n' });
      const retired = await log.next((event) => event.type === "retired");
      expect(retired).toEqual({ type: "retired", sandboxId: refill.sandboxId, preparedStateKey: firstKey });
      // Told once it is gone: no process, no folder.
      expect(processesOf(refill.sandboxId)).toEqual([]);
      expect(leftovers()).not.toContain(refill.sandboxId);
      expect(pool.preparedStateKey).toBe(kept.last!.key);
      expect(pool.preparedStateKey).not.toBe(firstKey);
      await pool.whenReady();

      const second = await runTask(pool, [SETUP]);
      expect(second.sandbox.pooled).toBe(true);
      expect([setupRan(second.events), restored(second.events)]).toEqual([false, true]);
      expect(seen.at(-1)).toEqual({ sandboxId: second.sandbox.sandboxId, runs: "installed\n", lock: '{"v":2}\n' });
      expect(second.sandbox.sandboxId).not.toBe(refill.sandboxId);

      // Other setup commands are another key: a sandbox of its own, and the setup runs.
      const other = await runTask(pool, [SETUP, "true"]);
      expect(other.sandbox.pooled).toBeUndefined();
      expect(missed(other.events)).toMatchObject({ message: expect.stringContaining("hold the prepared state") });
      expect(setupRan(other.events)).toBe(true);
      expect(pool.stats()).toMatchObject({ taken: 2, retired: 1 });
    } finally {
      await kept.stop();
      await pool.close();
    }
    const ids = log.events.flatMap((event) => (event.type === "ready" ? [event.sandboxId] : []));
    for (const id of ids) expect(processesOf(id)).toEqual([]);
    expect(leftovers()).toEqual([]);
  });

  it("a state made once (prepareRepository) serves by key: concurrent takes get distinct sandboxes, another key misses, the same state again changes nothing, a state made again replaces the idle ones", async () => {
    const prepared = await prepareRepository({ repo: repo.path, sandbox: provider(), setupCommands: [SETUP] });
    const log = poolEvents();
    const pool = createSandboxPool(provider(), { size: 1, model: modelConfig(), prepared, onEvent: log.onEvent });
    const request = { model: resolveModel(modelConfig()), modelProxy: true, allowRepoAgentConfig: false, preparedStateKey: prepared.key };
    const leases: PooledSandboxLease[] = [];
    try {
      await pool.whenReady();
      expect(await pool.take({ ...request, taskId: "other", preparedStateKey: "e".repeat(64) })).toEqual({ miss: expect.stringContaining("another base commit or setup commands") });
      expect(await pool.take({ ...request, taskId: "none", preparedStateKey: undefined })).toEqual({ miss: expect.stringContaining("no setup commands") });
      // Two at once on a pool of one: the first gets the idle sandbox, the second the refill that starts then.
      const takes = await Promise.all(["a", "b"].map((taskId) => pool.take({ ...request, taskId })));
      for (const taken of takes) if ("lease" in taken) leases.push(taken.lease);
      expect(leases).toHaveLength(2);
      expect(new Set(leases.map((lease) => lease.session.id)).size).toBe(2);
      expect(leases.map((lease) => lease.preparedStateKey)).toEqual([prepared.key, prepared.key]);
      // Each holds the state: the repository with its .git and the setup's output, at the prepared commit.
      for (const lease of leases) {
        expect(new TextDecoder().decode(await lease.session.readFile(".deps/runs"))).toBe("installed\n");
        expect((await lease.session.exec(["git", "rev-parse", "HEAD"])).stdout.trim()).toBe(prepared.commit);
      }

      await pool.whenReady();
      const idleId = log.events.filter((event) => event.type === "ready").at(-1)!.sandboxId;
      pool.usePreparedState({ key: prepared.key, reused: true });
      expect(pool.stats()).toMatchObject({ idle: 1, retired: 0 });
      // The setup ran again under the same key (a refresh): the idle sandbox holds the old files and goes.
      const remade = await prepareRepository({ repo: repo.path, sandbox: provider(), setupCommands: [SETUP], refresh: true });
      pool.usePreparedState(remade);
      expect(pool.stats()).toMatchObject({ idle: 0, retired: 1 });
      expect(await log.next((event) => event.type === "retired")).toEqual({ type: "retired", sandboxId: idleId, preparedStateKey: prepared.key });
      expect(processesOf(idleId)).toEqual([]);
      expect(leftovers()).not.toContain(idleId);
      await pool.whenReady();
      const taken = await pool.take({ ...request, taskId: "c" });
      if ("lease" in taken) leases.push(taken.lease);
      expect(leases.at(-1)!.session.id).not.toBe(idleId);
      expect(new TextDecoder().decode(await leases.at(-1)!.session.readFile(".deps/runs"))).toBe("installed\n");
    } finally {
      await Promise.all(leases.map((lease) => releaseLease(lease)));
      await pool.close();
    }
    expect(leftovers()).toEqual([]);
  });

  it("a state the provider no longer keeps (aged out, evicted) stops the refill instead of failing again and again; tasks start cold meanwhile; a new state starts the pool again", async () => {
    const prepared = await prepareRepository({ repo: repo.path, sandbox: provider(), setupCommands: [SETUP] });
    const log = poolEvents();
    const pool = createSandboxPool(provider(), { size: 1, model: modelConfig(), prepared, onEvent: log.onEvent });
    const request = { taskId: "t", model: resolveModel(modelConfig()), modelProxy: true, allowRepoAgentConfig: false, preparedStateKey: prepared.key };
    let lease: PooledSandboxLease | undefined;
    try {
      await pool.whenReady();
      await cache.invalidate(prepared.key);
      // The idle sandbox's replacement (started once its task says so) finds no state to start from.
      const taken = await pool.take(request);
      lease = "lease" in taken ? taken.lease : undefined;
      lease!.startReplacement();
      expect(await log.next((event) => event.type === "start-failed")).toMatchObject({ code: "SANDBOX_CREATE_FAILED", message: expect.stringContaining("no longer kept") });
      expect(pool.stats()).toMatchObject({ idle: 0, starting: 0, startFailures: 1 });
      expect(await pool.take(request)).toEqual({ miss: expect.stringContaining("no longer keeps") });
      // The setup runs again (as keepPrepared's refresh does): the pool starts from the new state.
      pool.usePreparedState(await prepareRepository({ repo: repo.path, sandbox: provider(), setupCommands: [SETUP] }));
      await pool.whenReady();
      expect(pool.stats()).toMatchObject({ idle: 1, startFailures: 1 });
    } finally {
      await releaseLease(lease);
      await pool.close();
    }
    expect(leftovers()).toEqual([]);
  });

  it("refuses a prepared state that is not one, before anything starts", () => {
    expect(() => createSandboxPool(provider(), { model: modelConfig(), prepared: { key: "../x", reused: false } })).toThrow(/prepared state/);
  });
});

