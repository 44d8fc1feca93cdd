import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createLocalSandbox,
  createPreparedStateCache,
  createSandboxPool,
  keepPrepared,
  prepareRepository,
  runAgentTask,
  type AgentTaskEvent,
  type AgentTaskOptions,
  type AgentTaskResult,
  type GitHost,
  type PreparedStateCache,
} from "../index.js";
import {
  createServedGitHost,
  createTestRepository,
  expectRunningAgentError,
  startGitHttpServer,
  startScriptedModelServer,
  testMovedBase,
  workingDirectoryOf,
  type GitHttpServer,
  type ScriptedModelServer,
  type ScriptedTurn,
  type TestRepository,
  usePrivateTmpdir,
} from "../testing/index.js";

const API_KEY = "moved-base-key-0123456789";
const GIT_TOKEN = "tok_moved_base_5ecret";
const GIT_USER = "x-access-token";
// The setup's product lives in an ignored folder (as node_modules would) and counts its runs.
// It also leaves a file in the state's .git, which a moved base must not carry over (the host clone's .git replaces it).
const SETUP = "mkdir -p .deps && echo installed >> .deps/runs && cat package-lock.json > .deps/from-lock && echo planted > .git/planted && echo setup ran";

usePrivateTmpdir("running-agent-moved-base-tmp-");
const ownFiles = new Set<string>();
const leftovers = () => readdirSync(process.env.TMPDIR!).filter((name) => !ownFiles.has(name));

/** What the agent's workspace held when the model was first asked (read on the host), then an edit of app.js. */
interface Seen {
  runs: string;
  lock: string;
  files: Record<string, string>;
  folders: string[];
  head: string;
  planted: boolean;
}

const WATCHED = ["app.js", "lib/util.js", "lib/new.js", "old.js", "gone/only.js", "scripts/install.sh", "notes.txt"];

function inspectingScript(seen: Seen[], sandboxOf: () => string): ScriptedTurn[] {
  return [
    (request) => {
      const workspace = join(process.env.TMPDIR!, sandboxOf(), "workspace");
      const read = (path: string) => (existsSync(join(workspace, path)) ? readFileSync(join(workspace, path), "utf8") : "(missing)");
      // The sandbox's .git as the agent's git sees it (read here by the test, never by the loop).
      const head = execFileSync("git", ["-C", workspace, "rev-parse", "HEAD"], { encoding: "utf8", env: { PATH: process.env.PATH!, GIT_CONFIG_NOSYSTEM: "1", GIT_CONFIG_GLOBAL: "/dev/null", GIT_CONFIG_COUNT: "1", GIT_CONFIG_KEY_0: "safe.directory", GIT_CONFIG_VALUE_0: "*" } }).trim();
      seen.push({
        runs: read(".deps/runs"),
        lock: read(".deps/from-lock"),
        files: Object.fromEntries(WATCHED.map((path) => [path, read(path)])),
        folders: readdirSync(workspace).filter((name) => name !== ".git" && name !== ".deps").sort(),
        head,
        planted: existsSync(join(workspace, ".git", "planted")),
      });
      return { toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/app.js`, content: "edited by the agent\n" } }] };
    },
    { text: "Edited app.js." },
  ];
}

const setupRan = (events: AgentTaskEvent[]) => events.some((event) => event.type === "command.output");
const logLine = (events: AgentTaskEvent[], start: string) => events.find((event): event is Extract<AgentTaskEvent, { type: "log" }> => event.type === "log" && event.message.startsWith(start))?.message;

describe("a task whose base moved since its prepared state (local sandbox, bubblewrap, git over HTTP)", () => {
  let repo: TestRepository;
  let server: GitHttpServer;
  let gitHost: GitHost;
  let cacheDir: string;
  let cache: PreparedStateCache;
  let model: ScriptedModelServer;
  let url: string;
  let currentSandbox = "";
  const seen: Seen[] = [];

  beforeAll(async () => {
    repo = await createTestRepository({
      "app.js": "original\n",
      "lib/util.js": "util v1\n",
      "old.js": "old\n",
      "gone/only.js": "only\n",
      "scripts/install.sh": "echo v1\n",
      "package-lock.json": '{"v":1}\n',
      ".gitignore": ".deps/\n",
      // A checkout writes these with CRLF: so must a moved base that brings one in.
      ".gitattributes": "*.txt text eol=crlf\n",
      "notes.txt": "one\n",
    });
    server = await startGitHttpServer({ root: repo.root, token: GIT_TOKEN, username: GIT_USER });
    gitHost = createServedGitHost({ server, repository: repo, username: GIT_USER, token: GIT_TOKEN });
    url = `${server.url}/repo.git`;
    cacheDir = await mkdtemp(join(tmpdir(), "running-agent-moved-base-cache-"));
    cache = createPreparedStateCache({ directory: cacheDir });
    ownFiles.add(basename(repo.root)).add(basename(cacheDir));
    const turns = () => inspectingScript(seen, () => currentSandbox);
    model = await startScriptedModelServer({ apiKey: API_KEY, script: Array.from({ length: 8 }, turns).flat() });
  });
  afterAll(async () => {
    await model?.close();
    await server?.close();
    await repo?.remove();
    if (cacheDir) await rm(cacheDir, { recursive: true, force: true });
  });

  const modelConfig = () => ({ provider: "openai-compatible" as const, model: "scripted", baseURL: model.url, apiKey: API_KEY });
  const provider = () => createLocalSandbox({ preparedStates: cache });
  async function runTask(options: Partial<AgentTaskOptions> = {}): Promise<{ events: AgentTaskEvent[]; result: AgentTaskResult }> {
    const events: AgentTaskEvent[] = [];
    const result = await runAgentTask({
      repo: url,
      gitHost,
      task: "Edit app.js",
      model: modelConfig(),
      sandbox: provider(),
      setupCommands: [SETUP],
      ...options,
      onEvent: (event) => {
        events.push(event);
        if (event.type === "sandbox") currentSandbox = event.sandboxId;
      },
    });
    expect(result.status).toBe("completed");
    return { events, result };
  }
  /** The files the task's pushed commit changed against its parent, and that parent. */
  async function pushed(result: AgentTaskResult): Promise<{ parent: string; files: string[] }> {
    const parent = (await repo.git("rev-parse", `${result.commit!}^`)).trim();
    const files = (await repo.git("diff", "--name-only", parent, result.commit!)).trim().split("\n");
    return { parent, files };
  }

  it("refuses setup inputs that are not plain pathspecs before anything is created", async () => {
    for (const setupInputs of [["/etc/passwd"], ["../outside"], [":(attr:x)file"], [""], ["a\nb"], "scripts", [3]]) {
      const error = await expectRunningAgentError(runTask({ setupInputs: setupInputs as string[] }), "INVALID_OPTIONS");
      expect([error.phase, error.details?.option]).toEqual(["validate", expect.stringMatching(/^setupInputs/)]);
    }
    expect(leftovers()).toEqual([]);
  });

  it("starts from the state of the older commit: the new and changed files are there, the removed ones gone, .git at the new head, no setup; the PR holds only the agent's change", async () => {
    const prepared = await prepareRepository({ repo: url, gitHost, sandbox: provider(), setupCommands: [SETUP] });
    const head = await repo.commit({ "lib/util.js": "util v2\n", "lib/new.js": "new\n", "old.js": null, "gone/only.js": null, "scripts/install.sh": "echo v2\n", "notes.txt": "one\ntwo\n" });
    expect(head).not.toBe(prepared.commit);

    const { events, result } = await runTask();
    expect(setupRan(events)).toBe(false);
    expect(logLine(events, "Started from the prepared state")).toBe(
      `Started from the prepared state of test/repo at ${prepared.commit.slice(0, 12)} and brought it to ${head.slice(0, 12)}: 4 files brought in, 2 removed; the setup commands did not run again.`,
    );
    expect(seen.at(-1)).toEqual({
      runs: "installed\n",
      lock: '{"v":1}\n',
      files: { "app.js": "original\n", "lib/util.js": "util v2\n", "lib/new.js": "new\n", "old.js": "(missing)", "gone/only.js": "(missing)", "scripts/install.sh": "echo v2\n", "notes.txt": "one\r\ntwo\r\n" },
      // The folder the removals emptied went with them.
      folders: [".gitattributes", ".gitignore", "app.js", "lib", "notes.txt", "package-lock.json", "scripts"],
      head,
      planted: false,
    });
    // Measured from the new head: only the agent's file, on top of that head.
    expect(result.changes.map((change) => change.path)).toEqual(["app.js"]);
    expect(await pushed(result)).toEqual({ parent: head, files: ["app.js"] });
    // Nothing of the moved-base start was kept as a new state: the schedule prepares the new head.
    expect(await cache.keys()).toEqual([prepared.key]);
    expect(leftovers()).toEqual([]);
  });

  it("the caller's setup inputs are honoured: a change to one starts cold", async () => {
    await repo.commit({ "scripts/install.sh": "echo v3\n" });
    const { events } = await runTask({ setupInputs: ["scripts"] });
    expect(setupRan(events)).toBe(true);
    expect(logLine(events, "Not starting from the prepared state")).toMatch(/setup inputs changed since \(scripts\/install\.sh\); the setup commands run\.$/);
    expect(seen.at(-1)!.runs).toBe("installed\n");
  });

  it("a changed lockfile at any depth, or a changed setup command, starts cold", async () => {
    const before = await cache.keys();
    await repo.commit({ "web/yarn.lock": "# v1\n", "package-lock.json": '{"v":2}\n' });
    const lockfile = await runTask();
    expect(setupRan(lockfile.events)).toBe(true);
    expect(logLine(lockfile.events, "Not starting from the prepared state")).toMatch(/setup inputs changed since \(package-lock\.json, web\/yarn\.lock\)/);
    expect(seen.at(-1)).toMatchObject({ runs: "installed\n", lock: '{"v":2}\n' });
    // The cold start kept its state, of the new commit.
    expect((await cache.keys()).filter((key) => !before.includes(key))).toHaveLength(1);

    await repo.commit({ "lib/util.js": "util v3\n" });
    const command = await runTask({ setupCommands: [SETUP, "true"] });
    expect(setupRan(command.events)).toBe(true);
    expect(logLine(command.events, "Started from the prepared state")).toBeUndefined();
    expect(logLine(command.events, "Not starting from")).toBeUndefined();
    expect(leftovers()).toEqual([]);
  });

  it("a state whose commit the remote no longer has (force-pushed away, pruned) starts cold and says why", async () => {
    const prepared = await prepareRepository({ repo: url, gitHost, sandbox: provider(), setupCommands: [SETUP] });
    // The branch is rewritten without the prepared commit, which is then pruned from the remote.
    const parent = (await repo.git("rev-parse", `${prepared.commit}^`)).trim();
    const rewritten = (await repo.git("commit-tree", `${parent}^{tree}`, "-p", parent, "-m", "rewritten")).trim();
    await repo.git("update-ref", "refs/heads/main", rewritten);
    // The task branches pushed so far hold it too: gone with it.
    for (const ref of (await repo.git("for-each-ref", "--format=%(refname)", "refs/heads/running-agent/")).split("\n").filter(Boolean)) await repo.git("update-ref", "-d", ref);
    await repo.git("reflog", "expire", "--expire=now", "--all");
    await repo.git("gc", "--quiet", "--prune=now");
    expect(await repo.git("cat-file", "-t", prepared.commit).catch(() => "gone")).toBe("gone");
    const { events } = await runTask();
    expect(setupRan(events)).toBe(true);
    expect(logLine(events, "Not starting from the prepared state")).toMatch(new RegExp(`^Not starting from the prepared state at ${prepared.commit.slice(0, 12)}: the remote did not send the prepared state's commit`));
  });

  it("a look-up of older states that fails is only a warning: the task goes the usual way", async () => {
    await repo.commit({ "lib/util.js": "util v4\n" });
    const failing = Object.assign(provider(), { findPreparedState: async () => Promise.reject(new Error("the index is unreadable")) });
    const { events } = await runTask({ sandbox: failing });
    expect(events.find((event) => event.type === "log" && event.level === "warn")).toMatchObject({ message: "Could not look for a prepared state of an older commit (the index is unreadable); going on without one." });
    expect(setupRan(events)).toBe(true);
  });

  it("a pooled sandbox that keepPrepared filled serves a task on a moved base", async () => {
    const kept = keepPrepared({ repo: url, gitHost, sandbox: provider(), setupCommands: [SETUP], everyMs: 600_000 });
    const pool = createSandboxPool(provider(), { size: 1, model: modelConfig(), prepared: kept });
    try {
      await pool.whenReady();
      const state = kept.last!;
      const head = await repo.commit({ "lib/new.js": "newer\n" });
      const { events, result } = await runTask({ sandbox: pool });
      expect(events.find((event) => event.type === "sandbox")).toMatchObject({ pooled: true });
      expect(setupRan(events)).toBe(false);
      expect(logLine(events, "Started from the prepared state")).toContain(`at ${state.commit.slice(0, 12)} and brought it to ${head.slice(0, 12)}: 1 file brought in, 0 removed`);
      expect(seen.at(-1)).toMatchObject({ files: expect.objectContaining({ "lib/new.js": "newer\n" }), head });
      expect(await pushed(result)).toEqual({ parent: head, files: ["app.js"] });
    } finally {
      await kept.stop();
      await pool.close();
    }
    expect(leftovers()).toEqual([]);
  });
});

// The suite every provider with findPreparedState runs, here on the local sandbox.
testMovedBase({
  name: "local sandbox (bubblewrap)",
  provider: () => {
    const directory = mkdtempSync(join(tmpdir(), "running-agent-moved-base-suite-"));
    return { provider: createLocalSandbox({ preparedStates: createPreparedStateCache({ directory }) }), close: () => rm(directory, { recursive: true, force: true }) };
  },
});
