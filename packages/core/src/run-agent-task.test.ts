import { execFileSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode, RunningAgentError, createLocalGitHost, createLocalSandbox, runAgentTask, startAgentTask } from "./index.js";
import type { AgentTaskEvent, SandboxProvider } from "./index.js";
import { createTestRepository, startScriptedModelServer, type ScriptedModelServer, type ScriptedTurn, workingDirectoryOf, usePrivateTmpdir } from "./testing/index.js";
import { countingSandbox, ourTempFolders } from "./testing/leak-checks.js";

const ORIGINAL = "export function add(a: number, b: number): number {\n  return a + b;\n}\n";
const EDITED = `${ORIGINAL}\nexport function multiply(a: number, b: number): number {\n  return a * b;\n}\n`;
const SUMMARY = "Added multiply next to add.";
const API_KEY = "scripted-model-key-0123456789";

function editScript(): ScriptedTurn[] {
  return [
    (request) => ({ toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/src/math.ts`, content: EDITED } }] }),
    { text: SUMMARY },
  ];
}

/** Temp folders of ours, to prove a run leaves none. Runs use a private TMPDIR, so other processes' folders don't count. */
usePrivateTmpdir("running-agent-e2e-tmp-");

/** Processes whose command line names the sandbox. */
function processesOf(sandboxId: string): string[] {
  if (!sandboxId) return ["(no sandbox id)"];
  return execFileSync("ps", ["-eo", "pid=,args="], { encoding: "utf8" })
    .split("\n")
    .filter((line) => line.includes(sandboxId) && !line.includes("ps -eo"));
}

function portIsClosed(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port }, () => {
      socket.destroy();
      resolve(false);
    });
    socket.on("error", () => resolve(true));
  });
}

function modelFor(server: ScriptedModelServer) {
  return { provider: "openai-compatible" as const, model: "scripted", baseURL: server.url, apiKey: API_KEY };
}

describe("runAgentTask, end to end: real OpenCode, scripted model, local sandbox under bubblewrap, local Git host", () => {
  let foldersBefore: string[];
  beforeAll(() => {
    foldersBefore = ourTempFolders();
  });
  afterAll(() => {
    expect(ourTempFolders().filter((name) => !foldersBefore.includes(name))).toEqual([]);
  });

  it("pushes exactly the scripted change with the given identities, records the change request, and leaves nothing behind", async () => {
    await using repo = await createTestRepository({ "src/math.ts": ORIGINAL, "README.md": "# math\n" });
    await using model = await startScriptedModelServer({ script: editScript() });
    const gitHost = createLocalGitHost();
    const events: AgentTaskEvent[] = [];
    let serverPort = 0;

    const result = await runAgentTask({
      repo: repo.path,
      task: "Add a multiply function to src/math.ts",
      model: modelFor(model),
      sandbox: createLocalSandbox(),
      gitHost,
      author: { name: "Ada Author", email: "ada@example.com" },
      committer: { name: "Bot Committer", email: "bot@example.com" },
      coAuthors: [{ name: "Grace Helper", email: "grace@example.com" }],
      pullRequest: { labels: ["agent"], draft: true, closesIssue: 7 },
      onEvent: (event) => {
        events.push(event);
        // While the agent works, find the OpenCode server's port from its command line.
        if (event.type === "agent.tool" && serverPort === 0) {
          const sandboxId = events.find((seen) => seen.type === "sandbox")?.sandboxId as string;
          const line = processesOf(sandboxId).find((args) => args.includes("opencode serve"));
          serverPort = Number(/--port (\d+)/.exec(line ?? "")?.[1] ?? 0);
        }
      },
    });

    expect(result.status).toBe("completed");
    expect(result.branch).toMatch(/^running-agent\/add-a-multiply-function/);
    expect(result.changes).toEqual([
      expect.objectContaining({ path: "src/math.ts", status: "modified", binary: false, additions: 4, deletions: 0 }),
    ]);
    expect(result.summary).toBe(SUMMARY);
    expect(result.usage.inputTokens).toBeGreaterThan(0);

    // The pushed commit: exact content, exactly one file changed, identities and trailers.
    expect(await repo.git("show", `${result.branch}:src/math.ts`)).toBe(EDITED);
    expect((await repo.git("diff", "--name-status", `main...${result.branch}`)).trim()).toBe("M\tsrc/math.ts");
    expect((await repo.git("rev-parse", result.branch!)).trim()).toBe(result.commit);
    const [author, committer] = (await repo.git("log", "-1", "--format=%an <%ae>%n%cn <%ce>", result.branch!)).trim().split("\n");
    expect(author).toBe("Ada Author <ada@example.com>");
    expect(committer).toBe("Bot Committer <bot@example.com>");
    expect(await repo.git("log", "-1", "--format=%B", result.branch!)).toContain("Co-authored-by: Grace Helper <grace@example.com>");
    expect((await repo.git("rev-parse", "main")).trim()).toBe((await repo.git("rev-parse", `${result.branch}~1`)).trim());

    // The change request, read back from the Git host.
    const [changeRequest, ...others] = await gitHost.listChangeRequests(repo.path);
    expect(others).toEqual([]);
    expect(changeRequest).toMatchObject({ number: 1, head: result.branch, base: "main", title: "Add a multiply function to src/math.ts", draft: true, labels: ["agent"] });
    expect(changeRequest!.body).toContain(SUMMARY);
    expect(changeRequest!.body).toContain("Closes #7");
    expect(changeRequest!.body).toContain("`src/math.ts` (modified, +4 −0)");
    expect(result.pullRequest).toMatchObject({ number: 1, created: true, url: changeRequest!.url });

    // Phases in order, each started then completed, setup and verify (no checks) skipped.
    const phases = events.filter((event) => event.type === "phase").map((event) => `${event.phase}:${event.status}`);
    expect(phases).toEqual([
      "validate:started", "validate:completed",
      "sandbox:started", "sandbox:completed",
      "clone:started", "clone:completed",
      "setup:skipped",
      "agent:started", "agent:completed",
      "collect:started", "collect:completed",
      "verify:skipped",
      "commit:started", "commit:completed",
      "push:started", "push:completed",
      "pull-request:started", "pull-request:completed",
      "teardown:started", "teardown:completed",
    ]);
    expect(events.some((event) => event.type === "agent.tool" && event.tool === "write" && event.status === "completed")).toBe(true);
    expect(events.every((event) => event.taskId === result.taskId)).toBe(true);

    // The model got the key as a bearer token; the key never left in an event.
    expect(model.requests.some((request) => request.headers.authorization === `Bearer ${API_KEY}`)).toBe(true);
    expect(JSON.stringify(events)).not.toContain(API_KEY);

    // Nothing left: no process of this sandbox, no listening port it opened, no temp folder (checked after all).
    const sandboxEvent = events.find((event) => event.type === "sandbox");
    expect(sandboxEvent).toBeDefined();
    expect(processesOf(sandboxEvent!.type === "sandbox" ? sandboxEvent!.sandboxId : "")).toEqual([]);
    expect(serverPort).toBeGreaterThan(0);
    expect(await portIsClosed(serverPort)).toBe(true);
  });

  it("ends with no_changes and no branch when the agent changes nothing", async () => {
    await using repo = await createTestRepository({ "a.txt": "a\n" });
    await using model = await startScriptedModelServer({ script: [{ text: "Nothing to do." }] });
    const result = await runAgentTask({ repo: repo.path, task: "Look around", model: modelFor(model), sandbox: createLocalSandbox(), gitHost: createLocalGitHost() });
    expect(result.status).toBe("no_changes");
    expect(result.branch).toBeUndefined();
    expect((await repo.git("for-each-ref", "--format=%(refname)", "refs/heads")).trim()).toBe("refs/heads/main");
  });

  // How OpenCode's retries of a failing model are reported and end is the engine test's (opencode-engine.test.ts), which waits
  // for the retries before the time is up; here the time limit is fixed, and a loaded machine may spend it all starting the server.
  it("ends the agent phase at agentTimeoutMs (a model that fails with 5xx forever): AGENT_TIMEOUT in the agent phase, nothing left", async () => {
    await using repo = await createTestRepository({ "a.txt": "a\n" });
    await using model = await startScriptedModelServer({ script: Array.from({ length: 50 }, () => ({ status: 500 })) });
    const events: AgentTaskEvent[] = [];
    const error = await runAgentTask({
      repo: repo.path,
      task: "Fail forever",
      model: modelFor(model),
      sandbox: createLocalSandbox(),
      gitHost: createLocalGitHost(),
      agentTimeoutMs: 10_000,
      onEvent: (event) => events.push(event),
    }).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: ErrorCode.AGENT_TIMEOUT, phase: "agent" });
    expect((error as RunningAgentError).message).toContain("within 10000 ms");
    expect(events).toContainEqual(expect.objectContaining({ type: "phase", phase: "agent", status: "failed" }));
    const sandboxEvent = events.find((event) => event.type === "sandbox");
    expect(processesOf(sandboxEvent?.type === "sandbox" ? sandboxEvent.sandboxId : "")).toEqual([]);
    expect((await repo.git("for-each-ref", "--format=%(refname)", "refs/heads")).trim()).toBe("refs/heads/main");
  });

  it("with modelProxy, the key stays on the host: the sandbox's environment holds only a run token, the model still gets the key", async () => {
    await using repo = await createTestRepository({ "src/math.ts": ORIGINAL });
    let environmentSeen = "";
    await using model = await startScriptedModelServer({
      script: [
        (request) => ({ toolCalls: [{ name: "bash", arguments: { command: "env", description: "Print the environment", workdir: workingDirectoryOf(request) } }] }),
        (request) => {
          // The bash tool's output comes back to the model in this request.
          const messages = request.body?.messages as Array<{ role: string; content: unknown }>;
          environmentSeen = JSON.stringify(messages.filter((message) => message.role === "tool"));
          return { toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/src/math.ts`, content: EDITED } }] };
        },
        { text: SUMMARY },
      ],
    });
    const result = await runAgentTask({
      repo: repo.path,
      task: "Add a multiply function to src/math.ts",
      model: modelFor(model),
      sandbox: createLocalSandbox(),
      gitHost: createLocalGitHost(),
      modelProxy: true,
    });
    expect(result.status).toBe("completed");
    expect(await repo.git("show", `${result.branch}:src/math.ts`)).toBe(EDITED);
    expect(environmentSeen).toMatch(/RUNNING_AGENT_MODEL_API_KEY=run-[0-9a-f]{48}/);
    expect(environmentSeen).not.toContain(API_KEY);
    const chatRequests = model.requests.filter((request) => request.path.endsWith("/chat/completions"));
    expect(chatRequests.length).toBe(3);
    expect(chatRequests.every((request) => request.headers.authorization === `Bearer ${API_KEY}`)).toBe(true);
  });

  it("cancels mid-agent through the handle: typed ABORTED in the agent phase, and nothing left", async () => {
    await using repo = await createTestRepository({ "a.txt": "a\n" });
    await using model = await startScriptedModelServer({ script: [{ hang: true }] });
    const handle = startAgentTask({ repo: repo.path, task: "Wait forever", model: modelFor(model), sandbox: createLocalSandbox(), gitHost: createLocalGitHost() });
    for await (const event of handle) {
      if (event.type === "phase" && event.phase === "agent" && event.status === "started") break;
    }
    while (model.requests.length === 0) await new Promise((resolve) => setTimeout(resolve, 50));
    await handle.cancel("test");
    const error = await handle.result.catch((caught: unknown) => caught);
    expect(RunningAgentError.isInstance(error)).toBe(true);
    expect(error).toMatchObject({ code: ErrorCode.ABORTED, phase: "agent" });
    const phases = handle.events.filter((event) => event.type === "phase").map((event) => `${event.phase}:${event.status}`);
    expect(phases.slice(-3)).toEqual(["agent:failed", "teardown:started", "teardown:completed"]);
    const sandboxEvent = handle.events.find((event) => event.type === "sandbox");
    expect(processesOf(sandboxEvent?.type === "sandbox" ? sandboxEvent.sandboxId : "")).toEqual([]);
  });
});

describe("runAgentTask rejects bad input before anything is created", () => {
  let repo: Awaited<ReturnType<typeof createTestRepository>>;
  beforeAll(async () => {
    repo = await createTestRepository({ "a.txt": "a\n" });
  });
  afterAll(async () => repo.remove());

  const cases: Array<[string, () => Record<string, unknown>, string]> = [
    ["an empty task", () => ({ task: "   " }), ErrorCode.INVALID_TASK],
    ["a malformed repo URL", () => ({ repo: "ht!tp://nope" }), ErrorCode.INVALID_REPO],
    ["an ssh repo URL", () => ({ repo: "git@github.com:o/r.git" }), ErrorCode.INVALID_REPO],
    ["an https repo without a Git host for it", () => ({ repo: "https://example.com/o/r.git" }), ErrorCode.UNSUPPORTED_REPO],
    ["a repo path that is not a repository", () => ({ repo: tmpdir() }), ErrorCode.REPO_NOT_FOUND],
    ["an unknown model provider", () => ({ model: "nosuch/model" }), ErrorCode.UNKNOWN_MODEL_PROVIDER],
    ["a missing API key", () => ({ model: { provider: "anthropic", model: "claude-sonnet-4-5" } }), ErrorCode.MISSING_API_KEY],
    ["a base branch that does not exist", () => ({ baseBranch: "no-such-branch" }), ErrorCode.BASE_BRANCH_NOT_FOUND],
    ["a branch name git refuses", () => ({ branch: "bad..name" }), ErrorCode.INVALID_BRANCH],
    ["a sandbox that is not a provider", () => ({ sandbox: { create: 1 } }), ErrorCode.INVALID_SANDBOX_PROVIDER],
    ["a sandbox of an unknown spec version", () => ({ sandbox: { specificationVersion: "sandbox-v9", providerId: "future", create: async () => ({}) } }), ErrorCode.UNSUPPORTED_SPEC_VERSION],
    ["a Git host that is not one", () => ({ gitHost: { hostId: "x" } }), ErrorCode.INVALID_GIT_HOST],
    ["a negative timeout", () => ({ timeoutMs: -1 }), ErrorCode.INVALID_OPTIONS],
    [
      "modelProxy with a sandbox that cannot reach the host's loopback",
      () => ({ modelProxy: true, sandbox: { specificationVersion: "sandbox-v1", providerId: "remote", create: async () => ({}) } }),
      ErrorCode.CAPABILITY_UNSUPPORTED,
    ],
    [
      "setupNetwork with a sandbox that fixes its policy at creation",
      () => ({ setupNetwork: "open", sandbox: { specificationVersion: "sandbox-v1", providerId: "remote", create: async () => ({}) } }),
      ErrorCode.CAPABILITY_UNSUPPORTED,
    ],
  ];

  it.each(cases)("%s", async (_name, override, code) => {
    const counting = countingSandbox();
    const previous = process.env.ANTHROPIC_API_KEY;
    delete process.env.ANTHROPIC_API_KEY;
    const foldersBefore = ourTempFolders();
    try {
      const error = await runAgentTask({
        repo: repo.path,
        task: "Do something",
        model: { provider: "openai-compatible", model: "m", baseURL: "http://127.0.0.1:9/v1", apiKey: "k" },
        sandbox: counting.provider,
        ...override(),
      } as never).catch((caught: unknown) => caught);
      expect(RunningAgentError.isInstance(error)).toBe(true);
      expect((error as RunningAgentError).code).toBe(code);
      expect((error as RunningAgentError).phase).toBe("validate");
      expect((error as RunningAgentError).message.length).toBeGreaterThan(20);
      expect(counting.created()).toBe(0);
      expect(ourTempFolders().filter((name) => !foldersBefore.includes(name))).toEqual([]);
    } finally {
      if (previous !== undefined) process.env.ANTHROPIC_API_KEY = previous;
    }
  });
});
