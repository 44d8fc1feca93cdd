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
  const parents = segments.slice(1).map((_, index) => segments.slice(0, index + 1).join("/"));
  // The checks are read-only and independent: asked at once (one round trip or git process each), and
  // all finished before any is judged, in the order below, so the first problem is the one reported.
  const [pushCheck, ...lookups] = await Promise.allSettled([
    // Hosts that protect other branches too (GitLab's protected branches) say so here.
    Promise.resolve().then(() => gitHost.checkPushBranch?.(repository, branch, hostOptions)),
    ...[...parents, branch].map((name) => Promise.resolve().then(() => gitHost.branchExists(repository, name, hostOptions))),
  ]);
  outcome(pushCheck!);
  for (const [index, parent] of parents.entries()) {
    if (outcome(lookups[index]!)) {
      throw agentError(
        ErrorCode.INVALID_BRANCH,
        `The branch "${branch}" cannot be created in ${repository.id}: the branch "${parent}" exists, and git cannot hold a branch below another. Pass another branch or branchPrefix.`,
        { phase: "validate", details: { branch, existing: parent } },
      );
    }
  }
  return { continues: outcome(lookups[parents.length]!) };
}

/** The value of a settled check, or its error thrown. */
function outcome<T>(settled: PromiseSettledResult<T>): T {
  if (settled.status === "rejected") throw settled.reason;
  return settled.value;
}
