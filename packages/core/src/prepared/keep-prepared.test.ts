import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createLocalSandbox,
  createPreparedStateCache,
  keepPrepared,
  prepareRepository,
  runAgentTask,
  type AgentTaskEvent,
  type GitHost,
  type PreparedRepository,
  type PreparedStateCache,
  type RunningAgentError,
} from "../index.js";
import {
  createServedGitHost,
  createTestRepository,
  expectRunningAgentError,
  startGitHttpServer,
  startScriptedModelServer,
  workingDirectoryOf,
  type GitHttpServer,
  type ScriptedModelServer,
  type ScriptedTurn,
  type TestRepository,
  usePrivateTmpdir,
} from "../testing/index.js";
import { readBranchHead } from "./branch-head.js";

const API_KEY = "keep-prepared-key-0123456789";
const GIT_TOKEN = "tok_keep_prepared_5ecret";
const GIT_USER = "x-access-token";
// The setup's product lives in an ignored folder (as node_modules would) and counts its runs.
const SETUP = "mkdir -p .deps && echo installed >> .deps/runs && cat package-lock.json > .deps/from-lock && echo setup ran";

// Runs use a private TMPDIR, so that the sandbox's host folder can be found from its id and leftovers seen.
usePrivateTmpdir("running-agent-keep-prepared-tmp-");

// The test's own files in the private TMPDIR: the repository, the cache, the sandbox id.
const ownFiles = new Set(["current-sandbox"]);
/** The folders runs left in the private TMPDIR (sandboxes, clones). */
const leftovers = () => readdirSync(process.env.TMPDIR!).filter((name) => !ownFiles.has(name));
/** Processes this worker started that still run (a sandbox's bwrap, a setup command), `ps` itself excluded. */
const childProcesses = () =>
  execFileSync("ps", ["-o", "pid=,comm=", "--ppid", String(process.pid)], { encoding: "utf8" })
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !/\sps$/.test(line));

/** What the agent found in its workspace (read from the host while the model is asked), then an edit of app.js. */
function inspectingScript(seen: Array<{ runs: string; lock: string }>): ScriptedTurn[] {
  return [
    (request) => {
      const workspace = join(process.env.TMPDIR!, readFileSync(join(process.env.TMPDIR!, "current-sandbox"), "utf8"), "workspace");
      const read = (path: string) => (existsSync(join(workspace, path)) ? readFileSync(join(workspace, path), "utf8") : "(missing)");
      seen.push({ runs: read(".deps/runs"), lock: read(".deps/from-lock") });
      return { toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/app.js`, content: "edited by the agent\n" } }] };
    },
    { text: "Edited app.js." },
  ];
}

const setupRan = (events: AgentTaskEvent[]) => events.some((event) => event.type === "command.output");
const restored = (events: AgentTaskEvent[]) => events.some((event) => event.type === "log" && event.message.startsWith("Started from the prepared state"));


/** Collects a schedule's reports; `next` resolves with the first one that matches, past or future. */
function reports() {
  const prepared: PreparedRepository[] = [];
  const errors: RunningAgentError[] = [];
  const waiters: Array<() => void> = [];
  const wake = () => waiters.splice(0).forEach((resolve) => resolve());
  return {
    prepared,
    errors,
    onPrepared: (entry: PreparedRepository) => {
      prepared.push(entry);
      wake();
    },
    onError: (error: RunningAgentError) => {
      errors.push(error);
      wake();
    },
    async next(match: (entry: PreparedRepository) => boolean): Promise<PreparedRepository> {
      for (;;) {
        const found = prepared.find(match);
        if (found) return found;
        if (errors.length > 0) throw errors[0];
        await new Promise<void>((resolve) => waiters.push(resolve));
      }
    },
  };
}

describe("preparing a repository ahead of its tasks", () => {
  let repo: TestRepository;
  let server: GitHttpServer;
  let gitHost: GitHost;
  let cacheDir: string;
  let cache: PreparedStateCache;
  let model: ScriptedModelServer;
  const seen: Array<{ runs: string; lock: string }> = [];
  let url: string;

  beforeAll(async () => {
    repo = await createTestRepository({ "app.js": "original\n", "package-lock.json": '{"v":1}\n', ".gitignore": ".deps/\n" });
    server = await startGitHttpServer({ root: repo.root, token: GIT_TOKEN, username: GIT_USER });
    gitHost = createServedGitHost({ server, repository: repo, username: GIT_USER, token: GIT_TOKEN });
    url = `${server.url}/repo.git`;
    cacheDir = await mkdtemp(join(tmpdir(), "running-agent-keep-prepared-cache-"));
    cache = createPreparedStateCache({ directory: cacheDir });
    ownFiles.add(basename(repo.root)).add(basename(cacheDir));
    model = await startScriptedModelServer({ apiKey: API_KEY, script: [...inspectingScript(seen), ...inspectingScript(seen), ...inspectingScript(seen)] });
  });
  afterAll(async () => {
    await model?.close();
    await server?.close();
    await repo?.remove();
    if (cacheDir) await rm(cacheDir, { recursive: true, force: true });
  });

  const sandbox = () => createLocalSandbox({ preparedStates: cache });
  async function runTask(setupCommands: string[]): Promise<AgentTaskEvent[]> {
    const events: AgentTaskEvent[] = [];
    const result = await runAgentTask({
      repo: url,
      gitHost,
      task: "Edit app.js",
      model: { provider: "openai-compatible", model: "scripted", baseURL: model.url, apiKey: API_KEY },
      sandbox: sandbox(),
      setupCommands,
      onEvent: (event) => {
        events.push(event);
        if (event.type === "sandbox") void writeFile(join(process.env.TMPDIR!, "current-sandbox"), event.sandboxId);
      },
    });
    expect(result.status).toBe("completed");
    return events;
  }

  it("refuses what it cannot prepare before anything is created", async () => {
    await expectRunningAgentError(prepareRepository({ repo: url, gitHost, sandbox: sandbox(), setupCommands: [] }), "INVALID_OPTIONS");
    // A sandbox that keeps no states would run the setup for nothing.
    const refused = await expectRunningAgentError(prepareRepository({ repo: url, gitHost, sandbox: createLocalSandbox(), setupCommands: [SETUP] }), "CAPABILITY_UNSUPPORTED");
    expect(refused.phase).toBe("setup");
    await expectRunningAgentError(prepareRepository({ repo: url, gitHost, sandbox: sandbox(), baseBranch: "nope", setupCommands: [SETUP] }), "BASE_BRANCH_NOT_FOUND");
    expect(() => keepPrepared({ repo: url, gitHost, sandbox: sandbox(), setupCommands: [SETUP], everyMs: -1 })).toThrow(/everyMs/);
    expect(await cache.keys()).toEqual([]);
    expect(leftovers()).toEqual([]);
  });

  it("reads the base branch's head over HTTP with the host's credentials, and of a local remote with git ls-remote", async () => {
    const repository = await gitHost.resolveRepository(url);
    const credentials = { username: GIT_USER, password: GIT_TOKEN };
    expect(await readBranchHead({ repository, branch: "main", credentials })).toBe((await repo.git("rev-parse", "main")).trim());
    expect(await readBranchHead({ repository, branch: "missing", credentials })).toBeUndefined();
    await expectRunningAgentError(readBranchHead({ repository, branch: "main", credentials: { username: GIT_USER, password: "wrong" } }), "AUTH_FAILED");
    // A local remote goes through git ls-remote.
    const local = { ...repository, remote: repo.path };
    expect(await readBranchHead({ repository: local, branch: "main" })).toBe((await repo.git("rev-parse", "main")).trim());
    expect(await readBranchHead({ repository: local, branch: "missing" })).toBeUndefined();
    await expectRunningAgentError(readBranchHead({ repository: { ...local, remote: `${repo.root}/absent.git` }, branch: "main" }), "CLONE_FAILED");
  });

  it("a prepared state serves the next task without setup; a changed setup command is not served by it", async () => {
    const first = await prepareRepository({ repo: url, gitHost, sandbox: sandbox(), setupCommands: [SETUP] });
    expect(first).toMatchObject({ reused: false, repository: "test/repo", baseBranch: "main", commit: (await repo.git("rev-parse", "main")).trim() });
    expect(await cache.keys()).toEqual([first.key]);
    expect(await prepareRepository({ repo: url, gitHost, sandbox: sandbox(), setupCommands: [SETUP] })).toMatchObject({ key: first.key, reused: true });

    const task = await runTask([SETUP]);
    expect([setupRan(task), restored(task)]).toEqual([false, true]);
    expect(seen.at(-1)).toEqual({ runs: "installed\n", lock: '{"v":1}\n' });

    const other = await runTask([SETUP, "true"]);
    expect([setupRan(other), restored(other)]).toEqual([true, false]);
    expect(leftovers()).toEqual([]);
  });

  it("the schedule prepares the new head when the base branch moves; the next task starts from it; stop() leaves nothing", async () => {
    const log = reports();
    const before = (await repo.git("rev-parse", "main")).trim();
    let refreshedHead = "";
    const kept = keepPrepared({ repo: url, gitHost, sandbox: sandbox(), setupCommands: [SETUP], everyMs: 200, onPrepared: log.onPrepared, onError: log.onError });
    try {
      await log.next((entry) => entry.commit === before);
      const head = (refreshedHead = await repo.commit({ "package-lock.json": '{"v":2}\n' }));
      const refreshed = await log.next((entry) => entry.commit === head);
      expect(refreshed.reused).toBe(false);
      expect(kept.last).toEqual(refreshed);
    } finally {
      await kept.stop();
    }
    // Once per head: a tick whose head did not move prepares nothing (it would report the same commit again).
    expect(log.prepared.map((entry) => entry.commit)).toEqual([before, refreshedHead]);
    expect(log.errors).toEqual([]);
    expect(leftovers()).toEqual([]);
    expect(childProcesses()).toEqual([]);

    const task = await runTask([SETUP]);
    expect([setupRan(task), restored(task)]).toEqual([false, true]);
    expect(seen.at(-1)).toEqual({ runs: "installed\n", lock: '{"v":2}\n' });
  });

  it("stop() during a preparation cancels it: no sandbox, process or folder is left, and no error is reported", async () => {
    const log = reports();
    let inSetup!: () => void;
    const setupStarted = new Promise<void>((resolve) => (inSetup = resolve));
    const kept = keepPrepared({
      repo: url,
      gitHost,
      sandbox: sandbox(),
      setupCommands: ["sleep 600"],
      everyMs: 60_000,
      onPrepared: log.onPrepared,
      onError: log.onError,
      onEvent: (event) => {
        if (event.type === "phase" && event.phase === "setup" && event.status === "started") inSetup();
      },
    });
    const timers = () => process.getActiveResourcesInfo().filter((kind) => kind === "Timeout").length;
    await setupStarted;
    // In flight: the preparation's own timeout is among them; stop() ends it, and must not schedule the next check.
    const timersInFlight = timers();
    await kept.stop();
    expect([log.prepared, log.errors]).toEqual([[], []]);
    expect(timers()).toBeLessThan(timersInFlight);
    expect(leftovers()).toEqual([]);
    expect(childProcesses()).toEqual([]);
  });

  it("a failed refresh is reported to onError and the schedule goes on; a state older than maxAgeMs runs the setup again", async () => {
    const failing = reports();
    let failures = 0;
    let secondFailure!: () => void;
    const failedTwice = new Promise<void>((resolve) => (secondFailure = resolve));
    const broken = keepPrepared({
      repo: url,
      gitHost,
      sandbox: sandbox(),
      setupCommands: ["echo broken >&2; exit 3"],
      everyMs: 50,
      onError: (error) => {
        failing.onError(error);
        if (++failures === 2) secondFailure();
      },
    });
    await failedTwice;
    await broken.stop();
    expect(failing.errors.slice(0, 2).map((error) => [error.code, error.phase])).toEqual([
      ["SETUP_FAILED", "setup"],
      ["SETUP_FAILED", "setup"],
    ]);
    expect(broken.last).toBeUndefined();

    const aging = reports();
    const kept = keepPrepared({ repo: url, gitHost, sandbox: sandbox(), setupCommands: [SETUP], everyMs: 50, maxAgeMs: 1, onPrepared: aging.onPrepared, onError: aging.onError });
    try {
      const first = await aging.next(() => true);
      const again = await aging.next((entry) => entry !== first);
      // Whether the first found a kept state depends on the tests before; the aged one always runs the setup.
      expect([again.reused, again.key, again.commit]).toEqual([false, first.key, first.commit]);
    } finally {
      await kept.stop();
    }
    expect(aging.errors).toEqual([]);
    expect(leftovers()).toEqual([]);
  });
});
