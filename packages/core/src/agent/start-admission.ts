import { availableParallelism, loadavg } from "node:os";
import { abortedError, agentError, ErrorCode } from "../errors.js";

/**
 * Bounds how many OpenCode servers start at once. A start is CPU-heavy for a few seconds; 32 of them
 * at once on 2 cores each take longer than any fixed limit, while a few at a time all finish.
 * Share one admission between tasks (and pools) that run on the same machine.
 */
export interface StartAdmission {
  /** How many starts may run at once. */
  readonly maxConcurrentStarts: number;
  /** Starts running now. */
  readonly active: number;
  /** Starts waiting for a turn. */
  readonly waiting: number;
  /**
   * Waits for a turn and resolves with the function that gives it back (call it once the server is
   * ready or has failed). Rejects with ABORTED when `signal` aborts while waiting; a waiter that gave
   * up never holds a turn.
   */
  acquire(signal?: AbortSignal): Promise<() => void>;
}

/** Settings for {@link createStartAdmission}. */
export interface StartAdmissionOptions {
  /** How many OpenCode servers may start at once. Default: the number of CPU cores, at least 2. */
  maxConcurrentStarts?: number;
}

/** A start admission (a semaphore with abortable waits). Synchronous and free of I/O. */
export function createStartAdmission(options: StartAdmissionOptions = {}): StartAdmission {
  const max = options.maxConcurrentStarts ?? Math.max(2, availableParallelism());
  if (!Number.isInteger(max) || max < 1) {
    throw agentError(ErrorCode.INVALID_OPTIONS, `maxConcurrentStarts must be a positive integer, not ${String(max)}.`);
  }
  return new Semaphore(max);
}

class Semaphore implements StartAdmission {
  private running = 0;
  private readonly queue: Array<() => void> = [];

  constructor(readonly maxConcurrentStarts: number) {}

  get active(): number {
    return this.running;
  }

  get waiting(): number {
    return this.queue.length;
  }

  acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(abortedError(signal, "agent"));
    if (this.running < this.maxConcurrentStarts) {
      this.running += 1;
      return Promise.resolve(this.releaser());
    }
    return new Promise((resolve, reject) => {
      const grant = () => {
        signal?.removeEventListener("abort", onAbort);
        this.running += 1;
        resolve(this.releaser());
      };
      const onAbort = () => {
        const index = this.queue.indexOf(grant);
        if (index >= 0) this.queue.splice(index, 1);
        reject(abortedError(signal, "agent"));
      };
      this.queue.push(grant);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.running -= 1;
      this.queue.shift()?.();
    };
  }
}

/** The admission tasks share when neither the caller nor the provider gives one: one per process. */
export const defaultStartAdmission: StartAdmission = createStartAdmission();

const providerAdmissions = new WeakMap<object, StartAdmission>();

/**
 * The admission for tasks on `provider`: one per provider object when it declares
 * `maxConcurrentAgentStarts`, else {@link defaultStartAdmission}.
 */
export function providerStartAdmission(provider: { readonly maxConcurrentAgentStarts?: number }): StartAdmission {
  const max = provider.maxConcurrentAgentStarts;
  if (max === undefined) return defaultStartAdmission;
  let admission = providerAdmissions.get(provider);
  if (!admission) providerAdmissions.set(provider, (admission = createStartAdmission({ maxConcurrentStarts: max })));
  return admission;
}

const BASE_START_LIMIT_MS = 60_000;
const MAX_START_LIMIT_MS = 5 * 60_000;

/**
 * The default start limit: 60 s on an idle machine, stretched by the load per core (a start on a
 * machine with load 8 on 2 cores gets 4 minutes), at most 5 minutes. Queueing for admission does not count.
 */
export function defaultStartTimeoutMs(): number {
  return startTimeoutForLoad(loadavg()[0]! / Math.max(1, availableParallelism()));
}

/** The start limit for a one-minute load average per core (see {@link defaultStartTimeoutMs}). */
export function startTimeoutForLoad(loadPerCore: number): number {
  if (!Number.isFinite(loadPerCore)) return BASE_START_LIMIT_MS;
  return Math.min(MAX_START_LIMIT_MS, Math.round(BASE_START_LIMIT_MS * Math.max(1, loadPerCore)));
}
