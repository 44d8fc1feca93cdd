import { readFileAt, revParse } from "./git-plumbing.js";
import { basicError, DOCUMENTATION_URL, GitHubHttpError, notFound, validationFailed } from "./github-http-error.js";
import { authorAssociation, simpleUserJson, type JsonUrls } from "./github-json.js";
import { accessTo, atLeast, knownLogins, page, type RouteKit, type RouteRequest } from "./github-rest-api.js";
import type { ServerReaction, ServerRepository, ServerReview, ServerReviewComment } from "./github-server-model.js";

const REACTIONS: ReadonlyArray<ServerReaction["content"]> = ["+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"];
const REVIEW_EVENTS: Record<string, ServerReview["state"]> = { APPROVE: "APPROVED", REQUEST_CHANGES: "CHANGES_REQUESTED", COMMENT: "COMMENTED" };

/**
 * What a bot on pull requests and issues talks through: reactions (on issues, issue comments
 * and review comments), review comments and their threads' replies, reviews, and a user's
 * permission on a repository, with GitHub's status codes and bodies.
 */
export function addConversationRoutes(kit: RouteKit): void {
  const { state, add, repositoryFor, issueFor, callerLogin } = kit;
  const urls = state.urls;

  const addReaction = async (request: RouteRequest, repository: ServerRepository, subject: ServerReaction["subject"]) => {
    const user = callerLogin(request);
    const content = request.body.content;
    if (typeof content !== "string" || !REACTIONS.includes(content as ServerReaction["content"])) {
      throw validationFailed([{ resource: "Reaction", field: "content", code: "invalid" }]);
    }
    const existing = repository.reactions.find((reaction) => reaction.subject.kind === subject.kind && reaction.subject.id === subject.id && reaction.user === user && reaction.content === content);
    // GitHub answers 200 with the reaction the user already left, 201 for a new one.
    if (existing) return { status: 200, body: reactionJson(urls, existing) };
    const reaction: ServerReaction = { id: state.nextId(), subject, content: content as ServerReaction["content"], user, createdAt: state.now() };
    repository.reactions.push(reaction);
    return { status: 201, body: reactionJson(urls, reaction) };
  };
  const listReactions = (request: RouteRequest, repository: ServerRepository, subject: ServerReaction["subject"]) => {
    const content = request.query.get("content");
    const reactions = repository.reactions.filter((reaction) => reaction.subject.kind === subject.kind && reaction.subject.id === subject.id && (!content || reaction.content === content));
    return { status: 200, body: page(request.query, reactions).map((reaction) => reactionJson(urls, reaction)) };
  };
  const issueCommentFor = (repository: ServerRepository, id: string | undefined) => {
    const comment = repository.comments.get(Number(id));
    if (!comment) throw notFound();
    return comment;
  };
  const reviewCommentFor = (repository: ServerRepository, id: string | undefined, pullNumber?: number) => {
    const comment = repository.reviewComments.get(Number(id));
    if (!comment || (pullNumber !== undefined && comment.pullNumber !== pullNumber)) throw notFound();
    return comment;
  };

  add("POST", "/repos/{owner}/{repo}/issues/{issue_number}/reactions", async (request) => {
    const repository = repositoryFor(request);
    return addReaction(request, repository, { kind: "issue", id: issueFor(repository, request.params.issue_number, false).number });
  });
  add("GET", "/repos/{owner}/{repo}/issues/{issue_number}/reactions", async (request) => {
    const repository = repositoryFor(request);
    return listReactions(request, repository, { kind: "issue", id: issueFor(repository, request.params.issue_number, false).number });
  });
  add("POST", "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions", async (request) => {
    const repository = repositoryFor(request);
    return addReaction(request, repository, { kind: "issue-comment", id: issueCommentFor(repository, request.params.comment_id).id });
  });
  add("GET", "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions", async (request) => {
    const repository = repositoryFor(request);
    return listReactions(request, repository, { kind: "issue-comment", id: issueCommentFor(repository, request.params.comment_id).id });
  });
  add("POST", "/repos/{owner}/{repo}/pulls/comments/{comment_id}/reactions", async (request) => {
    const repository = repositoryFor(request);
    return addReaction(request, repository, { kind: "review-comment", id: reviewCommentFor(repository, request.params.comment_id).id });
  });
  add("GET", "/repos/{owner}/{repo}/pulls/comments/{comment_id}/reactions", async (request) => {
    const repository = repositoryFor(request);
    return listReactions(request, repository, { kind: "review-comment", id: reviewCommentFor(repository, request.params.comment_id).id });
  });

  /** A new comment on a line of the pull request's head, checked as GitHub checks it. */
  const newLineComment = async (repository: ServerRepository, pullNumber: number, reviewId: number, user: string, input: Record<string, unknown>, commitId: string): Promise<ServerReviewComment> => {
    const { path, body } = input;
    const line = input.line ?? input.position;
    if (typeof body !== "string" || body.trim() === "") throw validationFailed([{ resource: "PullRequestReviewComment", field: "body", code: "missing_field" }]);
    if (typeof path !== "string" || path === "") throw validationFailed([{ resource: "PullRequestReviewComment", field: "path", code: "missing_field" }]);
    const text = await readFileAt(repository.gitDir, commitId, path);
    const lines = text === undefined ? [] : text.replace(/\n$/, "").split("\n");
    if (typeof line !== "number" || !Number.isInteger(line) || line < 1 || line > lines.length) {
      throw validationFailed([{ resource: "PullRequestReviewComment", code: "custom", field: "pull_request_review_thread.line", message: "could not be resolved" }]);
    }
    const now = state.now();
    return {
      id: state.nextId(),
      pullNumber,
      reviewId,
      path,
      line,
      side: input.side === "LEFT" ? "LEFT" : "RIGHT",
      commitId,
      diffHunk: `@@ -${line},1 +${line},1 @@\n ${lines[line - 1]}`,
      body,
      user,
      createdAt: now,
      updatedAt: now,
    };
  };
  const headOf = async (repository: ServerRepository, head: string) => (await revParse(repository.gitDir, `refs/heads/${head}`)) ?? "0".repeat(40);
  const submittedReview = (repository: ServerRepository, pullNumber: number, user: string, commitId: string, state_: ServerReview["state"], body: string): ServerReview => {
    const review: ServerReview = { id: state.nextId(), pullNumber, user, body, state: state_, commitId, submittedAt: state_ === "PENDING" ? null : state.now() };
    repository.reviews.set(review.id, review);
    return review;
  };

  add("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/comments", async (request) => {
    const repository = repositoryFor(request);
    const pull = issueFor(repository, request.params.pull_number, true);
    const comments = [...repository.reviewComments.values()].filter((comment) => comment.pullNumber === pull.number && repository.reviews.get(comment.reviewId)?.state !== "PENDING");
    return { status: 200, body: page(request.query, comments).map((comment) => reviewCommentJson(urls, repository, comment)) };
  });

  add("POST", "/repos/{owner}/{repo}/pulls/{pull_number}/comments", async (request) => {
    const repository = repositoryFor(request);
    if (repository.archived) throw basicError(403, "Repository was archived so is read-only.");
    const pull = issueFor(repository, request.params.pull_number, true);
    const user = callerLogin(request);
    const inReplyTo = request.body.in_reply_to;
    if (typeof inReplyTo === "number") return reply(repository, pull.number, user, inReplyTo, request.body.body);
    const head = await headOf(repository, pull.pull!.head);
    const commitId = typeof request.body.commit_id === "string" ? request.body.commit_id : head;
    // A single comment is a review of its own, submitted at once.
    const review = submittedReview(repository, pull.number, user, commitId, "COMMENTED", "");
    const comment = await newLineComment(repository, pull.number, review.id, user, request.body, commitId).catch((error: unknown) => {
      repository.reviews.delete(review.id);
      throw error;
    });
    repository.reviewComments.set(comment.id, comment);
    return { status: 201, body: reviewCommentJson(urls, repository, comment) };
  });

  const reply = (repository: ServerRepository, pullNumber: number, user: string, toId: number, body: unknown) => {
    const to = reviewCommentFor(repository, String(toId), pullNumber);
    if (typeof body !== "string" || body.trim() === "") throw validationFailed([{ resource: "PullRequestReviewComment", field: "body", code: "missing_field" }]);
    const review = submittedReview(repository, pullNumber, user, to.commitId, "COMMENTED", "");
    const now = state.now();
    const comment: ServerReviewComment = { ...to, id: state.nextId(), reviewId: review.id, inReplyTo: to.inReplyTo ?? to.id, body, user, createdAt: now, updatedAt: now };
    repository.reviewComments.set(comment.id, comment);
    return { status: 201, body: reviewCommentJson(urls, repository, comment) };
  };

  add("POST", "/repos/{owner}/{repo}/pulls/{pull_number}/comments/{comment_id}/replies", async (request) => {
    const repository = repositoryFor(request);
    if (repository.archived) throw basicError(403, "Repository was archived so is read-only.");
    const pull = issueFor(repository, request.params.pull_number, true);
    return reply(repository, pull.number, callerLogin(request), Number(request.params.comment_id), request.body.body);
  });

  add("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews", async (request) => {
    const repository = repositoryFor(request);
    const pull = issueFor(repository, request.params.pull_number, true);
    const reviews = [...repository.reviews.values()].filter((review) => review.pullNumber === pull.number);
    return { status: 200, body: page(request.query, reviews).map((review) => reviewJson(urls, repository, review)) };
  });

  add("POST", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews", async (request) => {
    const repository = repositoryFor(request);
    if (repository.archived) throw basicError(403, "Repository was archived so is read-only.");
    const pull = issueFor(repository, request.params.pull_number, true);
    const user = callerLogin(request);
    const { event, body } = request.body;
    const wanted = event === undefined ? "PENDING" : REVIEW_EVENTS[String(event)];
    if (!wanted) throw unprocessable(`Invalid event: ${String(event)}`);
    const own = user.toLowerCase() === pull.user.toLowerCase();
    if (own && wanted === "APPROVED") throw unprocessable("Can not approve your own pull request");
    if (own && wanted === "CHANGES_REQUESTED") throw unprocessable("Can not request changes on your own pull request");
    const inputs = request.body.comments ?? [];
    if (!Array.isArray(inputs) || inputs.some((input) => typeof input !== "object" || input === null)) throw unprocessable("comments must be a list of objects");
    const text = typeof body === "string" ? body : "";
    if ((wanted === "CHANGES_REQUESTED" || wanted === "COMMENTED") && text.trim() === "" && inputs.length === 0) throw unprocessable(`Review body is required when event is ${String(event)}`);
    const commitId = typeof request.body.commit_id === "string" ? request.body.commit_id : await headOf(repository, pull.pull!.head);
    // Every comment is checked before anything is kept, so that a bad one leaves no half review.
    const comments: ServerReviewComment[] = [];
    const reviewId = state.nextId();
    for (const input of inputs as Array<Record<string, unknown>>) comments.push(await newLineComment(repository, pull.number, reviewId, user, input, commitId));
    const review: ServerReview = { id: reviewId, pullNumber: pull.number, user, body: text, state: wanted, commitId, submittedAt: wanted === "PENDING" ? null : state.now() };
    repository.reviews.set(review.id, review);
    for (const comment of comments) repository.reviewComments.set(comment.id, comment);
    return { status: 200, body: reviewJson(urls, repository, review) };
  });

  add("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews/{review_id}", async (request) => {
    const repository = repositoryFor(request);
    const pull = issueFor(repository, request.params.pull_number, true);
    const review = repository.reviews.get(Number(request.params.review_id));
    if (!review || review.pullNumber !== pull.number) throw notFound();
    return { status: 200, body: reviewJson(urls, repository, review) };
  });

  add("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews/{review_id}/comments", async (request) => {
    const repository = repositoryFor(request);
    const pull = issueFor(repository, request.params.pull_number, true);
    const review = repository.reviews.get(Number(request.params.review_id));
    if (!review || review.pullNumber !== pull.number) throw notFound();
    const comments = [...repository.reviewComments.values()].filter((comment) => comment.reviewId === review.id);
    return { status: 200, body: page(request.query, comments).map((comment) => reviewCommentJson(urls, repository, comment)) };
  });

  add("GET", "/repos/{owner}/{repo}/collaborators/{username}/permission", async (request) => {
    const repository = repositoryFor(request);
    // GitHub lets only callers with push access read others' permissions.
    if (!atLeast(accessTo(request.caller, repository), "push")) throw basicError(403, "Must have push access to view collaborator permission.");
    const login = knownLogins(state).get(request.params.username!.toLowerCase());
    if (!login) throw notFound();
    const permission = permissionOf(kit, repository, login);
    const user = { ...simpleUserJson(urls, login), permissions: { admin: permission === "admin", maintain: permission === "admin", push: permission !== "read" && permission !== "none", triage: permission !== "read" && permission !== "none", pull: permission !== "none" }, role_name: permission };
    return { status: 200, body: { permission, role_name: permission, user } };
  });
}

/** A login's permission on a repository, as GitHub names it: `admin`, `write`, `read` or `none`. */
function permissionOf(kit: RouteKit, repository: ServerRepository, login: string): "admin" | "write" | "read" | "none" {
  const lower = login.toLowerCase();
  if (lower === repository.owner.toLowerCase()) return "admin";
  const key = `${repository.owner}/${repository.name}`.toLowerCase();
  let best: "admin" | "write" | "read" | "none" = repository.collaborators.has(lower) ? "write" : repository.private ? "none" : "read";
  for (const token of kit.state.tokens.values()) {
    if (token.login.toLowerCase() !== lower || token.revoked || !(token.repositories === "all" || token.repositories.has(key))) continue;
    const level = accessTo({ kind: "token", record: token }, repository);
    if (level === "admin") best = "admin";
    else if (level === "push" && best !== "admin") best = "write";
    else if (level === "pull" && best === "none") best = "read";
  }
  return best;
}

/** 422 with GitHub's `validation-error-simple` body (errors as strings), as reviews answer. */
function unprocessable(message: string): GitHubHttpError {
  return new GitHubHttpError(422, { message: "Unprocessable Entity", errors: [message], documentation_url: DOCUMENTATION_URL, status: "422" });
}

function nodeId(kind: string, id: number): string {
  return Buffer.from(`${kind}:${id}`).toString("base64url");
}

/** GitHub's `reaction`. */
function reactionJson(urls: JsonUrls, reaction: ServerReaction) {
  return { id: reaction.id, node_id: nodeId("Reaction", reaction.id), user: simpleUserJson(urls, reaction.user), content: reaction.content, created_at: reaction.createdAt };
}

/** GitHub's `pull-request-review-comment` (also a valid `review-comment`). */
function reviewCommentJson(urls: JsonUrls, repository: ServerRepository, comment: ServerReviewComment) {
  const fullName = `${repository.owner}/${repository.name}`;
  const api = `${urls.api}/repos/${fullName}`;
  const html = `${urls.web}/${fullName}/pull/${comment.pullNumber}#discussion_r${comment.id}`;
  const counts = Object.fromEntries(REACTIONS.map((content) => [content, repository.reactions.filter((reaction) => reaction.subject.kind === "review-comment" && reaction.subject.id === comment.id && reaction.content === content).length]));
  return {
    url: `${api}/pulls/comments/${comment.id}`,
    pull_request_review_id: comment.reviewId,
    id: comment.id,
    node_id: nodeId("PullRequestReviewComment", comment.id),
    diff_hunk: comment.diffHunk,
    path: comment.path,
    position: comment.line,
    original_position: comment.line,
    commit_id: comment.commitId,
    original_commit_id: comment.commitId,
    ...(comment.inReplyTo !== undefined ? { in_reply_to_id: comment.inReplyTo } : {}),
    user: simpleUserJson(urls, comment.user),
    body: comment.body,
    created_at: comment.createdAt,
    updated_at: comment.updatedAt,
    html_url: html,
    pull_request_url: `${api}/pulls/${comment.pullNumber}`,
    author_association: authorAssociation(repository, comment.user),
    _links: { self: { href: `${api}/pulls/comments/${comment.id}` }, html: { href: html }, pull_request: { href: `${api}/pulls/${comment.pullNumber}` } },
    start_line: null,
    original_start_line: null,
    start_side: null,
    line: comment.line,
    original_line: comment.line,
    side: comment.side,
    subject_type: "line",
    reactions: { url: `${api}/pulls/comments/${comment.id}/reactions`, total_count: Object.values(counts).reduce((sum, count) => sum + count, 0), ...counts },
  };
}

/** GitHub's `pull-request-review`. */
function reviewJson(urls: JsonUrls, repository: ServerRepository, review: ServerReview) {
  const fullName = `${repository.owner}/${repository.name}`;
  const html = `${urls.web}/${fullName}/pull/${review.pullNumber}#pullrequestreview-${review.id}`;
  const pullUrl = `${urls.api}/repos/${fullName}/pulls/${review.pullNumber}`;
  return {
    id: review.id,
    node_id: nodeId("PullRequestReview", review.id),
    user: simpleUserJson(urls, review.user),
    body: review.body,
    state: review.state,
    html_url: html,
    pull_request_url: pullUrl,
    _links: { html: { href: html }, pull_request: { href: pullUrl } },
    ...(review.submittedAt ? { submitted_at: review.submittedAt } : {}),
    commit_id: review.commitId,
    author_association: authorAssociation(repository, review.user),
  };
}
