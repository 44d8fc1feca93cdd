import { randomUUID } from "node:crypto";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Octokit } from "@octokit/rest";
import { sign } from "@octokit/webhooks-methods";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLocalSandbox } from "@running-agent/core";
import { startScriptedModelServer, workingDirectoryOf, type RecordedModelRequest, type ScriptedModelServer, type ScriptedStaticTurn } from "@running-agent/core/testing";
import { startGitHubServer, type CreatedApp, type GitHubServer } from "@running-agent/git-github/testing";
import { createGitHubBot, type GitHubBot } from "./github-bot.js";

const SECRET = "webhook-secret-for-trigger-tests";
const MODEL_KEY = "scripted-model-key";
const REPO = "octo/app";
const where = { owner: "octo", repo: "app" } as const;
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * Every trigger against one local GitHub server and one bot, authenticated as a GitHub App (what
 * check runs need): the tests run in order, as a user would, and the later ones act on the pull
 * request the first one opened. Few real OpenCode runs (four), many deliveries that start nothing.
 */
describe("the GitHub bot's triggers, as a GitHub App", () => {
  let github: GitHubServer;
  let model: ScriptedModelServer;
  let bot: GitHubBot;
  let server: Server;
  let webhookUrl: string;
  let sandboxFolder: string;
  let app: CreatedApp;
  let botLogin: string;
  /** octocat: a collaborator with write access, who files issues and reviews. */
  let octocat: Octokit;
  let repository: unknown;
  /** What the agent writes in its next run; undefined: it changes nothing. */
  let nextEdit: { path: string; content: string } | undefined;
  /** Edits for runs whose task contains the key, over {@link nextEdit}. */
  const editsFor = new Map<string, { path: string; content: string }>();
  /** Runs (once) when the next run's agent starts working. */
  let whileNextRunWorks: (() => Promise<void>) | undefined;
  let pullNumber: number;
  const errors: unknown[] = [];

  beforeAll(async () => {
    sandboxFolder = await mkdtemp(join(tmpdir(), "running-agent-bot-triggers-"));
    github = await startGitHubServer();
    await github.createRepository({ owner: "octo", name: "app", files: { "README.md": "# app\n\nA small app.\n" } });
    app = github.createApp({ account: "octo", permissions: { contents: "write", pull_requests: "write", issues: "write", checks: "write", metadata: "read" } });
    botLogin = `${app.slug}[bot]`;
    github.grantToken({ login: "agent-runner", permission: "push", repositories: [REPO] });
    octocat = new Octokit({ baseUrl: github.apiUrl, auth: github.grantToken({ login: "octocat", permission: "push", repositories: [REPO] }), log: quiet });
    repository = (await octocat.rest.repos.get(where)).data;
    // Any number of runs: a fresh conversation gets the next edit (or a plain answer), a tool result the summary.
    const turn = async (request: RecordedModelRequest): Promise<ScriptedStaticTurn> => {
      const messages: Array<{ role?: string }> = request.body?.messages ?? [];
      const conversation = JSON.stringify(messages);
      const edit = [...editsFor].find(([key]) => conversation.includes(key))?.[1] ?? nextEdit;
      if (messages.at(-1)?.role === "tool" || !edit) return { text: edit ? `Wrote ${edit.path}.` : "Nothing needs to change." };
      const during = whileNextRunWorks;
      whileNextRunWorks = undefined;
      await during?.();
      return { toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/${edit.path}`, content: edit.content } }] };
    };
    model = await startScriptedModelServer({ apiKey: MODEL_KEY, afterScript: turn });
    bot = createGitHubBot({
      webhookSecret: SECRET,
      github: { app: { appId: app.appId, privateKey: app.privateKey, installationId: app.installationId }, baseUrl: github.apiUrl },
      allowedBots: ["dependabot[bot]"],
      // GitHub cannot assign an issue to an App's bot: the App takes assignments of this user.
      assignee: "agent-runner",
      sandbox: createLocalSandbox({ tempDirectory: sandboxFolder }),
      model: { provider: "openai-compatible", model: "scripted-model", baseURL: model.url, apiKey: MODEL_KEY },
      commentIntervalMs: 100,
      onError: (error) => errors.push(error),
    });
    server = createServer((request, response) => bot.handleRequest(request, response));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    webhookUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks`;
  });

  afterAll(async () => {
    await bot?.close();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    await model?.close();
    await github?.close();
    if (sandboxFolder) {
      // Every sandbox the bot opened is gone.
      expect(await readdir(sandboxFolder)).toEqual([]);
      await rm(sandboxFolder, { recursive: true, force: true });
    }
  });

  async function deliver(event: string, payload: unknown): Promise<string | undefined> {
    const body = JSON.stringify(payload);
    const response = await fetch(webhookUrl, {
      method: "POST",
      headers: { "content-type": "application/json", "x-github-event": event, "x-github-delivery": randomUUID(), "x-hub-signature-256": await sign(SECRET, body) },
      body,
    });
    expect(response.status).toBe(202);
    return ((await response.json()) as { result?: string }).result;
  }
  const user = (login: string) => ({ login, id: 1, type: login.endsWith("[bot]") ? "Bot" : "User" });
  const pullRequestPayload = async (number: number) => (await octocat.rest.pulls.get({ ...where, pull_number: number })).data;
  /** The check runs on a commit, as GitHub lists them (newest first). */
  const checkRunsOn = async (sha: string) => (await octocat.rest.checks.listForRef({ ...where, ref: sha })).data.check_runs.map((run) => ({ name: run.name, status: run.status, conclusion: run.conclusion, app: run.app?.slug }));
  const headOf = async (branch: string) => (await octocat.rest.repos.getBranch({ ...where, branch })).data.commit;

  it("assigning the issue to the bot's assignee: 👀 on the issue, a pull request by the bot that closes it, a check run on the pushed commit", async () => {
    // The local server opens issues through its admin API; the payload is GitHub's issue as the REST API serves it.
    const issueNumber = github.createIssue(REPO, { title: "Add a notes file", body: "Add NOTES.md with a heading.", user: "octocat" });
    const { data: issueJson } = await octocat.rest.issues.addAssignees({ ...where, issue_number: issueNumber, assignees: ["agent-runner"] });
    expect(issueJson.assignees?.map((assignee) => assignee.login)).toEqual(["agent-runner"]);
    nextEdit = { path: "NOTES.md", content: "# Notes\n" };
    const result = await deliver("issues", { action: "assigned", issue: issueJson, assignee: issueJson.assignee, repository, sender: user("octocat") });
    expect(result).toBe(`started a task on ${REPO}#${issueNumber}`);
    await bot.idle();

    expect((await octocat.rest.reactions.listForIssue({ ...where, issue_number: issueNumber })).data.map((reaction) => [reaction.content, reaction.user?.login])).toEqual([["eyes", botLogin]]);
    const pulls = github.pullRequests(REPO);
    expect(pulls).toHaveLength(1);
    expect(pulls[0]).toMatchObject({ user: botLogin, state: "open", base: "main" });
    expect(pulls[0]!.body).toContain(`Closes #${issueNumber}`);
    pullNumber = pulls[0]!.number;
    const head = await headOf(pulls[0]!.head);
    expect(await checkRunsOn(head.sha)).toEqual([{ name: "Running Agent", status: "completed", conclusion: "success", app: app.slug }]);
    // The check run went in progress when the commit was pushed, then completed.
    const checkWrites = github.requests.filter((request) => request.route?.includes("check-runs") && request.method !== "GET").map((request) => [request.method, (request.responseBody as { status?: string }).status]);
    expect(checkWrites).toEqual([
      ["POST", "in_progress"],
      ["PATCH", "completed"],
    ]);
    const comments = github.comments(REPO, issueNumber);
    expect(comments.map((comment) => comment.user)).toEqual([botLogin]);
    expect(comments[0]!.body).toMatch(/^🤖 \*\*Running Agent\*\* finished \(asked by @octocat\)\./);
  });

  it("a review comment on the bot's pull request: 👀 on it, one commit on top of the branch, a reply in its thread; the review's own delivery starts nothing more", async () => {
    const pull = await pullRequestPayload(pullNumber);
    const before = await headOf(pull.head.ref);
    const { data: comment } = await octocat.rest.pulls.createReviewComment({ ...where, pull_number: pullNumber, commit_id: before.sha, path: "NOTES.md", line: 1, body: "Call it Team notes." });
    nextEdit = { path: "NOTES.md", content: "# Team notes\n" };
    const result = await deliver("pull_request_review_comment", { action: "created", comment, pull_request: pull, repository, sender: user("octocat") });
    expect(result).toBe(`started a task on ${REPO}#${pullNumber}`);
    // GitHub also sends the review the comment belongs to as submitted: the same request, not a second task.
    const { data: review } = await octocat.rest.pulls.getReview({ ...where, pull_number: pullNumber, review_id: comment.pull_request_review_id! });
    const again = await deliver("pull_request_review", { action: "submitted", review, pull_request: pull, repository, sender: user("octocat") });
    expect(again).toMatch(new RegExp(`^ignored: (review ${review.id} of pull request #${pullNumber} was picked up before|a task is already running on ${REPO}#${pullNumber})$`));
    await bot.idle();

    const prompt = JSON.stringify(model.chatRequests.at(-2)?.body);
    expect(prompt).toContain("Call it Team notes.");
    expect(prompt).toContain("On NOTES.md line 1:");
    const after = await headOf(pull.head.ref);
    expect(after.parents.map((parent) => parent.sha)).toEqual([before.sha]);
    expect(after.commit.message.split("\n")[0]).toBe("Address the review by @octocat");
    expect(await github.readFile(REPO, pull.head.ref, "NOTES.md")).toBe("# Team notes\n");
    expect((await octocat.rest.reactions.listForPullRequestReviewComment({ ...where, comment_id: comment.id })).data.map((reaction) => [reaction.content, reaction.user?.login])).toEqual([["eyes", botLogin]]);
    const thread = (await octocat.rest.pulls.listReviewComments({ ...where, pull_number: pullNumber })).data.filter((entry) => entry.id === comment.id || entry.in_reply_to_id === comment.id);
    expect(thread.map((entry) => entry.user?.login)).toEqual(["octocat", botLogin]);
    expect(thread[1]!.body).toBe(`🤖 **Running Agent** addressed this in \`${after.sha.slice(0, 12)}\` on \`${pull.head.ref}\` (asked by @octocat).\n\n> Wrote NOTES.md.`);
    expect(await checkRunsOn(after.sha)).toEqual([{ name: "Running Agent", status: "completed", conclusion: "success", app: app.slug }]);
    expect(github.pullRequests(REPO)).toHaveLength(1);

    // The bot's reply comes back as a review comment delivery: never an instruction.
    expect(await deliver("pull_request_review_comment", { action: "created", comment: thread[1], pull_request: pull, repository, sender: user(botLogin) })).toBe("ignored: the bot's own comments are not instructions");
  });

  it("a submitted review on the bot's pull request: 👀 on the review, one commit for its body and comments, replies in its thread and on the pull request; a review that comes meanwhile waits, then adds its own commit", async () => {
    const pull = await pullRequestPayload(pullNumber);
    const before = await headOf(pull.head.ref);
    const { data: review } = await octocat.rest.pulls.createReview({
      ...where,
      pull_number: pullNumber,
      event: "REQUEST_CHANGES",
      body: "Please add an owner line.",
      comments: [{ path: "NOTES.md", line: 1, body: "And a date under the title." }],
    });
    editsFor.set("Please add an owner line.", { path: "NOTES.md", content: "# Team notes\n\n2026-12-01, owned by octocat.\n" });
    editsFor.set("Add a contact too.", { path: "CONTACT.md", content: "octocat\n" });
    let meanwhile: string | undefined;
    let secondReviewId = 0;
    whileNextRunWorks = async () => {
      // A second review while the agent works on the first: it waits for it instead of being dropped.
      const { data: second } = await octocat.rest.pulls.createReview({ ...where, pull_number: pullNumber, event: "COMMENT", body: "Add a contact too." });
      secondReviewId = second.id;
      meanwhile = await deliver("pull_request_review", { action: "submitted", review: second, pull_request: pull, repository, sender: user("octocat") });
    };
    const commentsOnPullBefore = github.comments(REPO, pullNumber).length;
    expect(await deliver("pull_request_review", { action: "submitted", review, pull_request: pull, repository, sender: user("octocat") })).toBe(`started a task on ${REPO}#${pullNumber}`);
    await bot.idle();
    expect(meanwhile).toBe(`queued: after the task running on ${REPO}#${pullNumber}`);

    const prompts = model.chatRequests.map((request) => JSON.stringify(request.body));
    expect(prompts.some((prompt) => prompt.includes("Please add an owner line.") && prompt.includes("And a date under the title."))).toBe(true);
    // One commit per review, the second on top of the first.
    const after = await headOf(pull.head.ref);
    const first = (await octocat.rest.repos.getCommit({ ...where, ref: after.parents[0]!.sha })).data;
    expect(first.parents.map((parent) => parent.sha)).toEqual([before.sha]);
    expect(await github.readFile(REPO, pull.head.ref, "NOTES.md")).toBe("# Team notes\n\n2026-12-01, owned by octocat.\n");
    expect(await github.readFile(REPO, pull.head.ref, "CONTACT.md")).toBe("octocat\n");
    expect(github.reactions(REPO).filter((reaction) => reaction.subject.kind === "review")).toEqual([
      { subject: { kind: "review", id: review.id }, content: "eyes", user: botLogin },
      { subject: { kind: "review", id: secondReviewId }, content: "eyes", user: botLogin },
    ]);
    const [reviewComment] = (await octocat.rest.pulls.listCommentsForReview({ ...where, pull_number: pullNumber, review_id: review.id })).data;
    const replies = (await octocat.rest.pulls.listReviewComments({ ...where, pull_number: pullNumber })).data.filter((entry) => entry.in_reply_to_id === reviewComment!.id);
    expect(replies.map((entry) => [entry.user?.login, entry.body.split(" (asked")[0]])).toEqual([[botLogin, `🤖 **Running Agent** addressed this in \`${first.sha.slice(0, 12)}\` on \`${pull.head.ref}\``]]);
    // On the pull request: one progress comment per review, each ending with the commit pushed for it.
    const onPull = github.comments(REPO, pullNumber).slice(commentsOnPullBefore);
    expect(onPull.map((comment) => comment.body.trimEnd().split("\n").at(-1)!.split(",")[0])).toEqual([
      `Pushed \`${first.sha.slice(0, 12)}\` to \`${pull.head.ref}\``,
      `Pushed \`${after.sha.slice(0, 12)}\` to \`${pull.head.ref}\``,
    ]);
    expect(await checkRunsOn(first.sha)).toEqual([{ name: "Running Agent", status: "completed", conclusion: "success", app: app.slug }]);
    expect(await checkRunsOn(after.sha)).toEqual([{ name: "Running Agent", status: "completed", conclusion: "success", app: app.slug }]);
    editsFor.clear();
  });

  it("a mention by a bot the owner listed (Dependabot) runs; the bot's own comment, an unlisted bot, a user without write access and a review on someone else's pull request start nothing", async () => {
    const issueNumber = github.createIssue(REPO, { title: "Check the README", user: "octocat" });
    const issueJson = (await octocat.rest.issues.get({ ...where, issue_number: issueNumber })).data;
    const commentBy = async (login: string, body: string) => {
      const client = new Octokit({ baseUrl: github.apiUrl, auth: github.grantToken({ login, permission: "pull", repositories: [REPO] }), log: quiet });
      return (await client.rest.issues.createComment({ ...where, issue_number: issueNumber, body })).data;
    };
    const requestsBefore = model.chatRequests.length;

    const own = { id: 1, body: `/agent do it again, @${app.slug}`, user: user(botLogin), author_association: "NONE" };
    expect(await deliver("issue_comment", { action: "created", issue: issueJson, comment: own, repository, sender: user(botLogin) })).toBe("ignored: the bot's own comments are not instructions");
    const renovate = await commentBy("renovate[bot]", `@${app.slug} update the lockfile`);
    expect(await deliver("issue_comment", { action: "created", issue: issueJson, comment: renovate, repository, sender: user("renovate[bot]") })).toMatch(/^ignored: comments by bots \(renovate\[bot\]\) do not start tasks unless allowedBots lists them$/);
    const mallory = await commentBy("mallory", `@${app.slug} push my change`);
    expect(mallory.author_association).toBe("NONE");
    expect(await deliver("issue_comment", { action: "created", issue: issueJson, comment: mallory, repository, sender: user("mallory") })).toBe("refused: mallory (NONE) may not start tasks: that takes write access to the repository");
    // An assignment by someone who can only read is refused after the bot asks GitHub for their permission.
    github.grantToken({ login: "visitor", permission: "pull", repositories: [REPO] });
    expect(await deliver("issues", { action: "assigned", issue: issueJson, assignee: user("agent-runner"), repository, sender: user("visitor") })).toBe("refused: visitor (read access) may not start tasks: that takes write access to the repository");
    // A review on a pull request someone else opened is not the bot's to address.
    await github.commit(REPO, { branch: "octocat-change", files: { "OTHER.md": "other\n" } });
    const { data: theirs } = await octocat.rest.pulls.create({ ...where, head: "octocat-change", base: "main", title: "Their change" });
    const reviewer = new Octokit({ baseUrl: github.apiUrl, auth: github.grantToken({ login: "reviewer", permission: "push", repositories: [REPO] }), log: quiet });
    const { data: theirReview } = await reviewer.rest.pulls.createReview({ ...where, pull_number: theirs.number, event: "COMMENT", body: "Looks fine." });
    expect(await deliver("pull_request_review", { action: "submitted", review: theirReview, pull_request: await pullRequestPayload(theirs.number), repository, sender: user("reviewer") })).toMatch(/^ignored: pull request #\d+ is by octocat, not running-agent-test\[bot\]/);
    await bot.idle();
    expect(model.chatRequests.length).toBe(requestsBefore);

    // Dependabot is on the list: its mention runs (here the agent finds nothing to change).
    nextEdit = undefined;
    const dependabot = await commentBy("dependabot[bot]", `@${app.slug} check the README after this bump`);
    expect(await deliver("issue_comment", { action: "created", issue: issueJson, comment: dependabot, repository, sender: user("dependabot[bot]") })).toBe(`started a task on ${REPO}#${issueNumber}`);
    await bot.idle();
    expect(JSON.stringify(model.chatRequests.at(-1)?.body)).toContain("check the README after this bump");
    expect((await octocat.rest.reactions.listForIssueComment({ ...where, comment_id: dependabot.id })).data.map((reaction) => [reaction.content, reaction.user?.login])).toEqual([["eyes", botLogin]]);
    const progress = github.comments(REPO, issueNumber).filter((comment) => comment.user === botLogin);
    expect(progress).toHaveLength(1);
    expect(progress[0]!.body).toMatch(/^🤖 \*\*Running Agent\*\* finished without changes \(asked by @dependabot\[bot\]\)\./);
    // No refusal was answered with a comment, and nothing failed behind the scenes.
    expect(github.comments(REPO, issueNumber).map((comment) => comment.user).sort()).toEqual([botLogin, "dependabot[bot]", "mallory", "renovate[bot]"].sort());
    expect(errors).toEqual([]);
  });
});
