import { agentError, ErrorCode, type RunningAgentError } from "../errors.js";
import type { Phase } from "../phases.js";

/** How long a Git remote may send and take nothing before the clone, fetch or push fails. */
export const DEFAULT_GIT_STALL_TIMEOUT_MS = 60_000;

/** What {@link RemoteStallTimer} reports on. */
export interface RemoteStallTimerOptions {
  /** The remote's URL, without credentials, named in the error. */
  remote: string;
  phase: Phase;
  /** Milliseconds without progress before the request is aborted. */
  stallTimeoutMs: number;
}

/**
 * Fails a transfer that makes no progress: armed only while we wait on the remote (connecting,
 * sending, waiting for headers or the next body chunk), so that a big transfer that keeps moving
 * is never cut and time spent in our own processing is not counted. When it fires, `signal`
 * aborts with {@link RemoteStallTimer.error}, the typed GIT_REMOTE_STALLED error.
 */
export class RemoteStallTimer {
  readonly #options: RemoteStallTimerOptions;
  readonly #controller = new AbortController();
  #timer: NodeJS.Timeout | undefined;
  #error: RunningAgentError | undefined;

  constructor(options: RemoteStallTimerOptions) {
    this.#options = options;
  }

  /** Aborts when the remote stalled. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** The GIT_REMOTE_STALLED error, once the timer has fired. */
  get error(): RunningAgentError | undefined {
    return this.#error;
  }

  /** Starts (or restarts) the count: call when waiting on the remote begins and on each progress. */
  arm(): void {
    if (this.#error) return;
    if (this.#timer) this.#timer.refresh();
    else this.#timer = setTimeout(() => this.#fire(), this.#options.stallTimeoutMs);
  }

  /** Stops the count while the wait is over (our side is busy, or the transfer ended). */
  disarm(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #fire(): void {
    const { remote, phase, stallTimeoutMs } = this.#options;
    this.#timer = undefined;
    this.#error = agentError(
      ErrorCode.GIT_REMOTE_STALLED,
      `The Git remote ${remote} stopped responding during the ${phase}: nothing was sent or received for ${formatSeconds(stallTimeoutMs)}. Check that the server is up and reachable, or raise gitStallTimeoutMs for a slow link.`,
      { phase, details: { remote, stallTimeoutMs } },
    );
    this.#controller.abort(this.#error);
  }
}

function formatSeconds(milliseconds: number): string {
  return milliseconds >= 1000 ? `${Math.round(milliseconds / 100) / 10} s` : `${milliseconds} ms`;
}
