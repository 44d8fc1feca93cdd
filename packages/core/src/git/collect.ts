import { constants as fsConstants } from "node:fs";
import { lstat, mkdir, open, readdir, rm, symlink } from "node:fs/promises";
import { join } from "node:path";
import { readArchive, type ArchiveEntry } from "../archive.js";
import type { ChangedFile } from "../changes.js";
import { agentError, ErrorCode, throwIfAborted } from "../errors.js";
import type { SandboxSession } from "../spec/sandbox-spec.js";
import { GitCommandFailure, runGit } from "./git-command.js";
import { listStagedChanges } from "./staged-changes.js";
import { abortFailure, wrapFailure } from "./remote-errors.js";

/** What {@link collectChanges} needs. */
export interface CollectChangesInput {
  /** The sandbox the agent worked in; its workdir holds the repository. */
  session: SandboxSession;
  /** The host clone the sandbox's copy came from. */
  dir: string;
  signal?: AbortSignal;
}

/** A file or symlink of the sandbox's working tree, checked and ready to write. */
type TreeEntry = ArchiveEntry & { type: "file" | "symlink" };

// Files written at once when bringing the tree back (file system calls run on libuv's pool).
const WRITE_CONCURRENCY = 8;

/**
 * Makes the host clone's working tree equal to the sandbox's, and lists what changed against
 * HEAD. The sandbox's `.git` is never read back (any path with a `.git` component is skipped);
 * symlinks are recorded as links and never followed; an entry below a symlink is refused with
 * UNSAFE_PATH; paths ignored by the repository's .gitignore rules (as the sandbox has them) are
 * not brought back. Renames are exact: the same content deleted and added. Returns [] when
 * nothing changed. Leaves the changes staged in the host clone's index.
 */
export async function collectChanges(input: CollectChangesInput): Promise<ChangedFile[]> {
  const { session, dir, signal } = input;
  try {
    throwIfAborted(signal, "collect");
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
    return await listStagedChanges(dir, signal);
  } catch (error) {
    const aborted = abortFailure(error, signal, "collect");
    if (aborted) throw aborted;
    throw wrapFailure(error, ErrorCode.COLLECT_FAILED, `Collecting the changes from the sandbox failed: ${(error as Error).message}`, "collect");
  }
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
