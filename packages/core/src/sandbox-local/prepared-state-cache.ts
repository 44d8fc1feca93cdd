import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, readFile, readdir, rename, rm, stat, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { agentError, ErrorCode } from "../errors.js";
import type { FoundPreparedState, PreparedStateOrigin } from "../spec/sandbox-spec.js";

const run = promisify(execFile);

/**
 * Workspaces as they are after the setup commands, kept on this machine under a key (the loop's key
 * names the repository, the commit and the setup commands), so that later local sandboxes start from
 * a copy instead of running the setup again. Copies are made with `cp -a --reflink=auto`: a
 * copy-on-write clone where the file system can (btrfs, XFS), a full copy elsewhere. Never hard
 * links: the agent may edit a file in place, and a shared inode would change the kept state.
 */
export interface PreparedStateCache {
  /** The folder that holds the states. */
  readonly directory: string;
  /** Age in ms after which a state is no longer used (the option, default 6 hours). */
  readonly maxAgeMs: number;
  /** Copies the state kept under `key` into `hostDirectory` (replacing its contents); false when there is none or it is older than `maxAgeMs` (then it is dropped). */
  restoreInto(key: string, hostDirectory: string): Promise<boolean>;
  /**
   * Keeps a copy of `hostDirectory` under `key`, replacing an older state of the same key; drops the least
   * recently used beyond `maxEntries`. With `origin`, its lineage and commit are kept beside it, for {@link find}.
   */
  saveFrom(key: string, hostDirectory: string, origin?: PreparedStateOrigin): Promise<void>;
  /** The fresh state of `key` when its lineage is `lineage`, else the newest fresh state of `lineage` (by when it was made). */
  find(query: { lineage: string; key?: string }): Promise<FoundPreparedState | undefined>;
  /** The keys held, most recently used first. */
  keys(): Promise<string[]>;
  /** When the state of `key` was made (ms since the epoch), or undefined when none is kept. */
  preparedAt(key: string): Promise<number | undefined>;
  /** Drops the state of `key`, or every state. */
  invalidate(key?: string): Promise<void>;
}

/** Settings for {@link createPreparedStateCache}. */
export interface PreparedStateCacheOptions {
  /** Where the states live (made when missing). Keep it off the sandbox's binds. */
  directory: string;
  /** How many states are kept; the least recently used go first. Default 8. */
  maxEntries?: number;
  /**
   * A state older than this (from when its setup ran, not its last use) is not used: the next task on
   * its key runs the setup again and replaces it. Default 6 hours, as the Docker and Modal caches'.
   */
  maxAgeMs?: number;
}

const KEY = /^[a-f0-9]{16,128}$/;
const TEMP_PREFIX = ".incoming-";
/** Beside each state folder (never inside it: the folder is copied whole into workspaces), when it was made. */
const PREPARED_AT_SUFFIX = ".prepared-at";
/** Beside each state folder too: its lineage and commit (JSON), written by the host, never read from a workspace. */
const ORIGIN_SUFFIX = ".origin";
const DEFAULT_MAX_AGE_MS = 6 * 60 * 60 * 1000;

/** A cache of prepared workspaces in a folder. Synchronous and free of I/O until used. */
export function createPreparedStateCache(options: PreparedStateCacheOptions): PreparedStateCache {
  const maxEntries = options.maxEntries ?? 8;
  const maxAgeMs = options.maxAgeMs ?? DEFAULT_MAX_AGE_MS;
  if (typeof options.directory !== "string" || options.directory === "") throw agentError(ErrorCode.INVALID_OPTIONS, "The prepared-state cache needs a directory.");
  if (!Number.isInteger(maxEntries) || maxEntries < 1) throw agentError(ErrorCode.INVALID_OPTIONS, `maxEntries must be a positive integer, not ${String(options.maxEntries)}.`);
  if (typeof maxAgeMs !== "number" || !(maxAgeMs > 0)) throw agentError(ErrorCode.INVALID_OPTIONS, `maxAgeMs must be a positive number of milliseconds, not ${String(options.maxAgeMs)}.`);
  const directory = options.directory;
  const pathOf = (key: string) => {
    if (!KEY.test(key)) throw agentError(ErrorCode.INVALID_OPTIONS, `A prepared-state key is a lowercase hex digest, not ${JSON.stringify(key)}.`);
    return join(directory, key);
  };

  const keys = async (): Promise<string[]> => {
    const names = (await readdir(directory).catch(() => [] as string[])).filter((name) => KEY.test(name));
    const dated = await Promise.all(names.map(async (name) => ({ name, used: (await stat(join(directory, name)).catch(() => undefined))?.mtimeMs ?? 0 })));
    return dated.sort((a, b) => b.used - a.used).map((entry) => entry.name);
  };
  // A state without its time (made before the time was kept) counts as made at the epoch: stale.
  const preparedAt = async (key: string): Promise<number | undefined> => {
    const kept = pathOf(key);
    if (!(await stat(kept).catch(() => undefined))?.isDirectory()) return undefined;
    const text = await readFile(`${kept}${PREPARED_AT_SUFFIX}`, "utf8").catch(() => "0");
    return Number(text) || 0;
  };
  const drop = async (key: string) => {
    await rm(join(directory, key), { recursive: true, force: true });
    await rm(join(directory, `${key}${PREPARED_AT_SUFFIX}`), { force: true });
    await rm(join(directory, `${key}${ORIGIN_SUFFIX}`), { force: true });
  };
  const originOf = async (key: string): Promise<PreparedStateOrigin | undefined> => {
    const text = await readFile(join(directory, `${key}${ORIGIN_SUFFIX}`), "utf8").catch(() => undefined);
    try {
      const origin = text === undefined ? undefined : (JSON.parse(text) as Partial<PreparedStateOrigin>);
      return typeof origin?.lineage === "string" && typeof origin.commit === "string" ? { lineage: origin.lineage, commit: origin.commit } : undefined;
    } catch {
      return undefined;
    }
  };

  return {
    directory,
    maxAgeMs,
    async restoreInto(key, hostDirectory) {
      const kept = pathOf(key);
      const madeAt = await preparedAt(key);
      if (madeAt === undefined) return false;
      if (Date.now() - madeAt > maxAgeMs) {
        await drop(key);
        return false;
      }
      await emptyFolder(hostDirectory);
      await copyTree(kept, hostDirectory);
      // Marks it as recently used, for eviction.
      const now = new Date();
      await utimes(kept, now, now).catch(() => undefined);
      return true;
    },
    async saveFrom(key, hostDirectory, origin) {
      const kept = pathOf(key);
      await mkdir(directory, { recursive: true, mode: 0o700 });
      // Copied aside first and renamed into place, so that a restore never sees half a state.
      const incoming = join(directory, `${TEMP_PREFIX}${randomBytes(6).toString("hex")}`);
      try {
        await mkdir(incoming, { mode: 0o700 });
        await copyTree(hostDirectory, incoming);
        await rm(kept, { recursive: true, force: true });
        // Its time first: a restore never finds the new folder without it (which would count as stale).
        await writeFile(`${kept}${PREPARED_AT_SUFFIX}`, String(Date.now()), { mode: 0o600 });
        if (origin) await writeFile(`${kept}${ORIGIN_SUFFIX}`, JSON.stringify({ lineage: origin.lineage, commit: origin.commit }), { mode: 0o600 });
        else await rm(`${kept}${ORIGIN_SUFFIX}`, { force: true });
        await rename(incoming, kept);
        // cp -a gave the folder the source's times; its own time says when it was last used.
        const now = new Date();
        await utimes(kept, now, now);
      } finally {
        await rm(incoming, { recursive: true, force: true });
      }
      for (const stale of (await keys()).slice(maxEntries)) await drop(stale);
    },
    async find({ lineage, key }) {
      let newest: (FoundPreparedState & { madeAt: number }) | undefined;
      for (const name of await keys()) {
        const [origin, madeAt] = await Promise.all([originOf(name), preparedAt(name)]);
        if (origin?.lineage !== lineage || madeAt === undefined || Date.now() - madeAt > maxAgeMs) continue;
        if (name === key) return { key: name, commit: origin.commit };
        if (!newest || madeAt > newest.madeAt) newest = { key: name, commit: origin.commit, madeAt };
      }
      return newest && { key: newest.key, commit: newest.commit };
    },
    keys,
    preparedAt,
    async invalidate(key) {
      if (key !== undefined) {
        pathOf(key);
        await drop(key);
        return;
      }
      for (const name of await keys()) await drop(name);
    },
  };
}

/** `cp -a --reflink=auto from/. to`: modes, times and symlinks kept as they are (never followed). */
async function copyTree(from: string, to: string): Promise<void> {
  try {
    await run("cp", ["-a", "--reflink=auto", "--", `${from}/.`, to]);
  } catch (cause) {
    throw agentError(ErrorCode.SANDBOX_FILE_ERROR, `Could not copy the prepared state (${(cause as { stderr?: string }).stderr?.trim() || String(cause)}).`, { cause });
  }
}

async function emptyFolder(folder: string): Promise<void> {
  for (const name of await readdir(folder)) await rm(join(folder, name), { recursive: true, force: true, maxRetries: 3 });
}
