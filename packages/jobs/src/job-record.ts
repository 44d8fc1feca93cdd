import type { AgentTaskOptions, AgentTaskResult, Phase } from "@running-agent/core";

/**
 * A job's life: `queued` → `running` → `completed` | `no_changes` | `failed` | `cancelled`.
 * A retryable failure or a lost worker puts it back to `queued` (with its attempt counted).
 */
export const JOB_STATUSES = ["queued", "running", "completed", "no_changes", "failed", "cancelled"] as const;
/** One of {@link JOB_STATUSES}: where a job is in its life. */
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
  /** The model as `provider/model` (such as `openai/gpt-4o`); the worker supplies the provider's key and address. Default: the worker's model. */
  model?: string;
};

/** Secrets of one job; never stored in plain text. */
export interface JobSecrets {
  /** The seed's per-request `github_token`: passed to the Git host as `gitToken`. */
  gitToken?: string;
}

/** Why a job failed or was cancelled. */
export interface JobFailure {
  /** A core `ErrorCode` (`ABORTED` for a cancel, `INTERNAL` for an unexpected error) or a {@link JobErrorCode}. */
  code: string;
  /** The error's message, with the job's secrets redacted. */
  message: string;
  /** The loop phase the error came from, when the error said so. */
  phase?: string;
}

/** One job as a store keeps it. Holds no secret: only whether it has any. */
export interface JobRecord {
  /** The job's id, made by the store at submit. */
  id: string;
  /** The caller's idempotency key: a second submit with the same key returns this job. */
  key: string | undefined;
  /** Where the job is in its life; see {@link JOB_STATUSES}. */
  status: JobStatus;
  /** What runs. `spec.branch` is always set: decided once at submit, so that every attempt updates the same branch and pull request. */
  spec: JobSpec & {
    /** The branch every attempt pushes to, decided at submit (the spec's own, or one made from `branchPrefix`). */
    branch: string;
  };
  /** The caller's own facts (a user id, the job this one retries); filterable with {@link JobListFilter.label}. */
  labels: Record<string, string>;
  /** Whether the job was submitted with secrets (kept sealed, apart from the record). */
  hasSecrets: boolean;
  /** Attempts started so far (a rerun after a lost worker counts). */
  attempts: number;
  /** Attempts allowed before a retryable failure or a lost worker fails the job (the submit's `maxAttempts`, default 3). */
  maxAttempts: number;
  /** The worker holding the job's lease while it runs. */
  workerId: string | undefined;
  /** Whether `cancel` was asked while the job ran; its worker aborts it at its next lease renewal. */
  cancelRequested: boolean;
  /** Milliseconds since the epoch. */
  createdAt: number;
  /** When the first attempt started, in ms since the epoch; `undefined` while it never ran. */
  startedAt: number | undefined;
  /** When the job reached a finished status, in ms since the epoch; `undefined` before. */
  finishedAt: number | undefined;
  /** The phase the job is in, or last was in. */
  phase: Phase | undefined;
  /** What `runAgentTask` returned, once the job is `completed` or `no_changes`. */
  result: AgentTaskResult | undefined;
  /** Why it failed or was cancelled; while queued again after a retryable failure, why the last attempt failed. */
  error: JobFailure | undefined;
  /** Grows with every change of the job, across the whole store: what status watchers resume from. */
  revision: number;
}

/** What {@link JobStore.submit} takes. */
export interface SubmitJobInput {
  /** What the job runs. */
  spec: JobSpec;
  /** An idempotency key: a second submit with the same key returns the first job instead of a new one. */
  key?: string;
  /** Secrets for this job only: the fleet store seals them, the embedded store keeps them in memory; never stored in plain text. */
  secrets?: JobSecrets;
  /** The caller's own facts to keep with the job and filter on. Default none. */
  labels?: Record<string, string>;
  /** Default 3. */
  maxAttempts?: number;
  /** The first retry waits this long, every next one twice as long. Default 5000 ms. */
  retryDelayMs?: number;
}

/** A stored event with its place in the job's stream (the SSE id). */
export interface StoredJobEvent {
  /** The event's number in the job's stream, rising across attempts (the SSE id); resume a watch after it. */
  seq: number;
  /** The stored form of the event, as made by {@link StoredEventEncoder} (secrets redacted). */
  event: unknown;
}

/** What {@link JobStore.list} takes: which jobs to return, newest first. */
export interface JobListFilter {
  /** At most this many jobs. */
  limit: number;
  /** Only jobs in this status. */
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
