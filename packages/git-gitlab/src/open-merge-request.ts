import { agentError, checkChangeRequestInput, ErrorCode, type ChangeRequest, type ChangeRequestInput } from "@running-agent/core";
import { GitLabResponseError, type GitLabClient } from "./gitlab-client.js";
import { gitLabMessage, toGitLabError } from "./gitlab-request-error.js";

/** The project a merge request is opened in. */
export interface MergeRequestTarget {
  /** GitLab's project id or its `group/sub/project` path. */
  id: number | string;
  /** `group/sub/project`, for messages. */
  path: string;
}

/** The fields of a merge request the adapter reads. */
interface MergeRequestData {
  iid: number;
  web_url: string;
  title: string;
  description: string | null;
  source_branch: string;
  target_branch: string;
  source_project_id: number;
  target_project_id: number;
  draft?: boolean;
  work_in_progress?: boolean;
  assignees?: Array<{ id: number }> | null;
  reviewers?: Array<{ id: number }> | null;
}

/** GitLab's draft markers at the start of a title (`Draft:`, `[Draft]`, `(Draft)`). */
const DRAFT_PREFIX = /^\s*(?:\[draft\]|\(draft\)|draft:)\s*/i;

/**
 * Opens a merge request from `input.head`, or updates the open one for that source branch
 * (title, description, target, draft), with labels, reviewers and assignees added. GitLab marks
 * drafts by a `Draft:` title prefix. Running it twice leaves one merge request.
 */
export async function openMergeRequest(client: GitLabClient, target: MergeRequestTarget, input: ChangeRequestInput, signal?: AbortSignal): Promise<ChangeRequest> {
  checkInput(input);
  const [reviewerIds, assigneeIds] = await Promise.all([userIds(client, unique(input.reviewers), "reviewer", signal), userIds(client, unique(input.assignees), "assignee", signal)]);
  const labels = unique(input.labels).join(",");
  let mergeRequest = await findOpenMergeRequest(client, target, input.head, signal);
  let created = false;
  if (!mergeRequest) {
    await requireBranch(client, target, input.base, signal);
    try {
      mergeRequest = (await client.MergeRequests.create(target.id, input.head, input.base, draftTitle(input.title, input.draft ?? false), {
        description: input.body,
        ...(labels ? { labels } : {}),
        ...(assigneeIds.length > 0 ? { assigneeIds } : {}),
        ...(reviewerIds.length > 0 ? { reviewerIds } : {}),
      })) as unknown as MergeRequestData;
      created = true;
    } catch (error) {
      // Another run for the same branch opened it between our look-up and the create: GitLab answers 409.
      if (!(error instanceof GitLabResponseError && error.status === 409)) throw mergeRequestError(error, input, "open a merge request", signal);
      mergeRequest = await findOpenMergeRequest(client, target, input.head, signal);
      if (!mergeRequest) throw mergeRequestError(error, input, "open a merge request", signal);
    }
  }
  if (!created) {
    const draft = input.draft ?? isDraft(mergeRequest);
    const keep = (list: Array<{ id: number }> | null | undefined, added: number[]) => [...new Set([...(list ?? []).map((user) => user.id), ...added])];
    try {
      mergeRequest = (await client.MergeRequests.edit(target.id, mergeRequest.iid, {
        title: draftTitle(input.title, draft),
        description: input.body,
        targetBranch: input.base,
        ...(labels ? { addLabels: labels } : {}),
        // GitLab replaces these lists on an edit; the adapter adds, as on GitHub.
        ...(assigneeIds.length > 0 ? { assigneeIds: keep(mergeRequest.assignees, assigneeIds) } : {}),
        ...(reviewerIds.length > 0 ? { reviewerIds: keep(mergeRequest.reviewers, reviewerIds) } : {}),
      })) as unknown as MergeRequestData;
    } catch (error) {
      throw mergeRequestError(error, input, `update merge request !${mergeRequest.iid}`, signal);
    }
  }
  return {
    number: mergeRequest.iid,
    url: mergeRequest.web_url,
    head: mergeRequest.source_branch,
    base: mergeRequest.target_branch,
    title: mergeRequest.title.replace(DRAFT_PREFIX, ""),
    body: mergeRequest.description ?? "",
    draft: isDraft(mergeRequest),
    created,
  };
}

/** The open merge request from `branch` of this project into it (not from a fork), if there is one. */
export async function findOpenMergeRequest(client: GitLabClient, target: MergeRequestTarget, branch: string, signal?: AbortSignal): Promise<MergeRequestData | undefined> {
  try {
    const list = (await client.MergeRequests.all({ projectId: target.id, state: "opened", sourceBranch: branch, perPage: 100, maxPages: 1 })) as unknown as MergeRequestData[];
    return list.find((mergeRequest) => mergeRequest.source_branch === branch && mergeRequest.source_project_id === mergeRequest.target_project_id);
  } catch (error) {
    throw toGitLabError(error, { action: `list merge requests of ${target.path}`, notFound: ErrorCode.REPO_NOT_FOUND, otherwise: ErrorCode.PULL_REQUEST_FAILED, signal });
  }
}

async function requireBranch(client: GitLabClient, target: MergeRequestTarget, branch: string, signal?: AbortSignal): Promise<void> {
  try {
    await client.Branches.show(target.id, branch);
  } catch (error) {
    if (error instanceof GitLabResponseError && error.status === 404) {
      throw agentError(ErrorCode.BASE_BRANCH_NOT_FOUND, `Could not open a merge request: the target branch ${JSON.stringify(branch)} does not exist in ${target.path} on GitLab.`, { cause: error });
    }
    throw toGitLabError(error, { action: `read branch ${branch} of ${target.path}`, signal });
  }
}

/** GitLab takes user ids for reviewers and assignees; the adapter is given usernames. */
async function userIds(client: GitLabClient, usernames: string[], role: string, signal?: AbortSignal): Promise<number[]> {
  const ids: number[] = [];
  for (const username of usernames) {
    let users: Array<{ id: number; username: string }>;
    try {
      users = (await client.Users.all({ username: username.replace(/^@/, ""), perPage: 20, maxPages: 1 })) as unknown as typeof users;
    } catch (error) {
      throw toGitLabError(error, { action: `look up the ${role} ${username}`, otherwise: ErrorCode.PULL_REQUEST_FAILED, signal });
    }
    const user = users.find((candidate) => candidate.username.toLowerCase() === username.replace(/^@/, "").toLowerCase());
    if (!user) throw agentError(ErrorCode.PULL_REQUEST_FAILED, `Could not open the merge request: GitLab has no user ${JSON.stringify(username)} to add as ${role}.`, { details: { [role]: username } });
    ids.push(user.id);
  }
  return ids;
}

function mergeRequestError(error: unknown, input: ChangeRequestInput, action: string, signal?: AbortSignal) {
  if (error instanceof GitLabResponseError && (error.status === 400 || error.status === 422)) {
    const message = gitLabMessage(error.body);
    if (/target[_ ]branch/i.test(message)) {
      return agentError(ErrorCode.BASE_BRANCH_NOT_FOUND, `Could not ${action}: GitLab refused the target branch ${JSON.stringify(input.base)}: ${message}`, { cause: error });
    }
    if (/source[_ ]branch/i.test(message)) {
      return agentError(ErrorCode.PULL_REQUEST_FAILED, `Could not ${action}: GitLab refused the source branch ${JSON.stringify(input.head)} (${message}); push it first.`, { cause: error });
    }
  }
  return toGitLabError(error, { action, otherwise: ErrorCode.PULL_REQUEST_FAILED, notFound: ErrorCode.REPO_NOT_FOUND, signal });
}

function draftTitle(title: string, draft: boolean): string {
  const plain = title.replace(DRAFT_PREFIX, "");
  return draft ? `Draft: ${plain}` : plain;
}

function isDraft(mergeRequest: MergeRequestData): boolean {
  return mergeRequest.draft ?? mergeRequest.work_in_progress ?? DRAFT_PREFIX.test(mergeRequest.title);
}

/** The shared checks, and GitLab's own: no comma in a label. */
function checkInput(input: ChangeRequestInput): void {
  checkChangeRequestInput(input);
  // GitLab takes labels as one comma-separated string.
  if (input.labels?.some((label) => label.includes(","))) throw agentError(ErrorCode.INVALID_OPTIONS, "openChangeRequest: a GitLab label cannot contain a comma.");
}

function unique(list: readonly string[] | undefined): string[] {
  return [...new Set((list ?? []).map((entry) => entry.trim()))];
}
