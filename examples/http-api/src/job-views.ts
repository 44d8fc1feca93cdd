import type { AgentRound, TokenUsage, Verification } from "@running-agent/core";
import { isRetryable, type JobError, type JobRecord, type JobStatus } from "./job-record.js";
import type { StoredAgentEvent } from "@running-agent/jobs";

export type { JobError, JobStatus, StoredAgentEvent };
/** Token usage and cost as `/result` serves it (core's TokenUsage). */
export type TokenUsageView = TokenUsage;
import type { StoredJobEvent } from "./job-record.js";

/** `GET /status/{job_id}` and each entry of `GET /jobs` (snake_case, as the seed answers). */
export interface JobStatusView {
  job_id: string;
  status: JobStatus;
  repo_url: string;
  task: string;
  user_id: string | null;
  phase: string | null;
  pr_url: string | null;
  /** Whether the pull request was opened as a draft (null without one). */
  pr_draft: boolean | null;
  error: JobError | null;
  retry_of: string | null;
  retried_by: string | null;
  /** Whether `POST /jobs/{job_id}/retry` can help (not for a job validation refused: it would fail the same way). */
  retryable: boolean;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
}

/** `GET /config`: what a client's form needs to know about this server. */
export interface ServerConfigView {
  git_host: { id: string | null; description: string; repo_url_example: string };
  auth: "api-key" | "none";
  protect_reads: boolean;
  /** The advanced submit fields accepted, and the models a submit may choose (none: the field is refused). */
  submit: { base_branch: boolean; draft: boolean; labels: boolean; models: string[] };
  /** The loop's phases, in the order they run. */
  phases: string[];
}

/** `GET /jobs`: a page of jobs, newest first; `next_offset` is null on the last page. */
export interface JobListView {
  jobs: JobStatusView[];
  next_offset: number | null;
}

/** `GET /result/{job_id}`: the status plus what the run produced. */
export interface JobResultView extends JobStatusView {
  pull_request: { number: number; url: string; title: string; head: string; base: string; draft: boolean } | null;
  /** The branch the job started from (the pull request's base). */
  base_branch: string | null;
  branch: string | null;
  commit: string | null;
  /** `provider/model`. */
  model: string | null;
  summary: string | null;
  changes: { path: string; status: string }[];
  /** Milliseconds per phase and `total`. */
  timings: Record<string, number>;
  usage: TokenUsage | null;
  /** Usage and time of each agent round (round 0, then each fix round). */
  agent_rounds: AgentRound[];
  /** The checks' outcome per round, when the job ran checks. */
  checks: Verification | null;
  /** Human-readable lines built from the job's (already redacted) events. */
  logs: string[];
}

export function toStatusView(job: JobRecord): JobStatusView {
  return {
    job_id: job.id,
    status: job.status,
    repo_url: job.repoUrl,
    task: job.task,
    user_id: job.userId ?? null,
    phase: job.phase ?? null,
    pr_url: job.result?.pullRequest?.url ?? null,
    pr_draft: job.result?.pullRequest ? job.result.pullRequest.draft === true : null,
    error: job.error ?? null,
    retry_of: job.retryOf ?? null,
    retried_by: job.retriedBy ?? null,
    retryable: isRetryable(job),
    created_at: new Date(job.createdAt).toISOString(),
    started_at: job.startedAt === undefined ? null : new Date(job.startedAt).toISOString(),
    finished_at: job.finishedAt === undefined ? null : new Date(job.finishedAt).toISOString(),
  };
}

export function toResultView(job: JobRecord, events: StoredJobEvent[]): JobResultView {
  const result = job.result;
  const pullRequest = result?.pullRequest;
  return {
    ...toStatusView(job),
    pull_request: pullRequest
      ? { number: pullRequest.number, url: pullRequest.url, title: pullRequest.title, head: pullRequest.head, base: pullRequest.base, draft: pullRequest.draft === true }
      : null,
    base_branch: result?.baseBranch ?? job.options.baseBranch ?? null,
    branch: result?.branch ?? null,
    commit: result?.commit ?? null,
    model: result?.model ?? job.options.model ?? null,
    summary: result?.summary ?? null,
    changes: (result?.changes ?? []).map((change) => ({ path: change.path, status: change.status })),
    timings: timingsOf(job, events),
    usage: result ? { ...result.usage } : null,
    agent_rounds: result?.agentRounds ?? [],
    checks: result?.verification ?? null,
    logs: logLinesOf(events.map((stored) => stored.event)),
  };
}

/** The result's own timings, or, for a job that did not finish, the durations its phase events reported. */
function timingsOf(job: JobRecord, events: StoredJobEvent[]): Record<string, number> {
  if (job.result) {
    return Object.fromEntries(
      Object.entries(job.result.timings)
        .filter((entry): entry is [string, number] => typeof entry[1] === "number")
        .map(([phase, ms]) => [phase, Math.round(ms)]),
    );
  }
  const timings: Record<string, number> = {};
  for (const { event } of events) {
    if (event.type === "phase" && event.durationMs !== undefined) timings[event.phase] = Math.round(event.durationMs);
  }
  if (job.startedAt !== undefined && job.finishedAt !== undefined) timings.total = job.finishedAt - job.startedAt;
  return timings;
}

/**
 * One line per event worth reading; streamed agent text becomes one line per text part, with its
 * text so far, rebuilt from the deltas (see {@link StoredAgentEvent}).
 */
export function logLinesOf(events: readonly StoredAgentEvent[]): string[] {
  const lines: string[] = [];
  const textByPart = new Map<string, { line: number; text: string }>();
  for (const event of events) {
    if (event.type === "agent.text") {
      const part = textByPart.get(event.partId);
      const text = event.text ?? (part?.text ?? "") + event.delta;
      const line = `${timeOf(event.at)} agent: ${text}`;
      if (part === undefined) {
        textByPart.set(event.partId, { line: lines.length, text });
        lines.push(line);
      } else {
        part.text = text;
        lines[part.line] = line;
      }
      continue;
    }
    const text = describeEvent(event);
    if (text !== undefined) lines.push(`${timeOf(event.at)} ${text}`);
  }
  return lines;
}

/** A short line for an event, or undefined for events that only matter live (text deltas, which {@link logLinesOf} assembles per part; running tools). */
export function describeEvent(event: StoredAgentEvent): string | undefined {
  switch (event.type) {
    case "phase":
      return `phase ${event.phase} ${event.status}${event.durationMs !== undefined ? ` (${Math.round(event.durationMs)} ms)` : ""}${event.error ? `: ${event.error.code} ${event.error.message}` : ""}`;
    case "warning":
      return `warning ${event.code}: ${event.message}`;
    case "log":
      return `${event.level}: ${event.message}`;
    case "sandbox":
      return `sandbox ${event.provider} ${event.sandboxId}${event.isolated ? "" : " (not isolated)"}`;
    case "command.output":
      return `${event.command} [${event.stream}] ${event.text.trimEnd()}`;
    case "agent.text":
      return undefined;
    case "agent.tool":
      return event.status === "completed" || event.status === "error" ? `tool ${event.tool} ${event.status}${event.title ? `: ${event.title}` : ""}` : undefined;
    case "agent.file":
      return `edited ${event.path}`;
    case "agent.retry":
      return `model retry ${event.attempt}: ${event.message}`;
    case "agent.usage":
      return undefined;
    case "changes":
      return `changes: ${event.files.map((file) => `${file.status} ${file.path}`).join(", ") || "none"}`;
    case "branch.pushed":
      return `pushed ${event.branch} at ${event.commit.slice(0, 12)}`;
    case "change-request":
      return `${event.created ? "opened" : "updated"} change request #${event.number}: ${event.url}`;
    case "checks.chosen":
      return `checks: ${event.checks.map((check) => check.name).join(", ") || "none"} (${event.source})`;
    case "check.completed":
      return `check ${event.name} ${event.passed ? "passed" : event.timedOut ? "timed out" : `failed (exit ${event.exitCode})`} in round ${event.round} (${Math.round(event.durationMs)} ms)`;
    case "fix-round":
      return `fix round ${event.round} of ${event.maxFixRounds}: ${event.failing.join(", ")} failing`;
  }
}

function timeOf(at: number): string {
  return new Date(at).toISOString().slice(11, 23);
}
