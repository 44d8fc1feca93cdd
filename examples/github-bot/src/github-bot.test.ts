import { randomUUID } from "node:crypto";
import { mkdtemp, readdir, readFile, readlink, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Octokit } from "@octokit/rest";
import { sign } from "@octokit/webhooks-methods";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createLocalSandbox } from "@running-agent/core";
import { startScriptedModelServer, type RecordedModelRequest, type ScriptedModelServer, type ScriptedTurn, workingDirectoryOf } from "@running-agent/core/testing";
import { startGitHubServer, type GitHubServer } from "@running-agent/git-github/testing";
import { createGitHubBot, type GitHubBot } from "./github-bot.js";

const SECRET = "webhook-secret-for-tests";
const MODEL_KEY = "scripted-model-key";
const REPO = "octo/app";
const NOTES = "# Notes\n\nWritten by the agent.\n";

async function waitFor(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return check();
}

/** Processes whose command line or working directory is inside a folder (a sandbox's all are). */
async function processesUsing(folder: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const commandLine = await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
    const workingDirectory = await readlink(`/proc/${entry}/cwd`).catch(() => "");
    if (commandLine.includes(folder) || workingDirectory.startsWith(folder)) found.push(`${entry}: ${commandLine.replaceAll("\0", " ")}`);
  }
  return found;
}

describe("the GitHub bot", () => {
  let github: GitHubServer;
  let model: ScriptedModelServer;
  let bot: GitHubBot;
  let server: Server;
  let webhookUrl: string;
  let cloneUrl: string;
  let botLogin: string;
  let script: ScriptedTurn[];
  let sandboxFolder: string;

  /** Every sandbox the bot opened is gone: no folder, no process. */
  async function expectSandboxesGone(): Promise<void> {
    expect(await processesUsing(sandboxFolder)).toEqual([]);
    expect(await readdir(sandboxFolder)).toEqual([]);
  }

  beforeEach(async () => {
    sandboxFolder = await mkdtemp(join(tmpdir(), "running-agent-bot-test-"));
    github = await startGitHubServer();
    const repository = await github.createRepository({ owner: "octo", name: "app", files: { "README.md": "# app\n" } });
    cloneUrl = repository.cloneUrl;
    botLogin = "agent-bot";
    const token = github.grantToken({ login: botLogin, permission: "push", repositories: [REPO] });
    script = [];
    // The script is read when each request arrives, so a test can set it after the server starts.
    model = await startScriptedModelServer({ apiKey: MODEL_KEY, script: Array.from({ length: 4 }, (_, index) => (request: RecordedModelRequest) => {
      const turn = script[index] ?? { text: "Done." };
      return typeof turn === "function" ? turn(request) : turn;
    }) });
    bot = createGitHubBot({
      webhookSecret: SECRET,
      github: { token, baseUrl: github.apiUrl },
      sandbox: createLocalSandbox({ tempDirectory: sandboxFolder }),
      model: { provider: "openai-compatible", model: "scripted-model", baseURL: model.url, apiKey: MODEL_KEY },
      commentIntervalMs: 100,
      maxConcurrentTasks: 1,
      onError: () => {},
    });
    server = createServer((request, response) => bot.handleRequest(request, response));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    webhookUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks`;
  });

  afterEach(async () => {
    await bot.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await model.close();
    await github.close();
    await rm(sandboxFolder, { recursive: true, force: true });
  });

  async function deliver(event: string, payload: unknown, signature?: string, deliveryId: string = randomUUID()): Promise<{ status: number; body: { result?: string; error?: string } }> {
    const body = JSON.stringify(payload);
    const response = await fetch(webhookUrl, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-github-event": event,
        "x-github-delivery": deliveryId,
        "x-hub-signature-256": signature ?? (await sign(SECRET, body)),
      },
      body,
    });
    return { status: response.status, body: (await response.json()) as { result?: string; error?: string } };
  }

  const repositoryPayload = () => ({ id: 1, name: "app", full_name: REPO, private: true, owner: { login: "octo", type: "User" }, clone_url: cloneUrl, html_url: cloneUrl.replace(/\.git$/, "") });
  const issuePayload = (number: number, title: string) => ({ number, title, body: "Add NOTES.md with a heading.", state: "open", user: { login: "octocat", type: "User" }, labels: [] });

  it("runs a task when an issue gets the label: one progress comment, kept up to date, then a PR that closes the issue", async () => {
    const issueNumber = github.createIssue(REPO, { title: "Add a notes file", body: "Add NOTES.md with a heading.", user: "octocat" });
    let commentShowedAgentRunning = false;
    script = [
      async (request) => {
        // While the agent works, the issue's comment must already say so.
        commentShowedAgentRunning = await waitFor(() => github.comments(REPO, issueNumber).some((comment) => comment.body.includes("⏳ **agent**")), 20_000);
        return { toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/NOTES.md`, content: NOTES } }] };
      },
      { text: "Added NOTES.md." },
    ];

    const delivery = await deliver("issues", {
      action: "labeled",
      issue: issuePayload(issueNumber, "Add a notes file"),
      label: { id: 1, name: "agent", color: "ededed" },
      repository: repositoryPayload(),
      sender: { login: "octocat", type: "User" },
    });
    expect(delivery.status).toBe(202);
    expect(delivery.body.result).toBe(`started a task on ${REPO}#${issueNumber}`);
    await bot.idle();

    expect(commentShowedAgentRunning).toBe(true);
    const pullRequests = github.pullRequests(REPO);
    expect(pullRequests).toHaveLength(1);
    const pullRequest = pullRequests[0]!;
    expect(pullRequest.body).toContain(`Closes #${issueNumber}`);
    expect(pullRequest.base).toBe("main");
    expect(await github.readFile(REPO, pullRequest.head, "NOTES.md")).toBe(NOTES);

    const comments = github.comments(REPO, issueNumber);
    expect(comments).toHaveLength(1);
    const comment = comments[0]!;
    expect(comment.user).toBe(botLogin);
    expect(comment.body.split("\n")[0]).toBe("🤖 **Running Agent** finished (asked by @octocat).");
    expect(comment.body.trimEnd().split("\n").at(-1)).toMatch(new RegExp(`^Pull request #${pullRequest.number}: http://127\\.0\\.0\\.1:\\d+/octo/app/pull/${pullRequest.number}$`));
    const edits = github.requests.filter((request) => request.method === "PATCH" && request.route === "/repos/{owner}/{repo}/issues/comments/{comment_id}" && request.status === 200);
    expect(edits.length).toBeGreaterThanOrEqual(2);
    expect(bot.activeTasks()).toEqual([]);
    await expectSandboxesGone();
  });

  it("stores the task as a job keyed by its delivery and drops a redelivery of it: one task, one comment, one pull request", async () => {
    const issueNumber = github.createIssue(REPO, { title: "Add a notes file", body: "Add NOTES.md with a heading.", user: "octocat" });
    script = [(request) => ({ toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/NOTES.md`, content: NOTES } }] }), { text: "Added NOTES.md." }];
    const payload = { action: "labeled", issue: issuePayload(issueNumber, "Add a notes file"), label: { id: 1, name: "agent", color: "ededed" }, repository: repositoryPayload(), sender: { login: "octocat", type: "User" } };
    const deliveryId = randomUUID();
    expect((await deliver("issues", payload, undefined, deliveryId)).body.result).toBe(`started a task on ${REPO}#${issueNumber}`);
    // GitHub redelivers (a timeout on its side, or "Redeliver" in the webhook's log): same delivery id, same body.
    expect((await deliver("issues", payload, undefined, deliveryId)).body.result).toBe(`ignored: delivery ${deliveryId} was received before`);
    await bot.idle();
    expect((await deliver("issues", payload, undefined, deliveryId)).body.result).toBe(`ignored: delivery ${deliveryId} was received before`);
    await bot.idle();
    expect(model.chatRequests).toHaveLength(2);
    expect(github.pullRequests(REPO)).toHaveLength(1);
    expect(github.comments(REPO, issueNumber)).toHaveLength(1);
    // A new delivery (another id) is a new request: it runs.
    expect((await deliver("issues", payload)).body.result).toBe(`started a task on ${REPO}#${issueNumber}`);
    await bot.idle();
    expect(github.comments(REPO, issueNumber)).toHaveLength(2);
  });

  it("runs `/agent <task>` from a collaborator's comment, after the running task when no slot is free, and reports no changes", async () => {
    const labeledIssue = github.createIssue(REPO, { title: "Check the licence", user: "octocat" });
    const commentedIssue = github.createIssue(REPO, { title: "Check the README", user: "octocat" });
    let secondWasQueued = false;
    script = [
      async () => {
        // The first task holds the only slot: the second one's comment must say it waits.
        secondWasQueued = await waitFor(() => github.comments(REPO, commentedIssue).some((comment) => comment.body.includes("will start on this when a slot is free")), 20_000);
        return { text: "The licence is fine." };
      },
      { text: "The README is fine; nothing to change." },
    ];
    const first = await deliver("issues", {
      action: "labeled",
      issue: issuePayload(labeledIssue, "Check the licence"),
      label: { id: 1, name: "agent", color: "ededed" },
      repository: repositoryPayload(),
      sender: { login: "octocat", type: "User" },
    });
    expect(first.body.result).toBe(`started a task on ${REPO}#${labeledIssue}`);
    const second = await deliver("issue_comment", {
      action: "created",
      issue: issuePayload(commentedIssue, "Check the README"),
      comment: { id: 99, body: "/agent check the README for typos", user: { login: "octocat", type: "User" }, author_association: "COLLABORATOR" },
      repository: repositoryPayload(),
      sender: { login: "octocat", type: "User" },
    });
    expect(second).toEqual({ status: 202, body: { result: `started a task on ${REPO}#${commentedIssue}` } });
    const again = await deliver("issue_comment", {
      action: "created",
      issue: issuePayload(commentedIssue, "Check the README"),
      comment: { id: 100, body: "/agent check it twice", user: { login: "octocat", type: "User" }, author_association: "COLLABORATOR" },
      repository: repositoryPayload(),
      sender: { login: "octocat", type: "User" },
    });
    expect(again.body.result).toBe(`ignored: a task is already running on ${REPO}#${commentedIssue}`);
    await bot.idle();

    expect(secondWasQueued).toBe(true);
    expect(model.chatRequests).toHaveLength(2);
    expect(JSON.stringify(model.chatRequests[1]?.body)).toContain("check the README for typos");
    expect(github.pullRequests(REPO)).toHaveLength(0);
    for (const issueNumber of [labeledIssue, commentedIssue]) {
      const comments = github.comments(REPO, issueNumber);
      expect(comments).toHaveLength(1);
      expect(comments[0]!.body).toMatch(/finished without changes[\s\S]*there is no pull request\.$/);
    }
    await expectSandboxesGone();
  });

  /** A pull request opened by octocat from a branch pushed to the repository itself, as a person would. */
  async function openPullRequest(branch: string, title: string, body: string) {
    const octocat = new Octokit({ baseUrl: github.apiUrl, auth: github.grantToken({ login: "octocat", permission: "push", repositories: [REPO] }) });
    const headBefore = await github.commit(REPO, { branch, files: { "NOTES.md": "# Notes\n\nA first draft.\n" }, message: "Start the notes" });
    const { data } = await octocat.rest.pulls.create({ owner: "octo", repo: "app", head: branch, base: "main", title, body });
    return { number: data.number, headBefore, octocat };
  }
  const commentOnPullRequest = (number: number, title: string, body: string, id: number) => ({
    action: "created",
    issue: { ...issuePayload(number, title), pull_request: { url: `${github.apiUrl}/repos/${REPO}/pulls/${number}` } },
    comment: { id, body, user: { login: "octocat", type: "User" }, author_association: "MEMBER" },
    repository: repositoryPayload(),
    sender: { login: "octocat", type: "User" },
  });

  it("follows up `/agent <task>` on a pull request: one more commit on its branch, the same pull request as it was, the outcome in the comment", async () => {
    const title = "Start a notes file";
    const body = "Notes for the team.";
    const { number, headBefore, octocat } = await openPullRequest("notes", title, body);
    script = [
      (request) => ({ toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/NOTES.md`, content: NOTES } }] }),
      { text: "Rewrote NOTES.md." },
    ];

    const delivery = await deliver("issue_comment", commentOnPullRequest(number, title, "/agent say who wrote the notes", 200));
    expect(delivery).toEqual({ status: 202, body: { result: `started a task on ${REPO}#${number}` } });
    await bot.idle();

    // The agent saw the pull request as context, and its change is one commit on top of the branch (a fast-forward).
    const prompt = JSON.stringify(model.chatRequests[0]?.body);
    expect(prompt).toContain("say who wrote the notes");
    expect(prompt).toContain(`This is a follow-up on pull request #${number} (branch notes into main)`);
    expect(prompt).toContain(body);
    const { data: branch } = await octocat.rest.repos.getBranch({ owner: "octo", repo: "app", branch: "notes" });
    expect(branch.commit.parents.map((parent) => parent.sha)).toEqual([headBefore]);
    expect(branch.commit.commit.message.split("\n")[0]).toBe("say who wrote the notes");
    expect(await github.readFile(REPO, "notes", "NOTES.md")).toBe(NOTES);
    expect(await github.readFile(REPO, "main", "NOTES.md")).toBeUndefined();

    // Still one pull request, with its title and body untouched.
    expect(github.pullRequests(REPO)).toEqual([expect.objectContaining({ number, title, body, state: "open", head: "notes", base: "main", draft: false })]);
    expect(github.requests.filter((request) => request.method === "POST" && request.route === "/repos/{owner}/{repo}/pulls")).toHaveLength(1);
    expect(github.requests.filter((request) => request.method === "PATCH" && request.route === "/repos/{owner}/{repo}/pulls/{pull_number}")).toEqual([]);

    const comments = github.comments(REPO, number);
    expect(comments).toHaveLength(1);
    expect(comments[0]!.user).toBe(botLogin);
    expect(comments[0]!.body.split("\n")[0]).toBe("🤖 **Running Agent** finished (asked by @octocat).");
    expect(comments[0]!.body.trimEnd().split("\n").at(-1)).toMatch(
      new RegExp(`^Pushed \`${branch.commit.sha.slice(0, 12)}\` to \`notes\`, updating pull request #${number}: http://127\\.0\\.0\\.1:\\d+/octo/app/pull/${number}$`),
    );
    await expectSandboxesGone();
  });

  it("refuses a bare /agent and a closed pull request with a reply, says when the pull request cannot be read, and runs nothing", async () => {
    const { number, headBefore, octocat } = await openPullRequest("draft-notes", "Draft notes", "");
    const bare = await deliver("issue_comment", commentOnPullRequest(number, "Draft notes", "/agent", 300));
    expect(bare).toEqual({ status: 202, body: { result: "refused: /agent on a pull request needs a task" } });
    await octocat.rest.pulls.update({ owner: "octo", repo: "app", pull_number: number, state: "closed" });
    const closed = await deliver("issue_comment", commentOnPullRequest(number, "Draft notes", "/agent finish the notes", 301));
    expect(closed).toEqual({ status: 202, body: { result: `refused: pull request #${number} is closed` } });
    github.injectFailure({ method: "GET", path: "/repos/{owner}/{repo}/pulls/{pull_number}", status: 503 });
    const unreadable = await deliver("issue_comment", commentOnPullRequest(number, "Draft notes", "/agent finish the notes", 302));
    expect(unreadable.body.result).toMatch(new RegExp(`^failed: could not read pull request ${REPO}#${number}: `));
    await bot.idle();

    expect(github.comments(REPO, number).map((comment) => [comment.user, comment.body])).toEqual([
      [botLogin, expect.stringMatching(/^🤖 \*\*Running Agent\*\* did not start \(asked by @octocat\)\. On a pull request, say what to change: `\/agent <task>`/)],
      [botLogin, "🤖 **Running Agent** did not start (asked by @octocat). This pull request is closed. Reopen it to let the agent work on it."],
    ]);
    expect(model.requests).toHaveLength(0);
    expect(await github.branchSha(REPO, "draft-notes")).toBe(headBefore);
    expect(bot.activeTasks()).toEqual([]);
  });

  it("ignores a comment without /agent or a mention of the bot: no comment, no task, no model call", async () => {
    const issueNumber = github.createIssue(REPO, { title: "A question", user: "octocat" });
    const delivery = await deliver("issue_comment", {
      action: "created",
      issue: issuePayload(issueNumber, "A question"),
      comment: { id: 100, body: "Could the agent look at this?", user: { login: "octocat", type: "User" }, author_association: "OWNER" },
      repository: repositoryPayload(),
      sender: { login: "octocat", type: "User" },
    });
    expect(delivery).toEqual({ status: 202, body: { result: "ignored: the comment does not start with /agent or mention @agent-bot" } });
    await bot.idle();
    expect(bot.activeTasks()).toEqual([]);
    expect(github.comments(REPO, issueNumber)).toHaveLength(0);
    expect(model.requests).toHaveLength(0);
  });

  it("rejects a delivery whose signature does not match with 401 and runs nothing", async () => {
    const issueNumber = github.createIssue(REPO, { title: "Add a notes file", user: "octocat" });
    const payload = {
      action: "labeled",
      issue: issuePayload(issueNumber, "Add a notes file"),
      label: { id: 1, name: "agent", color: "ededed" },
      repository: repositoryPayload(),
      sender: { login: "mallory", type: "User" },
    };
    const forged = await deliver("issues", payload, await sign("not-the-secret", JSON.stringify(payload)));
    expect(forged.status).toBe(401);
    expect(forged.body.error).toMatch(/signature/i);
    const unsigned = await fetch(webhookUrl, {
      method: "POST",
      headers: { "content-type": "application/json", "x-github-event": "issues", "x-github-delivery": randomUUID() },
      body: JSON.stringify(payload),
    });
    expect(unsigned.status).toBe(401);
    await bot.idle();
    expect(bot.activeTasks()).toEqual([]);
    expect(github.comments(REPO, issueNumber)).toHaveLength(0);
    expect(github.pullRequests(REPO)).toHaveLength(0);
    expect(model.requests).toHaveLength(0);
  });

  it("answers malformed deliveries with the right 4xx and a JSON error, and starts nothing", async () => {
    const post = async (body: string, headers: Record<string, string>, url = webhookUrl, method = "POST") => {
      const response = await fetch(url, { method, headers, ...(method === "POST" ? { body } : {}) });
      return { status: response.status, body: (await response.json()) as { error?: string; result?: string } };
    };
    const signed = async (body: string, event = "issues") => ({
      "content-type": "application/json",
      "x-github-event": event,
      "x-github-delivery": randomUUID(),
      "x-hub-signature-256": await sign(SECRET, body),
    });
    const notJson = "{not json";
    expect(await post(notJson, await signed(notJson))).toEqual({ status: 400, body: { error: "The payload is not valid JSON." } });
    const valid = JSON.stringify({ zen: "Keep it logically awesome." });
    expect((await post(valid, { ...(await signed(valid)), "content-type": "application/x-www-form-urlencoded" })).status).toBe(415);
    const withoutEvent: Record<string, string> = await signed(valid);
    delete withoutEvent["x-github-event"];
    expect((await post(valid, withoutEvent)).status).toBe(400);
    expect((await post(valid, await signed(valid), webhookUrl.replace("/webhooks", "/other"))).status).toBe(404);
    expect((await post("", {}, webhookUrl, "GET")).status).toBe(405);
    expect(await post(valid, await signed(valid, "ping"))).toEqual({ status: 200, body: { result: "pong" } });
    await bot.idle();
    expect(bot.activeTasks()).toEqual([]);
    expect(model.requests).toHaveLength(0);
    expect(github.requests.filter((request) => request.method !== "GET")).toEqual([]);
  });
});
