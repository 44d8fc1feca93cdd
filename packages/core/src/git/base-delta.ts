import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ErrorCode, agentError } from "../errors.js";
import type { GitCredentials, ResolvedRepository } from "../spec/git-host-spec.js";
import { GitCommandFailure, runGit } from "./git-command.js";
import { runGitOnRemote } from "./remote-git.js";
import { abortFailure } from "./remote-errors.js";

/** What changed in the repository's tree between a prepared state's commit and the task's base commit. */
export interface BaseDelta {
  /** The prepared state's commit. */
  from: string;
  /** The task's base commit (the host clone's HEAD). */
  to: string;
  /** Files and symlinks added or changed (their content, mode or type), with the new entry. */
  changed: Array<{ path: string; mode: string; object: string }>;
  /** Paths of files and symlinks that are gone (a path that changed type is in `changed` only). */
  removed: string[];
  /** The changed or removed paths that match a setup input (a manifest or lockfile, or the caller's). */
  setupInputs: string[];
}

/** What {@link readBaseDelta} needs. */
export interface ReadBaseDeltaInput {
  /** The host clone of the task's base commit (shallow or not). */
  dir: string;
  /** Its remote, to fetch `from` when the clone lacks it. */
  repository: ResolvedRepository;
  credentials?: GitCredentials;
  /** The prepared state's commit. */
  from: string;
  /** Git pathspecs of the setup inputs. */
  setupInputs: readonly string[];
  stallTimeoutMs: number;
  signal?: AbortSignal;
}

const COMMIT = /^[0-9a-f]{40}([0-9a-f]{24})?$/;
const GITLINK = "160000";

/**
 * Reads, on the host and from the remote only (never from a sandbox), what changed between `from` and
 * the clone's HEAD: `from` is fetched into the clone when it is not there (one commit deep: only its
 * trees and the blobs HEAD lacks come), then git compares the two trees. Undefined, with the reason,
 * when `from` cannot be had (force-pushed away, a server that refuses to send it): the task then
 * starts cold. Submodule entries are left out (placement leaves them out too).
 */
export async function readBaseDelta(input: ReadBaseDeltaInput): Promise<BaseDelta | { unavailable: string }> {
  const { dir, from, signal } = input;
  if (!COMMIT.test(from)) return { unavailable: `the prepared state names no commit (${JSON.stringify(from.slice(0, 50))})` };
  const to = (await git(["rev-parse", "--verify", "HEAD^{commit}"], dir, signal)).toString("utf8").trim();
  if (!(await hasCommit(dir, from, signal))) {
    const fetched = await fetchCommit(input);
    if (fetched !== undefined) return { unavailable: fetched };
  }
  const records = (await git(["diff-tree", "-r", "-z", "--no-renames", "--no-commit-id", from, to], dir, signal)).toString("utf8").split("\0");
  const changed: BaseDelta["changed"] = [];
  const removed: string[] = [];
  for (let index = 0; index + 1 < records.length; index += 2) {
    // `:<old mode> <new mode> <old object> <new object> <status>` then the path.
    const [oldMode, newMode, , newObject, status] = records[index]!.slice(1).split(" ");
    const path = records[index + 1]!;
    if (status === "D") {
      if (oldMode !== GITLINK) removed.push(path);
    } else if (newMode !== GITLINK) {
      changed.push({ path, mode: newMode!, object: newObject! });
    } else if (oldMode !== GITLINK && oldMode !== "000000") {
      removed.push(path);
    }
  }
  // Git matches the pathspecs (globs at any depth, the caller's magic), over the same two trees.
  const matched = input.setupInputs.length === 0 ? "" : (await git(["diff-tree", "-r", "-z", "--no-renames", "--no-commit-id", "--name-only", from, to, "--", ...input.setupInputs], dir, signal)).toString("utf8");
  return { from, to, changed, removed, setupInputs: matched.split("\0").filter((path) => path !== "") };
}

/**
 * A tree that holds only the delta's changed entries (built in a temporary index, so that the
 * clone's own index stays HEAD's): placing it writes only what changed. HEAD's `.gitattributes` files
 * go in too: `git archive` reads attributes from the tree it packs, and a changed file must come out
 * as a checkout writes it (line endings) whether or not its attributes changed.
 */
export async function writeDeltaTree(dir: string, delta: BaseDelta, signal?: AbortSignal): Promise<string> {
  const scratch = await mkdtemp(join(tmpdir(), "running-agent-delta-index-"));
  try {
    const env = { GIT_INDEX_FILE: join(scratch, "index") };
    // `<mode> <object> <stage>\t<path>` records of the clone's index (HEAD's tree), which --index-info takes as they are.
    const { stdout: attributes } = await runGit(["ls-files", "-s", "-z", "--", ":(glob)**/.gitattributes"], { cwd: dir, signal, phase: "clone" });
    const changedPaths = new Set(delta.changed.map((entry) => entry.path));
    const attributeLines = attributes.toString("utf8").split("\0").filter((record) => record !== "" && !changedPaths.has(record.slice(record.indexOf("\t") + 1)));
    const lines = delta.changed.map((entry) => `${entry.mode} ${entry.object}\t${entry.path}\0`).join("") + attributeLines.map((record) => `${record}\0`).join("");
    await runGit(["update-index", "-z", "--add", "--index-info"], { cwd: dir, env, input: lines, signal, phase: "clone" });
    const { stdout } = await runGit(["write-tree"], { cwd: dir, env, signal, phase: "clone" });
    return stdout.toString("utf8").trim();
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

async function git(args: string[], dir: string, signal: AbortSignal | undefined): Promise<Buffer> {
  try {
    return (await runGit(args, { cwd: dir, signal, phase: "clone" })).stdout;
  } catch (error) {
    throw abortFailure(error, signal, "clone") ?? agentError(ErrorCode.CLONE_FAILED, `Comparing the prepared state's commit with the base failed: ${(error as Error).message}`, { phase: "clone", cause: error });
  }
}

async function hasCommit(dir: string, commit: string, signal: AbortSignal | undefined): Promise<boolean> {
  try {
    await runGit(["cat-file", "-e", `${commit}^{commit}`], { cwd: dir, signal, phase: "clone" });
    return true;
  } catch (error) {
    const aborted = abortFailure(error, signal, "clone");
    if (aborted) throw aborted;
    return false;
  }
}

/** Fetches `from` into the clone (as deep as the clone is: one commit when shallow); the reason when it cannot. */
async function fetchCommit(input: ReadBaseDeltaInput): Promise<string | undefined> {
  const { dir, repository, from, signal } = input;
  const shallow = (await git(["rev-parse", "--is-shallow-repository"], dir, signal)).toString("utf8").trim() === "true";
  const args = ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", ...(shallow ? ["--depth=1"] : []), "--"];
  try {
    await runGitOnRemote(repository.remote, (address) => [...args, address, from], { ...(input.credentials ? { credentials: input.credentials } : {}), stallTimeoutMs: input.stallTimeoutMs, phase: "clone", cwd: dir, ...(signal ? { signal } : {}) });
    return undefined;
  } catch (error) {
    const aborted = abortFailure(error, signal, "clone");
    if (aborted) throw aborted;
    const why = error instanceof GitCommandFailure ? error.stderr.trim().split("\n").slice(-1)[0] : (error as Error).message;
    return `the remote did not send the prepared state's commit ${from.slice(0, 12)} (${why})`;
  }
}
