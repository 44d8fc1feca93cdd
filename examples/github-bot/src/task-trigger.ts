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

/**
 * What a webhook delivery asks for: a task on an issue (or a follow-up on a pull request's
 * branch); a `/agent` comment on a pull request, to check against the pull request itself
 * before it runs; a refusal answered with a comment; or nothing (and why).
 */
export type TaskTrigger =
  | { kind: "task"; target: IssueTarget; task: string; requestedBy: string; pullRequest?: PullRequestFollowUp }
  | { kind: "pull-request"; target: IssueTarget; request: string; requestedBy: string }
  | { kind: "refused"; target: IssueTarget; reason: string; reply: string }
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
  };
}

/**
 * `issue_comment.created`: a comment `/agent <task>` by a trusted author starts that task (or
 * the issue's, without text). On a pull request it asks for a follow-up on the pull request's
 * branch, which {@link triggerFromPullRequest} checks once the pull request is read; a bare
 * `/agent` there is refused with a usage reply, as a pull request has no issue text to act on.
 */
export function triggerFromComment(event: EmitterWebhookEvent<"issue_comment.created">, settings: TriggerSettings): TaskTrigger {
  const { comment, issue, repository } = event.payload;
  const body = comment.body.trim();
  const command = settings.command;
  if (!(body === command || body.startsWith(`${command} `) || body.startsWith(`${command}\n`))) {
    return { kind: "ignored", reason: `the comment does not start with ${command}` };
  }
  if (comment.user?.type === "Bot" || comment.performed_via_github_app) return { kind: "ignored", reason: "comments by bots do not start tasks" };
  if (!settings.allowedAssociations.includes(comment.author_association)) {
    return { kind: "ignored", reason: `${comment.user?.login ?? "the author"} (${comment.author_association}) may not start tasks` };
  }
  const text = body.slice(command.length).trim();
  const target = targetOf(repository, issue.number);
  const requestedBy = comment.user?.login ?? "someone";
  if (issue.pull_request) {
    if (text === "") {
      return refusal(target, requestedBy, `${command} on a pull request needs a task`, `On a pull request, say what to change: \`${command} <task>\`. The agent commits it on this pull request's branch.`);
    }
    return { kind: "pull-request", target, request: text, requestedBy };
  }
  return {
    kind: "task",
    target,
    task: text === "" ? issueTask(issue.number, issue.title, issue.body) : `${text}\n\nThis is for issue #${issue.number}: ${issue.title}\n\n${issue.body ?? ""}`.trim(),
    requestedBy,
  };
}

/**
 * A `/agent <task>` on a pull request, once the pull request is read: a follow-up task on its
 * head branch, with the pull request's title and body as context. Refused when the pull request
 * is closed or merged, or comes from a fork (the bot's token cannot push to another repository).
 */
export function triggerFromPullRequest(trigger: Extract<TaskTrigger, { kind: "pull-request" }>, pullRequest: PullRequestFacts): Extract<TaskTrigger, { kind: "task" | "refused" }> {
  const { target, requestedBy } = trigger;
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
