import { existsSync, readFileSync, readdirSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createLocalSandbox, createPreparedStateCache, runAgentTask, type AgentTaskEvent, type PreparedStateCache } from "../index.js";
import { createTestRepository, startScriptedModelServer, workingDirectoryOf, type ScriptedModelServer, type ScriptedTurn, type TestRepository, usePrivateTmpdir } from "../testing/index.js";

const API_KEY = "prepared-state-key-0123456789";
// The setup's product lives in an ignored folder (as node_modules would) and counts its runs.
const SETUP = "mkdir -p .deps && echo installed >> .deps/runs && cat package-lock.json > .deps/from-lock && echo setup ran";

// Runs use a private TMPDIR, so that the sandbox's host folder can be found from its id.
usePrivateTmpdir("running-agent-prepared-tmp-");

/** What the agent found in its workspace (read from the host while the model is asked), then an edit of app.js. */
function inspectingScript(seen: Array<{ runs: string; lock: string; app: string }>): ScriptedTurn[] {
  return [
    (request) => {
      const sandboxFolder = readFileSync(join(process.env.TMPDIR!, "current-sandbox"), "utf8");
      const workspace = join(process.env.TMPDIR!, sandboxFolder, "workspace");
      const read = (path: string) => (existsSync(join(workspace, path)) ? readFileSync(join(workspace, path), "utf8") : "(missing)");
      seen.push({ runs: read(".deps/runs"), lock: read(".deps/from-lock"), app: read("app.js") });
      return { toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/app.js`, content: "edited by the agent\n" } }] };
    },
    { text: "Edited app.js." },
  ];
}

async function runTask(repo: TestRepository, model: ScriptedModelServer, cache: PreparedStateCache, setupCommands: string[]): Promise<AgentTaskEvent[]> {
  const events: AgentTaskEvent[] = [];
  const result = await runAgentTask({
    repo: repo.path,
    task: "Edit app.js",
    model: { provider: "openai-compatible", model: "scripted", baseURL: model.url, apiKey: API_KEY },
    sandbox: createLocalSandbox({ preparedStates: cache }),
    setupCommands,
    onEvent: (event) => {
      events.push(event);
      if (event.type === "sandbox") void writeFile(join(process.env.TMPDIR!, "current-sandbox"), event.sandboxId);
    },
  });
  expect(result.status).toBe("completed");
  return events;
}

const setupRan = (events: AgentTaskEvent[]) => events.some((event) => event.type === "command.output");
const restored = (events: AgentTaskEvent[]) => events.some((event) => event.type === "log" && event.message.startsWith("Started from the prepared state"));

describe("prepared states of the local sandbox", () => {
  it("the setup runs once per repository, commit and commands; a changed command or lockfile never reuses the old state; the agent's edits never reach it", async () => {
    await using repo = await createTestRepository({ "app.js": "original\n", "package-lock.json": '{"lockfileVersion":3,"v":1}\n', ".gitignore": ".deps/\n" });
    const cacheDir = await mkdtemp(join(tmpdir(), "running-agent-prepared-cache-"));
    const cache = createPreparedStateCache({ directory: cacheDir });
    try {
      const seen: Array<{ runs: string; lock: string; app: string }> = [];
      await using model = await startScriptedModelServer({ apiKey: API_KEY, script: [...inspectingScript(seen), ...inspectingScript(seen), ...inspectingScript(seen), ...inspectingScript(seen)] });

      const first = await runTask(repo, model, cache, [SETUP]);
      expect([setupRan(first), restored(first)]).toEqual([true, false]);
      expect(await cache.keys()).toHaveLength(1);

      // Same repository, commit and command: the state comes back, the command does not run, and the
      // first agent's edit of app.js (made after the state was kept) is not in it.
      const second = await runTask(repo, model, cache, [SETUP]);
      expect([setupRan(second), restored(second)]).toEqual([false, true]);

      // Another command: another key.
      const third = await runTask(repo, model, cache, [SETUP, "true"]);
      expect([setupRan(third), restored(third)]).toEqual([true, false]);

      // A new lockfile on the base branch: a new commit, so the setup runs on the new lockfile.
      const work = await mkdtemp(join(tmpdir(), "running-agent-prepared-work-"));
      await repo.git("--work-tree", work, "checkout", "main", "--", ".");
      await writeFile(join(work, "package-lock.json"), '{"lockfileVersion":3,"v":2}\n');
      await repo.git("--work-tree", work, "add", "package-lock.json");
      await repo.git("--work-tree", work, "-c", "user.name=T", "-c", "user.email=t@example.invalid", "commit", "-q", "-m", "new lock");
      await rm(work, { recursive: true, force: true });
      const fourth = await runTask(repo, model, cache, [SETUP]);
      expect([setupRan(fourth), restored(fourth)]).toEqual([true, false]);

      expect(seen).toEqual([
        { runs: "installed\n", lock: '{"lockfileVersion":3,"v":1}\n', app: "original\n" },
        { runs: "installed\n", lock: '{"lockfileVersion":3,"v":1}\n', app: "original\n" },
        { runs: "installed\n", lock: '{"lockfileVersion":3,"v":1}\n', app: "original\n" },
        { runs: "installed\n", lock: '{"lockfileVersion":3,"v":2}\n', app: "original\n" },
      ]);
      expect(await cache.keys()).toHaveLength(3);
      await cache.invalidate();
      expect(await cache.keys()).toEqual([]);
    } finally {
      await rm(cacheDir, { recursive: true, force: true });
    }
  });

  it("keeps at most maxEntries states, dropping the least recently used, and refuses keys that are not digests", async () => {
    const cacheDir = await mkdtemp(join(tmpdir(), "running-agent-prepared-cache-"));
    const source = await mkdtemp(join(tmpdir(), "running-agent-prepared-source-"));
    try {
      const cache = createPreparedStateCache({ directory: cacheDir, maxEntries: 2 });
      await mkdir(join(source, "sub"));
      await writeFile(join(source, "sub", "file"), "x");
      const [a, b, c] = ["a", "b", "c"].map((letter) => letter.repeat(64));
      await cache.saveFrom(a!, source);
      await cache.saveFrom(b!, source);
      const target = await mkdtemp(join(tmpdir(), "running-agent-prepared-target-"));
      await writeFile(join(target, "stale"), "stale");
      expect(await cache.restoreInto(a!, target)).toBe(true);
      expect(await readFile(join(target, "sub", "file"), "utf8")).toBe("x");
      expect(existsSync(join(target, "stale"))).toBe(false);
      await rm(target, { recursive: true, force: true });
      await cache.saveFrom(c!, source);
      expect((await cache.keys()).sort()).toEqual([a, c].sort());
      expect(await cache.restoreInto(b!, source)).toBe(false);
      await expect(cache.saveFrom("../escape", source)).rejects.toThrow(/hex digest/);
    } finally {
      await rm(cacheDir, { recursive: true, force: true });
      await rm(source, { recursive: true, force: true });
    }
  });

  it("keeps when each state was made: one older than maxAgeMs is dropped instead of restored, and the next save makes it fresh", async () => {
    const cacheDir = await mkdtemp(join(tmpdir(), "running-agent-prepared-cache-"));
    const source = await mkdtemp(join(tmpdir(), "running-agent-prepared-source-"));
    const target = await mkdtemp(join(tmpdir(), "running-agent-prepared-target-"));
    try {
      await writeFile(join(source, "file"), "x");
      const key = "d".repeat(64);
      const cache = createPreparedStateCache({ directory: cacheDir });
      const before = Date.now();
      await cache.saveFrom(key, source);
      const madeAt = await cache.preparedAt(key);
      expect(madeAt).toBeGreaterThanOrEqual(before);
      expect(madeAt).toBeLessThanOrEqual(Date.now());
      // A restore is a use, not a preparation: the time stays (an LRU touch must not make a state young).
      expect(await cache.restoreInto(key, target)).toBe(true);
      expect(await cache.preparedAt(key)).toBe(madeAt);
      // The same folder through a cache with a short life: the state is stale, so it goes rather than being used.
      const strict = createPreparedStateCache({ directory: cacheDir, maxAgeMs: 1 });
      await new Promise((resolve) => setTimeout(resolve, 5));
      await writeFile(join(target, "file"), "edited");
      expect(await strict.restoreInto(key, target)).toBe(false);
      expect(await readFile(join(target, "file"), "utf8")).toBe("edited");
      expect([await cache.keys(), await cache.preparedAt(key)]).toEqual([[], undefined]);
      expect(readdirSync(cacheDir)).toEqual([]);
      // A state whose time is missing (kept before times were) is stale too.
      await cache.saveFrom(key, source);
      await rm(join(cacheDir, `${key}.prepared-at`));
      expect(await cache.restoreInto(key, target)).toBe(false);
      expect(() => createPreparedStateCache({ directory: cacheDir, maxAgeMs: 0 })).toThrow(/maxAgeMs/);
    } finally {
      await rm(cacheDir, { recursive: true, force: true });
      await rm(source, { recursive: true, force: true });
      await rm(target, { recursive: true, force: true });
    }
  });

  it("finds a lineage's state: its own key's first, else the newest fresh one; never one of another lineage, without an origin, or stale", async () => {
    const cacheDir = await mkdtemp(join(tmpdir(), "running-agent-prepared-cache-"));
    const source = await mkdtemp(join(tmpdir(), "running-agent-prepared-source-"));
    try {
      await writeFile(join(source, "file"), "x");
      const cache = createPreparedStateCache({ directory: cacheDir });
      const [older, newer, other, bare, asked] = ["1", "2", "3", "4", "5"].map((digit) => digit.repeat(64)) as [string, string, string, string, string];
      const lineage = "l".repeat(8);
      await cache.saveFrom(older, source, { lineage, commit: "a".repeat(40) });
      await cache.saveFrom(newer, source, { lineage, commit: "b".repeat(40) });
      await cache.saveFrom(other, source, { lineage: "another", commit: "c".repeat(40) });
      // Saved without an origin (as before lineages): found by no lineage, and a save without one clears an old one.
      await cache.saveFrom(bare, source, { lineage, commit: "d".repeat(40) });
      await cache.saveFrom(bare, source);
      expect(await cache.find({ lineage, key: asked })).toEqual({ key: newer, commit: "b".repeat(40) });
      expect(await cache.find({ lineage, key: older })).toEqual({ key: older, commit: "a".repeat(40) });
      expect(await cache.find({ lineage: "none", key: asked })).toBeUndefined();
      expect(await createPreparedStateCache({ directory: cacheDir, maxAgeMs: 1 }).find({ lineage, key: older })).toBeUndefined();
      await cache.invalidate(newer);
      expect(readdirSync(cacheDir).filter((name) => name.startsWith(newer))).toEqual([]);
      expect(await cache.find({ lineage, key: asked })).toEqual({ key: older, commit: "a".repeat(40) });
    } finally {
      await rm(cacheDir, { recursive: true, force: true });
      await rm(source, { recursive: true, force: true });
    }
  });

  it("is refused without bubblewrap, where the workspace path changes from task to task", () => {
    expect(() => createLocalSandbox({ isolation: "none", preparedStates: createPreparedStateCache({ directory: "/nonexistent" }) })).toThrow(/bubblewrap/);
  });
});
