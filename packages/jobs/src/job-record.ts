import type { AgentTaskOptions, AgentTaskResult, Phase } from "@running-agent/core";

/**
 * A job's life: `queued` → `running` → `completed` | `no_changes` | `failed` | `cancelled`.
 * A retryable failure or a lost worker puts it back to `queued` (with its attempt counted).
 */
export const JOB_STATUSES = ["queued", "running", "completed", "no_changes", "failed", "cancelled"] as const;
/** One of {@link JOB_STATUSES}. */
export type JobStatus = (typeof JOB_STATUSES)[number];

/** Statuses a job never leaves. */
export const FINISHED_JOB_STATUSES: ReadonlySet<JobStatus> = new Set(["completed", "no_changes", "failed", "cancelled"]);

/** The options of `runAgentTask` a store can keep: plain data, no providers, callbacks or secrets. */
export const STORABLE_OPTION_NAMES = [
  "repo",
  "task",
  "baseBranch",
  "branch",
  "branchPrefix",
  "setupCommands",
  "cloneDepth",
  "author",
  "committer",
  "coAuthors",
  "pullRequest",
  "resources",
  "network",
  "timeoutMs",
  "agentTimeoutMs",
  "modelProxy",
  "allowRepoAgentConfig",
  "checks",
  "maxFixRounds",
  "onChecksFailed",
  "gitStallTimeoutMs",
] as const;

/** What a job runs: the storable options of `runAgentTask`, and a model named as `provider/model` (its key stays with the worker). */
export type JobSpec = Pick<AgentTaskOptions, (typeof STORABLE_OPTION_NAMES)[number]> & {
  /** `provider/model`, e.g. `google/gemini-2.5-pro`; the worker's default when absent. */
  model?: string;
};

/** Secrets of one job; never stored in plain text. */
export interface JobSecrets {
  /** The seed's per-request `github_token`: passed to the Git host as `gitToken`. */
  gitToken?: string;
}

/** Why a job failed or was cancelled. */
export interface JobFailure {
  /** The error's code: an `ErrorCode` of the core or a {@link JobErrorCode}. */
  code: string;
  /** The error's message, redacted. */
  message: string;
  /** The loop's phase it happened in, when the core said. */
  phase?: string;
}

/** One job as a store keeps it. Holds no secret: only whether it has any. */
export interface JobRecord {
  /** The job's id, made by the store at submit. */
  id: string;
  /** The caller's idempotency key: a second submit with the same key returns this job. */
  key: string | undefined;
  /** Where the job is in its life. */
  status: JobStatus;
  /** What runs. `spec.branch` is always set: decided once at submit, so that every attempt updates the same branch and pull request. */
  spec: JobSpec & {
    /** The branch every attempt pushes to. */
    branch: string;
  };
  /** The caller's own facts (a user id, the job this one retries); filterable with {@link JobListFilter.label}. */
  labels: Record<string, string>;
  /** True when the job was submitted with secrets (kept sealed, never in the record). */
  hasSecrets: boolean;
  /** Attempts started so far (a rerun after a lost worker counts). */
  attempts: number;
  /** The most attempts the job gets, the first included. */
  maxAttempts: number;
  /** The worker holding the job's lease while it runs. */
  workerId: string | undefined;
  /** A cancel was asked for; the worker running it stops it at its next heartbeat. */
  cancelRequested: boolean;
  /** Milliseconds since the epoch. */
  createdAt: number;
  /** When the last attempt started, in ms since the epoch. */
  startedAt: number | undefined;
  /** When the job finished, in ms since the epoch. */
  finishedAt: number | undefined;
  /** The phase the job is in, or last was in. */
  phase: Phase | undefined;
  /** The task's result once it completed or ended with no changes. */
  result: AgentTaskResult | undefined;
  /** Why it failed or was cancelled; while queued again after a retryable failure, why the last attempt failed. */
  error: JobFailure | undefined;
  /** Grows with every change of the job, across the whole store: what status watchers resume from. */
  revision: number;
}

/** What {@link JobStore.submit} takes. */
export interface SubmitJobInput {
  /** What to run. */
  spec: JobSpec;
  /** An idempotency key: a second submit with the same key returns the first job. */
  key?: string;
  /** Secrets for this job only, sealed by the store. */
  secrets?: JobSecrets;
  /** The caller's own facts, kept with the job and filterable. */
  labels?: Record<string, string>;
  /** Default 3. */
  maxAttempts?: number;
  /** The first retry waits this long, every next one twice as long. Default 5000 ms. */
  retryDelayMs?: number;
}

/** A stored event with its place in the job's stream (the SSE id). */
export interface StoredJobEvent {
  /** Its place in the job's stream; later events have higher ones. */
  seq: number;
  /** The event as stored: a redacted `StoredAgentEvent`. */
  event: unknown;
}

/** Which jobs {@link JobStore.list} returns. */
export interface JobListFilter {
  /** The most jobs returned, newest first. */
  limit: number;
  /** Only jobs with this status. */
  status?: JobStatus | undefined;
  /** Only jobs with this label value, e.g. `{ userId: "ana" }`. */
  label?: Record<string, string> | undefined;
  /** Only jobs on this repository (`spec.repo` exactly as submitted). */
  repo?: string | undefined;
  /** Only jobs whose task or repository contains this text (case-insensitive). */
  search?: string | undefined;
  /** Skips this many of the matching jobs (paging, newest first). Default 0. */
  offset?: number | undefined;
}
