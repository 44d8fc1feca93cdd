import { randomUUID } from "node:crypto";
import { RunningAgentError, type AgentTaskEvent, type AgentTaskHandle, type AgentTaskOptions } from "@running-agent/core";
import { FINISHED_STATUSES, RETRYABLE_STATUSES, type JobError, type JobRecord } from "./job-record.js";
import type { JobStore } from "./job-store.js";
import { redactSecrets } from "@running-agent/jobs";
import { StoredEventEncoder, type StoredAgentEvent } from "@running-agent/jobs";

/** Starts one agent task; `startAgentTask` from core, or anything with its shape. */
export type RunTask = (options: AgentTaskOptions) => AgentTaskHandle;

/** What a job's live stream carries: an agent event as stored, with its sequence number, or the job's new state. */
export type JobStreamMessage = { kind: "event"; seq: number; event: StoredAgentEvent } | { kind: "status"; job: JobRecord };

/** A request to run a task. */
export interface JobSubmission {
  repoUrl: string;
  task: string;
  userId?: string | undefined;
  /** Kept in memory only, for this job's run. */
  githubToken?: string | undefined;
}

export interface JobQueueOptions {
  store: JobStore;
  runTask: RunTask;
  /** Sandbox, Git host, model and anything else every task gets. */
  taskDefaults: Partial<AgentTaskOptions>;
  /** How many jobs run at once. */
  concurrency: number;
  /** Strings removed from everything stored (e.g. the API key). Per-job tokens are added automatically. */
  secrets?: string[];
  log?: (line: string) => void;
}

/** A typed refusal the HTTP layer turns into a 4xx. */
export class JobRequestError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

interface RunningJob {
  handle: AgentTaskHandle | undefined;
  /** Set when a user cancels; the job ends `cancelled`. */
  cancelRequested: boolean;
  /** Set on shutdown; the job ends `interrupted` so that it can be retried. */
  shutdownRequested: boolean;
  done: Promise<void>;
}

/**
 * Runs stored jobs with bounded concurrency, oldest first, and fans their events out to
 * subscribers. Tokens live in this object only: never in the store, never in a log line.
 */
export class JobQueue {
  private readonly running = new Map<string, RunningJob>();
  private readonly tokens = new Map<string, string>();
  private readonly subscribers = new Map<string, Set<(message: JobStreamMessage) => void>>();
  private readonly statusSubscribers = new Set<(job: JobRecord) => void>();
  private closing = false;

  constructor(private readonly options: JobQueueOptions) {}

  get runningCount(): number {
    return this.running.size;
  }

  /**
   * Called once at startup: jobs the previous process left running are marked `interrupted`
   * (they can be retried), and queued jobs whose token died with that process are marked
   * `interrupted` too, instead of running without the credentials they were submitted with.
   */
  recover(): { interrupted: string[]; tokenLost: string[] } {
    const now = Date.now();
    const interrupted: string[] = [];
    for (const job of this.options.store.listRunning()) {
      this.options.store.finish(job.id, "interrupted", now, {
        error: { code: "INTERRUPTED", message: `The server stopped while this job was running. Retry it with POST /jobs/${job.id}/retry.`, ...(job.phase ? { phase: job.phase } : {}) },
      });
      interrupted.push(job.id);
    }
    const tokenLost: string[] = [];
    for (const job of this.options.store.nextQueued(Number.MAX_SAFE_INTEGER)) {
      if (!job.hasGithubToken || this.tokens.has(job.id)) continue;
      this.options.store.finish(job.id, "interrupted", now, { error: tokenLostError(job.id) });
      tokenLost.push(job.id);
    }
    return { interrupted, tokenLost };
  }

  submit(submission: JobSubmission): JobRecord {
    const id = randomUUID();
    // The token goes into memory before the row exists, so that pump() never sees the job without it.
    if (submission.githubToken) this.tokens.set(id, submission.githubToken);
    const job = this.options.store.insert({
      id,
      repoUrl: submission.repoUrl,
      task: submission.task,
      userId: submission.userId,
      hasGithubToken: submission.githubToken !== undefined,
      createdAt: Date.now(),
    });
    this.publishStatus(id);
    this.pump();
    return job;
  }

  /** Starts a new job with the same repo and task. A job submitted with a token needs it again once the server has restarted. */
  retry(id: string, githubToken: string | undefined): JobRecord {
    const previous = this.options.store.get(id);
    if (!previous) throw new JobRequestError(404, "not_found", `No job with id ${id}.`);
    if (!RETRYABLE_STATUSES.has(previous.status)) {
      throw new JobRequestError(409, "not_retryable", `Job ${id} is ${previous.status}; only failed, cancelled or interrupted jobs can be retried.`);
    }
    if (previous.retriedBy) throw new JobRequestError(409, "already_retried", `Job ${id} was already retried as job ${previous.retriedBy}.`);
    const token = githubToken ?? this.tokens.get(id);
    if (previous.hasGithubToken && token === undefined) {
      throw new JobRequestError(
        409,
        "github_token_lost",
        `Job ${id} was submitted with a github_token, which the server keeps in memory only and lost when it restarted. Send it again: POST /jobs/${id}/retry with {"github_token": "..."}.`,
      );
    }
    const newId = randomUUID();
    if (token !== undefined) this.tokens.set(newId, token);
    this.tokens.delete(id);
    const job = this.options.store.insertRetry(id, {
      id: newId,
      repoUrl: previous.repoUrl,
      task: previous.task,
      userId: previous.userId,
      hasGithubToken: token !== undefined,
      createdAt: Date.now(),
    });
    this.publishStatus(newId);
    this.publishStatus(id);
    this.pump();
    return job;
  }

  /** Cancels a queued job at once, or a running one once its sandbox is torn down. */
  async cancel(id: string): Promise<JobRecord> {
    const job = this.options.store.get(id);
    if (!job) throw new JobRequestError(404, "not_found", `No job with id ${id}.`);
    if (FINISHED_STATUSES.has(job.status)) throw new JobRequestError(409, "not_cancellable", `Job ${id} has already ended (${job.status}).`);
    const running = this.running.get(id);
    if (running) {
      running.cancelRequested = true;
      await running.handle?.cancel("Cancelled through the API.");
      await running.done;
    } else if (this.options.store.finish(id, "cancelled", Date.now(), { error: { code: "ABORTED", message: "Cancelled before it started." } })) {
      this.tokens.delete(id);
      this.publishStatus(id);
    }
    return this.options.store.get(id)!;
  }

  /** Live messages for one job. Returns the unsubscribe function. */
  subscribe(id: string, listener: (message: JobStreamMessage) => void): () => void {
    let set = this.subscribers.get(id);
    if (!set) {
      set = new Set();
      this.subscribers.set(id, set);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.subscribers.delete(id);
    };
  }

  /** Every job's status changes (new, started, ended, retried). Returns the unsubscribe function. */
  subscribeToStatuses(listener: (job: JobRecord) => void): () => void {
    this.statusSubscribers.add(listener);
    return () => this.statusSubscribers.delete(listener);
  }

  /** Starts queued jobs while there is room. */
  pump(): void {
    if (this.closing) return;
    const room = this.options.concurrency - this.running.size;
    if (room <= 0) return;
    for (const job of this.options.store.nextQueued(room)) {
      if (this.running.has(job.id)) continue;
      this.start(job);
    }
  }

  /**
   * Stops taking jobs and cancels the running ones; they end `interrupted` and can be
   * retried after a restart. Queued jobs stay queued and run on the next start.
   */
  async close(): Promise<void> {
    this.closing = true;
    const stopping = [...this.running.values()].map(async (running) => {
      running.shutdownRequested = true;
      await running.handle?.cancel("The server is shutting down.").catch(() => undefined);
      await running.done;
    });
    await Promise.all(stopping);
  }

  private start(job: JobRecord): void {
    const store = this.options.store;
    const token = this.tokens.get(job.id);
    const secrets = [...(this.options.secrets ?? []), ...(token ? [token] : [])];
    const entry: RunningJob = { handle: undefined, cancelRequested: false, shutdownRequested: false, done: Promise.resolve() };
    this.running.set(job.id, entry);
    store.markRunning(job.id, Date.now());
    this.publishStatus(job.id);
    this.options.log?.(`job ${job.id} started`);

    const encoder = new StoredEventEncoder(secrets);
    const onEvent = (event: AgentTaskEvent): void => {
      const clean = encoder.encode(event);
      const seq = store.appendEvent(job.id, clean);
      if (clean.type === "phase" && clean.status === "started") store.setPhase(job.id, clean.phase);
      this.publish(job.id, { kind: "event", seq, event: clean });
    };

    entry.done = (async () => {
      try {
        const handle = this.options.runTask({
          ...this.options.taskDefaults,
          repo: job.repoUrl,
          task: job.task,
          taskId: job.id,
          ...(token ? { gitToken: token } : {}),
          secrets: [...(this.options.taskDefaults.secrets ?? []), ...secrets],
          onEvent,
        });
        entry.handle = handle;
        const result = await handle.result;
        store.finish(job.id, result.status === "no_changes" ? "no_changes" : "completed", Date.now(), {
          result: JSON.parse(redactSecrets(JSON.stringify(result), secrets)),
        });
      } catch (error) {
        const jobError = toJobError(error, secrets);
        const status = entry.shutdownRequested ? "interrupted" : entry.cancelRequested ? "cancelled" : "failed";
        if (entry.shutdownRequested) {
          jobError.code = "INTERRUPTED";
          jobError.message = `The server shut down while this job was running. Retry it with POST /jobs/${job.id}/retry.`;
        }
        store.finish(job.id, status, Date.now(), { error: jobError });
      } finally {
        this.running.delete(job.id);
        // A job ended by shutdown keeps its token so that a retry in this process could use it; the process is ending anyway.
        if (!entry.shutdownRequested) this.tokens.delete(job.id);
        const finished = store.get(job.id);
        this.options.log?.(`job ${job.id} ended: ${finished?.status ?? "unknown"}`);
        this.publishStatus(job.id);
        this.pump();
      }
    })();
  }

  private publishStatus(id: string): void {
    const job = this.options.store.get(id);
    if (!job) return;
    this.publish(id, { kind: "status", job });
    for (const listener of this.statusSubscribers) {
      try {
        listener(job);
      } catch {
        // as in publish(): a broken subscriber must not stop the queue
      }
    }
  }

  private publish(id: string, message: JobStreamMessage): void {
    for (const listener of this.subscribers.get(id) ?? []) {
      try {
        listener(message);
      } catch {
        // A broken subscriber (a closed connection) must not stop the job.
      }
    }
  }
}

function tokenLostError(id: string): JobError {
  return {
    code: "GITHUB_TOKEN_LOST",
    message: `This job was submitted with a github_token, which the server keeps in memory only and lost when it restarted. Retry it with the token: POST /jobs/${id}/retry.`,
  };
}

function toJobError(error: unknown, secrets: string[]): JobError {
  if (RunningAgentError.isInstance(error)) {
    const json = error.toJSON();
    return {
      code: json.code,
      message: redactSecrets(json.message, secrets),
      ...(json.phase ? { phase: json.phase } : {}),
    };
  }
  return { code: "INTERNAL", message: redactSecrets(error instanceof Error ? error.message : String(error), secrets) };
}
