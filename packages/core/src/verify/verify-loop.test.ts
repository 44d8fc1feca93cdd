import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ErrorCode, RunningAgentError, createLocalGitHost, createLocalSandbox, runAgentTask, startAgentTask } from "../index.js";
import type { AgentTaskEvent, AgentTaskHandle, AgentTaskOptions } from "../index.js";
import { createTestRepository, startScriptedModelServer, type ScriptedModelServer, type ScriptedTurn, workingDirectoryOf, usePrivateTmpdir } from "../testing/index.js";

/**
 * The verify phase end to end: the real OpenCode binary under bubblewrap, a scripted model, and a
 * repository whose `npm test` really runs (node's own test runner).
 */

const PACKAGE_JSON = `${JSON.stringify({ name: "calculator", version: "1.0.0", type: "module", scripts: { test: "node --test" } }, null, 2)}\n`;
const MATH = "export function add(a, b) {\n  return a + b;\n}\n";
const TEST = [
  'import { test } from "node:test";',
  'import assert from "node:assert/strict";',
  'import { add } from "./math.js";',
  "",
  'test("add adds", () => {',
  "  assert.equal(add(2, 3), 5);",
  "});",
  "",
].join("\n");
const BROKEN = "export function add(a, b) {\n  return a - b;\n}\n\nexport function multiply(a, b) {\n  return a * b;\n}\n";
const FIXED = "export function add(a, b) {\n  return a + b;\n}\n\nexport function multiply(a, b) {\n  return a * b;\n}\n";
const USAGE = { promptTokens: 1000, completionTokens: 50 };

const write = (content: string): ScriptedTurn => (request) => ({
  toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/math.js`, content } }],
  usage: USAGE,
});
const say = (text: string): ScriptedTurn => ({ text, usage: USAGE });

usePrivateTmpdir("running-agent-verify-tmp-");

async function run(model: ScriptedModelServer, repoPath: string, extra: Partial<AgentTaskOptions>) {
  const events: AgentTaskEvent[] = [];
  const outcome = await runAgentTask({
    repo: repoPath,
    task: "Add multiply(a, b) to math.js",
    model: { provider: "openai-compatible", model: "scripted", baseURL: model.url, apiKey: "scripted-verify-key" },
    sandbox: createLocalSandbox(),
    gitHost: createLocalGitHost(),
    onEvent: (event) => events.push(event),
    ...extra,
  }).then(
    (result) => ({ result, error: undefined }),
    (error: unknown) => ({ result: undefined, error }),
  );
  return { ...outcome, events };
}

/** The text of every message OpenCode sent in a chat request. */
function requestText(request: { body: any }): string {
  return JSON.stringify(request.body?.messages ?? []);
}

describe("verify: checks after the agent, failures handed back, a policy for the last failure", () => {
  it("(a) a failing check goes back to the same session, the agent fixes it, the PR opens ready for review with both rounds", async () => {
    await using repo = await createTestRepository({ "package.json": PACKAGE_JSON, "math.js": MATH, "math.test.js": TEST });
    await using model = await startScriptedModelServer({ script: [write(BROKEN), say("Added multiply."), write(FIXED), say("Fixed add.")] });
    const { result, error, events } = await run(model, repo.path, { checks: [{ name: "test", command: "npm test" }] });
    expect(error).toBeUndefined();
    expect(result!.status).toBe("completed");

    const rounds = result!.verification!.rounds;
    expect(rounds.map((round) => round.passed)).toEqual([false, true]);
    expect(rounds[0]!.checks[0]).toMatchObject({ name: "test", passed: false, exitCode: 1, timedOut: false });
    expect(rounds[0]!.checks[0]!.outputTail).toContain("add adds");
    expect(result!.verification!.passed).toBe(true);

    // The third model request (the fix round's first) carries the failure output, in the same session.
    const chat = model.chatRequests;
    expect(chat).toHaveLength(4);
    expect(requestText(chat[2]!)).toContain("1 check fails");
    expect(requestText(chat[2]!)).toContain("add adds");
    expect(requestText(chat[2]!)).toContain("Add multiply(a, b) to math.js");
    expect(chat[2]!.headers["x-session-id"]).toBe(chat[0]!.headers["x-session-id"]);

    expect(await repo.git("show", `${result!.branch}:math.js`)).toBe(FIXED);
    expect(result!.pullRequest!.draft).toBe(false);
    expect(result!.pullRequest!.body).toContain("Every check passed after 1 fix round.");
    // The local Git host recorded the last round's checks on the change request, for the pushed commit.
    const [recorded] = await createLocalGitHost().listChangeRequests(repo.path);
    expect(recorded!.checks).toMatchObject({ commit: result!.commit, fixRounds: 1, results: [{ name: "test", command: "npm test", passed: true, exitCode: 0 }] });

    // Usage per agent round is exactly what the scripted model reported: two answers of 1000 in, 50 out each.
    expect(result!.agentRounds.map((round) => [round.round, round.usage.inputTokens + round.usage.cacheReadTokens, round.usage.outputTokens])).toEqual([
      [0, 2000, 100],
      [1, 2000, 100],
    ]);
    expect(result!.usage.outputTokens).toBe(200);

    const phases = events.filter((event) => event.type === "phase" && event.status !== "started").map((event) => event.type === "phase" && `${event.phase}:${event.status}`);
    expect(phases).toContain("verify:completed");
    // The sandbox's lifetime covers every phase it served, and is reported when it is destroyed.
    expect(result!.sandboxMs).toBeGreaterThan(result!.timings.agent! + result!.timings.verify!);
    expect(events.find((event) => event.type === "sandbox.destroyed")).toMatchObject({ lifetimeMs: result!.sandboxMs });
    expect(events.filter((event) => event.type === "check.completed").map((event) => event.type === "check.completed" && event.passed)).toEqual([false, true]);
    expect(events.some((event) => event.type === "fix-round" && event.round === 1 && event.failing.includes("test"))).toBe(true);
  });

  it("(b) an agent that never fixes it: after maxFixRounds the PR is a draft whose body names the failing check", async () => {
    await using repo = await createTestRepository({ "package.json": PACKAGE_JSON, "math.js": MATH, "math.test.js": TEST });
    await using model = await startScriptedModelServer({ script: [write(BROKEN), say("Added multiply."), say("I cannot see the problem.")] });
    const { result, error } = await run(model, repo.path, { checks: [{ name: "unit-tests", command: "npm test" }], maxFixRounds: 1 });
    expect(error).toBeUndefined();
    expect(result!.verification!.rounds.map((round) => round.passed)).toEqual([false, false]);
    expect(result!.pullRequest!.draft).toBe(true);
    expect(result!.pullRequest!.body).toContain("1 of 1 checks fail");
    expect(result!.pullRequest!.body).toMatch(/❌ `unit-tests`: `npm test` failed \(exit code 1\)/);
    expect(result!.pullRequest!.body).toContain("add adds");
    expect(await repo.git("show", `${result!.branch}:math.js`)).toBe(BROKEN);
  });

  it('(c, d) "auto" picks npm test and says so; onChecksFailed "fail" pushes nothing and fails with CHECKS_FAILED', async () => {
    await using repo = await createTestRepository({ "package.json": PACKAGE_JSON, "math.js": MATH, "math.test.js": TEST });
    await using model = await startScriptedModelServer({ script: [write(BROKEN), say("Added multiply.")] });
    const { error, events } = await run(model, repo.path, { checks: "auto", maxFixRounds: 0, onChecksFailed: "fail" });
    const chosen = events.find((event) => event.type === "checks.chosen");
    expect(chosen).toMatchObject({ source: "auto", checks: [{ name: "test", command: "npm test" }] });
    expect(chosen?.type === "checks.chosen" && chosen.reasons[0]).toContain("no lockfile: npm");
    expect(RunningAgentError.isInstance(error)).toBe(true);
    expect(error).toMatchObject({ code: ErrorCode.CHECKS_FAILED, phase: "verify" });
    expect((error as RunningAgentError).details?.rounds).toHaveLength(1);
    expect((await repo.git("for-each-ref", "--format=%(refname)", "refs/heads")).trim()).toBe("refs/heads/main");
    expect(await createLocalGitHost().listChangeRequests(repo.path)).toEqual([]);
  });
});

describe("follow-up messages: handle.say()", () => {
  it("a message sent while the agent works goes to the same session after its round; the agent acts on it; after the task it is refused", async () => {
    await using repo = await createTestRepository({ "package.json": PACKAGE_JSON, "math.js": MATH, "math.test.js": TEST });
    let handle: AgentTaskHandle | undefined;
    let said: Promise<void> | undefined;
    await using model = await startScriptedModelServer({
      script: [
        (request) => {
          // The caller speaks up while the agent is busy with its first round.
          said = handle!.say("Also add a NOTES.md that says: multiply was added.");
          return { toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/math.js`, content: FIXED } }] };
        },
        { text: "Added multiply." },
        (request) => ({ toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/NOTES.md`, content: "multiply was added.\n" } }] }),
        { text: "Added the notes." },
      ],
    });
    handle = startAgentTask({
      repo: repo.path,
      task: "Add multiply(a, b) to math.js",
      model: { provider: "openai-compatible", model: "scripted", baseURL: model.url, apiKey: "scripted-verify-key" },
      sandbox: createLocalSandbox(),
      gitHost: createLocalGitHost(),
      checks: [{ name: "test", command: "npm test" }],
    });
    const result = await handle.result;
    await expect(said).resolves.toBeUndefined();
    expect(model.chatRequests).toHaveLength(4);
    expect(requestText(model.chatRequests[2]!)).toContain("Also add a NOTES.md");
    expect(model.chatRequests[2]!.headers["x-session-id"]).toBe(model.chatRequests[0]!.headers["x-session-id"]);
    expect(result.changes.map((change) => change.path).sort()).toEqual(["NOTES.md", "math.js"]);
    expect(result.agentRounds).toHaveLength(2);
    expect(result.verification!.passed).toBe(true);
    expect(handle.events.some((event) => event.type === "agent.message" && event.text.includes("NOTES.md"))).toBe(true);

    await expect(handle.say("One more thing")).rejects.toMatchObject({ code: ErrorCode.AGENT_FINISHED });
    await expect(handle.say("")).rejects.toMatchObject({ code: ErrorCode.INVALID_TASK });
  });
});
