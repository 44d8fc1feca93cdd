import { lstat, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Octokit } from "@octokit/rest";
import { createLocalSandbox, runAgentTask, type AgentTaskEvent, type RunningAgentError } from "@running-agent/core";
import { startScriptedModelServer, type ScriptedTurn, workingDirectoryOf } from "@running-agent/core/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createGitHub } from "./index.js";
import { startGitHubServer, type GitHubServer } from "./testing/index.js";

const ORIGINAL = "export function add(a: number, b: number): number {\n  return a + b;\n}\n";
const EDITED = `${ORIGINAL}\nexport function multiply(a: number, b: number): number {\n  return a * b;\n}\n`;
const NOTES = "# Notes\n\nmultiply() was added by the agent.\n";
const SUMMARY = "Added multiply next to add.";
const API_KEY = "scripted-model-key-e2e-github";
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * Every place on this machine where each needle shows up: process arguments and environments,
 * and files in temp folders made during the test (the sandbox's workspace and home among them).
 */
async function findOnHost(needles: string[], tempBefore: Set<string>): Promise<Map<string, string[]>> {
  const hits = new Map(needles.map((needle) => [needle, [] as string[]]));
  const check = (content: Buffer | undefined, where: string) => {
    if (content) for (const needle of needles) if (content.includes(needle)) hits.get(needle)!.push(where);
  };
  for (const pid of (await readdir("/proc")).filter((name) => /^\d+$/.test(name))) {
    for (const file of ["cmdline", "environ"]) check(await readFile(`/proc/${pid}/${file}`).catch(() => undefined), `/proc/${pid}/${file}`);
  }
  let scanned = 0;
  const walk = async (path: string): Promise<void> => {
    const stats = await lstat(path).catch(() => undefined);
    if (!stats || stats.isSymbolicLink() || scanned > 50_000) return;
    if (stats.isDirectory()) {
      for (const name of await readdir(path).catch(() => [] as string[])) await walk(join(path, name));
    } else if (stats.isFile() && stats.size < 32 * 1024 * 1024) {
      scanned += 1;
      check(await readFile(path).catch(() => undefined), path);
    }
  };
  for (const name of await readdir(tmpdir())) if (!tempBefore.has(name)) await walk(join(tmpdir(), name));
  return hits;
}

describe("runAgentTask with createGitHub on the local GitHub-compatible server: real OpenCode, scripted model, local sandbox", () => {
  let server: GitHubServer;
  let tempBefore: Set<string>;
  const hostCanary = `ghp_CANARY_host_${Date.now().toString(36)}_do_not_leak`;
  const taskCanary = `ghp_CANARY_task_${Date.now().toString(36)}_do_not_leak`;
  let readOnly: string;

  beforeAll(async () => {
    tempBefore = new Set(await readdir(tmpdir()));
    server = await startGitHubServer();
    await server.createRepository({ owner: "octo", name: "calculator", files: { "src/math.ts": ORIGINAL, "README.md": "# calculator\n" } });
    server.grantToken({ login: "agent-bot", permission: "push", token: hostCanary });
    server.grantToken({ login: "requester", permission: "push", token: taskCanary });
    readOnly = server.grantToken({ login: "reader", permission: "pull" });
  });

  afterAll(async () => {
    await server?.close();
  });

  it("opens a pull request with the scripted change, updates it on a second run, and never lets a token out", async () => {
    const leaks: string[] = [];
    const controls = { apiKeyInProcesses: 0, workspaceFiles: 0 };
    const scan = async (canary: string) => {
      const hits = await findOnHost([canary, API_KEY, "export function add(a: number"], tempBefore);
      leaks.push(...hits.get(canary)!);
      // Controls that prove the scan sees what it should: the model key is meant to be in the agent's environment (the runs
      // turn modelProxy off for that: by default the key stays on the host), the repository's text in the workspace.
      controls.apiKeyInProcesses += hits.get(API_KEY)!.filter((where) => where.startsWith("/proc/")).length;
      controls.workspaceFiles += hits.get("export function add(a: number")!.filter((where) => !where.startsWith("/proc/")).length;
    };
    const script = (canary: string, file: string, content: string): ScriptedTurn[] => [
      // While the agent runs: look at the sandbox from inside (its environment and every process's arguments)...
      async () => {
        await scan(canary);
        return { toolCalls: [{ name: "bash", arguments: { command: "env; ps -eo args; cat .git/config", description: "Inspect the environment" } }] };
      },
      // ...and from the host (every process and every new temp file), then make the change.
      async (request) => {
        await scan(canary);
        return { toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/${file}`, content } }] };
      },
      { text: SUMMARY },
    ];

    // First run: the host's own token.
    await using model = await startScriptedModelServer({ script: script(hostCanary, "src/math.ts", EDITED), apiKey: API_KEY });
    const events: AgentTaskEvent[] = [];
    const gitHub = createGitHub({ token: hostCanary, baseUrl: server.apiUrl, gitUrl: server.gitUrl, webUrl: "https://github.com" });
    const issue = server.createIssue("octo/calculator", { title: "multiply is missing", user: "requester" });
    const result = await runAgentTask({
      repo: "https://github.com/octo/calculator.git",
      task: "Add a multiply function to src/math.ts",
      model: { provider: "openai-compatible", model: "scripted", baseURL: model.url, apiKey: API_KEY },
      modelProxy: false,
      sandbox: createLocalSandbox(),
      gitHost: gitHub,
      pullRequest: { draft: true, labels: ["agent", "e2e"], closesIssue: issue },
      onEvent: (event) => events.push(event),
    });

    expect(result.status).toBe("completed");
    expect(result.pullRequest).toMatchObject({ created: true, head: result.branch, base: "main", draft: true });
    const octokit = new Octokit({ baseUrl: server.apiUrl, auth: readOnly, log: quiet });
    const { data: pull } = await octokit.rest.pulls.get({ owner: "octo", repo: "calculator", pull_number: result.pullRequest!.number });
    expect(pull).toMatchObject({ state: "open", draft: true, title: "Add a multiply function to src/math.ts", head: { ref: result.branch }, base: { ref: "main" }, user: { login: "agent-bot" }, commits: 1, changed_files: 1, additions: 4, deletions: 0 });
    expect(pull.html_url).toBe(result.pullRequest!.url);
    expect(pull.labels.map((label) => label.name)).toEqual(["agent", "e2e"]);
    expect(pull.body).toContain(SUMMARY);
    expect(pull.body).toContain(`Closes #${issue}`);
    expect(pull.body).toContain("`src/math.ts` (modified, +4 −0)");

    // The branch holds exactly the scripted change on top of main.
    expect(await server.readFile("octo/calculator", result.branch!, "src/math.ts")).toBe(EDITED);
    expect(await server.listFiles("octo/calculator", result.branch!)).toEqual(await server.listFiles("octo/calculator", "main"));
    expect(await server.readFile("octo/calculator", result.branch!, "README.md")).toBe("# calculator\n");
    expect(result.commit).toBe(await server.branchSha("octo/calculator", result.branch!));

    // The token reached git only as Basic auth on the host's own requests.
    const pushes = server.requests.filter((record) => record.kind === "git" && record.path.endsWith("/git-receive-pack"));
    expect(pushes.map((record) => [record.authorization, record.login, record.status])).toContainEqual(["basic", "agent-bot", 200]);

    // Second run on the same branch, with a per-task token and a host whose own token cannot push.
    await using secondModel = await startScriptedModelServer({ script: script(taskCanary, "NOTES.md", NOTES), apiKey: API_KEY });
    const secondEvents: AgentTaskEvent[] = [];
    const second = await runAgentTask({
      repo: "https://github.com/octo/calculator",
      task: "Add a multiply function to src/math.ts",
      branch: result.branch!,
      gitToken: taskCanary,
      model: { provider: "openai-compatible", model: "scripted", baseURL: secondModel.url, apiKey: API_KEY },
      modelProxy: false,
      sandbox: createLocalSandbox(),
      gitHost: createGitHub({ token: readOnly, baseUrl: server.apiUrl, gitUrl: server.gitUrl, webUrl: "https://github.com" }),
      pullRequest: { title: "Add multiply, with notes", draft: true, labels: ["agent"] },
      onEvent: (event) => secondEvents.push(event),
    });
    expect(second.status).toBe("completed");
    expect(second.branch).toBe(result.branch);
    expect(second.pullRequest).toMatchObject({ number: result.pullRequest!.number, created: false, title: "Add multiply, with notes" });
    expect(server.pullRequests("octo/calculator")).toHaveLength(1);
    const { data: updated } = await octokit.rest.pulls.get({ owner: "octo", repo: "calculator", pull_number: result.pullRequest!.number });
    expect(updated).toMatchObject({ title: "Add multiply, with notes", commits: 2, changed_files: 2 });
    expect(await server.readFile("octo/calculator", result.branch!, "NOTES.md")).toBe(NOTES);
    expect(await server.readFile("octo/calculator", result.branch!, "src/math.ts")).toBe(EDITED);
    expect(server.requests.filter((record) => record.kind === "git" && record.path.endsWith("/git-receive-pack")).map((record) => record.login)).toContain("requester");

    // No token anywhere: the sandbox saw its environment and processes (the tool output went to the model), the host was scanned during both runs.
    const insideSandbox = [...model.requests, ...secondModel.requests].map((request) => JSON.stringify(request.body)).join("\n");
    const toolOutputs = [...model.requests, ...secondModel.requests]
      .flatMap((request) => (request.body as { messages?: Array<{ role: string; content: unknown }> } | undefined)?.messages ?? [])
      .filter((message) => message.role === "tool")
      .map((message) => JSON.stringify(message.content))
      .join("\n");
    // The inspection really ran inside the sandbox: its environment, its process list (header COMMAND) and the clone's git config.
    expect(toolOutputs).toContain("RUNNING_AGENT_SESSION=");
    expect(toolOutputs).toContain("COMMAND");
    expect(toolOutputs).toContain("[core]");
    for (const canary of [hostCanary, taskCanary]) {
      expect(insideSandbox).not.toContain(canary);
      expect(JSON.stringify([events, secondEvents, result, second])).not.toContain(canary);
      expect(JSON.stringify(server.requests)).not.toContain(canary);
      expect(JSON.stringify(server.pullRequests("octo/calculator"))).not.toContain(canary);
    }
    expect(leaks).toEqual([]);
    expect(controls.apiKeyInProcesses).toBeGreaterThan(0);
    expect(controls.workspaceFiles).toBeGreaterThan(0);
  });

  it("pushes to a fresh branch, never over someone's work, when the branch moved while the agent worked", async () => {
    await server.createRepository({ owner: "octo", name: "raced", files: { "src/math.ts": ORIGINAL } });
    const token = server.grantToken({ login: "racer-bot", repositories: ["octo/raced"] });
    const branch = "agent/multiply";
    let theirs = "";
    await using model = await startScriptedModelServer({
      script: [
        async (request) => {
          // Someone else pushes the same branch name while the agent is busy.
          theirs = await server.commit("octo/raced", { branch, files: { "THEIRS.md": "their work\n" }, message: "Their work" });
          return { toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/src/math.ts`, content: EDITED } }] };
        },
        { text: SUMMARY },
      ],
    });
    const events: AgentTaskEvent[] = [];
    const result = await runAgentTask({
      repo: "https://github.com/octo/raced.git",
      task: "Add a multiply function to src/math.ts",
      branch,
      model: { provider: "openai-compatible", model: "scripted", baseURL: model.url, apiKey: "test-key" },
      sandbox: createLocalSandbox(),
      gitHost: createGitHub({ token, baseUrl: server.apiUrl, gitUrl: server.gitUrl, webUrl: "https://github.com" }),
      onEvent: (event) => events.push(event),
    });
    expect(result.branch).not.toBe(branch);
    expect(result.branch!.startsWith(`${branch}-`)).toBe(true);
    // Their commit is untouched; ours is on the fresh branch, with the pull request from it.
    expect(await server.branchSha("octo/raced", branch)).toBe(theirs);
    expect(await server.readFile("octo/raced", result.branch!, "src/math.ts")).toBe(EDITED);
    expect(await server.readFile("octo/raced", result.branch!, "THEIRS.md")).toBeUndefined();
    expect(server.pullRequests("octo/raced")).toMatchObject([{ head: result.branch, base: "main" }]);
    expect(events.some((event) => event.type === "warning" && event.code === "PUSH_REJECTED")).toBe(true);
  });

  it("takes the repository as git@github.com:owner/repo.git (as the README says), cloning and pushing over https with the token", async () => {
    await server.createRepository({ owner: "octo", name: "scp-form", files: { "src/math.ts": ORIGINAL } });
    const token = server.grantToken({ login: "scp-bot", repositories: ["octo/scp-form"] });
    await using model = await startScriptedModelServer({
      script: [
        (request) => ({ toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/src/math.ts`, content: EDITED } }] }),
        { text: SUMMARY },
      ],
    });
    const result = await runAgentTask({
      repo: "git@github.com:octo/scp-form.git",
      task: "Add a multiply function to src/math.ts",
      model: { provider: "openai-compatible", model: "scripted", baseURL: model.url, apiKey: "test-key" },
      sandbox: createLocalSandbox(),
      gitHost: createGitHub({ token, baseUrl: server.apiUrl, gitUrl: server.gitUrl, webUrl: "https://github.com" }),
    });
    expect(result).toMatchObject({ status: "completed", repository: { id: "octo/scp-form" } });
    expect(await server.readFile("octo/scp-form", result.branch!, "src/math.ts")).toBe(EDITED);
    expect(server.pullRequests("octo/scp-form")).toMatchObject([{ head: result.branch, base: "main" }]);
    const gitRequests = server.requests.filter((record) => record.kind === "git" && record.path.startsWith("/octo/scp-form.git/"));
    expect(gitRequests.some((record) => record.path.endsWith("/git-receive-pack") && record.login === "scp-bot")).toBe(true);
  });

  it("fails the clone with GIT_REMOTE_STALLED when the git server accepts and never answers, and leaves no folder behind", { timeout: 90_000 }, async () => {
    await server.createRepository({ owner: "octo", name: "silent", files: { "README.md": "# silent\n" } });
    const token = server.grantToken({ login: "silent-bot", repositories: ["octo/silent"] });
    // The REST API answers; git goes to a server that takes the connection and says nothing.
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => {
      sockets.add(socket);
      socket.on("error", () => {});
    });
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const gitUrl = `http://127.0.0.1:${(silent.address() as { port: number }).port}`;
    const ownTemp = await mkdtemp(join(tmpdir(), "running-agent-stall-tmp-"));
    const savedTemp = process.env.TMPDIR;
    process.env.TMPDIR = ownTemp;
    try {
      const events: AgentTaskEvent[] = [];
      const error = (await runAgentTask({
        repo: "https://github.com/octo/silent.git",
        task: "Anything",
        model: { provider: "openai-compatible", model: "scripted", baseURL: "http://127.0.0.1:9/v1", apiKey: "test-key" },
        sandbox: createLocalSandbox(),
        gitHost: createGitHub({ token, baseUrl: server.apiUrl, gitUrl, webUrl: "https://github.com" }),
        gitStallTimeoutMs: 2000,
        onEvent: (event) => events.push(event),
      }).catch((caught: unknown) => caught)) as RunningAgentError;
      expect(error).toMatchObject({ code: "GIT_REMOTE_STALLED", phase: "clone", details: { remote: `${gitUrl}/octo/silent.git` } });
      expect(sockets.size).toBeGreaterThan(0);
      expect(events).toContainEqual(expect.objectContaining({ type: "phase", phase: "teardown", status: "completed" }));
      // The clone folder and the sandbox's folders are gone.
      expect(await readdir(ownTemp)).toEqual([]);
      expect(JSON.stringify([error, events])).not.toContain(token);
    } finally {
      // Assigning undefined would set the string "undefined".
      if (savedTemp === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = savedTemp;
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
      await rm(ownTemp, { recursive: true, force: true });
    }
  });

  it.each(["main", "refs/heads/main", "Main"])("refuses branch %j (the default branch) in validate: nothing is pushed, no pull request, no sandbox", async (branch) => {
    const fullName = `octo/guarded-${Buffer.from(branch).toString("hex")}`;
    await server.createRepository({ owner: "octo", name: fullName.split("/")[1]!, files: { "src/math.ts": ORIGINAL } });
    const token = server.grantToken({ login: "guard-bot", repositories: [fullName] });
    const before = await server.branchSha(fullName, "main");
    let sandboxes = 0;
    const error = await runAgentTask({
      repo: `https://github.com/${fullName}.git`,
      task: "Add a multiply function to src/math.ts",
      branch,
      model: { provider: "openai-compatible", model: "scripted", baseURL: "http://127.0.0.1:9/v1", apiKey: "test-key" },
      sandbox: {
        specificationVersion: "sandbox-v1",
        providerId: "counting",
        create: async () => {
          sandboxes++;
          throw new Error("no sandbox may be opened");
        },
      },
      gitHost: createGitHub({ token, baseUrl: server.apiUrl, gitUrl: server.gitUrl, webUrl: "https://github.com" }),
    }).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: "INVALID_BRANCH", phase: "validate" });
    expect(sandboxes).toBe(0);
    expect(await server.branchSha(fullName, "main")).toBe(before);
    expect(server.pullRequests(fullName)).toEqual([]);
    // This repository's only: the other tests of the file push to theirs.
    expect(server.requests.filter((request) => request.path.startsWith(`/${fullName}.git/`) && request.path.includes("git-receive-pack"))).toEqual([]);
  });
  it("records the run's checks as commit statuses on the pushed commit, read back through Octokit", async () => {
    await server.createRepository({ owner: "octo", name: "checked", files: { "src/math.ts": ORIGINAL } });
    const token = server.grantToken({ login: "checker-bot", repositories: ["octo/checked"] });
    await using model = await startScriptedModelServer({
      script: [(request) => ({ toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/src/math.ts`, content: EDITED } }] }), { text: SUMMARY }],
    });
    const result = await runAgentTask({
      repo: "https://github.com/octo/checked.git",
      task: "Add a multiply function to src/math.ts",
      model: { provider: "openai-compatible", model: "scripted", baseURL: model.url, apiKey: "test-key" },
      sandbox: createLocalSandbox(),
      gitHost: createGitHub({ token, baseUrl: server.apiUrl, gitUrl: server.gitUrl, webUrl: "https://github.com" }),
      checks: [
        { name: "has-multiply", command: "grep -q multiply src/math.ts" },
        { name: "no-todo", command: "! grep -rq TODO src" },
      ],
    });
    expect(result.verification?.passed).toBe(true);
    const octokit = new Octokit({ baseUrl: server.apiUrl, auth: readOnly, log: quiet });
    const { data: statuses } = await octokit.rest.repos.listCommitStatusesForRef({ owner: "octo", repo: "checked", ref: result.commit! });
    expect(statuses.map((status) => [status.context, status.state]).sort()).toEqual([
      ["running-agent/has-multiply", "success"],
      ["running-agent/no-todo", "success"],
    ]);
    expect(statuses[0]!.description).toMatch(/passed in \d+\.\d s$/);
  });
});
