import { agentError, ErrorCode, RunningAgentError } from "../errors.js";
import { validateOptions } from "../loop/validate.js";
import { checkFunction, checkMilliseconds } from "../loop/option-checks.js";
import { PREPARATION_TASK, prepareRepository, type PrepareRepositoryOptions, type PreparedRepository } from "./prepare-repository.js";
import { readBranchHead } from "./branch-head.js";

/** Settings for {@link keepPrepared}. */
export interface KeepPreparedOptions extends Omit<PrepareRepositoryOptions, "refresh" | "signal"> {
  /** How often the base branch's head is read. */
  everyMs: number;
  /** Prepare again (the setup runs) when the kept state is older than this, even if the head did not move. Default: never. */
  maxAgeMs?: number;
  /** After each preparation, reused or new. */
  onPrepared?: (prepared: PreparedRepository) => void;
  /** A check or a preparation that failed; the schedule goes on at the next interval. */
  onError?: (error: RunningAgentError) => void;
}

/** A running schedule of {@link keepPrepared}. */
export interface KeptPrepared extends AsyncDisposable {
  /** The last preparation that succeeded. */
  readonly last: PreparedRepository | undefined;
  /**
   * Calls `listener` after each preparation from now on, as `onPrepared` (a sandbox pool follows the
   * schedule this way: `createSandboxPool(provider, { prepared: kept })`). Returns the unsubscribe.
   */
  subscribe(listener: (prepared: PreparedRepository) => void): () => void;
  /** Stops the schedule: a check or preparation in flight is cancelled (its sandbox torn down) before this resolves. */
  stop(): Promise<void>;
}

/**
 * Keeps a repository's prepared state fresh, as a background job: prepares it now, then every
 * `everyMs` reads the base branch's head on the host (no clone) and prepares again only when the head
 * moved or the state is older than `maxAgeMs`. Failures go to `onError`, never to an unhandled rejection.
 * Bad options throw at once, before anything starts.
 */
export function keepPrepared(options: KeepPreparedOptions): KeptPrepared {
  const everyMs = checkMilliseconds("everyMs", options?.everyMs);
  if (everyMs === undefined) throw agentError(ErrorCode.INVALID_OPTIONS, "keepPrepared needs everyMs: how often to read the base branch's head.", { phase: "validate", details: { option: "everyMs" } });
  const maxAgeMs = checkMilliseconds("maxAgeMs", options.maxAgeMs);
  checkFunction("onPrepared", options.onPrepared);
  checkFunction("onError", options.onError);
  const { everyMs: _every, maxAgeMs: _age, onPrepared, onError, ...prepare } = options;
  // The same checks as a task's, so that a wrong repo or host fails here and not in the background.
  const validated = validateOptions({ ...prepare, ...PREPARATION_TASK });
  const stopping = new AbortController();
  let last: PreparedRepository | undefined;
  // When the setup last ran for the kept state (a reused state's age is not known: counted from its first use here).
  let preparedAt = 0;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const listeners = new Set<(prepared: PreparedRepository) => void>();

  const report = (error: unknown) => {
    if (stopping.signal.aborted) return;
    const failure = RunningAgentError.isInstance(error) ? error : agentError(ErrorCode.INTERNAL, `Keeping the prepared state failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    try {
      onError?.(failure);
    } catch {
      // A listener's bug must not stop the schedule.
    }
  };

  const headMoved = async (): Promise<boolean> => {
    if (last === undefined) return true;
    const hostOptions = { signal: stopping.signal, ...(validated.gitToken ? { token: validated.gitToken } : {}) };
    const repository = await validated.gitHost.resolveRepository(validated.repo, hostOptions);
    const credentials = await validated.gitHost.getCredentials(repository, "read", hostOptions);
    const head = await readBranchHead({ repository, branch: last.baseBranch, ...(credentials ? { credentials } : {}), signal: stopping.signal });
    return head !== last.commit;
  };

  const tick = async () => {
    try {
      const aged = last !== undefined && maxAgeMs !== undefined && Date.now() - preparedAt >= maxAgeMs;
      if (aged || (await headMoved())) {
        const prepared = await prepareRepository({ ...prepare, refresh: aged, signal: stopping.signal });
        if (!prepared.reused || last?.key !== prepared.key) preparedAt = Date.now();
        last = prepared;
        if (stopping.signal.aborted) return;
        for (const listener of [onPrepared, ...listeners]) {
          try {
            listener?.(prepared);
          } catch {
            // As above.
          }
        }
      }
    } catch (error) {
      report(error);
    }
  };

  const schedule = () => {
    if (stopping.signal.aborted) return;
    timer = setTimeout(() => {
      timer = undefined;
      running = tick().finally(schedule);
    }, everyMs);
  };
  running = tick().finally(schedule);

  const stop = async () => {
    stopping.abort(agentError(ErrorCode.ABORTED, "The prepared-state schedule was stopped."));
    if (timer) clearTimeout(timer);
    timer = undefined;
    await running;
  };
  return {
    get last() {
      return last;
    },
    subscribe(listener) {
      checkFunction("listener", listener);
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
