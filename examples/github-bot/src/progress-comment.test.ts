import { describe, expect, it } from "vitest";
import { agentError, ErrorCode, type AgentTaskEvent, type AgentTaskEventInput, type AgentTaskResult } from "@running-agent/core";
import { ProgressComment } from "./progress-comment.js";

const stamp = (input: AgentTaskEventInput): AgentTaskEvent => ({ ...input, taskId: "t", at: 0 }) as AgentTaskEvent;

const result = (overrides: Partial<AgentTaskResult>): AgentTaskResult => ({
  taskId: "t",
  status: "completed",
  repository: { id: "octo/app" },
  baseBranch: "main",
  changes: [],
  summary: "",
  model: "openai-compatible/scripted",
  usage: { inputTokens: 0, outputTokens: 0, reasoningTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0, cost: 0, costSource: "unknown" },
  agentRounds: [],
  timings: {},
  ...overrides,
});

describe("ProgressComment", () => {
  it("shows each phase's state, the running phase in bold with what the agent is doing", () => {
    const comment = new ProgressComment("octocat");
    expect(comment.apply(stamp({ type: "phase", phase: "validate", status: "started" }))).toBe(true);
    comment.apply(stamp({ type: "phase", phase: "validate", status: "completed", durationMs: 120 }));
    comment.apply(stamp({ type: "phase", phase: "agent", status: "started" }));
    expect(comment.apply(stamp({ type: "agent.tool", callId: "c", tool: "write", status: "running", title: "src/`x`.ts\nmore" }))).toBe(false);
    const text = comment.render();
    expect(text.split("\n")[0]).toBe("🤖 **Running Agent** is working on this (asked by @octocat).");
    expect(text).toContain("- ✅ validate · 0.1s");
    expect(text).toContain("- ⏳ **agent**: `write src/ x .ts more`");
    expect(text).toContain("- ⬜ pull-request");
  });

  it("says when the task waits for a slot", () => {
    const comment = new ProgressComment("octocat");
    comment.markQueued();
    expect(comment.render().split("\n")[0]).toBe("🤖 **Running Agent** will start on this when a slot is free (asked by @octocat).");
    comment.markStarted();
    expect(comment.render().split("\n")[0]).toBe("🤖 **Running Agent** is working on this (asked by @octocat).");
  });

  it("ends with the pull request's link when the task completes", () => {
    const comment = new ProgressComment("octocat");
    expect(comment.apply(stamp({ type: "change-request", url: "http://127.0.0.1/octo/app/pull/7", number: 7, created: true }))).toBe(true);
    comment.complete(result({ summary: "Added a test.", pullRequest: { number: 7, url: "http://127.0.0.1/octo/app/pull/7", created: true } as AgentTaskResult["pullRequest"] & {} }));
    const text = comment.render();
    expect(text.split("\n")[0]).toBe("🤖 **Running Agent** finished (asked by @octocat).");
    expect(text).toContain("> Added a test.");
    expect(text.trimEnd().split("\n").at(-1)).toBe("Pull request #7: http://127.0.0.1/octo/app/pull/7");
  });

  it("says so when there were no changes, and shows a failure's code, phase and message", () => {
    const unchanged = new ProgressComment("octocat");
    unchanged.complete(result({ status: "no_changes" }));
    expect(unchanged.render()).toMatch(/finished without changes[\s\S]*there is no pull request\.$/);

    const failed = new ProgressComment("octocat");
    failed.fail(agentError(ErrorCode.MODEL_ERROR, "The model said 400.", { phase: "agent" }));
    expect(failed.render()).toMatch(/failed \(asked by @octocat\)[\s\S]*Failed in the agent phase: `MODEL_ERROR`\n\n> The model said 400\.$/);
  });

  it("on a follow-up, ends with the commit pushed to the pull request's branch, or says the branch is unchanged", () => {
    const followUp = { number: 7, head: "feature/helper", base: "main" };
    const pushed = new ProgressComment("octocat", followUp);
    pushed.complete(
      result({
        branch: "feature/helper",
        commit: "0123456789abcdef0123456789abcdef01234567",
        pullRequest: { number: 7, url: "http://127.0.0.1/octo/app/pull/7", created: false } as AgentTaskResult["pullRequest"] & {},
      }),
    );
    expect(pushed.render().split("\n")[0]).toBe("🤖 **Running Agent** finished (asked by @octocat).");
    expect(pushed.render().trimEnd().split("\n").at(-1)).toBe("Pushed `0123456789ab` to `feature/helper`, updating pull request #7: http://127.0.0.1/octo/app/pull/7");

    const unchanged = new ProgressComment("octocat", followUp);
    unchanged.complete(result({ status: "no_changes" }));
    expect(unchanged.render()).toMatch(/finished without changes[\s\S]*The agent changed nothing, so `feature\/helper` is as it was\.$/);
  });

  it("concludes a check run and answers a review thread from the outcome: pushed, checks failing, nothing, failed, cancelled, timed out", () => {
    const followUp = { number: 3, head: "notes", base: "main" };
    const pushed = new ProgressComment("octocat", followUp);
    expect(pushed.conclusion()).toBeUndefined();
    pushed.complete(result({ commit: "a".repeat(40), branch: "notes", summary: "Renamed it." }));
    expect(pushed.conclusion()).toEqual({ conclusion: "success", title: `Pushed ${"a".repeat(12)}` });
    expect(pushed.threadReply()).toBe(`🤖 **Running Agent** addressed this in \`${"a".repeat(12)}\` on \`notes\` (asked by @octocat).\n\n> Renamed it.`);
    const failingChecks = new ProgressComment("octocat", followUp);
    failingChecks.complete(result({ commit: "b".repeat(40), verification: { rounds: [], passed: false, onChecksFailed: "draft", source: "auto" } }));
    expect(failingChecks.conclusion()).toEqual({ conclusion: "failure", title: `Pushed ${"b".repeat(12)}; its checks fail` });
    const nothing = new ProgressComment("octocat", followUp);
    nothing.complete(result({ status: "no_changes" }));
    expect(nothing.conclusion()).toEqual({ conclusion: "neutral", title: "No changes" });
    expect(nothing.threadReply()).toBe("🤖 **Running Agent** changed nothing for this (asked by @octocat).");
    const failed = new ProgressComment("octocat", followUp);
    failed.fail(agentError(ErrorCode.PUSH_REJECTED, "The branch moved."));
    expect(failed.conclusion()).toEqual({ conclusion: "failure", title: "Failed: PUSH_REJECTED" });
    expect(failed.threadReply()).toBe("🤖 **Running Agent** could not address this (asked by @octocat): `PUSH_REJECTED`\n\n> The branch moved.");
    const cancelled = new ProgressComment("octocat");
    cancelled.fail(agentError(ErrorCode.ABORTED, "The bot is shutting down."));
    expect(cancelled.conclusion()).toEqual({ conclusion: "cancelled", title: "Cancelled" });
    const slow = new ProgressComment("octocat");
    slow.fail(agentError(ErrorCode.TIMEOUT, "The task took longer than 30 minutes."));
    expect(slow.conclusion()).toEqual({ conclusion: "timed_out", title: "Timed out: TIMEOUT" });
  });
});
