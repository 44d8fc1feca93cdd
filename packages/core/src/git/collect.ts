import { createHash, randomBytes } from "node:crypto";
import { spawn, type ChildProcessByStdio } from "node:child_process";
import { once } from "node:events";
import { constants as fsConstants, createReadStream } from "node:fs";
import { link, lstat, mkdir, open, readdir, readFile, readlink, rm, symlink, unlink } from "node:fs/promises";
import { join } from "node:path";
import { Readable, type Writable } from "node:stream";
import { promisify } from "node:util";
import { deflate } from "node:zlib";
import * as tar from "tar-stream";
import { readArchive, safeArchivePath, type ArchiveEntry } from "../archive.js";
import type { ChangedFile } from "../changes.js";
import { abortedError, agentError, ErrorCode, RunningAgentError, throwIfAborted } from "../errors.js";
import { signalProcessTree } from "../process-tree.js";
import type { SandboxSession } from "../spec/sandbox-spec.js";
import { ChangeBudget, DEFAULT_CHANGE_LIMITS, SecretScanner, secretInChanges, type ChangeLimits } from "./change-checks.js";
import { GitCommandFailure, gitEnvironment, runGit } from "./git-command.js";
import { parseIndexEntries } from "./index-file.js";
import { listStagedChanges, parseStagedChanges, STAGED_DIFF_ARGUMENTS } from "./staged-changes.js";
import { abortFailure, wrapFailure } from "./remote-errors.js";
import { compareListings, listChangesSince, listWorkspace, placedIndex, type WorkspaceChanges, type WorkspaceListing } from "./workspace-listing.js";

/** What {@link collectChanges} needs. */
export interface CollectChangesInput {
  /** The sandbox the agent worked in; its workdir holds the repository. */
  session: SandboxSession;
  /** The host clone the sandbox's copy came from (its working tree may be empty: the index is what counts). */
  dir: string;
  /**
   * The listing taken right after the repository was placed ({@link listWorkspace}). With it, and a
   * session that has `getArchiveStream`, only the paths whose metadata changed are brought back;
   * without it every file is, and the host working tree must hold HEAD's files.
   */
  placed?: WorkspaceListing;
  /**
   * What an earlier collect of this task left staged: the paths of its changes (and the previous
   * paths of its renames); [] before the first. Without it git is asked (one more process).
   */
  staged?: readonly string[];
  /** Bounds on the changes; defaults {@link DEFAULT_CHANGE_LIMITS}. */
  limits?: ChangeLimits;
  /** Strings that must not be in any changed file (the run's keys, tokens and passwords). */
  secrets?: readonly string[];
  /** Aborts the step; it rejects with ABORTED. */
  signal?: AbortSignal;
}

/** A file or symlink of the sandbox's working tree, checked and ready to write. */
type TreeEntry = ArchiveEntry & { type: "file" | "symlink" };

const deflateAsync = promisify(deflate);

// Files written at once when bringing the tree back (file system calls run on libuv's pool).
const WRITE_CONCURRENCY = 8;

/**
 * Makes the host clone's index equal to the sandbox's working tree, and lists what changed against
 * HEAD. The sandbox's `.git` is never read back (any path with a `.git` component is skipped);
 * symlinks are recorded as links and never followed; an entry below a symlink is refused with
 * UNSAFE_PATH; paths ignored by the repository's .gitignore rules (as the sandbox has them) are
 * not brought back. Renames are exact: the same content deleted and added. Returns [] when
 * nothing changed. Leaves the changes staged in the host clone's index.
 *
 * Every changed file is checked as it arrives: CHANGES_TOO_LARGE past `limits`, SECRET_IN_CHANGES
 * when it holds one of `secrets` (the error names the file, never the secret).
 */
export async function collectChanges(input: CollectChangesInput): Promise<ChangedFile[]> {
  const { session, signal } = input;
  try {
    throwIfAborted(signal, "collect");
    const checks = { budget: new ChangeBudget({ ...DEFAULT_CHANGE_LIMITS, ...input.limits }), scanner: new SecretScanner(input.secrets ?? []) };
    if (input.placed && session.getArchiveStream) {
      const placed = input.placed;
      // What an earlier collect of this task staged, when the caller does not say, is asked of git while the sandbox lists.
      const staged = input.staged ? Promise.resolve(input.staged) : stagedPaths(input.dir, signal);
      staged.catch(() => undefined);
      // The host clone's index and config are read while the sandbox lists, too.
      const hostFiles = readHostGitFiles(input.dir);
      const now = (await listChangesSince(session, placed, signal)) ?? (await listAndCompare(session, placed, signal));
      throwIfAborted(signal, "collect");
      if (now) return await collectChangedPaths(input, placed, now, await staged, checks, hostFiles);
    }
    return await collectWholeTree(input, checks);
  } catch (error) {
    const aborted = abortFailure(error, signal, "collect");
    if (aborted) throw aborted;
    throw wrapFailure(error, ErrorCode.COLLECT_FAILED, `Collecting the changes from the sandbox failed: ${(error as Error).message}`, "collect");
  }
}

interface ChangeChecks {
  budget: ChangeBudget;
  scanner: SecretScanner;
}

/** The full listing and its comparison, for a sandbox whose find cannot select by ctime. */
async function listAndCompare(session: SandboxSession, placed: WorkspaceListing, signal: AbortSignal | undefined): Promise<WorkspaceChanges | undefined> {
  const now = await listWorkspace(session, signal);
  return now && { ...compareListings(placed, now), entryAt: (path) => now.entries.get(path) };
}

/**
 * The cost grows with the change: the listings say which paths may have changed; only those are
 * brought back (streamed to disk, checked as they come) and staged by path. Git on the host
 * decides what really changed, from the bytes that came back, never from the sandbox's `.git`.
 */
async function collectChangedPaths(input: CollectChangesInput, placed: WorkspaceListing, now: WorkspaceChanges, stagedBefore: readonly string[], checks: ChangeChecks, hostFiles: HostGitFiles): Promise<ChangedFile[]> {
  const { session, dir, signal } = input;
  const staged = new Set(stagedBefore);
  const present = (path: string) => now.entryAt(path)?.type === "file" || now.entryAt(path)?.type === "symlink";
  // Tracked means in the index (HEAD, plus what an earlier collect of this task staged): the placed
  // listing may hold more (a prepared state's setup output). Asked for the paths in question only.
  const ignoreFile = (path: string) => path === ".gitignore" || path.endsWith("/.gitignore");
  const placedIgnoreFiles = placedIndex(placed).ignoreFiles;
  const index = await indexEntries(dir, placed, [...new Set([...now.changed, ...now.removed, ...staged, ...placedIgnoreFiles])], staged, signal, hostFiles);
  const isPlacedFile = (path: string) => index.has(path);
  const submodules = [...index].filter(([, entry]) => entry.mode === "160000").map(([path]) => path);
  const belongs = (path: string) => isWorkingTreePath(path) && !submodules.some((submodule) => path === submodule || path.startsWith(`${submodule}/`));
  const changed = now.changed.filter(belongs);
  // Gone from the sandbox: placed files, and what an earlier collect staged that is no longer there.
  const removed = [...new Set([...now.removed, ...[...staged].filter((path) => !present(path))])].filter((path) => belongs(path) && isPlacedFile(path));

  // Without attributes (which git applies to a file's bytes on the way in) the files go straight into
  // git's object store, one pack, never written to the host tree; with them, to the host tree for git to hash.
  const objects = hasAttributeFiles(placed, changed) ? undefined : new BlobImport(dir, await objectFormat(index, hostFiles), signal);
  try {
    return await stageChanges();
  } finally {
    objects?.kill();
  }

  async function stageChanges(): Promise<ChangedFile[]> {
    // Deletions first, so that a folder that replaced a file (or the other way round) has room.
    for (const path of removed) await removeHostPath(dir, path);
    const received = new Set<string>();
    const untracked = changed.filter((path) => !isPlacedFile(path));
    let ignored = new Set<string>();
    if (untracked.length > 0) {
      // check-ignore reads the .gitignore files of the working tree: the sandbox's versions of the
      // changed ones, HEAD's of the others.
      const changedSet = new Set(changed);
      const removedSet = new Set(removed);
      const unchangedIgnoreFiles = placedIgnoreFiles.filter((path) => isPlacedFile(path) && !changedSet.has(path) && !removedSet.has(path) && present(path) && belongs(path));
      if (unchangedIgnoreFiles.length > 0) await runGit(["checkout-index", "--force", "-z", "--stdin"], { cwd: dir, input: `${unchangedIgnoreFiles.join("\0")}\0`, signal, phase: "collect" });
      await bringBack(session, dir, changed.filter(ignoreFile), received, checks, signal, { objects });
      ignored = await ignoredPaths(dir, untracked, signal);
    }
    const wanted = changed.filter((path) => !received.has(path) && !ignored.has(path));
    // The listing's sizes let an oversized change fail before a byte is read; the stream is counted again.
    const announced = new ChangeBudget({ ...DEFAULT_CHANGE_LIMITS, ...input.limits });
    for (const path of [...received, ...wanted]) {
      const entry = now.entryAt(path);
      if (entry?.type === "file") announced.addFile(path, entry.size);
    }
    // What comes back as the index has it (a racy placed file, one the agent rewrote as it was) is neither written nor staged.
    const unchanged = new Set<string>();
    await bringBack(session, dir, wanted, received, checks, signal, { objects, writeHost: !objects, indexed: (path) => index.get(path), unchanged });

    // A path asked for that did not come is gone from the sandbox: a deletion if HEAD has it.
    const vanished = changed.filter((path) => !received.has(path) && !ignored.has(path) && isPlacedFile(path));
    for (const path of vanished) await removeHostPath(dir, path);
    const toStage = [...removed, ...vanished, ...[...received].filter((path) => !ignored.has(path) && !unchanged.has(path))];
    if (toStage.length > 0 && objects) {
      // Each path's entry as imported, or none (deletions first, so that a folder can replace a file).
      const imported = objects.imported();
      const none = `0 ${"0".repeat(objects.objectLength)}\t`;
      const lines = [...toStage.filter((path) => !imported.has(path)).map((path) => `${none}${path}`), ...[...imported].filter(([path]) => !ignored.has(path)).map(([path, entry]) => `${entry.mode} ${entry.object}\t${path}`)];
      return parseStagedChanges(await objects.finish(`${lines.join("\0")}\0`));
    } else if (toStage.length > 0) {
      // By path, no pathspec matching (which costs paths x index entries): a path with a file or link on
      // the host is hashed and staged, one without is dropped from the index. Files past the threshold
      // are hashed as a stream into a pack, not read whole into git's memory.
      await runGit(["-c", "core.bigFileThreshold=16m", "update-index", "--add", "--remove", "-z", "--stdin"], {
        cwd: dir,
        input: `${toStage.join("\0")}\0`,
        signal,
        phase: "collect",
      });
    } else if (staged.size === 0) {
      // Nothing staged before, nothing now: the index is HEAD.
      return [];
    }
    return listStagedChanges(dir, signal);
  }
}

// .gitattributes anywhere in the placed tree or the change.
function hasAttributeFiles(placed: WorkspaceListing, changed: readonly string[]): boolean {
  return placedIndex(placed).hasAttributes || changed.some((path) => path === ".gitattributes" || path.endsWith("/.gitattributes"));
}

// fast-import writes the blobs (one pack), update-index stages the entries given on fd 3 once the
// blobs are in, and the staged changes are listed (the arguments of listStagedChanges): one process
// started from here, git's own ones started by the shell (a fork of this large process costs more).
const STAGE_SCRIPT = 'git -c core.bigFileThreshold=16m fast-import --quiet --done && git update-index -z --index-info <&3 && exec git "$@"';
// The same without fast-import, when every blob was written as a loose object.
const INDEX_SCRIPT = 'git update-index -z --index-info <&3 && exec git "$@"';

// Blobs written as loose objects here before the rest go to fast-import: fast-import's start (its pools,
// pack and pack index) costs about 20 ms, a small loose object a fraction of a millisecond.
const LOOSE_MAX_OBJECTS = 32;
const LOOSE_MAX_BYTES = 4 * 1024 * 1024;

/**
 * Blobs streamed into `git fast-import` (one pack) and then staged, for paths whose bytes are what
 * git stores (no attributes apply). Their object ids are hashed here as the bytes go by (git's own
 * rule: the hash of `blob <size>\0` and the bytes). The first few small blobs, held whole already,
 * are written as loose objects instead (git's loose format: the same bytes, deflated, at the path its
 * id names), so that a small change starts no fast-import. fast-import is started with the first
 * other blob; nothing reaches the index until {@link finish} is given the entries to stage.
 */
class BlobImport {
  private child: ChildProcessByStdio<Writable, Readable, Readable> | undefined;
  private indexInput: Writable | undefined;
  private exited: Promise<Buffer> | undefined;
  private readonly entries = new Map<string, { mode: string; object: string }>();
  private looseObjects = 0;
  private looseBytes = 0;

  constructor(
    private readonly dir: string,
    private readonly hash: "sha1" | "sha256",
    private readonly signal: AbortSignal | undefined,
  ) {}

  /** Hex digits of an object id. */
  get objectLength(): number {
    return this.hash === "sha256" ? 64 : 40;
  }

  /** Imports one blob; a stream is written as it comes (checked by the caller's iterable as it is read). */
  async add(path: string, mode: string, size: number, content: Uint8Array | AsyncIterable<Uint8Array>): Promise<void> {
    const header = `blob ${size}\0`;
    if (content instanceof Uint8Array && this.looseObjects < LOOSE_MAX_OBJECTS && this.looseBytes + size <= LOOSE_MAX_BYTES) {
      this.looseObjects += 1;
      this.looseBytes += size;
      const object = createHash(this.hash).update(header).update(content).digest("hex");
      await writeLooseObject(this.dir, object, Buffer.concat([Buffer.from(header), content]));
      this.entries.set(path, { mode, object });
      return;
    }
    const stdin = this.start(STAGE_SCRIPT).stdin;
    const hash = createHash(this.hash).update(header);
    await this.write(stdin, Buffer.from(`blob\ndata ${size}\n`));
    if (content instanceof Uint8Array) {
      hash.update(content);
      await this.write(stdin, content);
    } else {
      for await (const chunk of content) {
        hash.update(chunk);
        await this.write(stdin, chunk);
      }
    }
    await this.write(stdin, Buffer.from("\n"));
    this.entries.set(path, { mode, object: hash.digest("hex") });
  }

  /** Each imported path's mode and object id. */
  imported(): ReadonlyMap<string, { mode: string; object: string }> {
    return this.entries;
  }

  /** Ends the import, stages `indexInfo` (`update-index --index-info -z` records) and returns what git lists as staged. */
  async finish(indexInfo: string): Promise<Buffer> {
    const importing = this.child !== undefined;
    const child = this.start(importing ? STAGE_SCRIPT : INDEX_SCRIPT);
    if (importing) await this.write(child.stdin, Buffer.from("done\n"));
    child.stdin.end();
    this.indexInput!.end(indexInfo);
    return this.exited!;
  }

  /** Stops an import that was not finished (what it wrote stays unreferenced, in a temporary pack). */
  kill(): void {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) signalProcessTree(this.child, "SIGKILL");
  }

  private start(script: string): ChildProcessByStdio<Writable, Readable, Readable> {
    if (this.child) return this.child;
    const args = ["-c", script, "sh", ...STAGED_DIFF_ARGUMENTS];
    // Its own process group, so that an abort ends the git processes the shell started too.
    const child = spawn("sh", args, { cwd: this.dir, env: gitEnvironment(), stdio: ["pipe", "pipe", "pipe", "pipe"], detached: true }) as unknown as ChildProcessByStdio<Writable, Readable, Readable>;
    const indexInput = child.stdio[3] as Writable;
    const onAbort = () => this.kill();
    this.signal?.addEventListener("abort", onAbort, { once: true });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
    child.stdin.on("error", () => undefined);
    indexInput.on("error", () => undefined);
    const command = ["fast-import", "update-index", "diff"];
    this.exited = new Promise<Buffer>((resolve, reject) => {
      child.once("error", (error) => reject(this.signal?.aborted ? abortedError(this.signal, "collect") : new GitCommandFailure(command, null, error.message)));
      child.once("close", (code) => {
        this.signal?.removeEventListener("abort", onAbort);
        if (this.signal?.aborted) return reject(abortedError(this.signal, "collect"));
        if (code === 0) resolve(Buffer.concat(stdout));
        else reject(new GitCommandFailure(command, code, Buffer.concat(stderr).toString("utf8")));
      });
    });
    this.exited.catch(() => undefined);
    this.child = child;
    this.indexInput = indexInput;
    return child;
  }

  // With backpressure; a git that died shows as its exit.
  private async write(stdin: NodeJS.WritableStream, bytes: Uint8Array): Promise<void> {
    if (stdin.write(bytes)) return;
    await Promise.race([once(stdin, "drain"), this.exited!.then(() => undefined)]);
  }
}

/**
 * Writes `data` (`blob <size>\0` and the bytes) as the loose object `object` of the host clone: deflated
 * into a temporary file of the object's folder, then linked to its name, as git does (an object already
 * there is left as it is: same id, same bytes). Read-only, as git makes them.
 */
async function writeLooseObject(dir: string, object: string, data: Buffer): Promise<void> {
  const folder = join(dir, ".git", "objects", object.slice(0, 2));
  const target = join(folder, object.slice(2));
  const compressed = await deflateAsync(data);
  await mkdir(folder, { recursive: true });
  const temporary = join(folder, `tmp_obj_${randomBytes(6).toString("hex")}`);
  const handle = await open(temporary, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW, 0o444);
  try {
    await handle.writeFile(compressed);
  } finally {
    await handle.close();
  }
  try {
    await link(temporary, target);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  } finally {
    await unlink(temporary);
  }
}

/** The full fallback (no listing, or a provider without `getArchiveStream`): every file comes back. */
async function collectWholeTree(input: CollectChangesInput, checks: ChangeChecks): Promise<ChangedFile[]> {
  const { session, dir, signal } = input;
  const archive = await session.getArchive(session.workdir);
  throwIfAborted(signal, "collect");
  const submodules = await submodulePaths(dir, signal);
  // A submodule's files belong to the submodule, not to this repository's changes.
  const entries = selectWorkingTree(await readArchive(archive)).filter((entry) => !submodules.some((path) => entry.path.startsWith(`${path}/`)));
  await clearWorkingTree(dir);
  // Submodules are not cloned: their folders stay empty, as git expects them to exist.
  for (const path of submodules) {
    if (!entries.some((entry) => entry.path === path)) await makePlainFolders(dir, path);
  }
  // .gitignore files go first so that git can tell which of the other paths it ignores.
  const ignoreFiles = entries.filter((entry) => entry.path.split("/").pop() === ".gitignore");
  await writeEntries(dir, ignoreFiles);
  const others = entries.filter((entry) => !ignoreFiles.includes(entry));
  const ignored = await ignoredPaths(dir, others.map((entry) => entry.path), signal);
  await writeEntries(
    dir,
    others.filter((entry) => !ignored.has(entry.path)),
  );
  await runGit(["add", "--all", "--", "."], { cwd: dir, signal, phase: "collect" });
  const changes = await listStagedChanges(dir, signal);
  await checkStagedFiles(dir, changes, checks);
  return changes;
}

// The fallback's checks, on the host copies of the files git says changed.
async function checkStagedFiles(dir: string, changes: readonly ChangedFile[], checks: ChangeChecks): Promise<void> {
  for (const change of changes) {
    if (change.status === "deleted") continue;
    checkName(change.path, checks.scanner);
    const hostPath = join(dir, change.path);
    const stats = await lstat(hostPath);
    if (stats.isSymbolicLink() && checks.scanner.holds(await readlink(hostPath))) throw secretInChanges(change.path);
    if (!stats.isFile()) continue;
    checks.budget.addFile(change.path, stats.size);
    if (checks.scanner.empty) continue;
    checks.scanner.reset();
    for await (const chunk of createReadStream(hostPath)) if (checks.scanner.push(chunk as Buffer)) throw secretInChanges(change.path);
  }
}

function checkName(path: string, scanner: SecretScanner): void {
  if (scanner.holds(path)) throw secretInChanges("(a file whose name holds it)");
}

/** An index entry: its mode (`100644`, `160000`, ...) and object id. */
interface IndexEntry {
  mode: string;
  object: string;
}

// Past this many paths the whole index is read: git matches every pathspec against every entry, which
// costs more than reading 20,000 entries once past about a hundred paths (and must fit a command line).
const MAX_PATHSPECS = 100;

/**
 * The index entries (path, mode) of `paths`, and of any folder above them that was empty when the
 * repository was placed: git keeps no empty folders, so such a folder is a submodule (a gitlink)
 * whose files are not this repository's. The index is HEAD's tree but at the paths an earlier
 * collect staged. Read from the index file itself ({@link parseIndexEntries}); when it is not in git's
 * plain format, git is asked: the staged paths of the index, the others of HEAD's tree (which git reads
 * only along the paths asked for, where the index is read whole).
 */
async function indexEntries(dir: string, placed: WorkspaceListing, paths: readonly string[], staged: ReadonlySet<string>, signal: AbortSignal | undefined, hostFiles: HostGitFiles): Promise<Map<string, IndexEntry>> {
  const entries = new Map<string, IndexEntry>();
  if (paths.length === 0) return entries;
  const empty = placedIndex(placed).emptyFolders;
  const asked = new Set(paths);
  if (empty.size > 0) {
    for (const path of paths) {
      for (let at = path.indexOf("/"); at !== -1; at = path.indexOf("/", at + 1)) if (empty.has(path.slice(0, at))) asked.add(path.slice(0, at));
    }
  }
  // Read from the index file when it is git's plain format: no process started.
  const [indexFile, format] = await Promise.all([hostFiles.index, hostFiles.format]);
  const read = indexFile && parseIndexEntries(indexFile, asked, format === "sha256" ? 32 : 20);
  if (read) return read;
  const fromIndex = [...asked].filter((path) => staged.has(path));
  const fromHead = [...asked].filter((path) => !staged.has(path));
  const options = { cwd: dir, env: { GIT_LITERAL_PATHSPECS: "1" }, signal, phase: "collect" as const };
  const pathspecs = (list: readonly string[]) => (list.length > MAX_PATHSPECS ? [] : ["--", ...list]);
  const [head, index] = await Promise.all([
    // `<mode> <type> <object>\t<path>`, down the paths asked for; past the pathspec limit the whole tree.
    fromHead.length === 0 ? undefined : runGit(["ls-tree", "-z", "--full-tree", ...(fromHead.length > MAX_PATHSPECS ? ["-r"] : []), "HEAD", ...pathspecs(fromHead)], options),
    // `<mode> <object> <stage>\t<path>`
    fromIndex.length === 0 ? undefined : runGit(["ls-files", "--stage", "-z", ...pathspecs(fromIndex)], options),
  ]);
  for (const record of head?.stdout.toString("utf8").split("\0") ?? []) {
    const tab = record.indexOf("\t");
    const path = record.slice(tab + 1);
    // A folder's path lists what is in it: only the entries asked for, and no trees (the index has none).
    if (tab > 0 && asked.has(path) && !staged.has(path) && !record.startsWith("040000")) entries.set(path, { mode: record.slice(0, 6), object: record.slice(record.lastIndexOf(" ", tab) + 1, tab) });
  }
  for (const record of index?.stdout.toString("utf8").split("\0") ?? []) {
    const tab = record.indexOf("\t");
    const path = record.slice(tab + 1);
    if (tab > 0 && staged.has(path)) entries.set(path, { mode: record.slice(0, 6), object: record.slice(7, record.indexOf(" ", 7)) });
  }
  return entries;
}

// The repository's hash: from an index entry's object id, else from the host clone's own config (never the sandbox's).
async function objectFormat(index: ReadonlyMap<string, IndexEntry>, hostFiles: HostGitFiles): Promise<"sha1" | "sha256"> {
  const known = index.values().next().value;
  if (known) return known.object.length === 64 ? "sha256" : "sha1";
  return hostFiles.format;
}

/** The host clone's own index file (none when it cannot be read) and object format, each read once per collect. */
interface HostGitFiles {
  index: Promise<Buffer | undefined>;
  format: Promise<"sha1" | "sha256">;
}

function readHostGitFiles(dir: string): HostGitFiles {
  return { index: readFile(join(dir, ".git", "index")).catch(() => undefined), format: configObjectFormat(dir) };
}

// The hash the host clone's own config names (SHA-1 unless it says SHA-256).
async function configObjectFormat(dir: string): Promise<"sha1" | "sha256"> {
  const config = await readFile(join(dir, ".git", "config"), "utf8").catch(() => "");
  return /^\s*objectformat\s*=\s*sha256\s*$/im.test(config) ? "sha256" : "sha1";
}

// Paths whose index entry differs from HEAD (an earlier collect of the same task, before a fix round).
async function stagedPaths(dir: string, signal: AbortSignal | undefined): Promise<string[]> {
  const { stdout } = await runGit(["diff", "--cached", "--name-only", "--no-renames", "-z", "HEAD"], { cwd: dir, signal, phase: "collect" });
  return stdout.toString("utf8").split("\0").filter((path) => path !== "");
}

// What git would see: no `.git` component in any letter case, nothing absolute or with `..`.
function isWorkingTreePath(path: string): boolean {
  try {
    return safeArchivePath(path) === path && path !== "" && !path.split("/").some((segment) => segment.toLowerCase() === ".git");
  } catch {
    return false;
  }
}

/**
 * Streams the given paths out of the sandbox into the host working tree, checking each as it
 * comes: an entry that was not asked for, or is a folder now, is skipped; one that is not a file or
 * symlink, or would land below a symlink or a file, is refused; sizes and secrets are checked chunk
 * by chunk, before anything is staged. Small files are read whole and written while the archive is
 * read on (a few at once); larger ones are streamed to disk as they come.
 */
async function bringBack(
  session: SandboxSession,
  dir: string,
  paths: readonly string[],
  received: Set<string>,
  checks: ChangeChecks,
  signal: AbortSignal | undefined,
  /**
   * Where the files go: into `objects` when given, and into the host tree unless `writeHost` is
   * false; with `indexed`, a small file whose bytes and mode equal its index entry goes nowhere and
   * is put in `unchanged`.
   */
  into: { objects?: BlobImport | undefined; writeHost?: boolean; indexed?: (path: string) => IndexEntry | undefined; unchanged?: Set<string> },
): Promise<void> {
  const writeHost = into.writeHost ?? true;
  if (paths.length === 0) return;
  const asked = new Set(paths);
  // Folders already checked or made, and files and links placed (by this call only: nothing else writes the host tree meanwhile).
  const folders = new Set<string>();
  const placed = new Set<string>();
  const archive = await session.getArchiveStream!(session.workdir, { paths, ...(signal ? { signal } : {}) });
  const extract = tar.extract();
  const source = Readable.from(archive);
  source.on("error", (error) => extract.destroy(error));
  source.pipe(extract);
  const writes = new BoundedWrites(WRITE_CONCURRENCY);
  try {
    for await (const entry of extract) {
      const header = entry.header;
      const path = safeArchivePath(header.name);
      // A path that is a folder now was a file when listed: gone, as a path that did not come at all.
      if (!asked.has(path) || received.has(path) || header.type === "directory") {
        entry.resume();
        continue;
      }
      if (header.type !== "file" && header.type !== "symlink") {
        entry.resume();
        throw agentError(ErrorCode.UNSAFE_PATH, `The sandbox sent ${JSON.stringify(path)} as a ${header.type ?? "unknown"} entry; only files and symlinks are collected.`, { phase: "collect", details: { path } });
      }
      received.add(path);
      checkName(path, checks.scanner);
      // Into git only: nothing is made on the host, but the archive is held to the same rules.
      const hostPath = writeHost ? await plainParents(dir, path, folders, placed) : archiveParents(dir, path, folders, placed);
      // A folder this archive already wrote into cannot become a file or a link now (a hostile archive).
      if (folders.has(hostPath)) {
        throw agentError(ErrorCode.UNSAFE_PATH, `The sandbox sent ${JSON.stringify(path)} after entries below it; refusing to write through it.`, { phase: "collect", details: { path } });
      }
      placed.add(hostPath);
      if (header.type === "symlink") {
        entry.resume();
        const target = header.linkname ?? "";
        if (checks.scanner.holds(target)) throw secretInChanges(path);
        if (into.objects) {
          const bytes = Buffer.from(target, "utf8");
          await into.objects.add(path, "120000", bytes.byteLength, bytes);
        }
        if (writeHost) await writes.add(() => replacing(hostPath, () => symlink(target, hostPath)));
        continue;
      }
      const size = header.size ?? 0;
      checks.budget.addFile(path, size);
      const mode = (header.mode ?? 0o644) & 0o100 ? 0o755 : 0o644;
      if (size <= BUFFERED_FILE_BYTES) {
        const content = await readChecked(entry, path, checks);
        if (into.indexed && into.unchanged && isIndexed(into.indexed(path), mode, content)) {
          into.unchanged.add(path);
          continue;
        }
        if (into.objects) await into.objects.add(path, mode === 0o755 ? "100755" : "100644", content.byteLength, content);
        if (writeHost) await writes.add(() => replacing(hostPath, () => writeNewFile(hostPath, mode, content)));
      } else if (writeHost) {
        await replacing(hostPath, () => writeNewFile(hostPath, mode, entry, path, checks));
      } else {
        // Checked chunk by chunk before each goes to git.
        await into.objects!.add(path, mode === 0o755 ? "100755" : "100644", size, checkedChunks(entry, path, checks));
      }
    }
    await writes.settle();
  } catch (error) {
    source.destroy();
    // Nothing may still be writing once the collect has failed.
    await writes.settle().catch(() => undefined);
    if (RunningAgentError.isInstance(error)) throw error;
    throw agentError(ErrorCode.COLLECT_FAILED, `Bringing the changed files back from the sandbox failed: ${(error as Error).message}`, { phase: "collect", cause: error });
  }
}

// True when `content` with `mode` is what the index entry holds: git's object id of the raw bytes (a
// file that attributes convert on the way in differs, and is staged for git to decide).
function isIndexed(entry: IndexEntry | undefined, mode: number, content: Buffer): boolean {
  if (!entry || entry.mode !== (mode === 0o755 ? "100755" : "100644")) return false;
  const hash = createHash(entry.object.length === 64 ? "sha256" : "sha1");
  return hash.update(`blob ${content.byteLength}\0`).update(content).digest("hex") === entry.object;
}

// Files up to this size are read whole before they are written, so that the archive is read on meanwhile.
const BUFFERED_FILE_BYTES = 1024 * 1024;

/** Runs writes a few at once; the first failure is thrown by the next {@link add} or {@link settle}. */
class BoundedWrites {
  private readonly running = new Set<Promise<void>>();
  private failure: { error: unknown } | undefined;

  constructor(private readonly limit: number) {}

  /** Starts `write`, and waits while `limit` writes are running. */
  async add(write: () => Promise<void>): Promise<void> {
    this.throwFailure();
    const running: Promise<void> = write()
      .catch((error: unknown) => {
        this.failure ??= { error };
      })
      .finally(() => this.running.delete(running));
    this.running.add(running);
    while (this.running.size >= this.limit) await Promise.race(this.running);
    this.throwFailure();
  }

  /** Waits for every write started. */
  async settle(): Promise<void> {
    await Promise.all(this.running);
    this.throwFailure();
  }

  private throwFailure(): void {
    if (this.failure) throw this.failure.error;
  }
}

// The entry's chunks, each scanned for secrets before it is handed on.
async function* checkedChunks(content: AsyncIterable<Uint8Array>, path: string, checks: ChangeChecks): AsyncGenerator<Uint8Array> {
  checks.scanner.reset();
  for await (const chunk of content) {
    if (checks.scanner.push(chunk)) throw secretInChanges(path);
    yield chunk;
  }
}

// The entry's bytes, scanned for secrets chunk by chunk as they come.
async function readChecked(content: AsyncIterable<Uint8Array>, path: string, checks: ChangeChecks): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  checks.scanner.reset();
  for await (const chunk of content) {
    if (checks.scanner.push(chunk)) throw secretInChanges(path);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

// Creates a file or link where the host tree may still hold HEAD's or an earlier collect's: what is
// there (its parents were checked to be real folders) goes, and the creation is tried once more.
async function replacing(hostPath: string, create: () => Promise<void>): Promise<void> {
  try {
    await create();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    const existing = await lstat(hostPath);
    if (existing.isDirectory()) await rm(hostPath, { recursive: true, force: true });
    else await unlink(hostPath);
    await create();
  }
}

// O_EXCL|O_NOFOLLOW: never opens whatever is at the path, it fails instead. Content held in memory
// was checked already; a stream is checked chunk by chunk as it is written.
async function writeNewFile(hostPath: string, mode: number, content: Buffer | AsyncIterable<Uint8Array>, path?: string, checks?: ChangeChecks): Promise<void> {
  const handle = await open(hostPath, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW, mode);
  try {
    if (Buffer.isBuffer(content)) await handle.writeFile(content);
    else {
      checks!.scanner.reset();
      for await (const chunk of content) {
        if (checks!.scanner.push(chunk)) throw secretInChanges(path!);
        await handle.write(chunk);
      }
    }
    // The umask may take the executable bits; git only reads the owner's (a file without them needs no chmod).
    if (mode === 0o755) await handle.chmod(mode);
  } finally {
    await handle.close();
  }
}

// Makes the folders above `path` in the host working tree, each a real folder: anything else in the
// way (a file or symlink the host tree still has, or one this archive placed) is refused, never written through.
async function plainParents(dir: string, path: string, checked: Set<string>, placed: ReadonlySet<string>): Promise<string> {
  let current = dir;
  const segments = path.split("/");
  for (const segment of segments.slice(0, -1)) {
    current = join(current, segment);
    if (checked.has(current)) continue;
    const stats = placed.has(current) ? undefined : await lstat(current).catch(() => null);
    if (stats === null) await mkdir(current);
    else if (!stats?.isDirectory()) {
      throw agentError(ErrorCode.UNSAFE_PATH, `Refusing to write ${JSON.stringify(path)}: a part of its path is not a folder in the host clone.`, { phase: "collect", details: { path } });
    }
    checked.add(current);
  }
  return join(dir, path);
}

// plainParents for an archive that is not written to the host: a parent that this archive placed as a file or link is refused.
function archiveParents(dir: string, path: string, folders: Set<string>, placed: ReadonlySet<string>): string {
  let current = dir;
  for (const segment of path.split("/").slice(0, -1)) {
    current = join(current, segment);
    if (placed.has(current)) {
      throw agentError(ErrorCode.UNSAFE_PATH, `Refusing to take ${JSON.stringify(path)}: a part of its path came as a file or link.`, { phase: "collect", details: { path } });
    }
    folders.add(current);
  }
  return join(dir, path);
}

// Removes a file, symlink or folder at `path` in the host working tree, if any (never following a
// link: rm and unlink act on the link itself). Its parents are checked to be real folders first.
async function removeHostPath(dir: string, path: string): Promise<void> {
  let current = dir;
  for (const segment of path.split("/").slice(0, -1)) {
    current = join(current, segment);
    const stats = await lstat(current).catch(() => undefined);
    if (!stats?.isDirectory()) return;
  }
  const hostPath = join(dir, path);
  const stats = await lstat(hostPath).catch(() => undefined);
  if (!stats) return;
  if (stats.isDirectory()) await rm(hostPath, { recursive: true, force: true });
  else await unlink(hostPath);
}

/**
 * Keeps the files and symlinks git would see: drops anything under a `.git` folder (in any
 * letter case, as git refuses such paths), and refuses an entry that lies below a symlink or a
 * file of the same archive (a way to write outside the tree).
 */
export function selectWorkingTree(entries: readonly ArchiveEntry[]): TreeEntry[] {
  const byPath = new Map<string, ArchiveEntry>();
  for (const entry of entries) {
    if (entry.path === "") continue;
    if (entry.path.split("/").some((segment) => segment.toLowerCase() === ".git")) continue;
    byPath.set(entry.path, entry);
  }
  const selected: TreeEntry[] = [];
  for (const entry of byPath.values()) {
    const segments = entry.path.split("/");
    for (let length = 1; length < segments.length; length++) {
      const parent = byPath.get(segments.slice(0, length).join("/"));
      if (parent && parent.type !== "directory") {
        throw agentError(ErrorCode.UNSAFE_PATH, `The sandbox's tree has ${JSON.stringify(entry.path)} below the ${parent.type} ${JSON.stringify(parent.path)}; refusing to write through it.`, {
          phase: "collect",
          details: { path: entry.path },
        });
      }
    }
    if (entry.type === "file" || entry.type === "symlink") selected.push(entry as TreeEntry);
  }
  return selected.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

// Removes everything but .git; rm never follows symlinks, it removes the link.
async function clearWorkingTree(dir: string): Promise<void> {
  for (const name of await readdir(dir)) {
    if (name === ".git") continue;
    await rm(join(dir, name), { recursive: true, force: true });
  }
}

// The tree was just cleared and no entry lies below a symlink, so the folders created here are
// plain folders; O_EXCL|O_NOFOLLOW still refuses anything that appeared at a file's path.
async function writeEntries(dir: string, entries: readonly TreeEntry[]): Promise<void> {
  const folders = new Set<string>();
  for (const entry of entries) {
    const segments = entry.path.split("/");
    for (let length = 1; length < segments.length; length++) folders.add(segments.slice(0, length).join("/"));
  }
  // Shallowest first, so that every parent exists: no recursive mkdir that could follow a link.
  const ordered = [...folders].sort((a, b) => a.split("/").length - b.split("/").length);
  for (const folder of ordered) {
    try {
      await mkdir(join(dir, folder));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      // Something already there must be a real folder, never a link to write through.
      if (!(await lstat(join(dir, folder))).isDirectory()) {
        throw agentError(ErrorCode.UNSAFE_PATH, `Refusing to write below ${JSON.stringify(folder)}: it is not a folder.`, { phase: "collect", details: { path: folder } });
      }
    }
  }
  let next = 0;
  const writeNext = async (): Promise<void> => {
    while (next < entries.length) await writeEntry(dir, entries[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(WRITE_CONCURRENCY, entries.length) }, writeNext));
}

async function writeEntry(dir: string, entry: TreeEntry): Promise<void> {
  const hostPath = join(dir, entry.path);
  if (entry.type === "symlink") {
    await symlink(entry.linkTarget ?? "", hostPath);
    return;
  }
  const mode = entry.mode & 0o100 ? 0o755 : 0o644;
  const handle = await open(hostPath, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW, mode);
  try {
    await handle.writeFile(entry.content ?? new Uint8Array());
    // The mode given to open is reduced by the umask; git needs the exact bits.
    await handle.chmod(mode);
  } finally {
    await handle.close();
  }
}

// Creates the folders of `path` one by one, stopping (without following) at anything that is
// not a folder, such as a symlink the sandbox put where a parent folder was.
async function makePlainFolders(dir: string, path: string): Promise<void> {
  let current = dir;
  for (const segment of path.split("/")) {
    current = join(current, segment);
    const stats = await lstat(current).catch(() => undefined);
    if (!stats) await mkdir(current);
    else if (!stats.isDirectory()) return;
  }
}

// Paths of submodules (gitlinks, mode 160000) in the index.
async function submodulePaths(dir: string, signal: AbortSignal | undefined): Promise<string[]> {
  const { stdout } = await runGit(["ls-files", "--stage", "-z"], { cwd: dir, signal, phase: "collect" });
  return stdout
    .toString("utf8")
    .split("\0")
    .filter((line) => line.startsWith("160000 "))
    .map((line) => line.slice(line.indexOf("\t") + 1));
}

// Asks git itself (the repository's .gitignore files, .git/info/exclude) which untracked paths
// it ignores; tracked paths are never reported. Exit 1 means none.
async function ignoredPaths(dir: string, paths: string[], signal: AbortSignal | undefined): Promise<Set<string>> {
  if (paths.length === 0) return new Set();
  try {
    const { stdout } = await runGit(["check-ignore", "--stdin", "-z"], { cwd: dir, input: `${paths.join("\0")}\0`, signal, phase: "collect" });
    return new Set(stdout.toString("utf8").split("\0").filter((path) => path !== ""));
  } catch (error) {
    if (error instanceof GitCommandFailure && error.exitCode === 1) return new Set();
    throw error;
  }
}
