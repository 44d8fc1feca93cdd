import { pathToFileURL } from "node:url";
import { agentError, ErrorCode, throwIfAborted } from "../errors.js";
import type { GitCredentials, ResolvedRepository } from "../spec/git-host-spec.js";
import { validateBranchName } from "./branch-name.js";
import { GitCommandFailure, runGit, runGitScript } from "./git-command.js";
import { DEFAULT_GIT_STALL_TIMEOUT_MS, isHttpRemote, runRemoteGit } from "./remote-git.js";
import { abortFailure, wrapFailure } from "./remote-errors.js";

/** What {@link cloneRepository} needs. */
export interface CloneRepositoryInput {
  /** The repository, as the Git host resolved it. */
  repository: ResolvedRepository;
  /** The branch to check out. */
  branch: string;
  /** Number of commits to fetch, or `"full"` for the whole history. */
  depth: number | "full";
  /** For http(s) remotes; given to git only in the environment of the clone (an Authorization header for the remote's URL). */
  credentials?: GitCredentials;
  /** An empty or missing host folder to clone into. */
  dir: string;
  /**
   * Write HEAD's files into `dir` (the default). False leaves the working tree empty and fills
   * only the index from HEAD: the files go straight to the sandbox ({@link placeRepository}).
   */
  checkout?: boolean;
  /** Aborts the step; it rejects with ABORTED. */
  signal?: AbortSignal;
  /** For http(s) remotes: fail with GIT_REMOTE_STALLED after this long without progress. Default {@link DEFAULT_GIT_STALL_TIMEOUT_MS}. */
  stallTimeoutMs?: number;
}

/**
 * Clones one branch of the repository into `dir` on the host with the git CLI. For http(s)
 * remotes the credentials go only into the environment of that one git call (never in a URL, a
 * command line or the repo config). Rejects with BASE_BRANCH_NOT_FOUND,
 * REPO_NOT_FOUND, AUTH_FAILED, PERMISSION_DENIED, GIT_REMOTE_STALLED, ABORTED or CLONE_FAILED (phase `clone`).
 */
export async function cloneRepository(input: CloneRepositoryInput): Promise<{
  /** The commit checked out (the branch's head). */
  commit: string;
}> {
  const { repository, branch, depth, dir, signal } = input;
  try {
    validateBranchName(branch);
  } catch (error) {
    throw wrapFailure(error, ErrorCode.INVALID_BRANCH, "", "clone");
  }
  if (depth !== "full" && (!Number.isInteger(depth) || depth < 1)) {
    throw agentError(ErrorCode.INVALID_OPTIONS, `The clone depth must be a positive integer or "full", not ${String(depth)}.`, { phase: "clone" });
  }
  throwIfAborted(signal, "clone");
  await (isHttpRemote(repository.remote) ? cloneOverHttp(input) : cloneLocal(input));
  try {
    return { commit: await headCommit(dir, input.checkout === false, signal) };
  } catch (error) {
    throw abortFailure(error, signal, "clone") ?? wrapFailure(error, ErrorCode.CLONE_FAILED, `Reading HEAD in the clone failed: ${(error as Error).message}`, "clone");
  }
}

// Without a checkout the index is filled from HEAD's tree in the same shell: one process started from here, not two.
const READ_TREE_THEN_HEAD_SCRIPT = 'git read-tree HEAD && exec git rev-parse --verify "HEAD^{commit}"';

/**
 * Clones over http(s) with the git CLI: the pack goes from the remote helper straight to
 * index-pack, in git's processes, so this process holds none of it. Hardened like the push
 * ({@link runRemoteGit}): the credential is only in the environment of this one call, never in
 * the clone's config (which goes into the sandbox). No templates: no hook samples to copy.
 */
async function cloneOverHttp(input: CloneRepositoryInput): Promise<void> {
  const { repository, branch, depth, dir, credentials, signal } = input;
  const url = repository.remote;
  const args = ["clone", "--quiet", "--template=", "--single-branch", "--no-tags", `--branch=${branch}`];
  if (depth !== "full") args.push(`--depth=${depth}`);
  if (input.checkout === false) args.push("--no-checkout");
  args.push("--", url, dir);
  try {
    await runRemoteGit(args, { url, ...(credentials ? { credentials } : {}), stallTimeoutMs: input.stallTimeoutMs ?? DEFAULT_GIT_STALL_TIMEOUT_MS, phase: "clone", signal });
  } catch (error) {
    const aborted = abortFailure(error, signal, "clone");
    if (aborted) throw aborted;
    if (error instanceof GitCommandFailure && /Remote branch .* not found/i.test(error.stderr)) {
      throw agentError(ErrorCode.BASE_BRANCH_NOT_FOUND, `The branch "${branch}" does not exist in ${repository.id}.`, { phase: "clone", cause: error });
    }
    throw wrapFailure(error, ErrorCode.CLONE_FAILED, `Cloning ${url} failed: ${(error as Error).message}`, "clone");
  }
}

// The commit checked out; with `readTree`, after filling the index from HEAD's tree.
async function headCommit(dir: string, readTree: boolean, signal: AbortSignal | undefined): Promise<string> {
  const options = { cwd: dir, signal, phase: "clone" as const };
  const { stdout } = readTree ? await runGitScript(["read-tree", "rev-parse"], READ_TREE_THEN_HEAD_SCRIPT, [], options) : await runGit(["rev-parse", "--verify", "HEAD^{commit}"], options);
  return stdout.toString("utf8").trim();
}

async function cloneLocal(input: CloneRepositoryInput): Promise<void> {
  const { repository, branch, depth, dir, signal } = input;
  // --depth is ignored for plain paths; a file:// URL makes git use its transport so depth applies.
  const source = depth === "full" ? repository.remote : pathToFileURL(repository.remote).href;
  const args = ["clone", "--quiet", "--single-branch", "--no-tags", `--branch=${branch}`];
  args.push(...(depth === "full" ? ["--no-hardlinks"] : [`--depth=${depth}`]));
  if (input.checkout === false) args.push("--no-checkout");
  args.push("--", source, dir);
  try {
    await runGit(args, { signal, phase: "clone" });
  } catch (error) {
    if (error instanceof GitCommandFailure) {
      if (/Remote branch .* not found/i.test(error.stderr)) {
        throw agentError(ErrorCode.BASE_BRANCH_NOT_FOUND, `The branch "${branch}" does not exist in ${repository.id}.`, { phase: "clone", cause: error });
      }
      if (/does not appear to be a git repository|does not exist|not a git repository/i.test(error.stderr)) {
        throw agentError(ErrorCode.REPO_NOT_FOUND, `${repository.id} is not a git repository.`, { phase: "clone", cause: error });
      }
    }
    throw wrapFailure(error, ErrorCode.CLONE_FAILED, `Cloning ${repository.id} failed: ${(error as Error).message}`, "clone");
  }
}
