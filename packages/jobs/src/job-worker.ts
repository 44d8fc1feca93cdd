import { randomUUID } from "node:crypto";
import { freemem, hostname } from "node:os";
import {
  createLocalGitHost,
  ErrorCode,
  RunningAgentError,
  startAgentTask,
  agentError,
  taskTitle,
  type AgentTaskEvent,
  type AgentTaskHandle,
  type AgentTaskOptions,
  type AgentTaskResult,
  type GitHost,
} from "@running-agent/core";
import { JobError, JobErrorCode } from "./job-error.js";
import type { JobFailure, JobRecord, StoredJobEvent } from "./job-record.js";
import type { ClaimedJob, JobOutcome, JobStore } from "./job-store.js";
import { redactSecrets } from "./redact-secrets.js";
import { StoredEventEncoder } from "./stored-event.js";

/** Starts one agent task: core's `startAgentTask`, or anything with its shape. */
export type RunTask = (options: AgentTaskOptions) => AgentTaskHandle;

/** Settings for {@link JobWorker}. */
export interface JobWorkerOptions {
  /** The store the worker claims jobs from and writes their events and outcomes to. */
  store: JobStore;
  /** Sandbox, Git host, model (with its key) and anything else every task gets; the job's spec is laid over it. */
  taskDefaults?: Partial<AgentTaskOptions>;
  /** Default: core's `startAgentTask`. */
  runTask?: RunTask;
  /** Options for one job that cannot be stored (e.g. a Git host that depends on the job's labels), laid over the spec. */
  taskOptionsFor?: (job: JobRecord) => Partial<AgentTaskOptions>;
  /** Jobs this worker runs at once. Default {@link defaultConcurrency}. */
  concurrency?: number;
  /** Default: a random id. */
  workerId?: string;
  /** How long a claimed job stays this worker's without a heartbeat. Default 30 s. */
  leaseMs?: number;
  /** How often leases are renewed and cancel flags read. Default a third of the lease, at most 1 s (a cancel reaches the job within that). */
  heartbeatMs?: number;
  /** How often the queue is asked for work while there is room. Default 500 ms. */
  pollMs?: number;
  /** Which failures are tried again (with the job's backoff) while attempts are left. Default {@link isRetryableFailure}. */
  isRetryable?: (failure: JobFailure) => boolean;
  /** Strings removed from everything stored (e.g. an API key). The job's own secrets are added. */
  secrets?: string[];
  /** Gets one line per thing worth an operator's eye (a store that cannot be reached, a job recovered from a dead worker). Default: nothing is logged. */
  log?: (line: string) => void;
}

/** Failure codes worth another attempt: the sandbox or a host hiccuped, not the input. */
export const RETRYABLE_CODES: ReadonlySet<string> = new Set([
  ErrorCode.SANDBOX_UNAVAILABLE,
  ErrorCode.SANDBOX_CREATE_FAILED,
  ErrorCode.SANDBOX_TERMINATED,
  ErrorCode.RATE_LIMITED,
  ErrorCode.GIT_HOST_ERROR,
  ErrorCode.AGENT_START_FAILED,
  ErrorCode.PUSH_FAILED,
  ErrorCode.GIT_REMOTE_STALLED,
]);

/** Whether a failure's code is one of {@link RETRYABLE_CODES}; the default of {@link JobWorkerOptions.isRetryable}. */
export function isRetryableFailure(failure: JobFailure): boolean {
  return RETRYABLE_CODES.has(failure.code);
}

/** Each running OpenCode takes about this much memory. */
const MEMORY_PER_TASK = 512 * 1024 * 1024;

/** Jobs that fit in free memory at about 0.5 GB each: at least 1, at most 16. */
export function defaultConcurrency(freeBytes = freemem()): number {
  return Math.max(1, Math.min(16, Math.floor(freeBytes / MEMORY_PER_TASK)));
}

interface RunningJob {
  job: JobRecord;
  handle: AgentTaskHandle | undefined;
  /** Events not yet stored. */
  pending: StoredJobEvent[];
  seq: number;
  phase: string | undefined;
  flushing: Promise<void> | undefined;
  flushTimer: NodeJS.Timeout | undefined;
  /** The last time the store confirmed the lease. */
  confirmedAt: number;
  leaseLost: boolean;
  cancelRequested: boolean;
  stopping: boolean;
  done: Promise<void>;
}

/**
 * Claims jobs from a store and runs them with bounded concurrency. Each claimed job has a lease
 * that the worker renews every heartbeat; a job whose lease this worker lost (it stalled past
 * the lease, and another worker recovered the job) is stopped and writes nothing more: before
 * pushing and before opening the change request the lease is confirmed with the store, so that
 * a stale worker cannot open a second pull request. Every worker also recovers jobs whose lease
 * expired (their worker died).
 */
export class JobWorker {
  /** The worker's id in the store (the `workerId` option, or `worker-` and a random UUID). */
  readonly id: string;
  /** How many jobs this worker runs at once at most. */
  readonly concurrency: number;
  private readonly running = new Map<string, RunningJob>();
  private readonly leaseMs: number;
  private readonly heartbeatMs: number;
  private readonly pollMs: number;
  private readonly runTask: RunTask;
  private readonly log: (line: string) => void;
  private timers: NodeJS.Timeout[] = [];
  private pumping: Promise<void> | undefined;
  private heartbeating = false;
  private stopped = false;
  private readonly startedAt = Date.now();

  constructor(private readonly options: JobWorkerOptions) {
    this.id = options.workerId ?? `worker-${randomUUID()}`;
    this.concurrency = options.concurrency ?? defaultConcurrency();
    this.leaseMs = options.leaseMs ?? 30_000;
    this.heartbeatMs = options.heartbeatMs ?? Math.min(1000, Math.floor(this.leaseMs / 3));
    this.pollMs = options.pollMs ?? 500;
    this.runTask = options.runTask ?? startAgentTask;
    this.log = options.log ?? (() => undefined);
    if (!Number.isInteger(this.concurrency) || this.concurrency < 1) throw new JobError(JobErrorCode.INVALID_JOB, `concurrency must be a whole number of at least 1, not ${this.concurrency}.`);
  }

  /** How many jobs run here right now. */
  get runningCount(): number {
    return this.running.size;
  }

  /** The ids of the jobs running here. */
  runningJobs(): string[] {
    return [...this.running.keys()];
  }

  /** Registers the worker, recovers expired leases, and starts claiming. */
  async start(): Promise<void> {
    await this.options.store.registerWorker({ id: this.id, hostname: hostname(), pid: process.pid, startedAt: this.startedAt });
    await this.recover();
    this.timers.push(setInterval(() => void this.pump(), this.pollMs));
    this.timers.push(setInterval(() => void this.heartbeat(), this.heartbeatMs));
    void this.pump();
  }

  /** Asks the queue for work now (e.g. right after a submit in the same process). */
  pump(): Promise<void> {
    this.pumping ??= this.claimWork().finally(() => (this.pumping = undefined));
    return this.pumping;
  }

  /**
   * Stops claiming and stops the running jobs; they go back to the queue (not counted as an
   * attempt) for another worker or the next start. Resolves once their sandboxes are torn down.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    await this.pumping?.catch(() => undefined);
    await Promise.all(
      [...this.running.values()].map(async (entry) => {
        entry.stopping = true;
        await entry.handle?.cancel("The worker is stopping; the job goes back to the queue.").catch(() => undefined);
        await entry.done;
      }),
    );
    await this.options.store.unregisterWorker(this.id).catch(() => undefined);
  }

  private async claimWork(): Promise<void> {
    if (this.stopped) return;
    const room = this.concurrency - this.running.size;
    if (room <= 0) return;
    let claimed: ClaimedJob[];
    try {
      claimed = await this.options.store.claim(this.id, room, this.leaseMs);
    } catch (error) {
      this.log(`worker ${this.id}: cannot claim jobs: ${(error as Error).message}`);
      return;
    }
    for (const item of claimed) this.startJob(item);
  }

  private async recover(): Promise<void> {
    try {
      const recovered = await this.options.store.recoverExpiredLeases();
      for (const id of recovered.requeued) this.log(`job ${id}: its worker stopped heartbeating; queued again`);
      for (const id of recovered.failed) this.log(`job ${id}: its worker stopped heartbeating and no attempt is left; failed`);
      for (const id of recovered.cancelled) this.log(`job ${id}: its worker stopped heartbeating; cancelled as asked`);
    } catch (error) {
      this.log(`worker ${this.id}: cannot recover expired leases: ${(error as Error).message}`);
    }
  }

  private async heartbeat(): Promise<void> {
    if (this.heartbeating || this.stopped) return;
    this.heartbeating = true;
    try {
      const ids = [...this.running.keys()];
      let answer: { held: string[]; cancelRequested: string[] };
      try {
        answer = await this.options.store.renewLeases(this.id, ids, this.leaseMs);
      } catch (error) {
        this.log(`worker ${this.id}: heartbeat failed (the job leases are kept until they expire): ${(error as Error).message}`);
        return;
      }
      const now = Date.now();
      const held = new Set(answer.held);
      for (const id of ids) {
        const entry = this.running.get(id);
        if (!entry) continue;
        if (held.has(id)) entry.confirmedAt = now;
        else this.loseLease(entry);
      }
      for (const id of answer.cancelRequested) {
        const entry = this.running.get(id);
        if (!entry || entry.cancelRequested) continue;
        entry.cancelRequested = true;
        this.log(`job ${id}: cancel requested`);
        void entry.handle?.cancel("Cancelled on request.").catch(() => undefined);
      }
      await this.recover();
    } finally {
      this.heartbeating = false;
    }
  }

  private loseLease(entry: RunningJob): void {
    if (entry.leaseLost) return;
    entry.leaseLost = true;
    this.log(`job ${entry.job.id}: lease lost (another worker has it now); stopping this attempt`);
    void entry.handle?.cancel("This worker lost the job's lease.").catch(() => undefined);
  }

  /** Confirms with the store that this worker still holds the job, before a step another worker must not repeat. */
  private async confirmLease(entry: RunningJob): Promise<void> {
    const deadline = Date.now() + this.leaseMs;
    for (;;) {
      if (entry.leaseLost) break;
      try {
        const { held } = await this.options.store.renewLeases(this.id, [entry.job.id], this.leaseMs);
        if (held.includes(entry.job.id)) {
          entry.confirmedAt = Date.now();
          return;
        }
        this.loseLease(entry);
        break;
      } catch (error) {
        if (Date.now() > deadline) break;
        await sleep(500);
      }
    }
    throw agentError(ErrorCode.ABORTED, `This worker no longer holds job ${entry.job.id}; another worker runs it.`);
  }

  private startJob(claimed: ClaimedJob): void {
    const job = claimed.job;
    const entry: RunningJob = {
      job,
      handle: undefined,
      pending: [],
      seq: claimed.lastSeq,
      phase: undefined,
      flushing: undefined,
      flushTimer: undefined,
      confirmedAt: Date.now(),
      leaseLost: false,
      cancelRequested: job.cancelRequested,
      stopping: false,
      done: Promise.resolve(),
    };
    this.running.set(job.id, entry);
    this.log(`job ${job.id}: attempt ${job.attempts} of ${job.maxAttempts} on worker ${this.id}`);
    entry.done = this.runJob(entry, claimed).finally(() => {
      this.running.delete(job.id);
      void this.pump();
    });
  }

  private async runJob(entry: RunningJob, claimed: ClaimedJob): Promise<void> {
    const job = entry.job;
    const jobSecrets = claimed.secrets;
    if (JobError.isInstance(jobSecrets)) {
      this.log(`job ${job.id}: ${jobSecrets.code}: ${jobSecrets.message}`);
      await this.persist(entry, () => this.options.store.finish(this.id, job.id, { status: "failed", error: { code: jobSecrets.code, message: jobSecrets.message } }));
      return;
    }
    const gitToken = jobSecrets.gitToken;
    const defaults = this.options.taskDefaults ?? {};
    const secrets = [...(this.options.secrets ?? []), ...(defaults.secrets ?? []), ...(gitToken ? [gitToken] : [])];
    const encoder = new StoredEventEncoder(secrets);
    const onEvent = (event: AgentTaskEvent): void => {
      if (entry.leaseLost) return;
      entry.seq += 1;
      entry.pending.push({ seq: entry.seq, event: encoder.encode(event) });
      if (event.type === "phase" && event.status === "started") entry.phase = event.phase;
      entry.flushTimer ??= setTimeout(() => {
        entry.flushTimer = undefined;
        void this.flush(entry);
      }, 50);
    };
    const { model, ...spec } = job.spec;
    const perJob = this.options.taskOptionsFor?.(job) ?? {};
    let outcome: JobOutcome | { status: "requeue"; error?: JobFailure } | undefined;
    try {
      if (entry.cancelRequested) throw agentError(ErrorCode.ABORTED, "Cancelled before it started.");
      const gitHost = fencedGitHost(perJob.gitHost ?? defaults.gitHost ?? createLocalGitHost(), () => this.confirmLease(entry));
      const handle = this.runTask({
        ...defaults,
        ...spec,
        ...(model ? { model } : {}),
        ...perJob,
        gitHost,
        ...(gitToken ? { gitToken } : {}),
        secrets,
        taskId: job.id,
        onEvent,
      });
      entry.handle = handle;
      // A cancel that arrived while the task was being started.
      if (entry.cancelRequested || entry.stopping || entry.leaseLost) void handle.cancel("Cancelled.").catch(() => undefined);
      let result: AgentTaskResult = await handle.result;
      if (result.status === "no_changes" && job.attempts > 1) result = await finishEarlierPush(result, job, gitHost, gitToken);
      outcome = { status: result.status === "no_changes" ? "no_changes" : "completed", result: JSON.parse(redactSecrets(JSON.stringify(result), secrets)) as AgentTaskResult };
    } catch (error) {
      const failure = toFailure(error, secrets);
      if (entry.leaseLost) outcome = undefined;
      else if (entry.stopping) outcome = { status: "requeue" };
      else if (entry.cancelRequested) outcome = { status: "cancelled", error: { ...failure, code: ErrorCode.ABORTED } };
      else if ((this.options.isRetryable ?? isRetryableFailure)(failure) && job.attempts < job.maxAttempts) outcome = { status: "requeue", error: failure };
      else outcome = { status: "failed", error: failure };
    }
    if (entry.flushTimer) clearTimeout(entry.flushTimer);
    if (outcome === undefined || entry.leaseLost) return;
    await this.flushAll(entry);
    if (entry.leaseLost) return;
    const final = outcome;
    const written = await this.persist(entry, () =>
      final.status === "requeue" ? this.options.store.requeue(this.id, job.id, final.error) : this.options.store.finish(this.id, job.id, final),
    );
    this.log(`job ${job.id}: ${written ? (final.status === "requeue" ? `queued again${final.error ? ` after ${final.error.code}` : ""}` : final.status) : "ended, but its lease was lost: the result is dropped"}`);
  }

  /** Retries a store write while the store is unreachable and the lease could still be ours. */
  private async persist(entry: RunningJob, write: () => Promise<boolean>): Promise<boolean> {
    for (;;) {
      try {
        const written = await write();
        if (!written) entry.leaseLost = true;
        return written;
      } catch (error) {
        if (!JobError.isInstance(error) || error.code !== JobErrorCode.STORE_UNAVAILABLE) throw error;
        // Past the lease another worker may have taken the job over; its write wins then, and ours is refused by the fence anyway.
        if (Date.now() > entry.confirmedAt + 4 * this.leaseMs) return false;
        await sleep(500);
      }
    }
  }

  private flush(entry: RunningJob): Promise<void> {
    entry.flushing ??= (async () => {
      while (entry.pending.length > 0 && !entry.leaseLost) {
        const batch = entry.pending.slice(0, 200);
        let written: boolean;
        try {
          written = await this.options.store.appendEvents(this.id, entry.job.id, batch, entry.phase);
        } catch {
          // The store is unreachable: the events wait in memory for the next flush.
          return;
        }
        if (!written) {
          this.loseLease(entry);
          return;
        }
        entry.pending.splice(0, batch.length);
      }
    })().finally(() => (entry.flushing = undefined));
    return entry.flushing;
  }

  private async flushAll(entry: RunningJob): Promise<void> {
    const deadline = Date.now() + 4 * this.leaseMs;
    while (entry.pending.length > 0 && !entry.leaseLost && Date.now() < deadline) {
      await this.flush(entry);
      if (entry.pending.length > 0) await sleep(500);
    }
  }
}

/**
 * A rerun whose agent changed nothing, because an earlier attempt of this job pushed the change
 * to the job's branch and died before it ended (the clone started from that branch): the
 * change request for the branch is opened, or the open one found, so that the job ends with
 * its branch and change request, not as `no_changes`.
 */
async function finishEarlierPush(result: AgentTaskResult, job: JobRecord, gitHost: GitHost, gitToken: string | undefined): Promise<AgentTaskResult> {
  const hostOptions = gitToken ? { token: gitToken } : {};
  const repository = await gitHost.resolveRepository(job.spec.repo, hostOptions);
  const branch = job.spec.branch;
  if (!(await gitHost.branchExists(repository, branch, hostOptions))) return result;
  const request = job.spec.pullRequest ?? {};
  const pullRequest = await gitHost.openChangeRequest(
    repository,
    {
      head: branch,
      base: result.baseBranch,
      title: request.title ?? taskTitle(job.spec.task),
      body: `${request.body ? `${request.body.trim()}\n\n` : ""}An earlier attempt of job \`${job.id}\` pushed this branch and stopped before it ended; attempt ${job.attempts} found the change already on it.\n\n## Task\n\n${job.spec.task
        .trim()
        .split(/\r?\n/)
        .map((line) => `> ${line}`)
        .join("\n")}\n${request.closesIssue !== undefined ? `\nCloses #${request.closesIssue}\n` : ""}`,
      ...(request.draft !== undefined ? { draft: request.draft } : {}),
      labels: request.labels ?? [],
      reviewers: request.reviewers ?? [],
      assignees: request.assignees ?? [],
    },
    hostOptions,
  );
  return { ...result, status: "completed", branch, pullRequest };
}

/**
 * The worker's Git host: asks the store whether this worker still holds the job before the
 * push and before the change request, the two steps a stale worker must not take.
 */
function fencedGitHost(gitHost: GitHost, confirm: () => Promise<void>): GitHost {
  const getCredentials: GitHost["getCredentials"] = async (repository, access, options) => {
    if (access === "write") await confirm();
    return gitHost.getCredentials(repository, access, options);
  };
  const openChangeRequest: GitHost["openChangeRequest"] = async (repository, input, options) => {
    await confirm();
    return gitHost.openChangeRequest(repository, input, options);
  };
  // A proxy, not a prototype copy: hosts with private fields need their methods called on themselves.
  return new Proxy(gitHost, {
    get(target, property) {
      if (property === "getCredentials") return getCredentials;
      if (property === "openChangeRequest") return openChangeRequest;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

function toFailure(error: unknown, secrets: string[]): JobFailure {
  if (RunningAgentError.isInstance(error)) {
    return { code: error.code, message: redactSecrets(error.message, secrets), ...(error.phase ? { phase: error.phase } : {}) };
  }
  if (JobError.isInstance(error)) return { code: error.code, message: redactSecrets(error.message, secrets) };
  return { code: ErrorCode.INTERNAL, message: redactSecrets(error instanceof Error ? error.message : String(error), secrets) };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
