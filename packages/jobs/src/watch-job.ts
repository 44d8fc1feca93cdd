import { FINISHED_JOB_STATUSES, type JobRecord } from "./job-record.js";
import type { JobStore } from "./job-store.js";

/** What a job's watcher sees: a stored event, or the job's new state. */
export type JobWatchMessage =
  | {
      /** A stored event of the job. */
      kind: "event";
      /** The event's number in the job's stream (the SSE id): pass it as `afterSeq` to resume after it. */
      seq: number;
      /** The event as stored (a `StoredAgentEvent`, secrets redacted). */
      event: unknown;
    }
  | {
      /** The job changed (status, phase, labels, result). */
      kind: "status";
      /** The job as it now is; when its status is finished, this is the last message. */
      job: JobRecord;
    };

/** Options of {@link watchJob} and {@link watchJobChanges}. */
export interface WatchOptions {
  /** Events after this seq (an SSE client's Last-Event-ID). Default 0: every event. */
  afterSeq?: number;
  /** Ends the watch when aborted: the generator returns (it does not throw). */
  signal?: AbortSignal;
  /** How often a store that cannot notify is read again. Default 250 ms. */
  pollMs?: number;
}

/**
 * A job's events and status changes as they are stored, from any process: the stored events
 * after `afterSeq`, the status, then whatever comes next, until the job has ended (the last
 * message is its final status) or the signal aborts. Reads the store; an in-process store wakes
 * it at once, others are polled.
 */
export async function* watchJob(store: JobStore, id: string, options: WatchOptions = {}): AsyncGenerator<JobWatchMessage> {
  let lastSeq = options.afterSeq ?? 0;
  let lastRevision = -1;
  const wake = new Waker(store, options.pollMs ?? 250, options.signal, (changed) => changed === id);
  try {
    for (;;) {
      const events = await store.events(id, lastSeq);
      for (const stored of events) {
        lastSeq = stored.seq;
        yield { kind: "event", seq: stored.seq, event: stored.event };
      }
      const job = await store.get(id);
      if (!job) return;
      if (job.revision !== lastRevision) {
        lastRevision = job.revision;
        // Events stored between the two reads come first, so that `end` follows every event.
        const late = await store.events(id, lastSeq);
        for (const stored of late) {
          lastSeq = stored.seq;
          yield { kind: "event", seq: stored.seq, event: stored.event };
        }
        yield { kind: "status", job };
        if (FINISHED_JOB_STATUSES.has(job.status)) return;
      }
      if (!(await wake.next())) return;
    }
  } finally {
    wake.close();
  }
}

/** Every job change in the store, as it happens (for live job lists), after `fromRevision` (default: the revision current at the first read). */
export async function* watchJobChanges(store: JobStore, options: Omit<WatchOptions, "afterSeq"> & { fromRevision?: number } = {}): AsyncGenerator<JobRecord> {
  let cursor = options.fromRevision ?? (await store.currentRevision());
  // Concurrent writers may commit revisions out of order: re-read a window below the cursor and skip what was seen.
  const window = 500;
  const seen = new Map<string, number>();
  const wake = new Waker(store, options.pollMs ?? 250, options.signal, () => true);
  try {
    for (;;) {
      const changed = await store.changedSince(Math.max(0, cursor - window), 1000);
      for (const job of changed) {
        if ((seen.get(job.id) ?? -1) >= job.revision) continue;
        seen.set(job.id, job.revision);
        cursor = Math.max(cursor, job.revision);
        yield job;
      }
      if (seen.size > 10_000) for (const [id, revision] of seen) if (revision < cursor - window) seen.delete(id);
      if (!(await wake.next())) return;
    }
  } finally {
    wake.close();
  }
}

/** Resolves at the next change (in-process stores), at the next poll, or false once aborted. */
class Waker {
  private resolve: ((value: boolean) => void) | undefined;
  private dirty = false;
  private readonly unsubscribe: (() => void) | undefined;
  private readonly onAbort = () => this.fire(false);

  constructor(
    store: JobStore,
    private readonly pollMs: number,
    private readonly signal: AbortSignal | undefined,
    matches: (jobId: string) => boolean,
  ) {
    this.unsubscribe = store.onChange?.((jobId) => {
      if (matches(jobId)) this.fire(true);
    });
    signal?.addEventListener("abort", this.onAbort, { once: true });
  }

  next(): Promise<boolean> {
    if (this.signal?.aborted) return Promise.resolve(false);
    if (this.dirty) {
      this.dirty = false;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.fire(true), this.pollMs);
      this.resolve = (value) => {
        clearTimeout(timer);
        resolve(value);
      };
    });
  }

  close(): void {
    this.unsubscribe?.();
    this.signal?.removeEventListener("abort", this.onAbort);
    this.fire(false);
  }

  private fire(value: boolean): void {
    const resolve = this.resolve;
    this.resolve = undefined;
    if (resolve) resolve(value && !this.signal?.aborted);
    else if (value) this.dirty = true;
  }
}
