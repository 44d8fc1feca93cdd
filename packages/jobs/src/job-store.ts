import type { JobFailure, JobListFilter, JobRecord, JobSecrets, JobStatus, StoredJobEvent, SubmitJobInput } from "./job-record.js";
import type { JobError } from "./job-error.js";
import type { AgentTaskResult } from "@running-agent/core";

/** A job a worker has claimed: the lease is held until it expires or the job ends. */
export interface ClaimedJob {
  /** The job as it is once claimed: `running`, its attempt counted, this worker's id set. */
  job: JobRecord;
  /** The job's secrets, or why they cannot be had (the worker fails the job with it). */
  secrets: JobSecrets | JobError;
  /** The last stored event's seq: the attempt's events continue after it. */
  lastSeq: number;
}

/** A worker as the store knows it: what {@link JobStore.liveWorkers} answers. */
export interface WorkerRecord {
  /** The worker's id, as it passes to every fenced call. */
  id: string;
  /** The host the worker runs on (`os.hostname()`). */
  hostname: string;
  /** The worker's process id on that host. */
  pid: number;
  /** When the worker first registered, ms since the epoch. */
  startedAt: number;
  /** Its last heartbeat, ms since the epoch. */
  seenAt: number;
}

/** How a job ends. */
export type JobOutcome =
  | {
      /** The task ran to its end: a pushed branch, or nothing to commit. */
      status: "completed" | "no_changes";
      /** What `runAgentTask` returned. */
      result: AgentTaskResult;
    }
  | {
      /** The task failed for good, or was cancelled. */
      status: "failed" | "cancelled";
      /** Why, secrets redacted. */
      error: JobFailure;
    };

/**
 * The contract both stores implement (the embedded SQLite store and PostgreSQL), checked by one
 * conformance suite (`testJobStore` in `@running-agent/jobs/testing`). Every method that a
 * worker calls with its id is fenced: it changes a job only while that worker holds its lease.
 */
export interface JobStore {
  /** Which store this is: the embedded SQLite store (one process) or PostgreSQL (a fleet of workers). */
  readonly kind: "embedded" | "postgres";
  /** Where job secrets live: in this process's memory only (embedded), or sealed in the store with the operator's key. */
  readonly secretStorage: "memory" | "encrypted";

  /** Adds a job, or returns the job that already has `input.key` (`created: false`; its secrets are not replaced). */
  submit(input: SubmitJobInput): Promise<{
    /** The new job, or the one that already had the key. */
    job: JobRecord;
    /** False when a job with `input.key` already existed and was returned instead. */
    created: boolean;
  }>;
  /** The job with this id; undefined for an unknown id. */
  get(id: string): Promise<JobRecord | undefined>;
  /** The job submitted with this idempotency key; undefined when none was. */
  getByKey(key: string): Promise<JobRecord | undefined>;
  /** Newest first. */
  list(filter: JobListFilter): Promise<JobRecord[]>;
  /** How many jobs are in each status; a status with no job may be absent. */
  countByStatus(): Promise<Partial<Record<JobStatus, number>>>;
  /** Jobs whose revision is above `revision`, oldest change first, at most `limit`. */
  changedSince(revision: number, limit: number): Promise<JobRecord[]>;
  /** The highest revision so far. */
  currentRevision(): Promise<number>;
  /**
   * Cancels a queued job at once; flags a running one, whose worker stops it at its next
   * heartbeat. Returns the job as it now is, undefined for an unknown id.
   */
  requestCancel(id: string, reason: string): Promise<JobRecord | undefined>;
  /** Adds or replaces labels of a job (e.g. `retriedBy`); false for an unknown id. */
  addLabels(id: string, labels: Record<string, string>): Promise<boolean>;
  /** Events after `afterSeq`, in order. */
  events(id: string, afterSeq?: number): Promise<StoredJobEvent[]>;

  /** Records (or refreshes) a worker; also its heartbeat. */
  registerWorker(worker: Omit<WorkerRecord, "seenAt">): Promise<void>;
  /** Forgets a worker that stops gracefully, so it no longer counts as live. Its leases are left to expire or be released. */
  unregisterWorker(workerId: string): Promise<void>;
  /** Workers seen within `withinMs`. */
  liveWorkers(withinMs: number): Promise<WorkerRecord[]>;
  /** Takes up to `limit` queued jobs that are due, oldest first, each with a lease of `leaseMs`. */
  claim(workerId: string, limit: number, leaseMs: number): Promise<ClaimedJob[]>;
  /** Extends the leases the worker still holds; says which it holds and which were asked to cancel. */
  renewLeases(
    workerId: string,
    jobIds: readonly string[],
    leaseMs: number,
  ): Promise<{
    /** Ids of the jobs whose lease was extended: the worker still holds them. Any other id was lost and must stop. */
    held: string[];
    /** Ids among `held` whose cancel was asked: the worker aborts them. */
    cancelRequested: string[];
  }>;
  /** Appends events (with the seqs the worker gave them) and the job's current phase. False: the lease is lost. */
  appendEvents(workerId: string, jobId: string, events: readonly StoredJobEvent[], phase?: string): Promise<boolean>;
  /** Ends the job. False: the lease is lost (another worker has or had it) and nothing was written. */
  finish(workerId: string, jobId: string, outcome: JobOutcome): Promise<boolean>;
  /**
   * Puts the job back in the queue: after a retryable failure (`error`, counted, waits the job's
   * backoff) or on a graceful stop (no error, not counted, due at once). False: the lease is lost.
   */
  requeue(workerId: string, jobId: string, error?: JobFailure): Promise<boolean>;
  /**
   * Jobs whose lease expired (their worker died or stalled): queued again, or failed with
   * LEASE_EXPIRED when no attempt is left, or cancelled when a cancel was asked. Returns their ids.
   */
  recoverExpiredLeases(): Promise<{
    /** Ids put back in the queue for another attempt. */
    requeued: string[];
    /** Ids failed with `LEASE_EXPIRED`: no attempt was left. */
    failed: string[];
    /** Ids cancelled: a cancel was asked before the worker went. */
    cancelled: string[];
  }>;
  /** In-process stores tell watchers at once that a job changed or got events; others are polled. */
  onChange?(listener: (jobId: string) => void): () => void;
  /** Closes the database (PostgreSQL: its connection pool); the embedded store also forgets the secrets it held in memory. Call once, after the workers stopped. */
  close(): Promise<void>;
}
