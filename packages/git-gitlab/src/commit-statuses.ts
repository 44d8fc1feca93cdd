import { checkStatusDescription, type CheckReport } from "@running-agent/core";
import type { GitLabClient } from "./gitlab-client.js";
import { toGitLabError } from "./gitlab-request-error.js";

// GitLab keeps at most 255 characters of a status description.
const MAX_DESCRIPTION = 255;

/**
 * The run's checks as external commit statuses on the pushed commit, one per check
 * (`running-agent/<name>`), which the merge request shows in its pipeline widget like CI jobs.
 */
export async function createCommitStatuses(client: GitLabClient, projectPath: string, report: CheckReport, signal?: AbortSignal): Promise<void> {
  for (const check of report.checks) {
    try {
      await client.Commits.editStatus(projectPath, report.commit, check.passed ? "success" : "failed", {
        name: `running-agent/${check.name}`,
        ref: report.branch,
        description: checkStatusDescription(check, report.fixRounds, MAX_DESCRIPTION),
        ...(report.changeRequest.url.startsWith("http") ? { targetUrl: report.changeRequest.url } : {}),
      });
    } catch (error) {
      throw toGitLabError(error, { action: `record the check ${check.name} on ${report.commit.slice(0, 12)}`, signal });
    }
  }
}
