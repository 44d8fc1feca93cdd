import type { EmitterWebhookEvent } from "@octokit/webhooks";

/** The repository and issue a task is about. */
export interface IssueTarget {
  owner: string;
  repo: string;
  /** The URL the agent clones (the repository's `clone_url`). */
  cloneUrl: string;
  issueNumber: number;
}

/** The open pull request a follow-up task continues: its head branch gets the agent's commit. */
export interface PullRequestFollowUp {
  number: number;
  /** The pull request's head branch, in the same repository. */
  head: string;
  /** The branch it merges into. */
  base: string;
}

/** What the bot picked up, to mark with a 👀 reaction: the issue, a comment, a review comment or a review. */
export type PickedUp =
  | { kind: "issue"; number: number }
  | { kind: "issue-comment"; id: number }
  | { kind: "review-comment"; id: number }
  | { kind: "review"; nodeId: string };

/** What a trigger carries besides its task: what to react to, review threads to answer, a key that makes a request run once. */
export interface TriggerExtras {
  pickedUp?: PickedUp;
  /** Review comments whose threads get a reply with the outcome. */
  threads?: number[];
  /** The request's own key (a review's), so that the other deliveries about it start nothing. */
  requestKey?: string;
  /** A login whose write access the bot checks before running (a sender GitHub gives no association for). */
  checkWriteAccessOf?: string;
}

/**
 * What a webhook delivery asks for: a task on an issue (or a follow-up on a pull request's
 * branch); a request on a pull request, to check against the pull request itself before it
 * runs; a review on the bot's own pull request, to read with its comments first; a refusal
 * (answered with a comment when `reply` is set); or nothing (and why).
 */
export type TaskTrigger =
  | ({ kind: "task"; target: IssueTarget; task: string; requestedBy: string; pullRequest?: PullRequestFollowUp } & TriggerExtras)
  | ({ kind: "pull-request"; target: IssueTarget; request: string; requestedBy: string } & TriggerExtras)
  | ({ kind: "review"; target: IssueTarget; reviewId: number; requestedBy: string } & TriggerExtras)
  | { kind: "refused"; target: IssueTarget; reason: string; reply?: string }
  | { kind: "ignored"; reason: string };

/** What the bot reads of a pull request (a subset of GitHub's `pulls.get` answer). */
export interface PullRequestFacts {
  number: number;
  state: string;
  merged?: boolean | null;
  merged_at?: string | null;
  title: string;
  body: string | null;
  head: { ref: string; repo: { full_name: string } | null };
  base: { ref: string; repo: { full_name: string } };
}

/** Which deliveries start a task. */
export interface TriggerSettings {
  /** The label that starts a task on an issue. */
  label: string;
  /** The comment prefix that starts a task, e.g. `/agent`. */
  command: string;
  /** Comment authors' associations allowed to start a task (anyone can comment on a public repo). */
  allowedAssociations: readonly string[];
  /** The bot's own login (`user`, or `slug[bot]` for a GitHub App): its comments are never instructions; assigning it or mentioning it starts a task. */
  login: string;
  /** Bot accounts allowed to start tasks whatever their association, e.g. `dependabot[bot]`, `renovate[bot]`. */
  allowedBots: readonly string[];
  /** The user whose assignment to an issue starts a task. Default: {@link login} (GitHub does not let an App's bot be assigned: give an App a user here). */
  assignee?: string;
}

type Author = { login: string; type?: string } | null | undefined;

/**
 * Whether an author may ask for a task: never the bot itself (its own comments quote tasks),
 * always a bot the owner listed, no other bot, and people only with a trusted association.
 */
function authorCheck(author: Author, association: string, viaApp: boolean, target: IssueTarget, settings: TriggerSettings): Extract<TaskTrigger, { kind: "ignored" | "refused" }> | undefined {
  const login = author?.login ?? "";
  if (login.toLowerCase() === settings.login.toLowerCase()) return { kind: "ignored", reason: "the bot's own comments are not instructions" };
  if (settings.allowedBots.some((bot) => bot.toLowerCase() === login.toLowerCase())) return undefined;
  if (author?.type === "Bot" || viaApp || login.endsWith("[bot]")) return { kind: "ignored", reason: `comments by bots (${login || "unknown"}) do not start tasks unless allowedBots lists them` };
  if (!settings.allowedAssociations.includes(association)) {
    return { kind: "refused", target, reason: `${login || "the author"} (${association}) may not start tasks: that takes write access to the repository` };
  }
  return undefined;
}

/** The bot's mention in a text (`@login`, or `@slug` for an App's `slug[bot]`), or undefined. */
function mentionIn(text: string, login: string): RegExpExecArray | null {
  const name = login.replace(/\[bot\]$/i, "");
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`(^|[^\\w@/-])@${escaped}(?:\\[bot\\])?(?![\\w-])`, "i").exec(text);
}

/** `issues.assigned`: assigning the bot's user (or the configured assignee) to an issue starts the issue's task (the sender's write access is checked first). */
export function triggerFromAssignment(event: EmitterWebhookEvent<"issues.assigned">, settings: TriggerSettings): TaskTrigger {
  const { issue, assignee, repository, sender } = event.payload;
  const wanted = settings.assignee ?? settings.login;
  if (!assignee || assignee.login.toLowerCase() !== wanted.toLowerCase()) {
    return { kind: "ignored", reason: `the issue was assigned to ${assignee?.login ?? "nobody"}, not ${wanted}` };
  }
  if (issue.pull_request) return { kind: "ignored", reason: "assigning the bot to a pull request does not start a task; ask in a comment or a review" };
  const target = targetOf(repository, issue.number);
  const refused = authorCheck(sender, "NONE", false, target, settings);
  // Assignment has no association to read: anyone past the bot checks is asked for write access.
  if (refused && refused.kind === "ignored") return refused;
  return {
    kind: "task",
    target,
    task: issueTask(issue.number, issue.title, issue.body),
    requestedBy: sender.login,
    pickedUp: { kind: "issue", number: issue.number },
    ...(refused ? { checkWriteAccessOf: sender.login } : {}),
  };
}

/** `issues.labeled`: the configured label on an issue (not a pull request) starts a task with the issue's text. */
export function triggerFromLabel(event: EmitterWebhookEvent<"issues.labeled">, settings: TriggerSettings): TaskTrigger {
  const { issue, label, repository, sender } = event.payload;
  if (!label || label.name.toLowerCase() !== settings.label.toLowerCase()) {
    return { kind: "ignored", reason: `label "${label?.name ?? ""}" is not "${settings.label}"` };
  }
  if (issue.pull_request) return { kind: "ignored", reason: "labels on pull requests do not start tasks" };
  return {
    kind: "task",
    target: targetOf(repository, issue.number),
    task: issueTask(issue.number, issue.title, issue.body),
    requestedBy: sender.login,
    pickedUp: { kind: "issue", number: issue.number },
  };
}

/**
 * `issue_comment.created`: a comment `/agent <task>` or one that mentions the bot (`@login
 * <task>`), by a trusted author, starts that task (or the issue's, without text). On a pull
 * request it asks for a follow-up on the pull request's branch, which
 * {@link triggerFromPullRequest} checks once the pull request is read; a request without text
 * there is refused with a usage reply, as a pull request has no issue text to act on.
 */
export function triggerFromComment(event: EmitterWebhookEvent<"issue_comment.created">, settings: TriggerSettings): TaskTrigger {
  const { comment, issue, repository } = event.payload;
  const body = comment.body.trim();
  const command = settings.command;
  let text: string;
  if (body === command || body.startsWith(`${command} `) || body.startsWith(`${command}\n`)) {
    text = body.slice(command.length).trim();
  } else {
    const mention = mentionIn(body, settings.login);
    if (!mention) return { kind: "ignored", reason: `the comment does not start with ${command} or mention @${settings.login}` };
    text = `${`${body.slice(0, mention.index)}${mention[1]}`.trimEnd()} ${body.slice(mention.index + mention[0].length).trimStart()}`.trim();
  }
  const target = targetOf(repository, issue.number);
  const refused = authorCheck(comment.user, comment.author_association, Boolean(comment.performed_via_github_app), target, settings);
  if (refused) return refused;
  const requestedBy = comment.user?.login ?? "someone";
  const pickedUp: PickedUp = { kind: "issue-comment", id: comment.id };
  if (issue.pull_request) {
    if (text === "") {
      return refusal(target, requestedBy, `${command} on a pull request needs a task`, `On a pull request, say what to change: \`${command} <task>\`. The agent commits it on this pull request's branch.`);
    }
    return { kind: "pull-request", target, request: text, requestedBy, pickedUp };
  }
  return {
    kind: "task",
    target,
    task: text === "" ? issueTask(issue.number, issue.title, issue.body) : `${text}\n\nThis is for issue #${issue.number}: ${issue.title}\n\n${issue.body ?? ""}`.trim(),
    requestedBy,
    pickedUp,
  };
}

/**
 * `pull_request_review_comment.created` on the bot's own pull request: the review the comment
 * belongs to is the request (a single comment and a reply in a thread are reviews of their own
 * on GitHub). The bot reads it with all its comments, so that this delivery and the review's
 * `submitted` one start one task between them.
 */
export function triggerFromReviewComment(event: EmitterWebhookEvent<"pull_request_review_comment.created">, settings: TriggerSettings): TaskTrigger {
  const { comment, pull_request: pullRequest, repository } = event.payload;
  const own = ownPullRequest(pullRequest, settings);
  if (own) return own;
  if (comment.pull_request_review_id == null) return { kind: "ignored", reason: "the review comment belongs to no review" };
  return reviewTrigger(targetOf(repository, pullRequest.number), comment.pull_request_review_id, comment.user, comment.author_association, { kind: "review-comment", id: comment.id }, settings);
}

/** `pull_request_review.submitted` on the bot's own pull request: the review's body and comments are the request; an approval with nothing to say asks for nothing. */
export function triggerFromReview(event: EmitterWebhookEvent<"pull_request_review.submitted">, settings: TriggerSettings): TaskTrigger {
  const { review, pull_request: pullRequest, repository } = event.payload;
  const own = ownPullRequest(pullRequest, settings);
  if (own) return own;
  const trigger = reviewTrigger(targetOf(repository, pullRequest.number), review.id, review.user, review.author_association, { kind: "review", nodeId: review.node_id }, settings);
  if (trigger.kind === "review" && review.state.toLowerCase() === "approved" && !review.body?.trim()) return { kind: "ignored", reason: "an approval without a comment asks for no change" };
  return trigger;
}

/** A review by a trusted author as a request, keyed by the review so that its deliveries start one task. */
function reviewTrigger(target: IssueTarget, reviewId: number, author: Author, association: string, pickedUp: PickedUp, settings: TriggerSettings): TaskTrigger {
  const refused = authorCheck(author, association, false, target, settings);
  if (refused) return refused;
  return { kind: "review", target, reviewId, requestedBy: author?.login ?? "someone", pickedUp, requestKey: reviewKey(target, reviewId) };
}

/** Review triggers act only on pull requests the bot opened. */
function ownPullRequest(pullRequest: { number: number; user: Author }, settings: TriggerSettings): Extract<TaskTrigger, { kind: "ignored" }> | undefined {
  if (pullRequest.user?.login.toLowerCase() === settings.login.toLowerCase()) return undefined;
  return { kind: "ignored", reason: `pull request #${pullRequest.number} is by ${pullRequest.user?.login ?? "someone else"}, not ${settings.login}: reviews start tasks only on the bot's own pull requests` };
}

function reviewKey(target: IssueTarget, reviewId: number): string {
  return `github-review:${target.owner}/${target.repo}#${target.issueNumber}/${reviewId}`.toLowerCase();
}

/**
 * A `/agent <task>` on a pull request, once the pull request is read: a follow-up task on its
 * head branch, with the pull request's title and body as context. Refused when the pull request
 * is closed or merged, or comes from a fork (the bot's token cannot push to another repository).
 */
export function triggerFromPullRequest(trigger: Extract<TaskTrigger, { kind: "pull-request" }>, pullRequest: PullRequestFacts): Extract<TaskTrigger, { kind: "task" | "refused" }> {
  const { target, requestedBy, kind: _kind, request: _request, ...extras } = trigger;
  const number = pullRequest.number;
  if (pullRequest.merged || pullRequest.merged_at) {
    return refusal(target, requestedBy, `pull request #${number} is merged`, "This pull request is already merged. Open a new issue or pull request for more changes.");
  }
  if (pullRequest.state !== "open") {
    return refusal(target, requestedBy, `pull request #${number} is closed`, "This pull request is closed. Reopen it to let the agent work on it.");
  }
  const headRepository = pullRequest.head.repo?.full_name;
  if (!headRepository || headRepository.toLowerCase() !== pullRequest.base.repo.full_name.toLowerCase()) {
    return refusal(
      target,
      requestedBy,
      `pull request #${number} comes from a fork`,
      `This pull request's branch is in ${headRepository ?? "a deleted fork"}, and the bot can only push to ${pullRequest.base.repo.full_name}.`,
    );
  }
  return {
    kind: "task",
    target,
    task: `${trigger.request}\n\nThis is a follow-up on pull request #${number} (branch ${pullRequest.head.ref} into ${pullRequest.base.ref}), whose changes are already in the working tree: ${pullRequest.title}\n\n${pullRequest.body ?? ""}`.trim(),
    requestedBy,
    pullRequest: { number, head: pullRequest.head.ref, base: pullRequest.base.ref },
    ...extras,
  };
}

function refusal(target: IssueTarget, requestedBy: string, reason: string, explanation: string): Extract<TaskTrigger, { kind: "refused" }> {
  return { kind: "refused", target, reason, reply: `🤖 **Running Agent** did not start (asked by @${requestedBy}). ${explanation}` };
}

function issueTask(number: number, title: string, body: string | null | undefined): string {
  return `Resolve issue #${number}: ${title}\n\n${body ?? ""}`.trim();
}

function targetOf(repository: { name: string; owner: { login: string }; clone_url: string }, issueNumber: number): IssueTarget {
  return { owner: repository.owner.login, repo: repository.name, cloneUrl: repository.clone_url, issueNumber };
}
