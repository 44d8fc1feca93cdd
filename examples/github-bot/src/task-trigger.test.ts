import { describe, expect, it } from "vitest";
import type { EmitterWebhookEvent } from "@octokit/webhooks";
import { triggerFromComment, triggerFromLabel, type TriggerSettings } from "./task-trigger.js";

const settings: TriggerSettings = { label: "agent", command: "/agent", allowedAssociations: ["OWNER", "MEMBER", "COLLABORATOR"] };
const repository = { name: "app", full_name: "octo/app", owner: { login: "octo" }, clone_url: "http://127.0.0.1:1/octo/app.git" };
const issue = { number: 4, title: "Add a README", body: "It should say what the app does." };

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
  it("ignores other comments, bots, pull requests and untrusted authors", () => {
    expect(triggerFromComment(commented("looks good"), settings)).toMatchObject({ kind: "ignored" });
    expect(triggerFromComment(commented("/agentic stuff"), settings)).toMatchObject({ kind: "ignored" });
    expect(triggerFromComment(commented("please /agent do it"), settings)).toMatchObject({ kind: "ignored" });
    expect(triggerFromComment(commented("/agent go", { login: "ci[bot]", type: "Bot" }), settings)).toMatchObject({ kind: "ignored", reason: expect.stringMatching(/bots/) });
    expect(triggerFromComment(commented("/agent go", undefined, "OWNER", { pull_request: { url: "x" } }), settings)).toMatchObject({ kind: "ignored" });
    expect(triggerFromComment(commented("/agent go", { login: "stranger", type: "User" }, "NONE"), settings)).toMatchObject({
      kind: "ignored",
      reason: "stranger (NONE) may not start tasks",
    });
  });
});
