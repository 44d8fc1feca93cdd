import fs from "node:fs";
import { pathToFileURL } from "node:url";
import git from "isomorphic-git";
import { agentError, ErrorCode, throwIfAborted } from "../errors.js";
import type { GitCredentials, ResolvedRepository } from "../spec/git-host-spec.js";
import { createAbortableHttpClient } from "./abortable-http-client.js";
import { validateBranchName } from "./branch-name.js";
import { GitCommandFailure, runGit } from "./git-command.js";
import { DEFAULT_GIT_STALL_TIMEOUT_MS } from "./remote-stall-timer.js";
import { abortFailure, httpFailure, wrapFailure } from "./remote-errors.js";

/** What {@link cloneRepository} needs. */
export interface CloneRepositoryInput {
  /** The repository, as the Git host resolved it. */
  repository: ResolvedRepository;
  /** The branch to check out. */
  branch: string;
  /** Number of commits to fetch, or `"full"` for the whole history. */
  depth: number | "full";
  /** For http(s) remotes; handed to isomorphic-git's onAuth callback only. */
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

/** True when the remote is reached over HTTP (isomorphic-git) rather than as a local path (git CLI). */
export function isHttpRemote(remote: string): boolean {
  return /^https?:\/\//i.test(remote);
}

/**
 * Clones one branch of the repository into `dir` on the host. http(s) remotes go through
 * isomorphic-git with the credentials passed only through its onAuth callback (never in a URL or
 * the repo config); local remotes through the git CLI. Rejects with BASE_BRANCH_NOT_FOUND,
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
  const cloned = await (isHttpRemote(repository.remote) ? cloneOverHttp(input) : cloneLocal(input));
  if (input.checkout === false) {
    try {
      await runGit(["read-tree", "HEAD"], { cwd: dir, signal, phase: "clone" });
    } catch (error) {
      throw abortFailure(error, signal, "clone") ?? wrapFailure(error, ErrorCode.CLONE_FAILED, `Reading HEAD's tree in the clone failed: ${(error as Error).message}`, "clone");
    }
  }
  return cloned;
}

async function cloneOverHttp(input: CloneRepositoryInput): Promise<{ commit: string }> {
  const { repository, branch, depth, dir, credentials, signal } = input;
  const url = repository.remote;
  const http = createAbortableHttpClient({ signal, stall: { remote: url, phase: "clone", stallTimeoutMs: input.stallTimeoutMs ?? DEFAULT_GIT_STALL_TIMEOUT_MS } });
  try {
    await git.clone({
      fs,
      // A shared cache keeps the parsed packfile between the fetch and the checkout.
      cache: {},
      http,
      dir,
      url,
      ref: branch,
      singleBranch: true,
      noTags: true,
      ...(input.checkout === false ? { noCheckout: true } : {}),
      ...(depth === "full" ? {} : { depth }),
      ...(credentials ? { onAuth: () => ({ username: credentials.username, password: credentials.password }) } : {}),
    });
    // isomorphic-git writes a config for browsers (no file modes, no symlinks); the git CLI used
    // later to collect and commit must see modes and links as they are.
    await git.setConfig({ fs, dir, path: "core.filemode", value: true });
    await git.setConfig({ fs, dir, path: "core.symlinks", value: true });
    await git.setConfig({ fs, dir, path: "core.ignorecase", value: process.platform === "darwin" || process.platform === "win32" });
    // Like git's own clone: origin/HEAD names the cloned branch. isomorphic-git's push uses it to
    // leave out the objects the remote already has; without it every push resends the whole tree.
    await git.writeRef({ fs, dir, ref: "refs/remotes/origin/HEAD", value: `refs/remotes/origin/${branch}`, symbolic: true, force: true });
    return { commit: await git.resolveRef({ fs, dir, ref: "HEAD" }) };
  } catch (error) {
    if (!signal?.aborted && http.stalled) throw http.stalled;
    const aborted = abortFailure(error, signal, "clone");
    if (aborted) throw aborted;
    const failure = httpFailure(error, url, "clone");
    if (failure) throw failure;
    const code = (error as { code?: string }).code;
    if (code === "NotFoundError" || code === "CommitNotFetchedError") {
      throw agentError(ErrorCode.BASE_BRANCH_NOT_FOUND, `The branch "${branch}" does not exist in ${repository.id}.`, { phase: "clone", cause: error });
    }
    throw wrapFailure(error, ErrorCode.CLONE_FAILED, `Cloning ${url} failed: ${(error as Error).message}`, "clone");
  }
}

async function cloneLocal(input: CloneRepositoryInput): Promise<{ commit: string }> {
  const { repository, branch, depth, dir, signal } = input;
  // --depth is ignored for plain paths; a file:// URL makes git use its transport so depth applies.
  const source = depth === "full" ? repository.remote : pathToFileURL(repository.remote).href;
  const args = ["clone", "--quiet", "--single-branch", "--no-tags", `--branch=${branch}`];
  args.push(...(depth === "full" ? ["--no-hardlinks"] : [`--depth=${depth}`]));
  if (input.checkout === false) args.push("--no-checkout");
  args.push("--", source, dir);
  try {
    await runGit(args, { signal, phase: "clone" });
    const { stdout } = await runGit(["rev-parse", "--verify", "HEAD^{commit}"], { cwd: dir, signal, phase: "clone" });
    return { commit: stdout.toString("utf8").trim() };
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
