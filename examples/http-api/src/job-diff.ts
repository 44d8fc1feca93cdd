import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { cloneRepository, ErrorCode, RunningAgentError, type GitHost } from "@running-agent/core";

const run = promisify(execFile);

/** What {@link readCommitDiff} needs: where the job pushed, and the commit it made. */
export interface CommitDiffInput {
  gitHost: GitHost;
  repo: string;
  branch: string;
  commit: string;
  /** Larger diffs are refused with {@link DiffTooLargeError}. */
  maxBytes: number;
  signal?: AbortSignal;
}

/** The commit's diff is longer than the limit. */
export class DiffTooLargeError extends Error {}

/** The pushed branch no longer holds the commit near its tip (force-pushed, deleted, or many commits on top). */
export class CommitNotFoundError extends Error {}

/** How deep to clone: the job's commit is normally the branch's tip; someone may have pushed on top. */
const CLONE_DEPTHS = [2, 50];

/**
 * The unified diff of a pushed commit against its parent (the base it was made on), read on
 * this host from the Git host with the server's read credentials: a shallow clone of the
 * branch without a working tree, then `git diff`. Works for every Git host, the local one
 * included. The clone is removed before this returns.
 */
export async function readCommitDiff(input: CommitDiffInput): Promise<string> {
  const repository = await input.gitHost.resolveRepository(input.repo, input.signal ? { signal: input.signal } : {});
  const credentials = await input.gitHost.getCredentials(repository, "read", input.signal ? { signal: input.signal } : {});
  const folder = await mkdtemp(join(tmpdir(), "running-agent-diff-"));
  try {
    for (const depth of CLONE_DEPTHS) {
      const dir = join(folder, String(depth));
      try {
        await cloneRepository({ repository, branch: input.branch, depth, dir, checkout: false, ...(credentials ? { credentials } : {}), ...(input.signal ? { signal: input.signal } : {}) });
      } catch (error) {
        // A deleted branch holds the commit no more than a force-pushed one.
        if (RunningAgentError.isInstance(error) && error.code === ErrorCode.BASE_BRANCH_NOT_FOUND) throw new CommitNotFoundError(`Branch ${input.branch} no longer exists, so commit ${input.commit.slice(0, 12)} is not on it.`);
        throw error;
      }
      // The commit's parent is in the clone only when the commit is (and a shallow clone's oldest commit has none).
      const found = await run("git", ["rev-parse", "--verify", "--quiet", `${input.commit}^1^{commit}`], { cwd: dir }).then(
        () => true,
        () => false,
      );
      if (!found) continue;
      try {
        const { stdout } = await run("git", ["-c", "core.quotePath=false", "diff", "--no-color", "--no-ext-diff", "-M", `${input.commit}^1`, input.commit], { cwd: dir, maxBuffer: input.maxBytes, encoding: "utf8" });
        return stdout;
      } catch (error) {
        if ((error as { code?: string }).code === "ERR_CHILD_PROCESS_STDIO_MAXBUFFER") throw new DiffTooLargeError(`The diff of ${input.commit.slice(0, 12)} is larger than ${input.maxBytes} bytes.`);
        throw error;
      }
    }
    throw new CommitNotFoundError(`Commit ${input.commit.slice(0, 12)} is not within the last ${CLONE_DEPTHS.at(-1)} commits of branch ${input.branch} any more.`);
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
}
