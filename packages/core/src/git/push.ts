import fs from "node:fs";
import git from "isomorphic-git";
import { agentError, ErrorCode, throwIfAborted } from "../errors.js";
import type { GitCredentials, ResolvedRepository } from "../spec/git-host-spec.js";
import { validateBranchName } from "./branch-name.js";
import { isHttpRemote } from "./clone.js";
import { GitCommandFailure, runGit } from "./git-command.js";
import { DEFAULT_GIT_STALL_TIMEOUT_MS } from "./remote-stall-timer.js";
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

/**
 * Pushes over http(s) with the git CLI from the host clone (never the sandbox's `.git`): git
 * streams the pack from its own processes, so this process holds no pack, and memory follows
 * git's, not the change. Hardened: no hooks, no credential helper, only the remote's protocol,
 * the credential only in the environment of this one call (an Authorization header scoped to the
 * remote's URL; never on the command line or in a file), and curl's low-speed limit as the stall timer.
 */
async function pushOverHttp(input: PushBranchInput, localRef: string): Promise<void> {
  const { dir, repository, branch, credentials, signal } = input;
  const url = repository.remote;
  const stallTimeoutMs = input.stallTimeoutMs ?? DEFAULT_GIT_STALL_TIMEOUT_MS;
  const scheme = new URL(url).protocol.replace(/:$/, "").toLowerCase();
  const config: Array<[string, string]> = [
    ["core.hooksPath", "/dev/null"],
    ["credential.helper", ""],
    ["protocol.allow", "never"],
    [`protocol.${scheme}.allow`, "always"],
    ["push.gpgSign", "false"],
    // Blobs past this are streamed into the pack, not read whole and deflated in memory (a 256 MiB file: 530 MB of RSS by default, 5 MB with it).
    ["core.bigFileThreshold", "16m"],
    // Fails a transfer that moved less than a byte a second for this many whole seconds (curl counts both directions).
    ["http.lowSpeedLimit", "1"],
    ["http.lowSpeedTime", String(Math.max(1, Math.ceil(stallTimeoutMs / 1000)))],
  ];
  if (credentials) config.push([`http.${url}.extraHeader`, `Authorization: Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString("base64")}`]);
  const env: Record<string, string> = { GIT_CONFIG_COUNT: String(config.length) };
  config.forEach(([key, value], index) => {
    env[`GIT_CONFIG_KEY_${index}`] = key;
    env[`GIT_CONFIG_VALUE_${index}`] = value;
  });
  try {
    await runGit(["push", "--porcelain", "--quiet", "--no-verify", "--recurse-submodules=no", "--", url, `${localRef}:refs/heads/${branch}`], { cwd: dir, env, signal, phase: "push", ownProcessGroup: true });
  } catch (error) {
    if (!(error instanceof GitCommandFailure)) throw error;
    const output = `${error.stdout}\n${error.stderr}`;
    const details = { url };
    if (/\[rejected\]|non-fast-forward|fetch first|stale info/.test(output)) throw rejected(branch, repository, "the remote branch has commits this clone does not have", error);
    if (/Operation too slow|Operation timed out|curl 28/i.test(output)) {
      throw agentError(
        ErrorCode.GIT_REMOTE_STALLED,
        `The Git remote ${url} stopped responding during the push: nothing was sent or received for about ${Math.max(1, Math.ceil(stallTimeoutMs / 1000))} s. Check that the server is up and reachable, or raise gitStallTimeoutMs for a slow link.`,
        { phase: "push", details: { remote: url, stallTimeoutMs }, cause: error },
      );
    }
    const status = /returned error: (\d{3})/.exec(output)?.[1];
    if (status === "401" || /Authentication failed|could not read (Username|Password)/.test(output)) {
      throw agentError(ErrorCode.AUTH_FAILED, `${url} refused the credentials (HTTP 401). Check the token and that it has access to the repository.`, { phase: "push", details: { status: 401, ...details } });
    }
    if (status === "403") throw agentError(ErrorCode.PERMISSION_DENIED, `${url} denied access (HTTP 403). The token needs write access to the repository.`, { phase: "push", details: { status: 403, ...details } });
    if (status === "404" || /repository '.*' not found/.test(output)) {
      throw agentError(ErrorCode.REPO_NOT_FOUND, `${url} was not found (HTTP 404). Check the URL, or that the token can see the repository.`, { phase: "push", details: { status: 404, ...details } });
    }
    if (status === "429") throw agentError(ErrorCode.RATE_LIMITED, `${url} is rate limiting requests (HTTP 429). Try again later.`, { phase: "push", details: { status: 429, ...details } });
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
