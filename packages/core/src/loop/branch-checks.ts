import { agentError, ErrorCode } from "../errors.js";
import type { Phase } from "../phases.js";
import type { GitHost, GitHostTaskOptions, ResolvedRepository } from "../spec/git-host-spec.js";

/** What {@link checkTaskBranch} needs. */
export interface TaskBranchCheck {
  gitHost: GitHost;
  repository: ResolvedRepository;
  /** The branch the task will push. */
  branch: string;
  baseBranch: string;
  hostOptions: GitHostTaskOptions;
}

/**
 * Refuses a task branch that is the base branch or the repository's default branch (in any
 * letter case: some hosts and file systems do not tell `Main` from `main`). The loop pushes only
 * to the task's own branch, so this is checked before anything exists and again before the push.
 */
export function refuseProtectedBranch(branch: string, baseBranch: string, repository: ResolvedRepository, phase: Phase = "validate"): void {
  for (const [role, protectedBranch] of [
    ["base branch", baseBranch],
    ["repository's default branch", repository.defaultBranch],
  ] as const) {
    if (branch.toLowerCase() === protectedBranch.toLowerCase()) {
      throw agentError(
        ErrorCode.INVALID_BRANCH,
        `The branch "${branch}" is the ${role}${branch === protectedBranch ? "" : ` ("${protectedBranch}")`}: the agent's work is pushed only to a branch of its own. Pass another branch, or leave branch unset for a generated name.`,
        { phase, details: { branch } },
      );
    }
  }
}

/**
 * Checks the task's branch against the remote before anything is created: not the base or default
 * branch, and no existing branch at one of its parent paths (`main/x` cannot exist next to
 * `main`). Resolves true when the branch exists already, so the run continues on it.
 */
export async function checkTaskBranch(check: TaskBranchCheck): Promise<{ continues: boolean }> {
  const { gitHost, repository, branch, baseBranch, hostOptions } = check;
  refuseProtectedBranch(branch, baseBranch, repository);
  const segments = branch.split("/");
  for (let length = 1; length < segments.length; length++) {
    const parent = segments.slice(0, length).join("/");
    if (await gitHost.branchExists(repository, parent, hostOptions)) {
      throw agentError(
        ErrorCode.INVALID_BRANCH,
        `The branch "${branch}" cannot be created in ${repository.id}: the branch "${parent}" exists, and git cannot hold a branch below another. Pass another branch or branchPrefix.`,
        { phase: "validate", details: { branch, existing: parent } },
      );
    }
  }
  return { continues: await gitHost.branchExists(repository, branch, hostOptions) };
}
