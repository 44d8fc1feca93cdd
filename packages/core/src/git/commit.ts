import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { agentError, ErrorCode, throwIfAborted } from "../errors.js";
import type { GitIdentity } from "../run-options.js";
import { validateBranchName } from "./branch-name.js";
import { GitCommandFailure, runGit, runGitScript } from "./git-command.js";
import { abortFailure, wrapFailure } from "./remote-errors.js";

/** What {@link commitChanges} needs. */
export interface CommitChangesInput {
  /** The host clone, with the collected changes in its working tree. */
  dir: string;
  /** The branch to commit on: created at HEAD, or HEAD's own branch when it already is that branch. */
  branch: string;
  /** The commit message. */
  message: string;
  /** Who the commit is by. */
  author: GitIdentity;
  /** Defaults to the author. */
  committer?: GitIdentity;
  /**
   * Stage the whole working tree first (`git add --all`), the default. False commits the index as
   * {@link collectChanges} left it: only the changed paths, and the working tree may be empty.
   */
  stageWorkingTree?: boolean;
  /** Aborts the step; it rejects with ABORTED. */
  signal?: AbortSignal;
}

/**
 * Commits the working tree of the host clone (as {@link collectChanges} left it: deletions,
 * modes and symlinks included) on `branch`, with exactly the given identities. Does not depend
 * on the machine's git config or HOME, runs no hooks and does not sign. Rejects with
 * COMMIT_FAILED when there is nothing to commit or the branch already exists elsewhere.
 */
export async function commitChanges(input: CommitChangesInput): Promise<{
  /** The new commit's sha. */
  commit: string;
}> {
  const { dir, branch, message, author, signal } = input;
  const committer = input.committer ?? author;
  const options = { cwd: dir, signal, phase: "commit" as const };
  try {
    validateBranchName(branch);
    checkIdentity("author", author);
    checkIdentity("committer", committer);
    if (message.trim() === "") throw agentError(ErrorCode.COMMIT_FAILED, "The commit message is empty.");
    throwIfAborted(signal, "commit");
    if (input.stageWorkingTree === false) return await commitIndex(input, committer);

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
    await runGit(["add", "--all", "--", "."], options);
    if (!(await hasStagedChanges(dir, signal))) throw nothingToCommit();
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
    );
    const { stdout } = await runGit(["rev-parse", "--verify", "HEAD^{commit}"], options);
    return { commit: stdout.toString("utf8").trim() };
  } catch (error) {
    const aborted = abortFailure(error, signal, "commit");
    if (aborted) throw aborted;
    throw wrapFailure(error, ErrorCode.COMMIT_FAILED, `Committing the changes failed: ${(error as Error).message}`, "commit");
  }
}

const nothingToCommit = () => agentError(ErrorCode.COMMIT_FAILED, "There is nothing to commit: the working tree equals HEAD.");

/**
 * Commits the index as it is with plumbing: nothing reads the working tree (which may be empty),
 * so the cost follows the change, not the number of files. Same checks and message cleanup as
 * `git commit --cleanup=whitespace`.
 */
async function commitIndex(input: CommitChangesInput, committer: GitIdentity): Promise<{ commit: string }> {
  const { dir, branch, message, author, signal } = input;
  const current = await currentBranch(dir, signal);
  try {
    const { stdout } = await runGitScript(["write-tree", "commit-tree", "update-ref"], COMMIT_INDEX_SCRIPT, [branch, current ?? ""], {
      cwd: dir,
      input: cleanMessage(message),
      env: { GIT_AUTHOR_NAME: author.name, GIT_AUTHOR_EMAIL: author.email, GIT_COMMITTER_NAME: committer.name, GIT_COMMITTER_EMAIL: committer.email },
      signal,
      phase: "commit",
    });
    return { commit: stdout.toString("utf8").trim() };
  } catch (error) {
    if (error instanceof GitCommandFailure && error.exitCode === 3) throw nothingToCommit();
    if (error instanceof GitCommandFailure && error.exitCode === 4 && /already exists|cannot lock/.test(error.stderr)) {
      throw agentError(ErrorCode.COMMIT_FAILED, `The branch "${branch}" already exists in the clone (or clashes with one); commit on a new branch name.`, { cause: error });
    }
    throw error;
  }
}

// $1 the branch to commit on; $2 the branch HEAD is on, empty when HEAD is detached; the message on stdin.
// Three steps one after the other, each one process start (about as long as the step itself for a small
// change), where `git commit` is one: so the first step runs its three processes at once.
//  1. The index's tree, HEAD's commit and tree, and (for a new branch off a branch) HEAD moved to the new
//     branch: nothing else reads HEAD meanwhile, as HEAD's commit is read by the old branch's name.
//  2. The commit.
//  3. The branch: moved on from HEAD's commit, or made only if it does not exist yet (an empty old
//     value; else exit 4).
// Exit 3 when the index is HEAD's tree. On any failure HEAD is put back where it was.
const COMMIT_INDEX_SCRIPT = `branch=$1 base=$2 moved=
head=HEAD
if [ -n "$base" ]; then head="refs/heads/$base"; fi
if [ -n "$base" ] && [ "$base" != "$branch" ]; then
  git symbolic-ref HEAD "refs/heads/$branch" & moved=$!
fi
fail() {
  if [ -n "$moved" ]; then wait "$moved"; git symbolic-ref HEAD "refs/heads/$base"; fi
  exit "$1"
}
ids=$( { t=$(git write-tree) && echo "new $t"; } & h=$(git rev-parse "$head^{commit}" "$head^{tree}") && echo "old $h"; wait $! && [ -n "$h" ] ) || fail 1
if [ -n "$moved" ]; then wait "$moved" || fail 1; fi
set -f
set -- $ids
if [ "$1" = new ]; then tree=$2 parent=$4 parent_tree=$5; else parent=$2 parent_tree=$3 tree=$5; fi
[ "$tree" != "$parent_tree" ] || fail 3
commit=$(git commit-tree "$tree" -p "$parent" -F -) || fail 1
if [ "$base" = "$branch" ]; then
  git update-ref "refs/heads/$branch" "$commit" "$parent" || exit 1
else
  git update-ref "refs/heads/$branch" "$commit" "" || fail 4
  if [ -z "$base" ]; then git symbolic-ref HEAD "refs/heads/$branch" || exit 1; fi
fi
printf '%s\\n' "$commit"`;

// What `--cleanup=whitespace` does: no trailing spaces, no leading or trailing blank lines, one blank line at most between paragraphs.
function cleanMessage(message: string): string {
  const lines = message.split("\n").map((line) => line.replace(/\s+$/, ""));
  const kept: string[] = [];
  for (const line of lines) if (line !== "" || (kept.length > 0 && kept[kept.length - 1] !== "")) kept.push(line);
  while (kept.length > 0 && kept[kept.length - 1] === "") kept.pop();
  return `${kept.join("\n")}\n`;
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
    !/[<>\x00-\x1f\x7f]/.test(identity.name) &&
    typeof identity.email === "string" &&
    /^[^\s<>@]+@[^\s<>@]+$/.test(identity.email);
  if (!valid) throw agentError(ErrorCode.INVALID_OPTIONS, `The ${role} must be { name, email } with a plain name and an address like bot@example.com.`);
}
