import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { constants as fsConstants, type BigIntStats } from "node:fs";
import { open, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
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
  /**
   * True when {@link listedAt} is the status change time of a file made on the workspace's file system
   * right before the listing started: the very clock its entries' ctimes come from, so that no margin
   * for a coarse clock is needed (only what shares its tick is racy).
   */
  fileClock?: boolean;
}

// find's arguments: paths and metadata only, `.git` folders (any letter case) pruned.
const LIST_ARGUMENTS = [".", "-mindepth", "1", "(", "-iname", ".git", "-prune", ")", "-o", "-printf", "%y %m %s %i %T@ %C@ %P\\0"];

// Inside the sandbox: find over the workdir ($0) with the arguments given, then the sandbox's clock (for racy entries).
const LISTING_SCRIPT = 'cd -- "$0" && find "$@" && date +%s.%N';

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
  const clock = await fileClock(session);
  const output = await runListing(session, LIST_ARGUMENTS, signal, clock);
  const listing = output && parseListing(output);
  if (listing && clock !== undefined) listing.fileClock = true;
  return listing;
}

/**
 * The ctime of a file made (and removed again) in the session's scratch folder, on the host, when the
 * provider has host folders and the scratch folder is on the workspace's file system: the clock the
 * workspace's ctimes come from (a coarse one, a tick behind the process's; multigrain timestamps keep
 * it ordered with the fine ones), read before the listing starts. Anything changed after it has a
 * ctime at least as late, whatever the process's clock says (which a clock step, or monotonic time
 * that went on while the realtime clock was set back, can put ahead of it). Undefined otherwise.
 */
async function fileClock(session: SandboxSession): Promise<number | undefined> {
  if (!session.hostFolder) return undefined;
  try {
    const [workspace, scratch] = await Promise.all([session.hostFolder(session.workdir), session.hostFolder(session.scratchDir)]);
    // A random name, created exclusively and never through a link: the scratch folder is the sandbox's.
    const marker = join(scratch, `.running-agent-clock-${randomBytes(6).toString("hex")}`);
    const handle = await open(marker, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW, 0o600);
    let stats: BigIntStats;
    try {
      stats = await handle.stat({ bigint: true });
    } finally {
      await handle.close();
      await unlink(marker).catch(() => undefined);
    }
    if (stats.dev !== (await stat(workspace, { bigint: true })).dev) return undefined;
    return Number(stats.ctimeNs / 1000n) / 1e6;
  } catch {
    return undefined;
  }
}

// The longest wait for placed entries to leave the racy window: a file system of whole seconds would need a second.
const MAX_SETTLE_SECONDS = 0.1;
// So few racy entries, so small, that comparing them by content on each collect costs less than waiting
// out the window on every task's start (a small repository is racy whole right after its extraction).
const FEW_RACY_ENTRIES = 64;
const FEW_RACY_BYTES = 1024 * 1024;

/**
 * {@link listWorkspace} for the record of what was placed, taken right after placing and before
 * anything else runs in the sandbox. Entries placed in the last moments before a listing are racy
 * (their ctime cannot tell a later change from the placement, so every collect brings them back to
 * compare by content: hundreds of files for a tree placed in one extraction); when there are more
 * than a few small ones, this waits until the newest of them is out of the window and lists again,
 * so that none is.
 */
export async function listPlacedWorkspace(session: SandboxSession, signal?: AbortSignal): Promise<WorkspaceListing | undefined> {
  const first = await listWorkspace(session, signal);
  if (!first) return undefined;
  const threshold = changesThreshold(first);
  let newest = Number.NEGATIVE_INFINITY;
  let racyEntries = 0;
  let racyBytes = 0;
  for (const entry of first.entries.values()) {
    if (entry.ctime > newest) newest = entry.ctime;
    if (entry.ctime >= threshold) {
      racyEntries += 1;
      racyBytes += entry.size;
    }
  }
  if (racyEntries <= FEW_RACY_ENTRIES && racyBytes <= FEW_RACY_BYTES) return withIndex(first);
  // How much later the listing must end for the newest entry to be below the threshold isRacy applies (a margin added).
  const wait = newest - threshold + 0.002;
  if (wait > MAX_SETTLE_SECONDS) return withIndex(first);
  // An abort rejects here; the caller turns it into its ABORTED error.
  await sleep(Math.ceil(wait * 1000), undefined, signal ? { signal } : {});
  // Nothing ran in the sandbox meanwhile: this listing records the same placement, with nothing racy.
  return withIndex((await listWorkspace(session, signal)) ?? first);
}

// The placed listing's index is made here, in the clone phase, rather than by the first collect (tens of ms for 20,000 entries).
function withIndex(listing: WorkspaceListing): WorkspaceListing {
  placedIndex(listing);
  return listing;
}

/**
 * Runs find over the workdir with `findArguments`, and prints the clock after it (on the host, `clock`
 * when given): on the host, over the session's own folder, where the provider has one (find alone: no
 * command started inside, no shell, and the host's clock is the sandbox's), else inside. Undefined when find failed.
 */
async function runListing(session: SandboxSession, findArguments: readonly string[], signal: AbortSignal | undefined, clock?: number): Promise<Buffer | undefined> {
  const chunks: Uint8Array[] = [];
  try {
    if (session.hostFolder) {
      const folder = await session.hostFolder(session.workdir);
      return await new Promise<Buffer | undefined>((resolve, reject) => {
        execFile("find", findArguments, { cwd: folder, encoding: "buffer", maxBuffer: 1024 * 1024 * 1024, env: { PATH: process.env.PATH ?? "/usr/bin:/bin", LC_ALL: "C" }, ...(signal ? { signal } : {}) }, (error, stdout) => {
          if (signal?.aborted) return reject(signal.reason);
          // The file clock read before find started, else this process's once find has ended (as `date` would print it after find).
          resolve(error ? undefined : Buffer.concat([stdout, Buffer.from(`${(clock ?? (performance.timeOrigin + performance.now()) / 1000).toFixed(6)}\n`)]));
        });
      });
    }
    const result = await session.exec(["sh", "-c", LISTING_SCRIPT, session.workdir, ...findArguments], { onStdout: (chunk) => chunks.push(chunk), ...(signal ? { signal } : {}) });
    return result.exitCode === 0 ? Buffer.concat(chunks) : undefined;
  } catch (error) {
    if (signal?.aborted) throw error;
    return undefined;
  }
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
  for (const record of records) {
    const parsed = parseRecord(record);
    if (!parsed) return undefined;
    entries.set(parsed[0], parsed[1]);
  }
  return { entries, listedAt };
}

// `type mode size inode mtime ctime path`: six fields split by position (a regex per record costs
// more than the rest of the comparison for 20,000 paths).
function parseRecord(record: string): [string, ListedEntry] | undefined {
  const spaces: number[] = [];
  for (let at = record.indexOf(" "); at !== -1 && spaces.length < 6; at = record.indexOf(" ", at + 1)) spaces.push(at);
  if (spaces.length < 6 || spaces[0] !== 1 || spaces[5]! + 1 >= record.length) return undefined;
  const size = Number(record.slice(spaces[1]! + 1, spaces[2]));
  const ctime = Number(record.slice(spaces[4]! + 1, spaces[5]));
  if (!Number.isFinite(size) || !Number.isFinite(ctime)) return undefined;
  return [record.slice(spaces[5]! + 1), { type: entryType(record[0]), size, signature: record.slice(0, spaces[5]), ctime }];
}

function entryType(kind: string | undefined): ListedEntry["type"] {
  return kind === "f" ? "file" : kind === "l" ? "symlink" : kind === "d" ? "directory" : "other";
}

/**
 * True when a placed entry may be asked for although untouched: too close to the listing to be judged
 * by its metadata, or within the millisecond {@link listChangesSince} adds to that threshold (either
 * way it is compared by content).
 */
export function isRacy(placed: WorkspaceListing, path: string): boolean {
  const entry = placed.entries.get(path);
  return entry !== undefined && entry.ctime >= changesThreshold(placed);
}

// A millisecond early: what rounding moves across the racy threshold is printed in full, never hidden.
function changesThreshold(placed: WorkspaceListing): number {
  return racyTime(placed) - 0.001;
}

function racyTime(placed: WorkspaceListing): number {
  return placedIndex(placed).racyFrom;
}

/** What the collects of a task derive from its placed listing (never changed): worked out once, when the listing is taken. */
export interface PlacedIndex {
  /** Entries with a ctime from here on are racy. */
  racyFrom: number;
  /** The racy entries' paths. */
  racyPaths: readonly string[];
  /** The paths in each placed folder (`""` is the workdir). */
  children: ReadonlyMap<string, readonly string[]>;
  /** Folders with nothing in them (git keeps none: a submodule's). */
  emptyFolders: ReadonlySet<string>;
  /** The `.gitignore` files. */
  ignoreFiles: readonly string[];
  /** True when a `.gitattributes` file is among them. */
  hasAttributes: boolean;
}

const placedIndexes = new WeakMap<WorkspaceListing, PlacedIndex>();

/** The {@link PlacedIndex} of a placed listing; worked out on the first call ({@link listPlacedWorkspace} makes it, off the collect's path). */
export function placedIndex(placed: WorkspaceListing): PlacedIndex {
  let index = placedIndexes.get(placed);
  if (index) return index;
  let wholeSeconds = placed.entries.size > 0;
  const children = new Map<string, string[]>();
  const ignoreFiles: string[] = [];
  let hasAttributes = false;
  for (const [path, entry] of placed.entries) {
    if (!Number.isInteger(entry.ctime)) wholeSeconds = false;
    const at = path.lastIndexOf("/");
    const parent = at < 0 ? "" : path.slice(0, at);
    const name = path.slice(at + 1);
    const list = children.get(parent);
    if (list) list.push(path);
    else children.set(parent, [path]);
    if (name === ".gitignore") ignoreFiles.push(path);
    else if (name === ".gitattributes") hasAttributes = true;
  }
  const racyFrom = placed.listedAt - (wholeSeconds ? RACY_SECONDS_WHOLE : placed.fileClock ? 0 : RACY_SECONDS);
  const racyPaths: string[] = [];
  const emptyFolders = new Set<string>();
  for (const [path, entry] of placed.entries) {
    if (entry.ctime >= racyFrom) racyPaths.push(path);
    if (entry.type === "directory" && !children.has(path)) emptyFolders.add(path);
  }
  index = { racyFrom, racyPaths, children, emptyFolders, ignoreFiles, hasAttributes };
  placedIndexes.set(placed, index);
  return index;
}

/** What {@link listChangesSince} found: {@link compareListings}'s answer, and what is at a path now. */
export interface WorkspaceChanges extends ListingDifference {
  /** The entry at `path` now (from the new listing for what changed, else the placed one), or undefined when none. */
  entryAt(path: string): ListedEntry | undefined;
}

// The whole tree: entries whose status changed after the threshold in full, the others as type, inode and path only.
const treeChangesArguments = (threshold: string) => [".", "-mindepth", "1", "(", "-iname", ".git", "-prune", ")", "-o", "(", "-newerct", threshold, "-printf", "+%y %m %s %i %T@ %C@ %P\\0", ")", "-o", "-printf", "%y %i %P\\0"];

// Entries whose status changed after the threshold ($1 of the script) in full (with their device), and of
// each folder among them (the workdir included) the other entries in it, short: an entry is added to,
// removed from or renamed in a folder only by changing the folder's ctime. Paths as find prints them from
// `.`: `.` and `./...`. find flushes its output and waits for the command before it goes on, so the records
// never interleave. The folders are named by path (depth 0 of the second find, printed with its device and
// inode): a folder swapped for a symlink meanwhile would be listed through it, which the parser tells by
// that record not being the folder the first find saw there (the first find itself never follows one).
const FOLDER_ENTRIES_SCRIPT = 'threshold=$1; shift; exec find "$@" -maxdepth 1 \\( -iname .git -prune \\) -o ! -newerct "$threshold" -printf "=%d %y %D %i %p\\0" -o -type d -printf "=%d %y %D %i %p\\0"';
const folderChangesArguments = (threshold: string) => [".", "(", "-iname", ".git", "-prune", ")", "-o", "(", "-newerct", threshold, "-printf", "+%D %y %m %s %i %T@ %C@ %p\\0", "(", "-type", "d", "-exec", "sh", "-c", FOLDER_ENTRIES_SCRIPT, "sh", threshold, "{}", "+", ")", ")"];

/**
 * {@link listWorkspace} and {@link compareListings} in one, for a large tree with a small change:
 * GNU find prints in full only the entries whose status change time (ctime) is later than the
 * placed listing's racy threshold (a write, chmod, rename or link sets the ctime, and nothing
 * inside can set it back), and type, inode and path of the other entries of the folders among
 * them. A placed entry not printed is there untouched unless a folder above it changed and it was
 * not seen in it. A folder seen at a path with another inode than placed (moved there with its
 * old ctime) makes the listing of the whole tree ({@link parseChanges}), where every entry at its
 * placed path with its placed inode and an older ctime is untouched. Undefined when the sandbox
 * cannot (the caller lists in full).
 */
export async function listChangesSince(session: SandboxSession, placed: WorkspaceListing, signal?: AbortSignal): Promise<WorkspaceChanges | undefined> {
  const threshold = `@${changesThreshold(placed).toFixed(6)}`;
  const output = await runListing(session, folderChangesArguments(threshold), signal);
  const changes = output && parseFolderChanges(output, placed);
  if (changes !== "moved folder") return changes;
  const tree = await runListing(session, treeChangesArguments(threshold), signal);
  return tree && parseChanges(tree, placed);
}

/**
 * Parses the output of {@link listChangesSince}'s first listing against the placed listing;
 * "moved folder" when a folder is not the one placed at its path (the whole tree must be listed),
 * undefined when it is not GNU find's.
 */
export function parseFolderChanges(output: Buffer, placed: WorkspaceListing): WorkspaceChanges | "moved folder" | undefined {
  const text = output.toString("utf8");
  if (text.includes("\uFFFD")) return undefined;
  const records = text.split("\0");
  if (!Number.isFinite(Number(records.pop()!.trim()))) return undefined;
  const racyFrom = racyTime(placed);
  // Changed after the threshold (in full), and the other entries of the folders among them.
  const fresh = new Map<string, ListedEntry>();
  const seen = new Map<string, { type: ListedEntry["type"]; inode: string }>();
  // Each folder listed, as the first find saw it (`device inode`), and as the second one started from it.
  const listedFolders = new Map<string, string>();
  const startedFrom = new Map<string, string>();
  for (const record of records) {
    if (record.startsWith("+")) {
      const space = record.indexOf(" ");
      const parsed = space < 0 ? undefined : parseRecord(record.slice(space + 1));
      const path = parsed && relativePath(parsed[0]);
      if (path === undefined) return undefined;
      if (parsed![1].type === "directory") listedFolders.set(path, `${record.slice(1, space)} ${inodeOf(parsed![1])}`);
      if (path !== "") fresh.set(path, parsed![1]);
      continue;
    }
    // `=<depth> <type> <device> <inode> <path>`
    const spaces: number[] = [];
    for (let at = record.indexOf(" "); at !== -1 && spaces.length < 4; at = record.indexOf(" ", at + 1)) spaces.push(at);
    const path = spaces.length < 4 ? undefined : relativePath(record.slice(spaces[3]! + 1));
    const depth = record.slice(1, spaces[0]);
    if (!record.startsWith("=") || path === undefined || spaces[1] !== spaces[0]! + 2 || (depth !== "0" && (depth !== "1" || path === ""))) return undefined;
    if (depth === "0") startedFrom.set(path, record.slice(spaces[1]! + 1, spaces[3]));
    else seen.set(path, { type: entryType(record[spaces[0]! + 1]), inode: record.slice(spaces[2]! + 1, spaces[3]) });
  }
  // Every folder listed was listed from itself, never through a symlink put in its place.
  for (const [path, identity] of listedFolders) if (startedFrom.get(path) !== identity) return undefined;
  if (startedFrom.size !== listedFolders.size) return undefined;
  // Folders changed after the threshold are printed by both; the first find's record is the one kept.
  for (const path of fresh.keys()) seen.delete(path);
  const isFileOrLink = (entry: { type: ListedEntry["type"] } | undefined) => entry?.type === "file" || entry?.type === "symlink";
  // Seen with its old ctime: the placed entry untouched when it has the placed type and inode; a folder that is
  // not is the placed one's subtree moved elsewhere or another's moved here (its entries keep their old ctimes).
  for (const [path, now] of seen) {
    const before = placed.entries.get(path);
    const same = before !== undefined && before.type === now.type && inodeOf(before) === now.inode && before.ctime < racyFrom;
    if (same) continue;
    if (now.type === "directory") return "moved folder";
    fresh.set(path, { type: now.type, size: before?.size ?? 0, signature: `short ${now.type} ${now.inode}`, ctime: Number.POSITIVE_INFINITY });
  }
  // Placed entries gone: not seen in a folder that changed, below one gone, or below one that is no longer a folder.
  const children = placedIndex(placed).children;
  const gone = new Set<string>();
  const goneWithin = (path: string) => {
    for (const child of children.get(path) ?? []) {
      gone.add(child);
      goneWithin(child);
    }
  };
  for (const folder of listedFolders.keys()) {
    for (const child of children.get(folder) ?? []) {
      if (fresh.has(child) || seen.has(child)) continue;
      gone.add(child);
      goneWithin(child);
    }
  }
  for (const [path, entry] of fresh) if (entry.type !== "directory" && placed.entries.get(path)?.type === "directory") goneWithin(path);
  const removed = new Set<string>();
  for (const path of gone) if (isFileOrLink(placed.entries.get(path)) && !fresh.has(path)) removed.add(path);
  // A racy entry that is still there is printed in full (its ctime cannot go back).
  for (const path of placedIndex(placed).racyPaths) if (isFileOrLink(placed.entries.get(path)) && !fresh.has(path)) removed.add(path);
  for (const [path, entry] of fresh) if (!isFileOrLink(entry) && isFileOrLink(placed.entries.get(path))) removed.add(path);
  return {
    changed: [...fresh].filter(([, entry]) => isFileOrLink(entry)).map(([path]) => path),
    removed: [...removed],
    entryAt: (path) => {
      const entry = fresh.get(path) ?? placed.entries.get(path);
      if (!entry || fresh.has(path)) return entry;
      return entry.ctime >= racyFrom || gone.has(path) ? undefined : entry;
    },
  };
}

// `.` is the workdir, `./x` the entry x in it; anything else is not what find prints from `.`.
function relativePath(path: string): string | undefined {
  if (path === ".") return "";
  return path.startsWith("./") && path.length > 2 ? path.slice(2) : undefined;
}

// The signature is `type mode size inode mtime ctime`.
function inodeOf(entry: ListedEntry): string {
  const signature = entry.signature;
  const start = signature.indexOf(" ", signature.indexOf(" ", 2) + 1) + 1;
  return signature.slice(start, signature.indexOf(" ", start));
}

/** Parses the listing of the whole tree {@link listChangesSince} falls back to, against the placed listing; undefined when it is not GNU find's. */
export function parseChanges(output: Buffer, placed: WorkspaceListing): WorkspaceChanges | undefined {
  const text = output.toString("utf8");
  if (text.includes("\uFFFD")) return undefined;
  const records = text.split("\0");
  if (!Number.isFinite(Number(records.pop()!.trim()))) return undefined;
  const racyFrom = racyTime(placed);
  // Copied: a set of strings whose hashes are already known copies fast; what is left was not seen.
  const untouched = new Set(untouchedRecords(placed));
  const fresh = new Map<string, ListedEntry>();
  for (const record of records) {
    if (untouched.delete(record)) continue;
    if (record.startsWith("+")) {
      const parsed = parseRecord(record.slice(1));
      if (!parsed) return undefined;
      fresh.set(parsed[0], parsed[1]);
      continue;
    }
    // Short: not where it was placed (a moved folder's files), or a racy one; compared as changed.
    const first = record.indexOf(" ");
    const second = record.indexOf(" ", first + 1);
    if (first !== 1 || second < 0 || second + 1 >= record.length) return undefined;
    fresh.set(record.slice(second + 1), { type: entryType(record[0]), size: placed.entries.get(record.slice(second + 1))?.size ?? 0, signature: `short ${record}`, ctime: Number.POSITIVE_INFINITY });
  }
  const isFileOrLink = (entry: ListedEntry | undefined) => entry?.type === "file" || entry?.type === "symlink";
  const changed = [...fresh].filter(([, entry]) => isFileOrLink(entry)).map(([path]) => path);
  // Placed files gone: not seen where they were placed (what is left in `untouched`), racy ones not
  // seen at all, and those that are now something else than a file or symlink.
  const removed = new Set<string>();
  for (const record of untouched) {
    const path = record.slice(record.indexOf(" ", 2) + 1);
    if (isFileOrLink(placed.entries.get(path)) && !fresh.has(path)) removed.add(path);
  }
  for (const path of placedIndex(placed).racyPaths) if (isFileOrLink(placed.entries.get(path)) && !fresh.has(path)) removed.add(path);
  for (const [path, entry] of fresh) if (!isFileOrLink(entry) && isFileOrLink(placed.entries.get(path))) removed.add(path);
  return {
    changed,
    removed: [...removed],
    entryAt: (path) => {
      const entry = fresh.get(path) ?? placed.entries.get(path);
      if (!entry || fresh.has(path)) return entry;
      return entry.ctime >= racyFrom || untouched.has(shortRecord(path, entry)) ? undefined : entry;
    },
  };
}

// The short record (`type inode path`) of every placed entry that is not racy: what an untouched entry prints. Once per listing.
const untouchedRecordsOf = new WeakMap<WorkspaceListing, ReadonlySet<string>>();

function untouchedRecords(placed: WorkspaceListing): ReadonlySet<string> {
  let records = untouchedRecordsOf.get(placed);
  if (!records) {
    const racyFrom = racyTime(placed);
    const built = new Set<string>();
    for (const [path, entry] of placed.entries) if (entry.ctime < racyFrom) built.add(shortRecord(path, entry));
    untouchedRecordsOf.set(placed, (records = built));
  }
  return records;
}

// The signature is `type mode size inode mtime ctime`.
function shortRecord(path: string, entry: ListedEntry): string {
  const signature = entry.signature;
  const inodeStart = signature.indexOf(" ", signature.indexOf(" ", 2) + 1);
  return signature[0] + signature.slice(inodeStart, signature.indexOf(" ", inodeStart + 1) + 1) + path;
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
