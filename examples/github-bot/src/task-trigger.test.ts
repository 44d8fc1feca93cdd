import { describe, expect, it } from "vitest";
import type { EmitterWebhookEvent } from "@octokit/webhooks";
import { describeReview } from "./review-request.js";
import {
  triggerFromAssignment,
  triggerFromComment,
  triggerFromLabel,
  triggerFromPullRequest,
  triggerFromReview,
  triggerFromReviewComment,
  type PullRequestFacts,
  type TaskTrigger,
  type TriggerSettings,
} from "./task-trigger.js";

const settings: TriggerSettings = { label: "agent", command: "/agent", allowedAssociations: ["OWNER", "MEMBER", "COLLABORATOR"], login: "agent-bot", allowedBots: ["dependabot[bot]"] };
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
    payload: { action: "created", issue: { ...issue, ...extra }, comment: { id: 7, body, user, author_association: association }, repository, sender: user },
  } as unknown as EmitterWebhookEvent<"issue_comment.created">;
}

describe("triggerFromLabel", () => {
  it("starts the issue's task for the configured label, in any case", () => {
    expect(triggerFromLabel(labeled("Agent"), settings)).toEqual({
      kind: "task",
      target: { owner: "octo", repo: "app", cloneUrl: repository.clone_url, issueNumber: 4 },
      task: "Resolve issue #4: Add a README\n\nIt should say what the app does.",
      requestedBy: "octocat",
      pickedUp: { kind: "issue", number: 4 },
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
      kind: "refused",
      reason: "stranger (NONE) may not start tasks: that takes write access to the repository",
    });
    expect(triggerFromComment(commented("/agent go", { login: "stranger", type: "User" }, "CONTRIBUTOR", onPullRequest), settings)).toMatchObject({ kind: "refused", reason: expect.stringMatching(/^stranger \(CONTRIBUTOR\) may not start tasks/) });
    expect(triggerFromComment(commented("/agent go", { login: "ci[bot]", type: "Bot" }, "MEMBER", onPullRequest), settings)).toMatchObject({ kind: "ignored" });
  });

  it("on a pull request, asks to read it before running, and answers a bare /agent with how to use it", () => {
    expect(triggerFromComment(commented("/agent rename the helper", undefined, "MEMBER", onPullRequest), settings)).toEqual({
      kind: "pull-request",
      target: { owner: "octo", repo: "app", cloneUrl: repository.clone_url, issueNumber: 4 },
      request: "rename the helper",
      requestedBy: "octocat",
      pickedUp: { kind: "issue-comment", id: 7 },
    });
    const bare = triggerFromComment(commented("/agent", undefined, "MEMBER", onPullRequest), settings);
    expect(bare).toMatchObject({ kind: "refused", reason: "/agent on a pull request needs a task", target: { issueNumber: 4 } });
    expect(bare.kind === "refused" && bare.reply).toBe(
      "🤖 **Running Agent** did not start (asked by @octocat). On a pull request, say what to change: `/agent <task>`. The agent commits it on this pull request's branch.",
    );
  });
});

describe("mentions, the bot's own comments and listed bots", () => {
  it("takes a mention of the bot anywhere as a request, the mention removed, and @slug for an App's slug[bot]", () => {
    const trigger = triggerFromComment(commented("Could @agent-bot add a licence file?"), settings);
    expect(trigger.kind === "task" && trigger.task).toMatch(/^Could add a licence file\?\n\nThis is for issue #4/);
    const app = { ...settings, login: "running-agent[bot]" };
    expect(triggerFromComment(commented("@running-agent fix the typo"), app)).toMatchObject({ kind: "task", task: expect.stringMatching(/^fix the typo/) });
    expect(triggerFromComment(commented("@running-agent[bot] fix it"), app)).toMatchObject({ kind: "task" });
    // Another name that starts the same, an e-mail address, and a mention inside a word are not the bot.
    expect(triggerFromComment(commented("@agent-bots please"), settings)).toMatchObject({ kind: "ignored" });
    expect(triggerFromComment(commented("mail me@agent-bot.example"), settings)).toMatchObject({ kind: "ignored" });
  });
  it("never takes the bot's own comments as instructions, lets listed bots in, and no other bot", () => {
    expect(triggerFromComment(commented("/agent do it again", { login: "agent-bot", type: "User" }, "OWNER"), settings)).toEqual({ kind: "ignored", reason: "the bot's own comments are not instructions" });
    expect(triggerFromComment(commented("@agent-bot rebase", { login: "dependabot[bot]", type: "Bot" }, "NONE"), settings)).toMatchObject({ kind: "task", requestedBy: "dependabot[bot]" });
    expect(triggerFromComment(commented("@agent-bot rebase", { login: "renovate[bot]", type: "Bot" }, "NONE"), settings)).toMatchObject({ kind: "ignored", reason: expect.stringMatching(/allowedBots/) });
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
      pickedUp: { kind: "issue-comment", id: 7 },
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

describe("assignment and reviews", () => {
  const assigned = (assignee: string, sender: Record<string, unknown> = { login: "octocat", type: "User" }) =>
    ({ id: "3", name: "issues", payload: { action: "assigned", issue, assignee: { login: assignee }, repository, sender } }) as unknown as EmitterWebhookEvent<"issues.assigned">;
  const ownPull = { number: 9, user: { login: "agent-bot" } };

  it("runs the issue when the bot's user is assigned, after checking the sender's write access", () => {
    expect(triggerFromAssignment(assigned("agent-bot"), settings)).toMatchObject({ kind: "task", requestedBy: "octocat", pickedUp: { kind: "issue", number: 4 }, checkWriteAccessOf: "octocat" });
    expect(triggerFromAssignment(assigned("Agent-Bot", { login: "dependabot[bot]", type: "Bot" }), settings)).not.toHaveProperty("checkWriteAccessOf");
    expect(triggerFromAssignment(assigned("someone-else"), settings)).toEqual({ kind: "ignored", reason: "the issue was assigned to someone-else, not agent-bot" });
    expect(triggerFromAssignment(assigned("agent-bot", { login: "ci[bot]", type: "Bot" }), settings)).toMatchObject({ kind: "ignored" });
    // An App's bot cannot be assigned on GitHub: it takes the configured assignee's assignments instead.
    const app = { ...settings, login: "running-agent[bot]", assignee: "agent-runner" };
    expect(triggerFromAssignment(assigned("agent-runner"), app)).toMatchObject({ kind: "task" });
    expect(triggerFromAssignment(assigned("running-agent[bot]"), app)).toMatchObject({ kind: "ignored", reason: "the issue was assigned to running-agent[bot], not agent-runner" });
  });

  it("takes a review comment or a review on the bot's own pull request as one request per review, and nothing on someone else's", () => {
    const comment = (user: Record<string, unknown>, association: string, pullRequest: Record<string, unknown> = ownPull) =>
      ({ id: "4", name: "pull_request_review_comment", payload: { action: "created", comment: { id: 30, pull_request_review_id: 20, user, author_association: association, body: "Say why." }, pull_request: pullRequest, repository, sender: user } }) as unknown as EmitterWebhookEvent<"pull_request_review_comment.created">;
    const review = (state: string, body: string | null, user: Record<string, unknown> = { login: "octocat", type: "User" }) =>
      ({ id: "5", name: "pull_request_review", payload: { action: "submitted", review: { id: 20, node_id: "UFJSOjIw", state, body, user, author_association: "MEMBER" }, pull_request: ownPull, repository, sender: user } }) as unknown as EmitterWebhookEvent<"pull_request_review.submitted">;
    const fromComment = triggerFromReviewComment(comment({ login: "octocat", type: "User" }, "MEMBER"), settings);
    expect(fromComment).toMatchObject({ kind: "review", reviewId: 20, requestedBy: "octocat", pickedUp: { kind: "review-comment", id: 30 } });
    const fromReview = triggerFromReview(review("changes_requested", "Two things."), settings);
    expect(fromReview).toMatchObject({ kind: "review", reviewId: 20, pickedUp: { kind: "review", nodeId: "UFJSOjIw" } });
    // Both deliveries of one review carry the same key, so only the first starts a task.
    expect(fromComment.kind === "review" && fromComment.requestKey).toBe(fromReview.kind === "review" && fromReview.requestKey);
    expect(triggerFromReview(review("approved", ""), settings)).toMatchObject({ kind: "ignored", reason: "an approval without a comment asks for no change" });
    expect(triggerFromReviewComment(comment({ login: "agent-bot", type: "User" }, "OWNER"), settings)).toMatchObject({ kind: "ignored", reason: "the bot's own comments are not instructions" });
    expect(triggerFromReviewComment(comment({ login: "stranger", type: "User" }, "NONE"), settings)).toMatchObject({ kind: "refused" });
    expect(triggerFromReviewComment(comment({ login: "octocat", type: "User" }, "MEMBER", { number: 9, user: { login: "octocat" } }), settings)).toMatchObject({ kind: "ignored", reason: expect.stringMatching(/only on the bot's own pull requests/) });
  });

  it("describes a review as its body and each comment where it points, the thread it answers included; nothing for an empty review", () => {
    expect(describeReview("octocat", "", [])).toBeUndefined();
    expect(describeReview("octocat", "Two things.", [{ id: 1, path: "README.md", line: 3, body: "Say why.", diffHunk: "@@ -3,1 +3,1 @@\n Line", thread: [{ author: "agent-bot", body: "Done." }] }])).toBe(
      "Address the review by @octocat\n\nTwo things.\n\nOn README.md line 3:\n  @agent-bot wrote before: Done.\nSay why.\n```diff\n@@ -3,1 +3,1 @@\n Line\n```",
    );
  });
});
