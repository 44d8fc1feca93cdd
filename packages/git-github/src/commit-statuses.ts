import { checkStatusDescription, type CheckReport } from "@running-agent/core";
import type { GitHubOctokit } from "./github-octokit.js";
import { toGitHubError } from "./github-request-error.js";

// GitHub cuts a status description at 140 characters.
const MAX_DESCRIPTION = 140;

/**
 * The run's checks as commit statuses on the pushed commit, one per check (`running-agent/<name>`),
 * so that the pull request shows them like CI. Statuses work with every token kind; check runs
 * would need a GitHub App.
 */
export async function createCommitStatuses(octokit: GitHubOctokit, repository: { owner: string; name: string }, report: CheckReport, signal?: AbortSignal): Promise<void> {
  for (const check of report.checks) {
    try {
      await octokit.rest.repos.createCommitStatus({
        owner: repository.owner,
        repo: repository.name,
        sha: report.commit,
        state: check.passed ? "success" : "failure",
        context: `running-agent/${check.name}`,
        description: checkStatusDescription(check, report.fixRounds, MAX_DESCRIPTION),
        ...(report.changeRequest.url.startsWith("http") ? { target_url: report.changeRequest.url } : {}),
      });
    } catch (error) {
      throw toGitHubError(error, { action: `record the check ${check.name} on ${report.commit.slice(0, 12)}`, signal });
    }
  }
}
