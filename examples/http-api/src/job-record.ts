import type { AgentTaskResult, Phase } from "@running-agent/core";
import type { JobSpec, StoredAgentEvent } from "@running-agent/jobs";

/**
 * A job's life: `queued` → `running` → `completed` | `no_changes` | `failed` | `cancelled`.
 * `interrupted`: kept for old clients; jobs no longer end so (a job whose worker stopped runs again).
 */
export const JOB_STATUSES = ["queued", "running", "completed", "no_changes", "failed", "cancelled", "interrupted"] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

/** Statuses a job never leaves (except by a retry, which makes a new job). */
export const FINISHED_STATUSES: ReadonlySet<JobStatus> = new Set(["completed", "no_changes", "failed", "cancelled", "interrupted"]);

/** Statuses from which `POST /jobs/{id}/retry` starts a new attempt. */
export const RETRYABLE_STATUSES: ReadonlySet<JobStatus> = new Set(["failed", "cancelled", "interrupted"]);

/**
 * Whether a retry can help: a failed, cancelled or interrupted job not retried yet, except one
 * refused by validation (bad options, an unknown repository or branch), which would fail the
 * same way again.
 */
export function isRetryable(job: Pick<JobRecord, "status" | "error" | "retriedBy">): boolean {
  return RETRYABLE_STATUSES.has(job.status) && job.retriedBy === undefined && !(job.status === "failed" && job.error?.phase === "validate");
}

/** Why a job failed, as stored and served (a RunningAgentError's JSON, or the server's own code). */
export interface JobError {
  code: string;
  message: string;
  phase?: string;
}

/** One job as the store keeps it. Never holds a token: only whether one was given. */
export interface JobRecord {
  id: string;
  status: JobStatus;
  repoUrl: string;
  task: string;
  /** The checks it runs, its fix rounds and the policy for a last failure, as submitted. */
  verify: Pick<JobSpec, "checks" | "maxFixRounds" | "onChecksFailed">;
  /** The base branch, model and pull request options, as submitted. */
  options: Pick<JobSpec, "baseBranch" | "model" | "pullRequest">;
  userId: string | undefined;
  /** The submitter sent a `github_token` (kept in memory only). */
  hasGithubToken: boolean;
  /** The job this one retries. */
  retryOf: string | undefined;
  /** The job that retried this one. */
  retriedBy: string | undefined;
  /** Milliseconds since the epoch. */
  createdAt: number;
  startedAt: number | undefined;
  finishedAt: number | undefined;
  /** The phase the job is in or last was in. */
  phase: Phase | undefined;
  result: AgentTaskResult | undefined;
  error: JobError | undefined;
}

/** A stored event with its position in the job's stream (the SSE event id). */
export interface StoredJobEvent {
  seq: number;
  event: StoredAgentEvent;
}
