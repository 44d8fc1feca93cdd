import { accessTo, type Caller, type GitHubState } from "./github-rest-api.js";
import type { ServerReaction } from "./github-server-model.js";

/**
 * The two GraphQL mutations that change a pull request's draft state (the REST API cannot):
 * `markPullRequestReadyForReview` and `convertPullRequestToDraft`, with the pull request's
 * node id as `$id` (or inline as `pullRequestId: "..."`). Answers as GitHub does: HTTP 200 with
 * `data` or `errors`.
 */
export function runDraftMutation(state: GitHubState, caller: Caller, query: string, variables: Record<string, unknown>): unknown {
  const mutation = /\b(markPullRequestReadyForReview|convertPullRequestToDraft)\b/.exec(query)?.[1];
  if (!mutation) return { errors: [{ message: "This local server answers only markPullRequestReadyForReview, convertPullRequestToDraft and addReaction." }] };
  const inline = /pullRequestId:\s*"([^"]+)"/.exec(query)?.[1];
  const nodeId = inline ?? (typeof variables.id === "string" ? variables.id : typeof variables.pullRequestId === "string" ? variables.pullRequestId : undefined);
  const notFound = { data: { [mutation]: null }, errors: [{ type: "NOT_FOUND", path: [mutation], message: `Could not resolve to a node with the global id of '${nodeId ?? ""}'.` }] };
  if (!nodeId) return notFound;
  const issueId = Number(/^PullRequest:(\d+)$/.exec(Buffer.from(nodeId, "base64url").toString("utf8"))?.[1]);
  for (const repository of state.repositories.values()) {
    for (const issue of repository.issues.values()) {
      if (issue.id !== issueId || !issue.pull) continue;
      const access = accessTo(caller, repository);
      if (access === "none") return notFound;
      if (access === "pull" && !(caller.kind === "token" && caller.record.login === issue.user)) {
        return { data: { [mutation]: null }, errors: [{ type: "FORBIDDEN", path: [mutation], message: `${caller.kind === "token" ? caller.record.login : "Anonymous"} does not have permission to update this pull request.` }] };
      }
      if (repository.archived) return { data: { [mutation]: null }, errors: [{ type: "FORBIDDEN", path: [mutation], message: "Repository was archived so is read-only." }] };
      issue.pull.draft = mutation === "convertPullRequestToDraft";
      issue.updatedAt = state.now();
      // GraphQL answers only the fields asked for.
      const selection = /pullRequest\s*\{([^}]*)\}/.exec(query)?.[1] ?? "";
      const fields: Record<string, unknown> = { id: nodeId, number: issue.number, isDraft: issue.pull.draft, url: `${state.urls.web}/${repository.owner}/${repository.name}/pull/${issue.number}` };
      const pullRequest = Object.fromEntries(Object.entries(fields).filter(([name]) => new RegExp(`\\b${name}\\b`).test(selection)));
      return { data: { [mutation]: { pullRequest } } };
    }
  }
  return notFound;
}

const GRAPHQL_REACTIONS: Record<string, ServerReaction["content"]> = {
  THUMBS_UP: "+1",
  THUMBS_DOWN: "-1",
  LAUGH: "laugh",
  HOORAY: "hooray",
  CONFUSED: "confused",
  HEART: "heart",
  ROCKET: "rocket",
  EYES: "eyes",
};
const REACTABLE_NODES: Record<string, ServerReaction["subject"]["kind"]> = { PullRequestReview: "review", IssueComment: "issue-comment", PullRequestReviewComment: "review-comment" };

/**
 * The `addReaction` mutation (`input: { subjectId, content }`), for what REST cannot react to:
 * a pull request review. Also takes issue comments and review comments by node id.
 */
export function runAddReaction(state: GitHubState, caller: Caller, query: string, variables: Record<string, unknown>): unknown {
  const subjectId = /subjectId:\s*"([^"]+)"/.exec(query)?.[1] ?? (typeof variables.subjectId === "string" ? variables.subjectId : typeof variables.id === "string" ? variables.id : undefined);
  const contentName = /content:\s*([A-Z_]+)/.exec(query)?.[1] ?? (typeof variables.content === "string" ? variables.content : undefined);
  const content = contentName ? GRAPHQL_REACTIONS[contentName] : undefined;
  if (!content) return { errors: [{ type: "INVALID_ENUM", path: ["addReaction"], message: `Unknown reaction content: ${contentName ?? ""}` }] };
  const notFound = { data: { addReaction: null }, errors: [{ type: "NOT_FOUND", path: ["addReaction"], message: `Could not resolve to a node with the global id of '${subjectId ?? ""}'.` }] };
  const decoded = /^(\w+):(\d+)$/.exec(Buffer.from(subjectId ?? "", "base64url").toString("utf8"));
  const kind = decoded ? REACTABLE_NODES[decoded[1]!] : undefined;
  if (!decoded || !kind || caller.kind !== "token") return notFound;
  const id = Number(decoded[2]);
  for (const repository of state.repositories.values()) {
    const exists = kind === "review" ? repository.reviews.has(id) : kind === "review-comment" ? repository.reviewComments.has(id) : repository.comments.has(id);
    if (!exists) continue;
    if (accessTo(caller, repository) === "none") return notFound;
    const user = caller.record.login;
    if (!repository.reactions.some((reaction) => reaction.subject.kind === kind && reaction.subject.id === id && reaction.user === user && reaction.content === content)) {
      repository.reactions.push({ id: state.nextId(), subject: { kind, id }, content, user, createdAt: state.now() });
    }
    return { data: { addReaction: { reaction: { content: contentName }, subject: { id: subjectId } } } };
  }
  return notFound;
}
