import { PHASES, RunningAgentError, type AgentTaskEvent, type AgentTaskResult, type Phase } from "@running-agent/core";
import type { CheckRunConclusion } from "./check-run-reporter.js";
import type { PullRequestFollowUp } from "./task-trigger.js";

type PhaseState = { status: "started" | "completed" | "skipped" | "failed"; durationMs?: number };
type Outcome =
  | { kind: "completed"; result: AgentTaskResult }
  | { kind: "no_changes"; result: AgentTaskResult }
  | { kind: "failed"; code: string; message: string; phase?: Phase };

const SYMBOL: Record<PhaseState["status"] | "pending", string> = { pending: "⬜", started: "⏳", completed: "✅", skipped: "➖", failed: "❌" };

/**
 * The text of the one comment the bot keeps on an issue: who asked, each phase with its state
 * and time, what the agent is doing, and at the end the outcome, ending with the pull
 * request's link (for a follow-up on a pull request: the commit pushed to its branch).
 * Pure: it only turns events into Markdown; publishing is someone else's job.
 */
export class ProgressComment {
  private readonly phases = new Map<Phase, PhaseState>();
  private activity = "";
  private outcome: Outcome | undefined;
  private state: "new" | "queued" | "started" = "new";

  constructor(
    private readonly requestedBy: string,
    /** Set when the task follows up on a pull request, whose branch gets the commit. */
    private readonly followUp?: PullRequestFollowUp,
  ) {}

  /** Takes an event; true when the comment changed in a way worth publishing now (a phase moved, a PR opened). */
  apply(event: AgentTaskEvent): boolean {
    if (event.type === "phase") {
      this.phases.set(event.phase, { status: event.status, ...(event.durationMs !== undefined ? { durationMs: event.durationMs } : {}) });
      if (event.status === "started") this.activity = "";
      return true;
    }
    if (event.type === "agent.tool") {
      this.activity = `${event.tool}${event.title ? ` ${event.title}` : ""}`;
      return false;
    }
    if (event.type === "command.output") {
      this.activity = event.command;
      return false;
    }
    return event.type === "change-request";
  }

  /** The task waits for a free slot. */
  markQueued(): void {
    this.state = "queued";
  }

  /** The task has started. */
  markStarted(): void {
    this.state = "started";
  }

  /** The task finished. */
  complete(result: AgentTaskResult): void {
    this.outcome = result.status === "completed" ? { kind: "completed", result } : { kind: "no_changes", result };
  }

  /** The task failed (or was cancelled). */
  fail(error: unknown): void {
    const failure = RunningAgentError.isInstance(error) ? error : undefined;
    this.outcome = {
      kind: "failed",
      code: failure?.code ?? "INTERNAL",
      message: failure?.message ?? "Unexpected error.",
      ...(failure?.phase ? { phase: failure.phase } : {}),
    };
  }

  /** The outcome as a check run concludes it, with a title; undefined while the task runs. */
  conclusion(): { conclusion: CheckRunConclusion; title: string } | undefined {
    const outcome = this.outcome;
    if (!outcome) return undefined;
    if (outcome.kind === "failed") {
      if (outcome.code === "ABORTED") return { conclusion: "cancelled", title: "Cancelled" };
      return outcome.code === "TIMEOUT" || outcome.code === "AGENT_TIMEOUT" ? { conclusion: "timed_out", title: `Timed out: ${outcome.code}` } : { conclusion: "failure", title: `Failed: ${outcome.code}` };
    }
    if (outcome.kind === "no_changes") return { conclusion: "neutral", title: "No changes" };
    const commit = outcome.result.commit ? ` ${outcome.result.commit.slice(0, 12)}` : "";
    if (outcome.result.verification && !outcome.result.verification.passed) return { conclusion: "failure", title: `Pushed${commit}; its checks fail` };
    return { conclusion: "success", title: `Pushed${commit}` };
  }

  /** A short answer in a review thread the task was about: what was pushed for it, or why nothing was. */
  threadReply(): string {
    const outcome = this.outcome;
    const who = `@${this.requestedBy}`;
    if (!outcome) return `🤖 **Running Agent** is working on this (asked by ${who}).`;
    if (outcome.kind === "failed") return `🤖 **Running Agent** could not address this (asked by ${who}): \`${outcome.code}\`\n\n${quote(outcome.message)}`;
    const summary = outcome.result.summary.trim() ? `\n\n${quote(outcome.result.summary.trim())}` : "";
    if (outcome.kind === "no_changes") return `🤖 **Running Agent** changed nothing for this (asked by ${who}).${summary}`;
    const commit = outcome.result.commit ? `\`${outcome.result.commit.slice(0, 12)}\`` : "a commit";
    return `🤖 **Running Agent** addressed this in ${commit} on \`${outcome.result.branch ?? this.followUp?.head ?? "the branch"}\` (asked by ${who}).${summary}`;
  }

  /** The comment's Markdown. */
  render(): string {
    const lines = [this.headline(), ""];
    for (const phase of PHASES) {
      const state = this.phases.get(phase);
      const symbol = SYMBOL[state?.status ?? "pending"];
      const time = state?.durationMs !== undefined ? ` · ${formatSeconds(state.durationMs)}` : "";
      const doing = state?.status === "started" && this.activity && !this.outcome ? `: ${inlineCode(this.activity)}` : "";
      lines.push(`- ${symbol} ${state?.status === "started" ? `**${phase}**` : phase}${time}${doing}`);
    }
    const closing = this.closing();
    if (closing.length > 0) lines.push("", ...closing);
    return lines.join("\n");
  }

  private headline(): string {
    const who = `@${this.requestedBy}`;
    switch (this.outcome?.kind) {
      case undefined:
        return this.state === "queued"
          ? `🤖 **Running Agent** will start on this when a slot is free (asked by ${who}).`
          : `🤖 **Running Agent** is working on this (asked by ${who}).`;
      case "completed":
        return `🤖 **Running Agent** finished (asked by ${who}).`;
      case "no_changes":
        return `🤖 **Running Agent** finished without changes (asked by ${who}).`;
      case "failed":
        return `🤖 **Running Agent** failed (asked by ${who}).`;
    }
  }

  private closing(): string[] {
    const outcome = this.outcome;
    if (!outcome) return [];
    if (outcome.kind === "failed") {
      const where = outcome.phase ? ` in the ${outcome.phase} phase` : "";
      return [`Failed${where}: \`${outcome.code}\``, "", quote(outcome.message)];
    }
    const summary = outcome.result.summary.trim() ? [quote(outcome.result.summary.trim()), ""] : [];
    const followUp = this.followUp;
    if (followUp) {
      if (outcome.kind === "no_changes") return [...summary, `The agent changed nothing, so \`${followUp.head}\` is as it was.`];
      const commit = outcome.result.commit ? `\`${outcome.result.commit.slice(0, 12)}\`` : "a commit";
      const link = outcome.result.pullRequest ? `: ${outcome.result.pullRequest.url}` : ".";
      return [...summary, `Pushed ${commit} to \`${outcome.result.branch ?? followUp.head}\`, updating pull request #${followUp.number}${link}`];
    }
    if (outcome.kind === "no_changes") return [...summary, "The agent changed nothing, so there is no pull request."];
    const pullRequest = outcome.result.pullRequest;
    return [...summary, pullRequest ? `Pull request #${pullRequest.number}: ${pullRequest.url}` : `Pushed ${outcome.result.branch ?? "the branch"}.`];
  }
}

function formatSeconds(milliseconds: number): string {
  return `${(milliseconds / 1000).toFixed(1)}s`;
}

/** A short code span that Markdown cannot break out of. */
function inlineCode(text: string): string {
  const clean = text.replace(/[`\r\n]+/g, " ").trim();
  return `\`${clean.length > 80 ? `${clean.slice(0, 79)}…` : clean}\``;
}

function quote(text: string): string {
  return text
    .split("\n")
    .slice(0, 20)
    .map((line) => `> ${line}`)
    .join("\n");
}
