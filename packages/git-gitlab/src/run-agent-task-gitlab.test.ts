import { Gitlab } from "@gitbeaker/rest";
import { createLocalSandbox, runAgentTask, type AgentTaskEvent } from "@running-agent/core";
import { startScriptedModelServer, type ScriptedTurn, workingDirectoryOf } from "@running-agent/core/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createGitLab } from "./index.js";
import { startGitLabServer, type GitLabServer } from "./testing/index.js";

const ORIGINAL = "export function add(a: number, b: number): number {\n  return a + b;\n}\n";
const EDITED = `${ORIGINAL}\nexport function multiply(a: number, b: number): number {\n  return a * b;\n}\n`;
const NOTES = "# Notes\n\nmultiply() was added by the agent.\n";
const SUMMARY = "Added multiply next to add.";
const PROJECT = "acme/platform/calculator";

describe("runAgentTask with createGitLab on the local GitLab-compatible server: real OpenCode, scripted model, local sandbox", () => {
  let server: GitLabServer;
  const hostCanary = `glpat-CANARY_host_${Date.now().toString(36)}`;
  const taskCanary = `glpat-CANARY_task_${Date.now().toString(36)}`;
  let reader: string;

  beforeAll(async () => {
    // A relative URL root, as self-managed instances at https://example.com/gitlab have.
    server = await startGitLabServer({ relativeUrlRoot: "/gitlab" });
    await server.createProject({ path: PROJECT, files: { "src/math.ts": ORIGINAL, "README.md": "# calculator\n" }, members: { "agent-bot": "developer", requester: "developer", reviewer: "developer", reporter: "reporter" } });
    server.createPersonalAccessToken("agent-bot", { token: hostCanary });
    server.createPersonalAccessToken("requester", { token: taskCanary });
    reader = server.createPersonalAccessToken("reporter", { scopes: ["read_api", "read_repository"] });
  });

  afterAll(async () => {
    await server?.close();
  });

  it("opens a merge request with the scripted change, updates the same one on a second run, and keeps the tokens out of the sandbox", async () => {
    const script = (file: string, content: string): ScriptedTurn[] => [
      { toolCalls: [{ name: "bash", arguments: { command: "env; cat .git/config", description: "Inspect the environment" } }] },
      (request) => ({ toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/${file}`, content } }] }),
      { text: SUMMARY },
    ];
    await using model = await startScriptedModelServer({ script: script("src/math.ts", EDITED) });
    const events: AgentTaskEvent[] = [];
    const result = await runAgentTask({
      repo: `${server.url}/${PROJECT}.git`,
      task: "Add a multiply function to src/math.ts",
      model: { provider: "openai-compatible", model: "scripted", baseURL: model.url, apiKey: "test-key" },
      sandbox: createLocalSandbox(),
      gitHost: createGitLab({ token: hostCanary, baseUrl: server.url }),
      pullRequest: { draft: true, labels: ["agent", "e2e"], closesIssue: 7, reviewers: ["reviewer"], assignees: ["requester"] },
      onEvent: (event) => events.push(event),
    });
    expect(result.status).toBe("completed");
    expect(result.pullRequest).toMatchObject({ created: true, head: result.branch, base: "main", draft: true, title: "Add a multiply function to src/math.ts" });

    // Read back through @gitbeaker/rest as it ships, with a reporter's read-only token.
    const gitlab = new Gitlab({ host: server.url, token: reader });
    const mergeRequest = await gitlab.MergeRequests.show(PROJECT, result.pullRequest!.number);
    expect(mergeRequest).toMatchObject({ state: "opened", draft: true, title: "Draft: Add a multiply function to src/math.ts", source_branch: result.branch, target_branch: "main", author: { username: "agent-bot" }, labels: ["agent", "e2e"] });
    expect(mergeRequest.web_url).toBe(result.pullRequest!.url);
    expect(mergeRequest.web_url).toBe(`${server.url}/${PROJECT}/-/merge_requests/${result.pullRequest!.number}`);
    expect(mergeRequest.reviewers?.map((user) => user.username)).toEqual(["reviewer"]);
    expect(mergeRequest.assignees?.map((user) => user.username)).toEqual(["requester"]);
    expect(mergeRequest.description).toContain(SUMMARY);
    expect(mergeRequest.description).toContain("Closes #7");
    expect(await server.readFile(PROJECT, result.branch!, "src/math.ts")).toBe(EDITED);
    expect(result.commit).toBe(await server.branchSha(PROJECT, result.branch!));
    const pushes = server.requests.filter((record) => record.kind === "git" && record.path.endsWith("/git-receive-pack"));
    expect(pushes.map((record) => [record.authorization, record.username, record.status])).toContainEqual(["basic", "agent-bot", 200]);

    // Second run on the same branch, with a per-task token and a host whose own token cannot push.
    await using secondModel = await startScriptedModelServer({ script: script("NOTES.md", NOTES) });
    const secondEvents: AgentTaskEvent[] = [];
    const second = await runAgentTask({
      repo: `${server.url}/${PROJECT}`,
      task: "Add a multiply function to src/math.ts",
      branch: result.branch!,
      gitToken: taskCanary,
      model: { provider: "openai-compatible", model: "scripted", baseURL: secondModel.url, apiKey: "test-key" },
      sandbox: createLocalSandbox(),
      gitHost: createGitLab({ token: reader, baseUrl: server.url }),
      pullRequest: { title: "Add multiply, with notes", draft: false, labels: ["agent"] },
      onEvent: (event) => secondEvents.push(event),
    });
    expect(second.status).toBe("completed");
    expect(second.pullRequest).toMatchObject({ number: result.pullRequest!.number, created: false, title: "Add multiply, with notes", draft: false });
    expect(server.mergeRequests(PROJECT)).toHaveLength(1);
    const updated = await gitlab.MergeRequests.show(PROJECT, result.pullRequest!.number);
    expect(updated).toMatchObject({ title: "Add multiply, with notes", draft: false, labels: ["agent", "e2e"] });
    // The earlier reviewers and assignees stay: GitLab replaces these lists on an edit, the adapter only adds.
    expect(updated.reviewers?.map((user) => user.username)).toEqual(["reviewer"]);
    expect(await server.readFile(PROJECT, result.branch!, "NOTES.md")).toBe(NOTES);
    expect(await server.readFile(PROJECT, result.branch!, "src/math.ts")).toBe(EDITED);
    expect(server.requests.filter((record) => record.kind === "git" && record.path.endsWith("/git-receive-pack")).map((record) => record.username)).toContain("requester");

    // The sandbox's environment and git config went to the model; no token was in them, nor in events or results.
    const toolOutputs = [...model.requests, ...secondModel.requests]
      .flatMap((request) => (request.body as { messages?: Array<{ role: string; content: unknown }> } | undefined)?.messages ?? [])
      .filter((message) => message.role === "tool")
      .map((message) => JSON.stringify(message.content))
      .join("\n");
    expect(toolOutputs).toContain("[core]");
    const everything = JSON.stringify([model.requests, secondModel.requests, events, secondEvents, result, second, server.requests]);
    for (const canary of [hostCanary, taskCanary]) expect(everything).not.toContain(canary);
  });

  it("records the run's checks as commit statuses on the pushed commit, read back through @gitbeaker/rest", async () => {
    await server.createProject({ path: "acme/checked", files: { "src/math.ts": ORIGINAL }, members: { "checker-bot": "developer", reporter: "reporter" } });
    const token = server.createPersonalAccessToken("checker-bot");
    await using model = await startScriptedModelServer({
      script: [(request) => ({ toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/src/math.ts`, content: EDITED } }] }), { text: SUMMARY }],
    });
    const result = await runAgentTask({
      repo: `${server.url}/acme/checked.git`,
      task: "Add a multiply function to src/math.ts",
      model: { provider: "openai-compatible", model: "scripted", baseURL: model.url, apiKey: "test-key" },
      sandbox: createLocalSandbox(),
      gitHost: createGitLab({ token, baseUrl: server.url }),
      checks: [
        { name: "has-multiply", command: "grep -q multiply src/math.ts" },
        { name: "no-todo", command: "! grep -rq TODO src" },
      ],
    });
    expect(result.verification?.passed).toBe(true);
    const statuses = await new Gitlab({ host: server.url, token: reader }).Commits.allStatuses("acme/checked", result.commit!);
    expect(statuses.map((status) => [status.name, status.status, status.ref]).sort()).toEqual([
      ["running-agent/has-multiply", "success", result.branch],
      ["running-agent/no-todo", "success", result.branch],
    ]);
    expect(statuses[0]!.description).toMatch(/passed in \d+\.\d s$/);
    expect(statuses[0]!.target_url).toBe(result.pullRequest!.url);
  });
});
