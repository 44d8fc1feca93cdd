import { randomBytes } from "node:crypto";
import { ErrorCode, RunningAgentError } from "../errors.js";
import { runGit } from "../git/git-command.js";
import { pushBranch } from "../git/push.js";
import { hostOptions } from "./host-options.js";
import { refuseProtectedBranch } from "./branch-checks.js";
import type { TaskContext } from "./task-context.js";

const MAX_ATTEMPTS = 3;

/**
 * Phase 7b: pushes the branch. When the push is rejected because someone else moved the
 * branch, it is retried on a fresh branch name: never forced over someone's work.
 */
export async function pushTaskBranch(context: TaskContext): Promise<void> {
  const options = context.options!;
  const repository = context.repository!;
  const credentials = await options.gitHost.getCredentials(repository, "write", hostOptions(context));
  for (let attempt = 1; ; attempt++) {
    // Checked in validate already; checked again right before anything reaches the remote.
    refuseProtectedBranch(context.branch!, context.baseBranch!, repository, "push");
    try {
      await pushBranch({
        dir: context.cloneDir!,
        repository,
        branch: context.branch!,
        ...(credentials ? { credentials } : {}),
        signal: context.signal,
        stallTimeoutMs: options.gitStallTimeoutMs,
      });
      break;
    } catch (error) {
      if (!RunningAgentError.isInstance(error) || error.code !== ErrorCode.PUSH_REJECTED || attempt >= MAX_ATTEMPTS) throw error;
      const fresh = `${context.branch}-${randomBytes(3).toString("hex")}`;
      context.emit({
        type: "warning",
        code: ErrorCode.PUSH_REJECTED,
        message: `The branch ${context.branch} moved on the remote while the agent worked; pushing to ${fresh} instead.`,
      });
      // A branch at the same commit, and HEAD on it; the clone has no working tree to touch.
      await runGit(["branch", "--", fresh, context.commit!], { cwd: context.cloneDir!, signal: context.signal, phase: "push" });
      await runGit(["symbolic-ref", "HEAD", `refs/heads/${fresh}`], { cwd: context.cloneDir!, signal: context.signal, phase: "push" });
      context.branch = fresh;
    }
  }
  context.emit({ type: "branch.pushed", branch: context.branch!, commit: context.commit! });
}
