import { agentError, ErrorCode, throwIfAborted } from "../errors.js";
import type { GitCredentials, ResolvedRepository } from "../spec/git-host-spec.js";
import { validateBranchName } from "./branch-name.js";
import { GitCommandFailure, runGit } from "./git-command.js";
import { DEFAULT_GIT_STALL_TIMEOUT_MS, isHttpRemote, runRemoteGit } from "./remote-git.js";
import { abortFailure, wrapFailure } from "./remote-errors.js";

/** What {@link pushBranch} needs. */
export interface PushBranchInput {
  /** The host clone. */
  dir: string;
  /** The repository to push to, as the Git host resolved it. */
  repository: ResolvedRepository;
  /** The remote branch to push to. The local branch of that name is pushed, or HEAD when there is none. */
  branch: string;
  /** For http(s) remotes; given to git only in the environment of the push (an Authorization header for the remote's URL). */
  credentials?: GitCredentials;
  /** Aborts the step; it rejects with ABORTED. */
  signal?: AbortSignal;
  /** For http(s) remotes: fail with GIT_REMOTE_STALLED after this long without progress. Default {@link DEFAULT_GIT_STALL_TIMEOUT_MS}. */
  stallTimeoutMs?: number;
}

/**
 * Pushes the branch, never forced: a new branch is created, an existing one only moves forward.
 * Rejects with PUSH_REJECTED when the remote branch has commits this clone lacks (the caller
 * may retry under a fresh name), AUTH_FAILED / PERMISSION_DENIED for credentials, GIT_REMOTE_STALLED
 * for a remote that stopped answering, else PUSH_FAILED.
 */
export async function pushBranch(input: PushBranchInput): Promise<void> {
  const { dir, repository, branch, signal } = input;
  try {
    validateBranchName(branch);
    throwIfAborted(signal, "push");
    const localRef = (await hasLocalBranch(dir, branch)) ? `refs/heads/${branch}` : "HEAD";
    if (isHttpRemote(repository.remote)) await pushOverHttp(input, localRef);
    else await pushLocal(input, localRef);
  } catch (error) {
    const aborted = abortFailure(error, signal, "push");
    if (aborted) throw aborted;
    throw wrapFailure(error, ErrorCode.PUSH_FAILED, `Pushing ${branch} to ${repository.id} failed: ${(error as Error).message}`, "push");
  }
}

async function hasLocalBranch(dir: string, branch: string): Promise<boolean> {
  try {
    await runGit(["rev-parse", "--verify", "--quiet", `refs/heads/${branch}`], { cwd: dir });
    return true;
  } catch (error) {
    if (error instanceof GitCommandFailure && error.exitCode === 1) return false;
    throw error;
  }
}

function rejected(branch: string, repository: ResolvedRepository, reason: string, cause?: unknown) {
  return agentError(ErrorCode.PUSH_REJECTED, `The push of ${branch} to ${repository.id} was rejected: ${reason}. Push to a new branch name.`, {
    phase: "push",
    details: { branch },
    ...(cause ? { cause } : {}),
  });
}

/**
 * Pushes over http(s) with the git CLI from the host clone (never the sandbox's `.git`): git
 * streams the pack from its own processes, so this process holds no pack, and memory follows
 * git's, not the change. Hardened as every remote call is ({@link runRemoteGit}).
 */
async function pushOverHttp(input: PushBranchInput, localRef: string): Promise<void> {
  const { dir, repository, branch, credentials, signal } = input;
  const url = repository.remote;
  const config: Array<[string, string]> = [
    ["push.gpgSign", "false"],
    // Blobs past this are streamed into the pack, not read whole and deflated in memory (a 256 MiB file: 530 MB of RSS by default, 5 MB with it).
    ["core.bigFileThreshold", "16m"],
  ];
  try {
    await runRemoteGit(["push", "--porcelain", "--quiet", "--no-verify", "--recurse-submodules=no", "--", url, `${localRef}:refs/heads/${branch}`], {
      url,
      ...(credentials ? { credentials } : {}),
      stallTimeoutMs: input.stallTimeoutMs ?? DEFAULT_GIT_STALL_TIMEOUT_MS,
      phase: "push",
      cwd: dir,
      signal,
      config,
    });
  } catch (error) {
    if (!(error instanceof GitCommandFailure)) throw error;
    const output = `${error.stdout}\n${error.stderr}`;
    if (/\[rejected\]|non-fast-forward|fetch first|stale info/.test(output)) throw rejected(branch, repository, "the remote branch has commits this clone does not have", error);
    const reason = /\[remote rejected\][^\n]*/.exec(output)?.[0] ?? error.stderr.trim().split("\n").slice(-3).join(" ");
    throw agentError(ErrorCode.PUSH_FAILED, `Pushing ${branch} to ${repository.id} failed: ${reason}`, { phase: "push", cause: error });
  }
}

async function pushLocal(input: PushBranchInput, localRef: string): Promise<void> {
  const { dir, repository, branch, signal } = input;
  try {
    await runGit(["push", "--porcelain", "--quiet", "--", repository.remote, `${localRef}:refs/heads/${branch}`], { cwd: dir, signal, phase: "push" });
  } catch (error) {
    if (error instanceof GitCommandFailure) {
      if (/\[rejected\]|non-fast-forward|fetch first/.test(`${error.stdout}\n${error.stderr}`)) throw rejected(branch, repository, "the remote branch has commits this clone does not have", error);
      if (/does not appear to be a git repository|does not exist/.test(error.stderr)) {
        throw agentError(ErrorCode.REPO_NOT_FOUND, `${repository.id} is no longer a git repository.`, { phase: "push", cause: error });
      }
      throw agentError(ErrorCode.PUSH_FAILED, `Pushing ${branch} to ${repository.id} failed: ${error.stderr.trim().split("\n").slice(-3).join(" ")}`, { phase: "push", cause: error });
    }
    throw error;
  }
}
