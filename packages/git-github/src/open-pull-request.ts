import { agentError, checkChangeRequestInput, ErrorCode, type ChangeRequest, type ChangeRequestInput } from "@running-agent/core";
import type { GitHubOctokit } from "./github-octokit.js";
import { toGitHubError } from "./github-request-error.js";

/** The repository a pull request is opened in, as `owner` and `name`. */
export interface PullRequestTarget {
  owner: string;
  name: string;
}

interface PullRequestData {
  number: number;
  node_id: string;
  html_url: string;
  title: string;
  body: string | null;
  draft?: boolean;
  head: { ref: string; repo: { full_name: string } | null };
  base: { ref: string };
}

/**
 * Opens a pull request from `input.head`, or updates the open one for that branch (title, body,
 * base), then adds labels, reviewers and assignees. Running it twice leaves one pull request.
 */
export async function openPullRequest(octokit: GitHubOctokit, target: PullRequestTarget, input: ChangeRequestInput, signal?: AbortSignal): Promise<ChangeRequest> {
  checkChangeRequestInput(input);
  const { owner, name: repo } = target;
  let pullRequest = await findOpenPullRequest(octokit, target, input.head, signal);
  let created = false;
  if (!pullRequest) {
    try {
      const response = await octokit.rest.pulls.create({ owner, repo, head: input.head, base: input.base, title: input.title, body: input.body, draft: input.draft ?? false });
      pullRequest = response.data;
      created = true;
    } catch (error) {
      // Another run for the same branch opened it between our look-up and the create.
      if (!isAlreadyExists(error)) throw pullRequestError(error, input, "open a pull request", signal);
      pullRequest = await findOpenPullRequest(octokit, target, input.head, signal);
      if (!pullRequest) throw pullRequestError(error, input, "open a pull request", signal);
    }
  }
  if (!created) {
    try {
      const response = await octokit.rest.pulls.update({ owner, repo, pull_number: pullRequest.number, title: input.title, body: input.body, base: input.base });
      pullRequest = response.data;
    } catch (error) {
      throw pullRequestError(error, input, `update pull request #${pullRequest.number}`, signal);
    }
  }
  const draft = created || input.draft === undefined || input.draft === (pullRequest.draft ?? false) ? (pullRequest.draft ?? false) : await setDraft(octokit, pullRequest, input.draft, signal);
  await addPeopleAndLabels(octokit, target, pullRequest, input, signal);
  return {
    number: pullRequest.number,
    url: pullRequest.html_url,
    head: pullRequest.head.ref,
    base: pullRequest.base.ref,
    title: pullRequest.title,
    body: pullRequest.body ?? "",
    draft,
    created,
  };
}

/** The open pull request whose head is `branch` in the same repository, if there is one. */
export async function findOpenPullRequest(octokit: GitHubOctokit, target: PullRequestTarget, branch: string, signal?: AbortSignal): Promise<PullRequestData | undefined> {
  try {
    const response = await octokit.rest.pulls.list({ owner: target.owner, repo: target.name, state: "open", head: `${target.owner}:${branch}`, per_page: 100 });
    const fullName = `${target.owner}/${target.name}`.toLowerCase();
    return response.data.find((pull) => pull.head.ref === branch && pull.head.repo?.full_name.toLowerCase() === fullName);
  } catch (error) {
    throw toGitHubError(error, { action: `list pull requests of ${target.owner}/${target.name}`, notFound: ErrorCode.REPO_NOT_FOUND, otherwise: ErrorCode.PULL_REQUEST_FAILED, signal });
  }
}

/** The REST API cannot change a pull request's draft state; GitHub's GraphQL mutations can. */
async function setDraft(octokit: GitHubOctokit, pullRequest: PullRequestData, draft: boolean, signal?: AbortSignal): Promise<boolean> {
  const mutation = draft ? "convertPullRequestToDraft" : "markPullRequestReadyForReview";
  try {
    const result = await octokit.graphql<Record<string, { pullRequest: { isDraft: boolean } }>>(
      `mutation($id: ID!) { ${mutation}(input: { pullRequestId: $id }) { pullRequest { isDraft } } }`,
      { id: pullRequest.node_id, request: signal ? { signal } : {} },
    );
    return result[mutation]!.pullRequest.isDraft;
  } catch (error) {
    const graphqlErrors = (error as { errors?: Array<{ message?: string }> }).errors;
    const message = graphqlErrors?.map((entry) => entry.message).join("; ");
    const typed = message ? agentError(ErrorCode.PULL_REQUEST_FAILED, `GitHub refused to mark pull request #${pullRequest.number} as ${draft ? "a draft" : "ready for review"}: ${message}`, { cause: error }) : toGitHubError(error, { action: `mark pull request #${pullRequest.number} as ${draft ? "a draft" : "ready for review"}`, otherwise: ErrorCode.PULL_REQUEST_FAILED, signal });
    throw agentError(typed.code, typed.message, { cause: error, details: { ...typed.details, pullRequest: { number: pullRequest.number, url: pullRequest.html_url } } });
  }
}

async function addPeopleAndLabels(octokit: GitHubOctokit, target: PullRequestTarget, pullRequest: PullRequestData, input: ChangeRequestInput, signal?: AbortSignal): Promise<void> {
  const { owner, name: repo } = target;
  const number = pullRequest.number;
  const steps: Array<[string, () => Promise<unknown>]> = [];
  const labels = unique(input.labels);
  if (labels.length > 0) steps.push(["add labels to", () => octokit.rest.issues.addLabels({ owner, repo, issue_number: number, labels })]);
  const reviewers = unique(input.reviewers);
  // `org/team` names a team; GitHub takes team slugs separately.
  const users = reviewers.filter((reviewer) => !reviewer.includes("/"));
  const teams = reviewers.filter((reviewer) => reviewer.includes("/")).map((reviewer) => reviewer.slice(reviewer.indexOf("/") + 1));
  if (reviewers.length > 0) steps.push(["request reviewers for", () => octokit.rest.pulls.requestReviewers({ owner, repo, pull_number: number, reviewers: users, team_reviewers: teams })]);
  const assignees = unique(input.assignees);
  if (assignees.length > 0) steps.push(["add assignees to", () => octokit.rest.issues.addAssignees({ owner, repo, issue_number: number, assignees })]);
  for (const [action, step] of steps) {
    try {
      await step();
    } catch (error) {
      const typed = toGitHubError(error, { action: `${action} pull request #${number} (it is open at ${pullRequest.html_url})`, otherwise: ErrorCode.PULL_REQUEST_FAILED, notFound: ErrorCode.PULL_REQUEST_FAILED, signal });
      throw agentError(typed.code, typed.message, { cause: error, details: { ...typed.details, pullRequest: { number, url: pullRequest.html_url } } });
    }
  }
}

function pullRequestError(error: unknown, input: ChangeRequestInput, action: string, signal?: AbortSignal) {
  const fields = validationFields(error);
  if (fields.includes("base")) {
    return agentError(ErrorCode.BASE_BRANCH_NOT_FOUND, `Could not ${action}: the base branch ${JSON.stringify(input.base)} does not exist on GitHub.`, { cause: error });
  }
  if (fields.includes("head")) {
    return agentError(ErrorCode.PULL_REQUEST_FAILED, `Could not ${action}: the branch ${JSON.stringify(input.head)} is not on GitHub; push it first.`, { cause: error });
  }
  return toGitHubError(error, { action, otherwise: ErrorCode.PULL_REQUEST_FAILED, notFound: ErrorCode.REPO_NOT_FOUND, signal });
}

function validationFields(error: unknown): string[] {
  const data = (error as { status?: number; response?: { data?: { errors?: Array<{ field?: unknown; code?: unknown }> } } }).response?.data;
  if ((error as { status?: number }).status !== 422) return [];
  return (data?.errors ?? []).filter((entry) => entry.code === "invalid" || entry.code === "missing_field").map((entry) => String(entry.field));
}

function isAlreadyExists(error: unknown): boolean {
  const requestError = error as { status?: number; response?: { data?: { errors?: Array<{ message?: unknown }> } } };
  return requestError.status === 422 && (requestError.response?.data?.errors ?? []).some((entry) => typeof entry.message === "string" && entry.message.startsWith("A pull request already exists"));
}

function unique(list: readonly string[] | undefined): string[] {
  return [...new Set((list ?? []).map((entry) => entry.trim()))];
}
