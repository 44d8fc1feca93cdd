import type { EmitterWebhookEvent } from "@octokit/webhooks";

/** The repository and issue a task is about. */
export interface IssueTarget {
  owner: string;
  repo: string;
  /** The URL the agent clones (the repository's `clone_url`). */
  cloneUrl: string;
  issueNumber: number;
}

/** What a webhook delivery asks for: a task on an issue, or nothing (and why). */
export type TaskTrigger = { kind: "task"; target: IssueTarget; task: string; requestedBy: string } | { kind: "ignored"; reason: string };

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

/** `issue_comment.created`: a comment `/agent <task>` by a trusted author starts that task (or the issue's, without text). */
export function triggerFromComment(event: EmitterWebhookEvent<"issue_comment.created">, settings: TriggerSettings): TaskTrigger {
  const { comment, issue, repository } = event.payload;
  const body = comment.body.trim();
  const command = settings.command;
  if (!(body === command || body.startsWith(`${command} `) || body.startsWith(`${command}\n`))) {
    return { kind: "ignored", reason: `the comment does not start with ${command}` };
  }
  if (comment.user?.type === "Bot" || comment.performed_via_github_app) return { kind: "ignored", reason: "comments by bots do not start tasks" };
  if (issue.pull_request) return { kind: "ignored", reason: `${command} works on issues, not pull requests` };
  if (!settings.allowedAssociations.includes(comment.author_association)) {
    return { kind: "ignored", reason: `${comment.user?.login ?? "the author"} (${comment.author_association}) may not start tasks` };
  }
  const text = body.slice(command.length).trim();
  return {
    kind: "task",
    target: targetOf(repository, issue.number),
    task: text === "" ? issueTask(issue.number, issue.title, issue.body) : `${text}\n\nThis is for issue #${issue.number}: ${issue.title}\n\n${issue.body ?? ""}`.trim(),
    requestedBy: comment.user?.login ?? "someone",
  };
}

function issueTask(number: number, title: string, body: string | null | undefined): string {
  return `Resolve issue #${number}: ${title}\n\n${body ?? ""}`.trim();
}

function targetOf(repository: { name: string; owner: { login: string }; clone_url: string }, issueNumber: number): IssueTarget {
  return { owner: repository.owner.login, repo: repository.name, cloneUrl: repository.clone_url, issueNumber };
}
