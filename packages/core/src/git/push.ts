import fs from "node:fs";
import git from "isomorphic-git";
import { agentError, ErrorCode, throwIfAborted } from "../errors.js";
import type { GitCredentials, ResolvedRepository } from "../spec/git-host-spec.js";
import { createAbortableHttpClient } from "./abortable-http-client.js";
import { validateBranchName } from "./branch-name.js";
import { isHttpRemote } from "./clone.js";
import { GitCommandFailure, runGit } from "./git-command.js";
import { DEFAULT_GIT_STALL_TIMEOUT_MS } from "./remote-stall-timer.js";
import { abortFailure, httpFailure, wrapFailure } from "./remote-errors.js";

/** What {@link pushBranch} needs. */
export interface PushBranchInput {
  /** The host clone. */
  dir: string;
  /** The repository to push to, as the Git host resolved it. */
  repository: ResolvedRepository;
  /** The remote branch to push to. The local branch of that name is pushed, or HEAD when there is none. */
  branch: string;
  /** For http(s) remotes; handed to isomorphic-git's onAuth callback only. */
  credentials?: GitCredentials;
  /** Aborts the step; it rejects with ABORTED. */
  signal?: AbortSignal;
  /** For http(s) remotes: fail with GIT_REMOTE_STALLED after this long without progress. Default {@link DEFAULT_GIT_STALL_TIMEOUT_MS}. */
  stallTimeoutMs?: number;
}

const NO_COMMIT = "0000000000000000000000000000000000000000";

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
    await git.resolveRef({ fs, dir, ref: `refs/heads/${branch}` });
    return true;
  } catch {
    return false;
  }
}

function rejected(branch: string, repository: ResolvedRepository, reason: string, cause?: unknown) {
  return agentError(ErrorCode.PUSH_REJECTED, `The push of ${branch} to ${repository.id} was rejected: ${reason}. Push to a new branch name.`, {
    phase: "push",
    details: { branch },
    ...(cause ? { cause } : {}),
  });
}

async function pushOverHttp(input: PushBranchInput, localRef: string): Promise<void> {
  const { dir, repository, branch, credentials, signal } = input;
  let remoteCommit = NO_COMMIT;
  const http = createAbortableHttpClient({ signal, stall: { remote: repository.remote, phase: "push", stallTimeoutMs: input.stallTimeoutMs ?? DEFAULT_GIT_STALL_TIMEOUT_MS } });
  try {
    await git.push({
      fs,
      http,
      dir,
      url: repository.remote,
      ref: localRef,
      remoteRef: `refs/heads/${branch}`,
      force: false,
      ...(credentials ? { onAuth: () => ({ username: credentials.username, password: credentials.password }) } : {}),
      onPrePush: ({ remoteRef }) => {
        remoteCommit = remoteRef.oid;
        return true;
      },
    });
  } catch (error) {
    if (!signal?.aborted && http.stalled) throw http.stalled;
    const aborted = abortFailure(error, signal, "push");
    if (aborted) throw aborted;
    const failure = httpFailure(error, repository.remote, "push");
    if (failure) throw failure;
    const code = (error as { code?: string }).code;
    if (code === "PushRejectedError") throw rejected(branch, repository, "the remote branch has commits this clone does not have", error);
    // In a shallow clone, a remote branch at a commit we never fetched cannot be an ancestor of ours.
    if ((code === "NotFoundError" || code === "MaxDepthError") && remoteCommit !== NO_COMMIT) {
      throw rejected(branch, repository, "the branch already exists on the remote at a commit this clone does not have", error);
    }
    if (code === "GitPushError") {
      const details = String((error as { data?: { prettyDetails?: string } }).data?.prettyDetails ?? "");
      if (/non-fast-forward|fetch first|rejected|stale info/i.test(details)) throw rejected(branch, repository, details.trim(), error);
      throw agentError(ErrorCode.PUSH_FAILED, `The remote refused the push of ${branch}: ${details.trim()}`, { phase: "push", cause: error });
    }
    throw error;
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
