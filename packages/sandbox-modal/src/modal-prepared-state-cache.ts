import { agentError, ErrorCode, type FoundPreparedState, type PreparedStateOrigin } from "@running-agent/core";

/** Settings of {@link createModalPreparedStateCache}. */
export interface ModalPreparedStateCacheOptions {
  /** How many states (snapshots) are kept; the oldest go first. Default 8. */
  maxEntries?: number;
  /**
   * A state older than this is not used: the next task on its key runs the setup again and replaces it.
   * Snapshots are also made with a time to live of this plus an hour, so that Modal drops those of a
   * process that ended without pruning. Default 6 hours (at least 1 s, whole seconds).
   */
  maxAgeMs?: number;
}

/** One kept state: a snapshot image and how to delete it. */
interface KeptSnapshot {
  /** The snapshot's Modal image id (`im-…`), from which later sandboxes on the key are created. */
  imageId: string;
  /** The image the state was prepared on: another base image is another state. */
  baseImageId: string;
  /** When the snapshot was taken, ms since the epoch; `keep` sets it. */
  preparedAt: number;
  /** The state's lineage and commit, when the core gave them at save: a task on a moved base finds the state by them. */
  origin?: PreparedStateOrigin;
  /** Deletes the snapshot image on Modal. */
  remove(): Promise<void>;
}

const KEY = /^[a-f0-9]{16,128}$/;
const DEFAULT_MAX_AGE_MS = 6 * 60 * 60 * 1000;

/**
 * Prepared states of the Modal sandbox: a task's sandbox filesystem as it is after the clone and the
 * setup commands, snapshotted (`snapshotFilesystem`), from which later tasks on the same key create
 * their sandbox. The index of keys to snapshot images lives in this object (this process). Give it
 * to `createModalSandbox({ preparedStates })`. Synchronous and free of I/O.
 */
export function createModalPreparedStateCache(options: ModalPreparedStateCacheOptions = {}): ModalPreparedStateCache {
  return new ModalPreparedStateCache(options);
}

/** Made by {@link createModalPreparedStateCache}. */
export class ModalPreparedStateCache implements AsyncDisposable {
  /** How many snapshots are kept at most (the option, default 8). */
  readonly maxEntries: number;
  /** Age in ms after which a snapshot is no longer used (the option, default 6 hours). */
  readonly maxAgeMs: number;
  private readonly states = new Map<string, KeptSnapshot>();

  constructor(options: ModalPreparedStateCacheOptions) {
    const maxEntries = options.maxEntries ?? 8;
    const maxAgeMs = options.maxAgeMs ?? DEFAULT_MAX_AGE_MS;
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw agentError(ErrorCode.INVALID_OPTIONS, `maxEntries must be a positive integer, not ${String(options.maxEntries)}.`);
    if (typeof maxAgeMs !== "number" || !(maxAgeMs >= 1000) || maxAgeMs % 1000 !== 0) {
      throw agentError(ErrorCode.INVALID_OPTIONS, `maxAgeMs must be a whole number of seconds in milliseconds (at least 1000), not ${String(options.maxAgeMs)}.`);
    }
    this.maxEntries = maxEntries;
    this.maxAgeMs = maxAgeMs;
  }

  /** The time to live snapshots are made with. */
  get snapshotTtlMs(): number {
    return this.maxAgeMs + 60 * 60 * 1000;
  }

  /** The keys held, newest first. */
  keys(): string[] {
    return [...this.states.entries()].sort(([, left], [, right]) => right.preparedAt - left.preparedAt).map(([key]) => key);
  }

  /** Deletes the snapshot of `key`, or every snapshot of this cache. */
  async invalidate(key?: string): Promise<void> {
    if (key !== undefined) checkKey(key);
    for (const name of key === undefined ? this.keys() : [key]) await this.drop(name);
  }

  /** Closes the cache for good: deletes every snapshot of it (as `invalidate()`). Also `await using`. */
  async close(): Promise<void> {
    await this.invalidate();
  }

  /** Same as {@link close}, for `await using cache = ...`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Deletes stale snapshots and the oldest beyond `maxEntries`. Returns how many went. */
  async prune(): Promise<number> {
    let removed = 0;
    for (const [index, key] of this.keys().entries()) {
      if (index >= this.maxEntries || Date.now() - this.states.get(key)!.preparedAt > this.maxAgeMs) {
        await this.drop(key);
        removed++;
      }
    }
    return removed;
  }

  /**
   * The snapshot image to start a task on `key` from, prepared on `baseImageId` and fresh; a stale one is deleted.
   * @internal
   */
  async find(key: string, baseImageId: string): Promise<string | undefined> {
    checkKey(key);
    const kept = this.states.get(key);
    if (!kept || kept.baseImageId !== baseImageId) return undefined;
    if (Date.now() - kept.preparedAt <= this.maxAgeMs) return kept.imageId;
    await this.drop(key);
    return undefined;
  }

  /**
   * The state to start a task of `lineage` from, prepared on `baseImageId` and fresh: `key`'s own when
   * kept, else the newest of the lineage (from this index, which the host wrote at save).
   * @internal
   */
  findInLineage(query: { lineage: string; key?: string }, baseImageId: string): FoundPreparedState | undefined {
    const usable = this.keys().filter((key) => {
      const kept = this.states.get(key)!;
      return kept.origin?.lineage === query.lineage && kept.baseImageId === baseImageId && Date.now() - kept.preparedAt <= this.maxAgeMs;
    });
    const key = query.key !== undefined && usable.includes(query.key) ? query.key : usable[0];
    return key === undefined ? undefined : { key, commit: this.states.get(key)!.origin!.commit };
  }

  /**
   * Keeps a new snapshot under `key`, deleting the one it replaces, then prunes.
   * @internal
   */
  async keep(key: string, snapshot: Omit<KeptSnapshot, "preparedAt">): Promise<void> {
    checkKey(key);
    const replaced = this.states.get(key);
    this.states.set(key, { ...snapshot, preparedAt: Date.now() });
    if (replaced && replaced.imageId !== snapshot.imageId) await replaced.remove();
    await this.prune();
  }

  private async drop(key: string): Promise<void> {
    const kept = this.states.get(key);
    if (!kept) return;
    this.states.delete(key);
    await kept.remove();
  }
}

function checkKey(key: string): void {
  if (typeof key !== "string" || !KEY.test(key)) throw agentError(ErrorCode.INVALID_OPTIONS, `A prepared-state key is a lowercase hex digest, not ${JSON.stringify(key)}.`);
}
