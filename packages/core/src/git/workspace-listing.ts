import type { SandboxSession } from "../spec/sandbox-spec.js";

/** One path of the sandbox's working tree, as `find` saw it. */
export interface ListedEntry {
  /** What the path is; `other` for sockets, devices and the like. */
  type: "file" | "symlink" | "directory" | "other";
  /** Size in bytes (of the link itself for symlinks). */
  size: number;
  /** Type, mode, size, inode, mtime and ctime: equal signatures mean an untouched path. */
  signature: string;
  /** Status change time, seconds since the epoch. Nothing inside the sandbox can set it back. */
  ctime: number;
}

/** Every path of the working tree (`.git` folders left out) with its metadata. */
export interface WorkspaceListing {
  /** Every path under the workdir (relative, `/` separators), `.git` left out. */
  entries: Map<string, ListedEntry>;
  /** The sandbox's clock when the listing ended, seconds since the epoch. */
  listedAt: number;
}

// Paths and metadata only, `.git` folders (any letter case) pruned; the sandbox's clock last, for racy entries.
const LIST_SCRIPT = 'cd -- "$0" && find . -mindepth 1 \\( -iname .git -prune \\) -o -printf "%y %m %s %i %T@ %C@ %P\\0" && date +%s.%N';

// File timestamps come from a coarse clock (a few ms behind the fine one): a change made within this
// long of the listing could carry the same ctime as the placed file, so such entries are compared by
// content. A file system that keeps whole seconds only (every ctime integral) needs a second more.
const RACY_SECONDS = 0.05;
const RACY_SECONDS_WHOLE = 1.05;

/**
 * Lists the working tree inside the sandbox with GNU find: metadata only, never contents. Returns
 * undefined when the sandbox cannot (no GNU find, an unreadable folder, a name that is not UTF-8):
 * the caller then brings back every file instead.
 *
 * Taken right after the repository is placed (before setup commands and the agent run), the listing
 * is the trusted record of what was placed. A listing taken later runs where the agent ran: it only
 * selects the paths to bring back and compare on the host, and a status change time (ctime) cannot
 * be set back from inside, so rewriting a file and restoring its mtime does not hide it.
 */
export async function listWorkspace(session: SandboxSession, signal?: AbortSignal): Promise<WorkspaceListing | undefined> {
  const chunks: Uint8Array[] = [];
  let result;
  try {
    result = await session.exec(["sh", "-c", LIST_SCRIPT, session.workdir], { onStdout: (chunk) => chunks.push(chunk), ...(signal ? { signal } : {}) });
  } catch (error) {
    if (signal?.aborted) throw error;
    return undefined;
  }
  if (result.exitCode !== 0) return undefined;
  return parseListing(Buffer.concat(chunks));
}

/** Parses the output of the listing script; undefined when it is not what GNU find prints. */
export function parseListing(output: Buffer): WorkspaceListing | undefined {
  const text = output.toString("utf8");
  // A name that is not valid UTF-8 could not be asked for again by name.
  if (text.includes("\uFFFD")) return undefined;
  const records = text.split("\0");
  const listedAt = Number(records.pop()!.trim());
  if (!Number.isFinite(listedAt)) return undefined;
  const entries = new Map<string, ListedEntry>();
  // `type mode size inode mtime ctime path`: six fields split by position (a regex per record costs
  // more than the rest of the comparison for 20,000 paths).
  for (const record of records) {
    const spaces: number[] = [];
    for (let at = record.indexOf(" "); at !== -1 && spaces.length < 6; at = record.indexOf(" ", at + 1)) spaces.push(at);
    if (spaces.length < 6 || spaces[0] !== 1 || spaces[5]! + 1 >= record.length) return undefined;
    const size = Number(record.slice(spaces[1]! + 1, spaces[2]));
    const ctime = Number(record.slice(spaces[4]! + 1, spaces[5]));
    if (!Number.isFinite(size) || !Number.isFinite(ctime)) return undefined;
    const kind = record[0];
    const type = kind === "f" ? "file" : kind === "l" ? "symlink" : kind === "d" ? "directory" : "other";
    entries.set(record.slice(spaces[5]! + 1), { type, size, signature: record.slice(0, spaces[5]), ctime });
  }
  return { entries, listedAt };
}

/** True when a placed entry is too close to the listing to be judged by its metadata (it is compared by content). */
export function isRacy(placed: WorkspaceListing, path: string): boolean {
  const entry = placed.entries.get(path);
  return entry !== undefined && entry.ctime >= racyTime(placed);
}

function racyTime(placed: WorkspaceListing): number {
  const ctimes = [...placed.entries.values()].map((entry) => entry.ctime);
  const wholeSeconds = ctimes.length > 0 && ctimes.every((ctime) => Number.isInteger(ctime));
  return placed.listedAt - (wholeSeconds ? RACY_SECONDS_WHOLE : RACY_SECONDS);
}

/** What differs between the listing taken when the repository was placed and one taken now. */
export interface ListingDifference {
  /** Files and symlinks that are new or whose metadata changed (or that were racy when placed). */
  changed: string[];
  /** Files and symlinks that were placed and are no longer a file or symlink at that path. */
  removed: string[];
}

/** Compares two listings by metadata. Only files and symlinks count; folders follow from them. */
export function compareListings(placed: WorkspaceListing, now: WorkspaceListing): ListingDifference {
  const changed: string[] = [];
  const removed: string[] = [];
  const racyFrom = racyTime(placed);
  for (const [path, entry] of now.entries) {
    if (entry.type !== "file" && entry.type !== "symlink") continue;
    const before = placed.entries.get(path);
    if (!before || before.signature !== entry.signature || before.ctime >= racyFrom) changed.push(path);
  }
  for (const [path, entry] of placed.entries) {
    if (entry.type !== "file" && entry.type !== "symlink") continue;
    const after = now.entries.get(path);
    if (!after || (after.type !== "file" && after.type !== "symlink")) removed.push(path);
  }
  return { changed, removed };
}
