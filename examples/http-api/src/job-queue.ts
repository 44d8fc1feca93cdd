import { FINISHED_JOB_STATUSES, watchJob, watchJobChanges, type JobRecord as StoredJob, type JobSpec, type JobStore, type JobWorker } from "@running-agent/jobs";
import { isRetryable, RETRYABLE_STATUSES, type JobRecord, type StoredJobEvent } from "./job-record.js";
import type { StoredAgentEvent } from "@running-agent/jobs";

/** What a job's live stream carries: an agent event as stored, with its sequence number, or the job's new state. */
export type JobStreamMessage = { kind: "event"; seq: number; event: StoredAgentEvent } | { kind: "status"; job: JobRecord };

/** A request to run a task. */
export interface JobSubmission {
  repoUrl: string;
  task: string;
  userId?: string | undefined;
  /** Kept in this process's memory (embedded store) or sealed with the operator's key (PostgreSQL). */
  githubToken?: string | undefined;
  /** Checks, fix rounds and the policy for a last failure (core's options of the same names). */
  verify?: Pick<JobSpec, "checks" | "maxFixRounds" | "onChecksFailed">;
  /** The branch to start from and open the pull request against (core's `baseBranch`). */
  baseBranch?: string | undefined;
  /** `provider/model`, instead of the server's model. */
  model?: string | undefined;
  /** Core's `pullRequest.draft` and `pullRequest.labels`. */
  pullRequest?: { draft?: boolean; labels?: string[] } | undefined;
}

export interface JobQueueOptions {
  store: JobStore;
  /** The worker of this process (`--role both`); none for `--role api`. */
  worker?: JobWorker | undefined;
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

/** The longest POST /jobs/{id}/cancel waits for the job's worker to stop it. */
const CANCEL_WAIT_MS = 60_000;

/**
 * The API's view of the job store: submit, retry, cancel, read and watch jobs in the API's
 * terms. The jobs themselves run wherever a worker claims them: in this process (`both`) or
 * in any worker process on the same PostgreSQL database.
 */
export class JobQueue {
  /** Tokens of jobs submitted through this process, so that a retry here needs no second copy. */
  private readonly tokens = new Map<string, string>();
  private readonly closing = new AbortController();

  constructor(private readonly options: JobQueueOptions) {}

  get store(): JobStore {
    return this.options.store;
  }

  /** Jobs running in this process's worker. */
  get runningCount(): number {
    return this.options.worker?.runningCount ?? 0;
  }

  async submit(submission: JobSubmission): Promise<JobRecord> {
    const { job } = await this.options.store.submit({
      spec: {
        repo: submission.repoUrl,
        task: submission.task,
        ...submission.verify,
        ...(submission.baseBranch ? { baseBranch: submission.baseBranch } : {}),
        ...(submission.model ? { model: submission.model } : {}),
        ...(submission.pullRequest ? { pullRequest: submission.pullRequest } : {}),
      },
      labels: submission.userId ? { userId: submission.userId } : {},
      ...(submission.githubToken ? { secrets: { gitToken: submission.githubToken } } : {}),
    });
    if (submission.githubToken) this.tokens.set(job.id, submission.githubToken);
    void this.options.worker?.pump();
    return toApiJob(job);
  }

  /** Starts a new job with the same repo and task. A job submitted with a token needs it again unless this process still has it. */
  async retry(id: string, githubToken: string | undefined): Promise<JobRecord> {
    const previous = await this.get(id);
    if (!previous) throw new JobRequestError(404, "not_found", `No job with id ${id}.`);
    if (!RETRYABLE_STATUSES.has(previous.status)) {
      throw new JobRequestError(409, "not_retryable", `Job ${id} is ${previous.status}; only failed, cancelled or interrupted jobs can be retried.`);
    }
    if (previous.retriedBy) throw new JobRequestError(409, "already_retried", `Job ${id} was already retried as job ${previous.retriedBy}.`);
    if (!isRetryable(previous)) {
      throw new JobRequestError(409, "not_retryable", `Job ${id} was refused before it started (${previous.error?.code}: ${previous.error?.message}); a retry would fail the same way. Fix the request and submit it again.`);
    }
    const token = githubToken ?? this.tokens.get(id);
    if (previous.hasGithubToken && token === undefined) {
      throw new JobRequestError(
        409,
        "github_token_lost",
        `Job ${id} was submitted with a github_token, which is not kept after a job ends (and an embedded server keeps it in memory only). Send it again: POST /jobs/${id}/retry with {"github_token": "..."}.`,
      );
    }
    const { job } = await this.options.store.submit({
      spec: { repo: previous.repoUrl, task: previous.task, ...previous.verify, ...previous.options },
      labels: { ...(previous.userId ? { userId: previous.userId } : {}), retryOf: id },
      ...(token ? { secrets: { gitToken: token } } : {}),
    });
    await this.options.store.addLabels(id, { retriedBy: job.id });
    this.tokens.delete(id);
    if (token) this.tokens.set(job.id, token);
    void this.options.worker?.pump();
    return toApiJob(job);
  }

  /** Cancels a queued job at once, or a running one (wherever it runs) once its worker has stopped it. */
  async cancel(id: string): Promise<JobRecord> {
    const job = await this.get(id);
    if (!job) throw new JobRequestError(404, "not_found", `No job with id ${id}.`);
    if (FINISHED_JOB_STATUSES.has(job.status as StoredJob["status"]) || job.status === "interrupted") {
      throw new JobRequestError(409, "not_cancellable", `Job ${id} has already ended (${job.status}).`);
    }
    await this.options.store.requestCancel(id, "Cancelled through the API.");
    const signal = AbortSignal.any([this.closing.signal, AbortSignal.timeout(CANCEL_WAIT_MS)]);
    let last = job;
    // Statuses only: no stored seq is this high (it fits the stores' integer column).
    for await (const message of this.watch(id, 2_147_483_647, signal)) if (message.kind === "status") last = message.job;
    return last;
  }

  async get(id: string): Promise<JobRecord | undefined> {
    const job = await this.options.store.get(id);
    return job ? toApiJob(job) : undefined;
  }

  async list(filter: { limit: number; offset?: number | undefined; status?: JobRecord["status"] | undefined; userId?: string | undefined; repo?: string | undefined; search?: string | undefined }): Promise<JobRecord[]> {
    // No job is ever `interrupted` now; the filter stays accepted for old clients.
    if (filter.status === "interrupted") return [];
    const jobs = await this.options.store.list({
      limit: filter.limit,
      offset: filter.offset,
      status: filter.status,
      repo: filter.repo,
      search: filter.search,
      ...(filter.userId ? { label: { userId: filter.userId } } : {}),
    });
    return jobs.map(toApiJob);
  }

  countByStatus(): ReturnType<JobStore["countByStatus"]> {
    return this.options.store.countByStatus();
  }

  async events(id: string, afterSeq = 0): Promise<StoredJobEvent[]> {
    return (await this.options.store.events(id, afterSeq)) as StoredJobEvent[];
  }

  /** The job's stored events after `afterSeq` and its status, then live ones, until it ends or `signal` aborts. */
  async *watch(id: string, afterSeq: number, signal?: AbortSignal): AsyncGenerator<JobStreamMessage> {
    const combined = signal ? AbortSignal.any([signal, this.closing.signal]) : this.closing.signal;
    for await (const message of watchJob(this.options.store, id, { afterSeq, signal: combined })) {
      if (message.kind === "event") yield { kind: "event", seq: message.seq, event: message.event as StoredAgentEvent };
      else yield { kind: "status", job: toApiJob(message.job) };
    }
  }

  /** Every job's status changes (new, started, ended, retried), from any process. */
  async *watchStatuses(signal?: AbortSignal, fromRevision?: number): AsyncGenerator<JobRecord> {
    const combined = signal ? AbortSignal.any([signal, this.closing.signal]) : this.closing.signal;
    let lastStatus = new Map<string, string>();
    for await (const job of watchJobChanges(this.options.store, { signal: combined, ...(fromRevision !== undefined ? { fromRevision } : {}) })) {
      const key = `${job.status}:${job.phase ?? ""}:${job.labels.retriedBy ?? ""}`;
      // Events bump a job's revision too; a status stream reports changes of status and phase (lists show the phase).
      if (lastStatus.get(job.id) === key) continue;
      lastStatus.set(job.id, key);
      if (lastStatus.size > 10_000) lastStatus = new Map([...lastStatus].slice(-5000));
      yield toApiJob(job);
    }
  }

  /** Ends watches; the worker and the store are closed by their owner. */
  close(): void {
    this.closing.abort();
  }
}

/** A stored job in the API's terms. */
export function toApiJob(job: StoredJob): JobRecord {
  return {
    id: job.id,
    status: job.status,
    repoUrl: job.spec.repo,
    task: job.spec.task,
    verify: {
      ...(job.spec.checks !== undefined ? { checks: job.spec.checks } : {}),
      ...(job.spec.maxFixRounds !== undefined ? { maxFixRounds: job.spec.maxFixRounds } : {}),
      ...(job.spec.onChecksFailed !== undefined ? { onChecksFailed: job.spec.onChecksFailed } : {}),
    },
    options: {
      ...(job.spec.baseBranch !== undefined ? { baseBranch: job.spec.baseBranch } : {}),
      ...(job.spec.model !== undefined ? { model: job.spec.model } : {}),
      ...(job.spec.pullRequest !== undefined ? { pullRequest: job.spec.pullRequest } : {}),
    },
    userId: job.labels.userId,
    hasGithubToken: job.hasSecrets,
    retryOf: job.labels.retryOf,
    retriedBy: job.labels.retriedBy,
    createdAt: job.createdAt,
    startedAt: job.startedAt,
    finishedAt: job.finishedAt,
    phase: job.phase,
    result: job.result,
    error: job.error,
  };
}
