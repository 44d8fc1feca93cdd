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
});
