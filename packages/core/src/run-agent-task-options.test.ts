import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentError, ErrorCode, RunningAgentError, createLocalGitHost, createLocalSandbox, runAgentTask } from "./index.js";
import type { AgentTaskOptions, GitHost, SandboxProvider } from "./index.js";
import { diffStat } from "./loop/pull-request.js";
import { createTestRepository, type TestRepository } from "./testing/index.js";
import { countingSandbox, ourTempFolders } from "./testing/leak-checks.js";

/**
 * Every option of runAgentTask, with a wrong type and a value out of range: each fails in
 * validate with a typed error that names the option, and no sandbox or temp folder is made.
 */

const originalTmpdir = process.env.TMPDIR;
let repo: TestRepository;
beforeAll(async () => {
  process.env.TMPDIR = mkdtempSync(join(tmpdir(), "running-agent-options-tmp-"));
  repo = await createTestRepository({ "a.txt": "a\n" });
  // A branch at a parent path of a later case's branch, and an existing task branch.
  await repo.git("branch", "release", "main");
});
afterAll(async () => {
  await repo.remove();
  const privateTmp = process.env.TMPDIR!;
  if (originalTmpdir === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = originalTmpdir;
  rmSync(privateTmp, { recursive: true, force: true });
});

const MODEL = { provider: "openai-compatible" as const, model: "m", baseURL: "http://127.0.0.1:9/v1", apiKey: "scripted-key-123" };
const TOO_LONG_FOR_A_TIMER = 2 ** 31;

type Case = [name: string, override: () => Record<string, unknown>, code: ErrorCode, mentions: string];

const cases: Case[] = [
  ["task: a number", () => ({ task: 42 }), ErrorCode.INVALID_TASK, "task must be a string"],
  ["task: a NUL byte", () => ({ task: "Fix it\u0000 now" }), ErrorCode.INVALID_TASK, "control character"],
  ["task: an escape sequence", () => ({ task: "Fix \u001b[31mit" }), ErrorCode.INVALID_TASK, "control character"],
  ["task: too long", () => ({ task: "x".repeat(100_001) }), ErrorCode.INVALID_TASK, "limit is 100000"],
  ["repo: an object", () => ({ repo: { url: "x" } }), ErrorCode.INVALID_REPO, "repo must be a string"],
  ["repo: a password with '/' in a malformed URL", () => ({ repo: "https://user:pa/ss-secret@host.test/x.git" }), ErrorCode.INVALID_REPO, "malformed"],
  ["repo: a path with a malformed percent-encoding", () => ({ repo: "https://host.test/o/%E0%A4%A.git" }), ErrorCode.INVALID_REPO, "percent-encoding"],
  ["baseBranch: a number", () => ({ baseBranch: 7 }), ErrorCode.INVALID_BRANCH, "baseBranch must be a branch name"],
  ["branch: an array", () => ({ branch: ["x"] }), ErrorCode.INVALID_BRANCH, "branch must be a branch name"],
  ["branch: the base branch", () => ({ branch: "main" }), ErrorCode.INVALID_BRANCH, "is the base branch"],
  ["branch: refs/heads/<base>", () => ({ branch: "refs/heads/main" }), ErrorCode.INVALID_BRANCH, "is the base branch"],
  ["branch: the base branch in another letter case", () => ({ branch: "MAIN" }), ErrorCode.INVALID_BRANCH, "is the base branch"],
  ["branch: the default branch when another base is given", () => ({ baseBranch: "release", branch: "Main" }), ErrorCode.INVALID_BRANCH, "default branch"],
  ["branch: below an existing branch", () => ({ branch: "release/fix" }), ErrorCode.INVALID_BRANCH, 'the branch "release" exists'],
  // The branch lookups run alongside the base branch's; the errors still come in the order of the checks.
  ["a missing base branch is reported before a branch below an existing one", () => ({ baseBranch: "no-such-base", branch: "release/fix" }), ErrorCode.BASE_BRANCH_NOT_FOUND, '"no-such-base" does not exist'],
  ["no push access is reported before a branch below an existing one", () => ({ gitHost: createLocalGitHost({ readOnly: true }), branch: "release/fix" }), ErrorCode.PERMISSION_DENIED, "cannot push"],
  ["branchPrefix: a number", () => ({ branchPrefix: 1 }), ErrorCode.INVALID_BRANCH, "branchPrefix must be a string"],
  ["branchPrefix: an existing branch as its folder", () => ({ branchPrefix: "release/" }), ErrorCode.INVALID_BRANCH, 'the branch "release" exists'],
  ["gitToken: a number", () => ({ gitToken: 12345678 }), ErrorCode.INVALID_OPTIONS, "gitToken must be a non-empty string"],
  ["gitToken: a line break", () => ({ gitToken: "ghp_token\r\nX-Evil: 1" }), ErrorCode.INVALID_OPTIONS, "HTTP header"],
  ["model: a number", () => ({ model: 5 }), ErrorCode.INVALID_MODEL, "model must be"],
  ["model: an id with spaces", () => ({ model: { ...MODEL, model: "a b" } }), ErrorCode.INVALID_MODEL, "model id"],
  ["setupCommands: a string", () => ({ setupCommands: "npm ci" }), ErrorCode.INVALID_OPTIONS, "setupCommands must be an array"],
  ["setupCommands: a number inside", () => ({ setupCommands: ["npm ci", 3] }), ErrorCode.INVALID_OPTIONS, "setupCommands[1] must be a command string"],
  ["setupCommands: a blank command", () => ({ setupCommands: ["  "] }), ErrorCode.INVALID_OPTIONS, "setupCommands[0] is blank"],
  ["cloneDepth: a string", () => ({ cloneDepth: "1" }), ErrorCode.INVALID_OPTIONS, "cloneDepth must be"],
  ["cloneDepth: zero", () => ({ cloneDepth: 0 }), ErrorCode.INVALID_OPTIONS, "cloneDepth must be"],
  ["author: a string", () => ({ author: "Ada <ada@example.com>" }), ErrorCode.INVALID_OPTIONS, "author must be"],
  ["author: a NUL in the name", () => ({ author: { name: "Ada\u0000", email: "ada@example.com" } }), ErrorCode.INVALID_OPTIONS, "author.name contains a control character"],
  ["author: a carriage return in the name", () => ({ author: { name: "Ada\rX", email: "ada@example.com" } }), ErrorCode.INVALID_OPTIONS, "author.name contains a control character"],
  ["author: a name too long", () => ({ author: { name: "A".repeat(257), email: "ada@example.com" } }), ErrorCode.INVALID_OPTIONS, "longer than 256"],
  ["committer: '<' in the name", () => ({ committer: { name: "Ada <x>", email: "ada@example.com" } }), ErrorCode.INVALID_OPTIONS, "committer.name contains < or >"],
  ["committer: a number as email", () => ({ committer: { name: "Ada", email: 1 } }), ErrorCode.INVALID_OPTIONS, "committer.email must be a string"],
  ["coAuthors: an object", () => ({ coAuthors: { name: "Grace", email: "g@example.com" } }), ErrorCode.INVALID_OPTIONS, "coAuthors must be an array"],
  ["coAuthors: CR/LF in a name", () => ({ coAuthors: [{ name: "Grace\r\nSigned-off-by: Mallory", email: "g@example.com" }] }), ErrorCode.INVALID_OPTIONS, "coAuthors[0].name contains a control character"],
  ["pullRequest: a string", () => ({ pullRequest: "title" }), ErrorCode.INVALID_OPTIONS, "pullRequest must be an object"],
  ["pullRequest.title: blank", () => ({ pullRequest: { title: "   " } }), ErrorCode.INVALID_OPTIONS, "pullRequest.title is blank"],
  ["pullRequest.title: a number", () => ({ pullRequest: { title: 3 } }), ErrorCode.INVALID_OPTIONS, "pullRequest.title must be a string"],
  ["pullRequest.title: a line break", () => ({ pullRequest: { title: "a\nb" } }), ErrorCode.INVALID_OPTIONS, "pullRequest.title contains a control character"],
  ["pullRequest.body: an array", () => ({ pullRequest: { body: ["x"] } }), ErrorCode.INVALID_OPTIONS, "pullRequest.body must be a string"],
  ["pullRequest.body: too long", () => ({ pullRequest: { body: "x".repeat(50_001) } }), ErrorCode.INVALID_OPTIONS, "limit is 50000"],
  ["pullRequest.draft: a string", () => ({ pullRequest: { draft: "yes" } }), ErrorCode.INVALID_OPTIONS, "pullRequest.draft must be true or false"],
  ["pullRequest.labels: a string", () => ({ pullRequest: { labels: "bug" } }), ErrorCode.INVALID_OPTIONS, "pullRequest.labels must be an array"],
  ["pullRequest.labels: a blank label", () => ({ pullRequest: { labels: [""] } }), ErrorCode.INVALID_OPTIONS, "pullRequest.labels[0] is blank"],
  ["pullRequest.reviewers: a number inside", () => ({ pullRequest: { reviewers: [1] } }), ErrorCode.INVALID_OPTIONS, "pullRequest.reviewers[0] must be a string"],
  ["pullRequest.assignees: too many", () => ({ pullRequest: { assignees: Array.from({ length: 101 }, (_, i) => `u${i}`) } }), ErrorCode.INVALID_OPTIONS, "the limit is 100"],
  ["pullRequest.closesIssue: a string", () => ({ pullRequest: { closesIssue: "12" } }), ErrorCode.INVALID_OPTIONS, "pullRequest.closesIssue must be a whole number"],
  ["pullRequest.closesIssue: zero", () => ({ pullRequest: { closesIssue: 0 } }), ErrorCode.INVALID_OPTIONS, "pullRequest.closesIssue must be a whole number"],
  ["resources: a number", () => ({ resources: 2 }), ErrorCode.INVALID_OPTIONS, "resources must be an object"],
  ["resources.cpu: negative", () => ({ resources: { cpu: -1 } }), ErrorCode.INVALID_OPTIONS, "resources.cpu must be"],
  ["resources.memoryMiB: a fraction", () => ({ resources: { memoryMiB: 1.5 } }), ErrorCode.INVALID_OPTIONS, "resources.memoryMiB must be a whole number"],
  ["resources.pids: a string", () => ({ resources: { pids: "10" } }), ErrorCode.INVALID_OPTIONS, "resources.pids must be a whole number"],
  ["network: an unknown string", () => ({ network: "everywhere" }), ErrorCode.INVALID_OPTIONS, "network must be"],
  ["network.allow: an entry that is neither a name nor an address", () => ({ network: { allow: ["10.0.0.0/40"] } }), ErrorCode.INVALID_OPTIONS, "network.allow: \"10.0.0.0/40\" is not a CIDR range"],
  ["network.allow: a URL instead of a host", () => ({ network: { allow: ["https://example.com"] } }), ErrorCode.INVALID_OPTIONS, "network.allow:"],
  ["setupNetwork: an unknown form", () => ({ setupNetwork: { hosts: ["example.com"] } }), ErrorCode.INVALID_OPTIONS, "setupNetwork must be"],
  ["network: an unknown mode", () => ({ network: { mode: "firewalled" } }), ErrorCode.INVALID_OPTIONS, "network must be"],
  ["network.hosts: a string", () => ({ network: { mode: "allow-list", hosts: "example.com" } }), ErrorCode.INVALID_OPTIONS, "network.hosts must be an array"],
  ["timeoutMs: a string", () => ({ timeoutMs: "1000" }), ErrorCode.INVALID_OPTIONS, "timeoutMs must be a number of milliseconds"],
  ["timeoutMs: negative", () => ({ timeoutMs: -1 }), ErrorCode.INVALID_OPTIONS, "timeoutMs must be a number of milliseconds"],
  ["timeoutMs: more than a timer holds", () => ({ timeoutMs: TOO_LONG_FOR_A_TIMER }), ErrorCode.INVALID_OPTIONS, "2147483647"],
  ["agentTimeoutMs: Infinity", () => ({ agentTimeoutMs: Number.POSITIVE_INFINITY }), ErrorCode.INVALID_OPTIONS, "agentTimeoutMs must be"],
  ["agentTimeoutMs: more than a timer holds", () => ({ agentTimeoutMs: TOO_LONG_FOR_A_TIMER }), ErrorCode.INVALID_OPTIONS, "2147483647"],
  ["gitStallTimeoutMs: a string", () => ({ gitStallTimeoutMs: "60s" }), ErrorCode.INVALID_OPTIONS, "gitStallTimeoutMs must be a number of milliseconds"],
  ["gitStallTimeoutMs: 0", () => ({ gitStallTimeoutMs: 0 }), ErrorCode.INVALID_OPTIONS, "gitStallTimeoutMs must be a number of milliseconds"],
  ["gitStallTimeoutMs: more than a timer holds", () => ({ gitStallTimeoutMs: TOO_LONG_FOR_A_TIMER }), ErrorCode.INVALID_OPTIONS, "2147483647"],
  ["modelProxy: a string", () => ({ modelProxy: "yes" }), ErrorCode.INVALID_OPTIONS, "modelProxy must be true or false"],
  ["allowRepoAgentConfig: a number", () => ({ allowRepoAgentConfig: 1 }), ErrorCode.INVALID_OPTIONS, "allowRepoAgentConfig must be true or false"],
  ["secrets: a string", () => ({ secrets: "my-secret-value" }), ErrorCode.INVALID_OPTIONS, "secrets must be an array of strings"],
  ["secrets: a number inside", () => ({ secrets: [123456] }), ErrorCode.INVALID_OPTIONS, "secrets[0] must be a string"],
  ["secrets: too short to redact", () => ({ secrets: ["abc"] }), ErrorCode.INVALID_OPTIONS, "secrets[0] is shorter than 6"],
  ["signal: not a signal", () => ({ signal: { aborted: "no" } }), ErrorCode.INVALID_OPTIONS, "signal must be an AbortSignal"],
  ["onEvent: not a function", () => ({ onEvent: "log" }), ErrorCode.INVALID_OPTIONS, "onEvent must be a function"],
  ["taskId: a number", () => ({ taskId: 7 }), ErrorCode.INVALID_OPTIONS, "taskId must be"],
  ["taskId: empty", () => ({ taskId: "" }), ErrorCode.INVALID_OPTIONS, "taskId must be"],
  ["taskId: a slash", () => ({ taskId: "a/b" }), ErrorCode.INVALID_OPTIONS, "taskId must be"],
  ["taskId: '..'", () => ({ taskId: "a..b" }), ErrorCode.INVALID_OPTIONS, "taskId must be"],
  ["checks: a string other than auto", () => ({ checks: "npm test" }), ErrorCode.INVALID_OPTIONS, 'checks must be "auto" or an array'],
  ["checks: a blank command", () => ({ checks: [{ name: "test", command: " " }] }), ErrorCode.INVALID_OPTIONS, "checks[0].command is blank"],
  ["checks: a duplicate name", () => ({ checks: [{ name: "t", command: "a" }, { name: "t", command: "b" }] }), ErrorCode.INVALID_OPTIONS, "is used twice"],
  ["checks: a name with a space", () => ({ checks: [{ name: "my test", command: "a" }] }), ErrorCode.INVALID_OPTIONS, "checks[0].name must be"],
  ["checks: a timeout too long for a timer", () => ({ checks: [{ name: "t", command: "a", timeoutMs: TOO_LONG_FOR_A_TIMER }] }), ErrorCode.INVALID_OPTIONS, "checks[0].timeoutMs must be"],
  ["maxFixRounds: negative", () => ({ maxFixRounds: -1 }), ErrorCode.INVALID_OPTIONS, "maxFixRounds must be a whole number from 0 to 10"],
  ["maxFixRounds: above 10", () => ({ maxFixRounds: 11 }), ErrorCode.INVALID_OPTIONS, "maxFixRounds must be a whole number from 0 to 10"],
  ["maxFixRounds: a string", () => ({ maxFixRounds: "2" }), ErrorCode.INVALID_OPTIONS, "maxFixRounds must be a whole number"],
  ["onChecksFailed: unknown", () => ({ onChecksFailed: "ignore" }), ErrorCode.INVALID_OPTIONS, 'onChecksFailed must be "draft", "fail" or "open"'],
  ["model.prices: negative", () => ({ model: { ...MODEL, prices: { input: -1, output: 1 } } }), ErrorCode.INVALID_MODEL, "prices must be"],
  ["agentStart: a number", () => ({ agentStart: 5 }), ErrorCode.INVALID_OPTIONS, "agentStart must be an object"],
  ["agentStart.timeoutMs: more than a timer holds", () => ({ agentStart: { timeoutMs: TOO_LONG_FOR_A_TIMER } }), ErrorCode.INVALID_OPTIONS, "agentStart.timeoutMs must be"],
  ["agentStart.admission: not an admission", () => ({ agentStart: { admission: {} } }), ErrorCode.INVALID_OPTIONS, "agentStart.admission must be"],
  ["changeLimits: a string", () => ({ changeLimits: "1GB" }), ErrorCode.INVALID_OPTIONS, "changeLimits must be an object"],
  ["changeLimits.maxFileBytes: 0", () => ({ changeLimits: { maxFileBytes: 0 } }), ErrorCode.INVALID_OPTIONS, "changeLimits.maxFileBytes must be a positive whole number"],
  ["changeLimits.maxFiles: a string", () => ({ changeLimits: { maxFiles: "10" } }), ErrorCode.INVALID_OPTIONS, "not a string"],
  ["sandbox: a string", () => ({ sandbox: "docker" }), ErrorCode.INVALID_SANDBOX_PROVIDER, "SandboxProvider"],
  ["gitHost: null", () => ({ gitHost: null }), ErrorCode.INVALID_GIT_HOST, "GitHost"],
];

describe("runAgentTask checks every option in validate, before anything is created", () => {
  it.each(cases)("%s", async (_name, override, code, mentions) => {
    const counting = countingSandbox();
    const foldersBefore = ourTempFolders();
    const error = await runAgentTask({ repo: repo.path, task: "Do something", model: MODEL, sandbox: counting.provider, ...override() } as never).catch(
      (caught: unknown) => caught,
    );
    expect(RunningAgentError.isInstance(error), String(error)).toBe(true);
    const failure = error as RunningAgentError;
    expect({ code: failure.code, phase: failure.phase }).toEqual({ code, phase: "validate" });
    expect(failure.message).toContain(mentions);
    expect(failure.message).not.toMatch(/TypeError|Cannot read|is not a function|undefined \(reading/);
    expect(failure.message).not.toContain("pa/ss-secret");
    expect(counting.created()).toBe(0);
    expect(ourTempFolders().filter((name) => !foldersBefore.includes(name))).toEqual([]);
    // Nothing reached the remote.
    expect((await repo.git("for-each-ref", "--format=%(refname)", "refs/heads")).trim().split("\n")).toEqual(["refs/heads/main", "refs/heads/release"]);
  });

  it("names the type of a wrong value and never echoes a string value", async () => {
    const error = (await runAgentTask({ repo: repo.path, task: "Do it", model: MODEL, secrets: "hunter2-secret" } as never).catch((caught) => caught)) as RunningAgentError;
    expect(error.message).toBe("secrets must be an array of strings, not a string.");
    const number = (await runAgentTask({ repo: repo.path, task: "Do it", model: MODEL, timeoutMs: 2 ** 31 } as never).catch((caught) => caught)) as RunningAgentError;
    expect(number.message).toContain("not the number 2147483648");
  });
});

describe("a Git host or sandbox that answers outside its spec is a typed SPEC_VIOLATION, not a TypeError", () => {
  function hostAnswering(member: keyof GitHost, answer: unknown): GitHost {
    const inner = createLocalGitHost();
    return new Proxy(inner, {
      get(target, property, receiver) {
        if (property === member) return async () => answer;
        const value = Reflect.get(target, property, receiver);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  }

  it.each([
    ["resolveRepository", null],
    ["resolveRepository", {}],
    ["branchExists", "yes"],
  ] as const)("%s answering %j fails in validate with no sandbox made", async (member, answer) => {
    const counting = countingSandbox();
    const error = (await runAgentTask({ repo: repo.path, task: "Do it", model: MODEL, sandbox: counting.provider, gitHost: hostAnswering(member, answer) }).catch(
      (caught) => caught,
    )) as RunningAgentError;
    expect({ code: error.code, phase: error.phase }).toEqual({ code: ErrorCode.SPEC_VIOLATION, phase: "validate" });
    expect(error.message).toContain(`${member}()`);
    expect(error.message).not.toMatch(/TypeError|Cannot read/);
    expect(counting.created()).toBe(0);
  });

  it.each([
    ["answering 42", () => 42],
    ["throwing a TypeError", () => (undefined as unknown as { x: string }).x],
  ])("a Git host whose optional normalizeRepo() is %s fails in validate with SPEC_VIOLATION and no sandbox", async (_name, normalizeRepo) => {
    const counting = countingSandbox();
    const inner = createLocalGitHost();
    const gitHost = new Proxy(inner, {
      get: (target, property) => (property === "normalizeRepo" ? normalizeRepo : ((value) => (typeof value === "function" ? value.bind(target) : value))(Reflect.get(target, property))),
    }) as GitHost;
    const error = (await runAgentTask({ repo: repo.path, task: "Do it", model: MODEL, sandbox: counting.provider, gitHost }).catch((caught) => caught)) as RunningAgentError;
    expect({ code: error.code, phase: error.phase }).toEqual({ code: ErrorCode.SPEC_VIOLATION, phase: "validate" });
    expect(error.message).toContain("normalizeRepo()");
    expect(error.message).not.toMatch(/TypeError|Cannot read/);
    expect(counting.created()).toBe(0);
  });

  it("a provider whose create() answers {} fails in the sandbox phase; one whose exec answers null fails where it is called, and nothing is left", async () => {
    const foldersBefore = ourTempFolders();
    const empty: SandboxProvider = { specificationVersion: "sandbox-v1", providerId: "nonsense", create: async () => ({}) as never };
    const first = (await runAgentTask({ repo: repo.path, task: "Do it", model: MODEL, sandbox: empty }).catch((caught) => caught)) as RunningAgentError;
    expect({ code: first.code, phase: first.phase }).toEqual({ code: ErrorCode.SPEC_VIOLATION, phase: "sandbox" });
    expect(first.message).toContain('The sandbox provider "nonsense"');

    const local = createLocalSandbox();
    const destroyed: string[] = [];
    const nullExec: SandboxProvider = {
      specificationVersion: "sandbox-v1",
      providerId: "null-exec",
      opencodeBinary: local.opencodeBinary!,
      create: async (options) => {
        const session = await local.create(options);
        return new Proxy(session, {
          get(target, property) {
            if (property === "exec" || property === "spawn") return async () => null;
            if (property === "destroy") {
              return async () => {
                destroyed.push(target.id);
                await target.destroy();
              };
            }
            const value = Reflect.get(target, property);
            return typeof value === "function" ? value.bind(target) : value;
          },
        });
      },
    };
    const second = (await runAgentTask({ repo: repo.path, task: "Do it", model: MODEL, sandbox: nullExec }).catch((caught) => caught)) as RunningAgentError;
    expect(second.code).toBe(ErrorCode.SPEC_VIOLATION);
    expect(second.message).toMatch(/(exec|spawn)\(\) gave null/);
    expect(destroyed).toHaveLength(1);
    expect(ourTempFolders().filter((name) => !foldersBefore.includes(name))).toEqual([]);
  });
});

describe("a provider that cannot enforce the task's policy", () => {
  it("gets the policy in validate and fails the task there, before any sandbox, with its own typed error", async () => {
    const counting = countingSandbox();
    const seen: unknown[] = [];
    // As the Docker sandbox with a remote Engine: only "open" can run.
    const remote = new Proxy(counting.provider, {
      get(target, property, receiver) {
        if (property !== "validate") return Reflect.get(target, property, receiver);
        return async (options: { network?: unknown }) => {
          seen.push(options.network);
          if (options.network !== "open") throw agentError(ErrorCode.CAPABILITY_UNSUPPORTED, "this engine cannot enforce it");
        };
      },
    });
    const error = (await runAgentTask({ repo: repo.path, task: "Do it", model: MODEL, sandbox: remote, network: { allow: ["example.com"] } }).catch((caught) => caught)) as RunningAgentError;
    expect({ code: error.code, phase: error.phase }).toEqual({ code: ErrorCode.CAPABILITY_UNSUPPORTED, phase: "validate" });
    expect(seen).toEqual([{ allow: ["example.com"] }]);
    expect(counting.created()).toBe(0);
  });
});

describe("the change request's file list", () => {
  it("keeps a file name with a newline or backticks on its own line, inside one code span", () => {
    const stat = diffStat([
      { path: "evil\n- `injected` (added)", status: "added", additions: 1, deletions: 0, binary: false },
      { path: "a``b", status: "modified", additions: 1, deletions: 1, binary: false },
    ] as never);
    const lines = stat.split("\n");
    expect(lines[0]).toBe("- ``evil\\n- `injected` (added)`` (added, +1 −0)");
    expect(lines[1]).toBe("- ```a``b``` (modified, +1 −1)");
    expect(lines).toHaveLength(4);
  });
});

// The options type itself: a compile-time check that the table above names real options.
const _options: Array<keyof AgentTaskOptions> = ["repo", "task", "baseBranch", "branch", "branchPrefix", "gitToken", "model", "setupCommands", "cloneDepth", "author", "committer", "coAuthors", "pullRequest", "resources", "network", "setupNetwork", "timeoutMs", "agentTimeoutMs", "modelProxy", "allowRepoAgentConfig", "secrets", "signal", "onEvent", "taskId", "sandbox", "gitHost", "checks", "maxFixRounds", "onChecksFailed", "agentStart", "changeLimits", "gitStallTimeoutMs"];
void _options;
