import { createSandboxPool, keepPrepared, prepareRepository, runAgentTask, type AgentTaskEvent, type AgentTaskOptions, type AgentTaskResult } from "@running-agent/core";
import { createServedGitHost, createTestRepository, startGitHttpServer, startScriptedModelServer, workingDirectoryOf, type ScriptedTurn } from "@running-agent/core/testing";
import { describe, expect, it } from "vitest";
import { createModalPreparedStateCache, createModalSandbox } from "./index.js";
import { startModalServer } from "./testing/index.js";

const API_KEY = "moved-base-modal-key-0123456789";
const GIT_TOKEN = "tok_moved_base_modal_5ecret";
const GIT_USER = "x-access-token";
const SETUP = "mkdir -p .deps && echo installed >> .deps/runs && echo setup ran";
// A check prints what the sandbox held after the agent (its own edit aside): read inside, by the sandbox's own tools.
const SHOW = { name: "show", command: "cat .deps/runs; for f in lib/util.js lib/new.js old.js; do echo \"$f: $(cat $f 2>/dev/null || echo missing)\"; done; git -c safe.directory='*' rev-parse HEAD" };

const edit: ScriptedTurn[] = [(request) => ({ toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/app.js`, content: "edited by the agent\n" } }] }), { text: "Edited app.js." }];
const logLine = (events: AgentTaskEvent[], start: string) => events.find((event): event is Extract<AgentTaskEvent, { type: "log" }> => event.type === "log" && event.message.startsWith(start))?.message;

describe("Modal prepared states on a moved base (local Modal server, git over HTTP)", () => {
  it("a task on a later commit is created from the older state's snapshot and brings in what changed (no setup, PR of its own change only); a changed lockfile starts cold; a pooled sandbox from keepPrepared serves a moved base", async () => {
    await using modal = await startModalServer();
    await using repo = await createTestRepository({ "app.js": "original\n", "lib/util.js": "util v1\n", "old.js": "old\n", "package-lock.json": '{"v":1}\n', ".gitignore": ".deps/\n" });
    await using server = await startGitHttpServer({ root: repo.root, token: GIT_TOKEN, username: GIT_USER });
    const gitHost = createServedGitHost({ server, repository: repo, username: GIT_USER, token: GIT_TOKEN });
    const url = `${server.url}/repo.git`;
    await using model = await startScriptedModelServer({ apiKey: API_KEY, script: [...edit, ...edit, ...edit] });
    const modelConfig = { provider: "openai-compatible" as const, model: "scripted", baseURL: model.url, apiKey: API_KEY };
    await using cache = createModalPreparedStateCache();
    const provider = createModalSandbox({ serverUrl: modal.url, tokenId: modal.tokenId, tokenSecret: modal.tokenSecret, app: "moved-base", preparedStates: cache });
    const snapshots = () => modal.images().filter((image) => image.snapshotOf !== undefined).map((image) => image.imageId);
    const task = async (options: Partial<AgentTaskOptions> = {}) => {
      const events: AgentTaskEvent[] = [];
      const result: AgentTaskResult = await runAgentTask({ repo: url, gitHost, task: "Edit app.js", model: modelConfig, sandbox: provider, setupCommands: [SETUP], checks: [SHOW], ...options, onEvent: (event) => events.push(event) });
      expect(result.status).toBe("completed");
      const sandboxId = events.flatMap((event) => (event.type === "sandbox" ? [event.sandboxId] : []))[0];
      const record = modal.sandboxes().find((candidate) => candidate.sandboxId === sandboxId)!;
      const pushed = (await repo.git("diff", "--name-only", `${result.commit!}^`, result.commit!)).trim().split("\n");
      return { events, result, record, pushed, setupRan: record.commands.some((command) => command.includes(SETUP)), shown: result.verification?.rounds[0]?.checks[0]?.outputTail ?? "" };
    };

    const prepared = await prepareRepository({ repo: url, gitHost, sandbox: provider, setupCommands: [SETUP] });
    const [snapshot] = snapshots();
    const head = await repo.commit({ "lib/util.js": "util v2\n", "lib/new.js": "new\n", "old.js": null });
    const moved = await task();
    expect([moved.setupRan, moved.record.imageId]).toEqual([false, snapshot]);
    expect(logLine(moved.events, "Started from the prepared state")).toContain(`at ${prepared.commit.slice(0, 12)} and brought it to ${head.slice(0, 12)}: 2 files brought in, 1 removed`);
    expect(moved.shown.trim()).toBe(`installed\nlib/util.js: util v2\nlib/new.js: new\nold.js: missing\n${head}`);
    expect(moved.pushed).toEqual(["app.js"]);
    // Nothing new was snapshotted for the moved base.
    expect(snapshots()).toEqual([snapshot]);

    await repo.commit({ "package-lock.json": '{"v":2}\n' });
    const lockfile = await task({ checks: undefined });
    expect([lockfile.setupRan, lockfile.record.imageId === snapshot]).toEqual([true, false]);
    expect(logLine(lockfile.events, "Not starting from the prepared state")).toContain("setup inputs changed since (package-lock.json)");

    const kept = keepPrepared({ repo: url, gitHost, sandbox: provider, setupCommands: [SETUP], everyMs: 600_000 });
    const pool = createSandboxPool(provider, { size: 1, model: modelConfig, prepared: kept });
    try {
      await pool.whenReady();
      const state = kept.last!;
      const later = await repo.commit({ "lib/new.js": "newer\n" });
      const pooled = await task({ sandbox: pool });
      expect(pooled.events.find((event) => event.type === "sandbox")).toMatchObject({ pooled: true });
      expect(pooled.setupRan).toBe(false);
      expect(logLine(pooled.events, "Started from the prepared state")).toContain(`at ${state.commit.slice(0, 12)} and brought it to ${later.slice(0, 12)}: 1 file brought in, 0 removed`);
      expect(pooled.shown).toContain(`lib/new.js: newer\nold.js: missing\n${later}`);
      expect(pooled.pushed).toEqual(["app.js"]);
    } finally {
      await kept.stop();
      await pool.close();
    }
    expect(modal.liveSandboxes()).toEqual([]);
  });
});
