import { describe, expect, it } from "vitest";
import type { EmitterWebhookEvent } from "@octokit/webhooks";
import { triggerFromComment, triggerFromLabel, triggerFromPullRequest, type PullRequestFacts, type TaskTrigger, type TriggerSettings } from "./task-trigger.js";

const settings: TriggerSettings = { label: "agent", command: "/agent", allowedAssociations: ["OWNER", "MEMBER", "COLLABORATOR"] };
const repository = { name: "app", full_name: "octo/app", owner: { login: "octo" }, clone_url: "http://127.0.0.1:1/octo/app.git" };
const issue = { number: 4, title: "Add a README", body: "It should say what the app does." };
const onPullRequest = { pull_request: { url: "http://127.0.0.1:1/api/v3/repos/octo/app/pulls/4" } };

function labeled(labelName: string, extra: Record<string, unknown> = {}) {
  return { id: "1", name: "issues", payload: { action: "labeled", issue: { ...issue, ...extra }, label: { name: labelName }, repository, sender: { login: "octocat" } } } as unknown as EmitterWebhookEvent<"issues.labeled">;
}
function commented(body: string, user: Record<string, unknown> = { login: "octocat", type: "User" }, association = "OWNER", extra: Record<string, unknown> = {}) {
  return {
    id: "2",
    name: "issue_comment",
    payload: { action: "created", issue: { ...issue, ...extra }, comment: { body, user, author_association: association }, repository, sender: user },
  } as unknown as EmitterWebhookEvent<"issue_comment.created">;
}

describe("triggerFromLabel", () => {
  it("starts the issue's task for the configured label, in any case", () => {
    expect(triggerFromLabel(labeled("Agent"), settings)).toEqual({
      kind: "task",
      target: { owner: "octo", repo: "app", cloneUrl: repository.clone_url, issueNumber: 4 },
      task: "Resolve issue #4: Add a README\n\nIt should say what the app does.",
      requestedBy: "octocat",
    });
  });
  it("ignores other labels and pull requests", () => {
    expect(triggerFromLabel(labeled("bug"), settings)).toMatchObject({ kind: "ignored" });
    expect(triggerFromLabel(labeled("agent", { pull_request: { url: "x" } }), settings)).toMatchObject({ kind: "ignored" });
  });
});

describe("triggerFromComment", () => {
  it("takes the text after /agent as the task, with the issue as context", () => {
    const trigger = triggerFromComment(commented("/agent add a licence file"), settings);
    expect(trigger).toMatchObject({ kind: "task", requestedBy: "octocat", target: { issueNumber: 4 } });
    expect(trigger.kind === "task" && trigger.task).toMatch(/^add a licence file\n\nThis is for issue #4: Add a README/);
  });
  it("uses the issue's own text for a bare /agent", () => {
    const trigger = triggerFromComment(commented("  /agent  "), settings);
    expect(trigger.kind === "task" && trigger.task).toBe("Resolve issue #4: Add a README\n\nIt should say what the app does.");
  });
  it("ignores other comments, bots and untrusted authors, on issues and pull requests", () => {
    expect(triggerFromComment(commented("looks good"), settings)).toMatchObject({ kind: "ignored" });
    expect(triggerFromComment(commented("/agentic stuff"), settings)).toMatchObject({ kind: "ignored" });
    expect(triggerFromComment(commented("please /agent do it"), settings)).toMatchObject({ kind: "ignored" });
    expect(triggerFromComment(commented("/agent go", { login: "ci[bot]", type: "Bot" }), settings)).toMatchObject({ kind: "ignored", reason: expect.stringMatching(/bots/) });
    expect(triggerFromComment(commented("/agent go", { login: "stranger", type: "User" }, "NONE"), settings)).toMatchObject({
      kind: "ignored",
      reason: "stranger (NONE) may not start tasks",
    });
    expect(triggerFromComment(commented("/agent go", { login: "stranger", type: "User" }, "CONTRIBUTOR", onPullRequest), settings)).toMatchObject({ kind: "ignored", reason: "stranger (CONTRIBUTOR) may not start tasks" });
    expect(triggerFromComment(commented("/agent go", { login: "ci[bot]", type: "Bot" }, "MEMBER", onPullRequest), settings)).toMatchObject({ kind: "ignored" });
  });

  it("on a pull request, asks to read it before running, and answers a bare /agent with how to use it", () => {
    expect(triggerFromComment(commented("/agent rename the helper", undefined, "MEMBER", onPullRequest), settings)).toEqual({
      kind: "pull-request",
      target: { owner: "octo", repo: "app", cloneUrl: repository.clone_url, issueNumber: 4 },
      request: "rename the helper",
      requestedBy: "octocat",
    });
    const bare = triggerFromComment(commented("/agent", undefined, "MEMBER", onPullRequest), settings);
    expect(bare).toMatchObject({ kind: "refused", reason: "/agent on a pull request needs a task", target: { issueNumber: 4 } });
    expect(bare.kind === "refused" && bare.reply).toBe(
      "🤖 **Running Agent** did not start (asked by @octocat). On a pull request, say what to change: `/agent <task>`. The agent commits it on this pull request's branch.",
    );
  });
});

describe("triggerFromPullRequest", () => {
  const asked = triggerFromComment(commented("/agent rename the helper", undefined, "MEMBER", onPullRequest), settings) as Extract<TaskTrigger, { kind: "pull-request" }>;
  const pullRequest = (overrides: Partial<PullRequestFacts> = {}): PullRequestFacts => ({
    number: 4,
    state: "open",
    merged: false,
    merged_at: null,
    title: "Add a helper",
    body: "It formats dates.",
    head: { ref: "feature/helper", repo: { full_name: "octo/app" } },
    base: { ref: "main", repo: { full_name: "octo/app" } },
    ...overrides,
  });

  it("continues an open pull request's branch, with its title and body as context", () => {
    expect(triggerFromPullRequest(asked, pullRequest())).toEqual({
      kind: "task",
      target: asked.target,
      task: "rename the helper\n\nThis is a follow-up on pull request #4 (branch feature/helper into main), whose changes are already in the working tree: Add a helper\n\nIt formats dates.",
      requestedBy: "octocat",
      pullRequest: { number: 4, head: "feature/helper", base: "main" },
    });
  });

  it("refuses a merged or closed pull request, and one from a fork (or a deleted fork)", () => {
    expect(triggerFromPullRequest(asked, pullRequest({ state: "closed", merged: true, merged_at: "2026-01-01T00:00:00Z" }))).toMatchObject({
      kind: "refused",
      reason: "pull request #4 is merged",
      reply: expect.stringMatching(/already merged/),
    });
    expect(triggerFromPullRequest(asked, pullRequest({ state: "closed" }))).toMatchObject({ kind: "refused", reason: "pull request #4 is closed", reply: expect.stringMatching(/is closed\. Reopen it/) });
    expect(triggerFromPullRequest(asked, pullRequest({ head: { ref: "main", repo: { full_name: "mallory/app" } } }))).toMatchObject({
      kind: "refused",
      reason: "pull request #4 comes from a fork",
      reply: "🤖 **Running Agent** did not start (asked by @octocat). This pull request's branch is in mallory/app, and the bot can only push to octo/app.",
    });
    expect(triggerFromPullRequest(asked, pullRequest({ head: { ref: "feature/helper", repo: null } }))).toMatchObject({ kind: "refused", reason: "pull request #4 comes from a fork" });
    // The same repository in another case is not a fork.
    expect(triggerFromPullRequest(asked, pullRequest({ head: { ref: "feature/helper", repo: { full_name: "Octo/App" } } }))).toMatchObject({ kind: "task" });
  });
});
