import git from "isomorphic-git";
import { agentError, ErrorCode } from "../errors.js";
import type { GitCredentials, ResolvedRepository } from "../spec/git-host-spec.js";
import { createAbortableHttpClient } from "../git/abortable-http-client.js";
import { isHttpRemote } from "../git/clone.js";
import { runGit } from "../git/git-command.js";
import { abortFailure, httpFailure } from "../git/remote-errors.js";

/**
 * The commit a branch of the remote points at, read on the host without fetching objects (the
 * `git ls-remote` of a clone): isomorphic-git over http(s), with the credentials through onAuth only,
 * the git CLI for local paths. Undefined when the branch does not exist.
 */
export async function readBranchHead(input: { repository: ResolvedRepository; branch: string; credentials?: GitCredentials; signal?: AbortSignal }): Promise<string | undefined> {
  const { repository, branch, credentials, signal } = input;
  const ref = `refs/heads/${branch}`;
  try {
    if (isHttpRemote(repository.remote)) {
      const refs = await git.listServerRefs({
        http: createAbortableHttpClient(signal ? { signal } : {}),
        url: repository.remote,
        prefix: ref,
        ...(credentials ? { onAuth: () => ({ username: credentials.username, password: credentials.password }) } : {}),
      });
      return refs.find((entry) => entry.ref === ref)?.oid;
    }
    const { stdout } = await runGit(["ls-remote", "--", repository.remote, ref], { ...(signal ? { signal } : {}) });
    const line = stdout.toString("utf8").split("\n").find((record) => record.endsWith(`\t${ref}`));
    return line?.slice(0, line.indexOf("\t"));
  } catch (cause) {
    // A refused token, a missing repository, a rate limit: the same typed errors as the clone's.
    throw abortFailure(cause, signal, "clone") ?? httpFailure(cause, repository.remote, "clone") ?? agentError(ErrorCode.CLONE_FAILED, `Could not read the head of ${branch} in ${repository.id}: ${cause instanceof Error ? cause.message : String(cause)}`, { phase: "clone", cause });
  }
}
