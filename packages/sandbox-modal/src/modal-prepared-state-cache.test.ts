import { createLocalGitHost, createSandboxPool, keepPrepared, runAgentTask, type AgentTaskEvent, type PreparedRepository, type SandboxPoolEvent } from "@running-agent/core";
import { createTestRepository, startScriptedModelServer, workingDirectoryOf, type ScriptedTurn } from "@running-agent/core/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createModalPreparedStateCache, createModalSandbox, type ModalPreparedStateCache, type ModalSandboxSettings } from "./index.js";
import { startModalServer, type ModalServer } from "./testing/index.js";

const [KEY_A, KEY_B] = ["a", "b"].map((letter) => letter.repeat(64)) as [string, string];
const API_KEY = "prepared-modal-key-0123456789";

let server: ModalServer;
beforeAll(async () => {
  server = await startModalServer();
});
afterAll(async () => {
  await server?.close();
});

const local = (preparedStates: ModalPreparedStateCache, settings: ModalSandboxSettings = {}) =>
  createModalSandbox({ serverUrl: server.url, tokenId: server.tokenId, tokenSecret: server.tokenSecret, app: "prepared", preparedStates, ...settings });

const snapshots = () => server.images().filter((image) => image.snapshotOf !== undefined);
const text = (bytes: Uint8Array) => Buffer.from(bytes).toString();

describe("prepared states of the Modal sandbox (filesystem snapshots), through the modal SDK against the local server", () => {
  it("a session on a kept key is created from its snapshot, another key or a stale state is not, and invalidate deletes the snapshots", async () => {
    const cache = createModalPreparedStateCache({ maxAgeMs: 60_000 });
    const provider = local(cache);
    expect(provider.startsFromPreparedStates).toBe(true);
    {
      await using first = await provider.create({ taskId: "prepare", preparedStateKey: KEY_A });
      expect(first.preparedStates?.startedFrom).toBeUndefined();
      expect(await first.preparedStates?.restore(KEY_A)).toBe(false);
      await first.writeFile(".deps/installed.txt", "node_modules would be here");
      await first.preparedStates!.save(KEY_A);
    }
    expect(server.calls).toContain("TaskCommandRouter/TaskSnapshotFilesystem");
    const [snapshot, ...more] = snapshots();
    expect(more).toEqual([]);
    // Modal drops a snapshot by itself an hour after it went stale, even if this process never prunes.
    expect(snapshot!.ttlSeconds).toBe(60 + 3600);
    expect(cache.keys()).toEqual([KEY_A]);

    {
      await using second = await provider.create({ taskId: "from-state", preparedStateKey: KEY_A });
      expect(second.preparedStates?.startedFrom).toBe(KEY_A);
      expect(await second.preparedStates?.restore(KEY_A)).toBe(true);
      expect(text(await second.readFile(".deps/installed.txt"))).toBe("node_modules would be here");
      expect(server.sandboxes().find((record) => record.sandboxId === second.id)?.imageId).toBe(snapshot!.imageId);
      expect(server.calls).toContain("ModalClient/ImageFromId");
    }
    {
      await using other = await provider.create({ taskId: "other-key", preparedStateKey: KEY_B });
      expect(other.preparedStates?.startedFrom).toBeUndefined();
      await expect(other.readFile(".deps/installed.txt")).rejects.toThrow();
      // Saved again under A from another sandbox: the older snapshot is deleted.
      await other.preparedStates!.save(KEY_A);
    }
    expect(snapshots().map((image) => image.imageId)).not.toContain(snapshot!.imageId);
    expect(snapshots()).toHaveLength(1);

    await cache.invalidate();
    expect(server.calls).toContain("ModalClient/ImageDelete");
    expect(snapshots()).toEqual([]);
    expect(cache.keys()).toEqual([]);
    expect(server.liveSandboxes()).toEqual([]);
  });

  it("finds a lineage's state: its own key's first, else the newest on the same base image; not another lineage's or one without an origin", async () => {
    const cache = createModalPreparedStateCache({ maxAgeMs: 60_000 });
    const removed: string[] = [];
    const snapshot = (imageId: string, baseImageId = "im-base") => ({ imageId, baseImageId, remove: async () => void removed.push(imageId) });
    const lineage = "1".repeat(64);
    const [older, newer, otherBase, bare] = ["c", "d", "e", "f"].map((letter) => letter.repeat(64)) as [string, string, string, string];
    await cache.keep(older, { ...snapshot("im-older"), origin: { lineage, commit: "a".repeat(40) } });
    await new Promise((resolve) => setTimeout(resolve, 5));
    await cache.keep(newer, { ...snapshot("im-newer"), origin: { lineage, commit: "b".repeat(40) } });
    await cache.keep(otherBase, { ...snapshot("im-other", "im-rebuilt"), origin: { lineage, commit: "c".repeat(40) } });
    await cache.keep(bare, snapshot("im-bare"));
    expect(cache.findInLineage({ lineage }, "im-base")).toEqual({ key: newer, commit: "b".repeat(40) });
    expect(cache.findInLineage({ lineage, key: older }, "im-base")).toEqual({ key: older, commit: "a".repeat(40) });
    expect(cache.findInLineage({ lineage, key: bare }, "im-base")).toEqual({ key: newer, commit: "b".repeat(40) });
    expect(cache.findInLineage({ lineage }, "im-rebuilt")).toEqual({ key: otherBase, commit: "c".repeat(40) });
    expect(cache.findInLineage({ lineage: "2".repeat(64) }, "im-base")).toBeUndefined();
    await cache.invalidate(newer);
    expect(cache.findInLineage({ lineage }, "im-base")).toEqual({ key: older, commit: "a".repeat(40) });
    await cache.close();
    expect(removed.sort()).toEqual(["im-bare", "im-newer", "im-older", "im-other"]);
  });

  it("a state older than maxAgeMs is deleted rather than used", async () => {
    const cache = createModalPreparedStateCache({ maxAgeMs: 1000 });
    const provider = local(cache);
    {
      await using first = await provider.create({ taskId: "prepare", preparedStateKey: KEY_A });
      await first.preparedStates!.save(KEY_A);
    }
    expect(snapshots()).toHaveLength(1);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await using late = await provider.create({ taskId: "late", preparedStateKey: KEY_A });
    expect(late.preparedStates?.startedFrom).toBeUndefined();
    expect(snapshots()).toEqual([]);
    expect(cache.keys()).toEqual([]);
  });

  it("runAgentTask: the second task on the same repository, commit and setup starts from the snapshot and never runs the setup", async () => {
    await using repo = await createTestRepository({ "app.js": "original\n", ".gitignore": ".deps/\n" });
    const setup = "mkdir -p .deps && echo installed >> .deps/runs && echo setup ran";
    const turn: ScriptedTurn[] = [
      (request) => ({
        toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/app.js`, content: "edited\n" } }],
      }),
      { text: "Edited app.js." },
    ];
    await using model = await startScriptedModelServer({ apiKey: API_KEY, script: [...turn, ...turn] });
    const cache = createModalPreparedStateCache();
    const sandbox = local(cache);
    const task = async () => {
      const events: AgentTaskEvent[] = [];
      const result = await runAgentTask({
        repo: repo.path,
        task: "Edit app.js",
        model: { provider: "openai-compatible", model: "scripted", baseURL: model.url, apiKey: API_KEY },
        sandbox,
        gitHost: createLocalGitHost(),
        setupCommands: [setup],
        onEvent: (event) => events.push(event),
      });
      const sandboxId = events.flatMap((event) => (event.type === "sandbox" ? [event.sandboxId] : []))[0];
      const record = server.sandboxes().find((candidate) => candidate.sandboxId === sandboxId)!;
      return { result, record, setupRan: record.commands.some((command) => command.includes(setup)) };
    };
    try {
      const first = await task();
      const second = await task();
      expect([first.result.status, first.setupRan]).toEqual(["completed", true]);
      expect([second.result.status, second.setupRan]).toEqual(["completed", false]);
      expect(second.record.imageId).toBe(snapshots()[0]?.imageId);
      expect(second.result.changes).toEqual([expect.objectContaining({ path: "app.js", status: "modified" })]);
      expect(await repo.git("show", `${second.result.branch}:app.js`)).toBe("edited\n");
    } finally {
      await cache.close();
    }
    expect(snapshots()).toEqual([]);
    expect(server.liveSandboxes()).toEqual([]);
  });

  it("keepPrepared snapshots the base branch's head and again when it moves; a pool following it creates its sandboxes from the current snapshot, retires the old one's, and a task on it runs no setup; stop and close leave no live sandbox", async () => {
    await using repo = await createTestRepository({ "app.js": "original\n", "package-lock.json": '{"v":1}\n', ".gitignore": ".deps/\n" });
    const setup = "mkdir -p .deps && cat package-lock.json > .deps/from-lock && echo setup ran";
    await using model = await startScriptedModelServer({ apiKey: API_KEY, script: [(request) => ({ toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/app.js`, content: "edited\n" } }] }), { text: "Edited app.js." }] });
    const modelConfig = { provider: "openai-compatible" as const, model: "scripted", baseURL: model.url, apiKey: API_KEY };
    const cache = createModalPreparedStateCache();
    const sandbox = local(cache);
    const prepared: PreparedRepository[] = [];
    const poolEvents: SandboxPoolEvent[] = [];
    const wakes: Array<() => void> = [];
    const wake = () => wakes.splice(0).forEach((resolve) => resolve());
    const until = async (check: () => boolean) => {
      while (!check()) await new Promise<void>((resolve) => wakes.push(resolve));
    };
    const kept = keepPrepared({ repo: repo.path, sandbox, gitHost: createLocalGitHost(), setupCommands: [setup], everyMs: 300, onPrepared: (entry) => (prepared.push(entry), wake()), onError: wake });
    const pool = createSandboxPool(sandbox, { model: modelConfig, prepared: kept, onEvent: (event) => (poolEvents.push(event), wake()) });
    const imageOf = (sandboxId: string) => server.sandboxes().find((record) => record.sandboxId === sandboxId)?.imageId;
    try {
      await pool.whenReady();
      const [first] = prepared;
      expect(first).toMatchObject({ reused: false, commit: (await repo.git("rev-parse", "main")).trim() });
      expect(cache.keys()).toEqual([first!.key]);
      const firstSnapshot = snapshots()[0]!.imageId;
      const idle = poolEvents.find((event) => event.type === "ready")!.sandboxId;
      expect(imageOf(idle)).toBe(firstSnapshot);

      await repo.commit({ "package-lock.json": '{"v":2}\n' });
      await until(() => poolEvents.some((event) => event.type === "retired"));
      const second = prepared.at(-1)!;
      expect([prepared.length, second.reused, second.key === first!.key]).toEqual([2, false, false]);
      expect(cache.keys()).toEqual([second.key, first!.key]);
      expect(poolEvents.find((event) => event.type === "retired")).toEqual({ type: "retired", sandboxId: idle, preparedStateKey: first!.key });
      expect(server.liveSandboxes().map((record) => record.sandboxId)).not.toContain(idle);
      await pool.whenReady();
      const fromSecond = poolEvents.filter((event) => event.type === "ready").at(-1)!.sandboxId;
      expect(imageOf(fromSecond)).toBe(snapshots().find((image) => image.imageId !== firstSnapshot)!.imageId);

      const events: AgentTaskEvent[] = [];
      const result = await runAgentTask({ repo: repo.path, task: "Edit app.js", model: modelConfig, sandbox: pool, gitHost: createLocalGitHost(), setupCommands: [setup], onEvent: (event) => events.push(event) });
      expect(result.changes).toEqual([expect.objectContaining({ path: "app.js", status: "modified" })]);
      expect(events.find((event) => event.type === "sandbox")).toMatchObject({ sandboxId: fromSecond, pooled: true });
      expect(server.sandboxes().find((record) => record.sandboxId === fromSecond)!.commands.some((command) => command.includes(setup))).toBe(false);
    } finally {
      await kept.stop();
      await pool.close();
    }
    expect(server.liveSandboxes()).toEqual([]);
    await cache.close();
    expect(snapshots()).toEqual([]);
  });
});

