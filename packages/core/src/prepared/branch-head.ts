import { ErrorCode } from "../errors.js";
import type { GitCredentials, ResolvedRepository } from "../spec/git-host-spec.js";
import { DEFAULT_GIT_STALL_TIMEOUT_MS, runGitOnRemote } from "../git/remote-git.js";
import { abortFailure, wrapFailure } from "../git/remote-errors.js";

/**
 * The commit a branch of the remote points at, read on the host without fetching objects
 * (`git ls-remote`; over http(s) hardened like the clone, the credentials only in that call's
 * environment). Undefined when the branch does not exist.
 */
export async function readBranchHead(input: { repository: ResolvedRepository; branch: string; credentials?: GitCredentials; signal?: AbortSignal }): Promise<string | undefined> {
  const { repository, branch, credentials, signal } = input;
  const ref = `refs/heads/${branch}`;
  try {
    const { stdout } = await runGitOnRemote(repository.remote, (address) => ["ls-remote", "--", address, ref], {
      ...(credentials ? { credentials } : {}),
      stallTimeoutMs: DEFAULT_GIT_STALL_TIMEOUT_MS,
      phase: "clone",
      ...(signal ? { signal } : {}),
    });
    const line = stdout.toString("utf8").split("\n").find((record) => record.endsWith(`\t${ref}`));
    return line?.slice(0, line.indexOf("\t"));
  } catch (cause) {
    // A refused token, a missing repository, a rate limit: typed as the clone's are (runRemoteGit).
    throw abortFailure(cause, signal, "clone") ?? wrapFailure(cause, ErrorCode.CLONE_FAILED, `Could not read the head of ${branch} in ${repository.id}: ${cause instanceof Error ? cause.message : String(cause)}`, "clone");
  }
}
