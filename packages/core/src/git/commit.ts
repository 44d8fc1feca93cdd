import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { agentError, ErrorCode, throwIfAborted } from "../errors.js";
import type { GitIdentity } from "../run-options.js";
import { validateBranchName } from "./branch-name.js";
import { GitCommandFailure, runGit } from "./git-command.js";
import { abortFailure, wrapFailure } from "./remote-errors.js";

/** What {@link commitChanges} needs. */
export interface CommitChangesInput {
  /** The host clone, with the collected changes in its working tree. */
  dir: string;
  /** The branch to commit on: created at HEAD, or HEAD's own branch when it already is that branch. */
  branch: string;
  message: string;
  author: GitIdentity;
  /** Defaults to the author. */
  committer?: GitIdentity;
  /**
   * Stage the whole working tree first (`git add --all`), the default. False commits the index as
   * {@link collectChanges} left it: only the changed paths, and the working tree may be empty.
   */
  stageWorkingTree?: boolean;
  signal?: AbortSignal;
}

/**
 * Commits the working tree of the host clone (as {@link collectChanges} left it: deletions,
 * modes and symlinks included) on `branch`, with exactly the given identities. Does not depend
 * on the machine's git config or HOME, runs no hooks and does not sign. Rejects with
 * COMMIT_FAILED when there is nothing to commit or the branch already exists elsewhere.
 */
export async function commitChanges(input: CommitChangesInput): Promise<{ commit: string }> {
  const { dir, branch, message, author, signal } = input;
  const committer = input.committer ?? author;
  const options = { cwd: dir, signal, phase: "commit" as const };
  try {
    validateBranchName(branch);
    checkIdentity("author", author);
    checkIdentity("committer", committer);
    if (message.trim() === "") throw agentError(ErrorCode.COMMIT_FAILED, "The commit message is empty.");
    throwIfAborted(signal, "commit");

    const current = await currentBranch(dir, signal);
    if (current !== branch) {
      try {
        await runGit(["checkout", "--quiet", "-b", branch], options);
      } catch (error) {
        if (error instanceof GitCommandFailure && /already exists/.test(error.stderr)) {
          throw agentError(ErrorCode.COMMIT_FAILED, `The branch "${branch}" already exists in the clone; commit on a new branch name.`, { cause: error });
        }
        throw error;
      }
    }
    const nothingToCommit = () => agentError(ErrorCode.COMMIT_FAILED, "There is nothing to commit: the working tree equals HEAD.");
    if (input.stageWorkingTree !== false) {
      await runGit(["add", "--all", "--", "."], options);
      if (!(await hasStagedChanges(dir, signal))) throw nothingToCommit();
    }
    await runGit(
      ["-c", "core.hooksPath=/dev/null", "-c", "commit.gpgSign=false", "commit", "--quiet", "--no-verify", "--cleanup=whitespace", "--file=-"],
      {
        ...options,
        input: message,
        env: {
          GIT_AUTHOR_NAME: author.name,
          GIT_AUTHOR_EMAIL: author.email,
          GIT_COMMITTER_NAME: committer.name,
          GIT_COMMITTER_EMAIL: committer.email,
        },
      },
    ).catch((error: unknown) => {
      // An index equal to HEAD (checked up front when the working tree is staged here).
      if (error instanceof GitCommandFailure && error.exitCode === 1 && /nothing (added )?to commit|no changes added/i.test(`${error.stdout}\n${error.stderr}`)) throw nothingToCommit();
      throw error;
    });
    const { stdout } = await runGit(["rev-parse", "--verify", "HEAD^{commit}"], options);
    return { commit: stdout.toString("utf8").trim() };
  } catch (error) {
    const aborted = abortFailure(error, signal, "commit");
    if (aborted) throw aborted;
    throw wrapFailure(error, ErrorCode.COMMIT_FAILED, `Committing the changes failed: ${(error as Error).message}`, "commit");
  }
}

async function currentBranch(dir: string, signal: AbortSignal | undefined): Promise<string | undefined> {
  // Read from .git/HEAD where it is a plain file (one process fewer); git itself otherwise.
  const head = await readFile(join(dir, ".git", "HEAD"), "utf8").catch(() => undefined);
  const match = head === undefined ? null : /^ref: refs\/heads\/(.+)\n?$/.exec(head);
  if (match) return match[1];
  if (head !== undefined && /^[0-9a-f]{40,64}\n?$/.test(head)) return undefined;
  try {
    const { stdout } = await runGit(["symbolic-ref", "--quiet", "--short", "HEAD"], { cwd: dir, signal, phase: "commit" });
    return stdout.toString("utf8").trim();
  } catch (error) {
    if (error instanceof GitCommandFailure && error.exitCode === 1) return undefined;
    throw error;
  }
}

async function hasStagedChanges(dir: string, signal: AbortSignal | undefined): Promise<boolean> {
  try {
    await runGit(["diff", "--cached", "--quiet", "HEAD"], { cwd: dir, signal, phase: "commit" });
    return false;
  } catch (error) {
    if (error instanceof GitCommandFailure && error.exitCode === 1) return true;
    throw error;
  }
}

function checkIdentity(role: string, identity: GitIdentity): void {
  const valid =
    typeof identity?.name === "string" &&
    identity.name.trim() !== "" &&
    !/[<>\n\0]/.test(identity.name) &&
    typeof identity.email === "string" &&
    /^[^\s<>@]+@[^\s<>@]+$/.test(identity.email);
  if (!valid) throw agentError(ErrorCode.INVALID_OPTIONS, `The ${role} must be { name, email } with a plain name and an address like bot@example.com.`);
}
