import type { Octokit } from "@octokit/rest";
import { agentError, ErrorCode, type ChangeRequest, type GitHost } from "@running-agent/core";
import type { IssueTarget, PullRequestFollowUp } from "./task-trigger.js";

/**
 * The Git host for a follow-up on a pull request: the given host for everything, except that
 * the change request is the pull request followed up, read back and left as it is. The core
 * would otherwise replace its title and body with the follow-up's (and undraft it); the push
 * of the head branch is what updates the pull request.
 */
export function followUpGitHost(gitHost: GitHost, octokit: Octokit, target: IssueTarget, followUp: PullRequestFollowUp): GitHost {
  return {
    specificationVersion: gitHost.specificationVersion,
    hostId: gitHost.hostId,
    supports: (repo) => gitHost.supports(repo),
    resolveRepository: (repo, options) => gitHost.resolveRepository(repo, options),
    branchExists: (repository, branch, options) => gitHost.branchExists(repository, branch, options),
    getCredentials: (repository, access, options) => gitHost.getCredentials(repository, access, options),
    secrets: () => gitHost.secrets?.() ?? [],
    async openChangeRequest(_repository, input, options): Promise<ChangeRequest> {
      const number = followUp.number;
      // The core pushes to a fresh branch when the head moved meanwhile; that commit is not on the pull request.
      if (input.head !== followUp.head) {
        throw agentError(
          ErrorCode.PUSH_REJECTED,
          `The branch ${followUp.head} of pull request #${number} moved while the agent worked, so its commit went to ${input.head} instead. Merge that branch into the pull request, or ask again.`,
        );
      }
      let pullRequest;
      try {
        ({ data: pullRequest } = await octokit.rest.pulls.get({ owner: target.owner, repo: target.repo, pull_number: number, request: { signal: options?.signal } }));
      } catch (error) {
        throw agentError(ErrorCode.PULL_REQUEST_FAILED, `Could not read pull request #${number} after pushing to ${followUp.head}: ${(error as Error).message}`, { cause: error });
      }
      if (pullRequest.state !== "open") {
        throw agentError(ErrorCode.PULL_REQUEST_FAILED, `Pull request #${number} was closed while the agent worked; the commit is on ${followUp.head}.`);
      }
      return {
        number,
        url: pullRequest.html_url,
        head: pullRequest.head.ref,
        base: pullRequest.base.ref,
        title: pullRequest.title,
        body: pullRequest.body ?? "",
        draft: pullRequest.draft ?? false,
        created: false,
      };
    },
  };
}
