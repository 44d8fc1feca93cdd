import type { IncomingMessage, ServerResponse } from "node:http";
import { Octokit } from "@octokit/rest";
import { Webhooks } from "@octokit/webhooks";
import { abortedError, startAgentTask, type AgentTaskOptions, type ModelConfig, type SandboxProvider } from "@running-agent/core";
import { createGitHub, type GitHubSettings } from "@running-agent/git-github";
import { IssueCommentPublisher } from "./issue-comment-publisher.js";
import { ProgressComment } from "./progress-comment.js";
import { followUpGitHost } from "./follow-up-git-host.js";
import { triggerFromComment, triggerFromLabel, triggerFromPullRequest, type TaskTrigger, type TriggerSettings } from "./task-trigger.js";
import { receiveWebhook } from "./receive-webhook.js";
import { TaskSlots } from "./task-slots.js";

/** Settings for {@link createGitHubBot}. */
export interface GitHubBotOptions {
  /** The secret of the webhook (GitHub signs every delivery with it). */
  webhookSecret: string;
  /** The GitHub connection: a token with contents, issues and pull requests write access, and the API URL for GitHub Enterprise Server. */
  github: GitHubSettings & { token: string };
  /** The label that starts a task on an issue. Default `agent`. */
  label?: string;
  /** The comment command that starts a task. Default `/agent`. */
  command?: string;
  /** Comment authors allowed to start tasks, by `author_association`. Default owners, members and collaborators. */
  allowedAssociations?: readonly string[];
  /** Where the agent runs. Default: the core's local sandbox. */
  sandbox?: SandboxProvider;
  /** The model. Default: the core's default. */
  model?: ModelConfig | string;
  /** More options for every task (setup commands, timeouts, limits). */
  taskOptions?: Omit<AgentTaskOptions, "repo" | "task" | "sandbox" | "gitHost" | "model" | "signal" | "onEvent">;
  /** Tasks that run at once; later ones wait their turn (their comment says so). Default 2. */
  maxConcurrentTasks?: number;
  /** Shortest time between two edits of a progress comment. Default 2000 ms. */
  commentIntervalMs?: number;
  /** The path webhooks are posted to. Default `/webhooks`. */
  path?: string;
  /** Told about failures that no request sees (a comment that could not be written, a task that failed). */
  onError?: (error: unknown) => void;
}

/** A running bot: hand {@link GitHubBot.handleRequest} to an HTTP server. */
export interface GitHubBot {
  readonly webhooks: Webhooks;
  /** A Node request listener: verifies and dispatches webhook deliveries. */
  handleRequest(request: IncomingMessage, response: ServerResponse): void;
  /** Tasks running or waiting for a slot, as `owner/repo#issue`. */
  activeTasks(): string[];
  /** Resolves when every task started so far has finished and its comment is final. */
  idle(): Promise<void>;
  /** Cancels every running task and waits for their cleanup and final comments. */
  close(): Promise<void>;
}

const DEFAULT_ASSOCIATIONS = ["OWNER", "MEMBER", "COLLABORATOR"];

/**
 * A GitHub bot on the library: when an issue gets the label (default `agent`) or a trusted
 * comment `/agent <task>`, it runs the task, keeps one progress comment on the issue up to
 * date, and opens a pull request that closes the issue. `/agent <task>` on an open pull request
 * (from the same repository) commits on top of its branch and leaves the pull request's title
 * and body as they are. Deliveries whose signature does not match the secret are answered 401
 * and start nothing.
 */
export function createGitHubBot(options: GitHubBotOptions): GitHubBot {
  if (!options.webhookSecret) throw new TypeError("createGitHubBot: webhookSecret is required.");
  if (!options.github?.token) throw new TypeError("createGitHubBot: github.token is required.");
  const settings: TriggerSettings = {
    label: options.label ?? "agent",
    command: options.command ?? "/agent",
    allowedAssociations: options.allowedAssociations ?? DEFAULT_ASSOCIATIONS,
  };
  const onError = options.onError ?? ((error: unknown) => console.error("github-bot:", error));
  const webhooks = new Webhooks({ secret: options.webhookSecret });
  const gitHost = createGitHub(options.github);
  const octokit = new Octokit({ auth: options.github.token, ...(options.github.baseUrl ? { baseUrl: options.github.baseUrl } : {}), userAgent: "running-agent-github-bot" });
  const slots = new TaskSlots(options.maxConcurrentTasks ?? 2);
  // Every active task's cancel switch, by `owner/repo#issue`.
  const active = new Map<string, AbortController>();
  const jobs = new Set<Promise<void>>();
  // What each delivery led to, so that the response (shown in GitHub's delivery log) says it.
  const decisions = new Map<string, string>();

  // Jobs that idle() and close() wait for: tasks and refusal replies.
  const track = (work: Promise<void>, onSettled?: () => void) => {
    const job = work.catch(onError).finally(() => {
      onSettled?.();
      jobs.delete(job);
    });
    jobs.add(job);
  };

  const decide = async (deliveryId: string, trigger: TaskTrigger): Promise<void> => {
    if (trigger.kind === "ignored") {
      decisions.set(deliveryId, `ignored: ${trigger.reason}`);
      return;
    }
    const key = `${trigger.target.owner}/${trigger.target.repo}#${trigger.target.issueNumber}`;
    if (active.has(key)) {
      decisions.set(deliveryId, `ignored: a task is already running on ${key}`);
      return;
    }
    const controller = new AbortController();
    // Held while the pull request is read, so that a second delivery for it waits its turn like any other.
    active.set(key, controller);
    let task: Extract<TaskTrigger, { kind: "task" | "refused" }>;
    if (trigger.kind === "pull-request") {
      try {
        const { owner, repo, issueNumber } = trigger.target;
        const { data: pullRequest } = await octokit.rest.pulls.get({ owner, repo, pull_number: issueNumber });
        task = triggerFromPullRequest(trigger, pullRequest);
      } catch (error) {
        active.delete(key);
        onError(error);
        decisions.set(deliveryId, `failed: could not read pull request ${key}: ${(error as Error).message}`);
        return;
      }
    } else {
      task = trigger;
    }
    if (controller.signal.aborted) {
      // close() ran while the pull request was read: start nothing it would not wait for.
      active.delete(key);
      decisions.set(deliveryId, "ignored: the bot is shutting down");
      return;
    }
    if (task.kind === "refused") {
      active.delete(key);
      decisions.set(deliveryId, `refused: ${task.reason}`);
      const { owner, repo, issueNumber } = task.target;
      track(octokit.rest.issues.createComment({ owner, repo, issue_number: issueNumber, body: task.reply }).then(() => {}));
      return;
    }
    decisions.set(deliveryId, `started a task on ${key}`);
    track(runTask(task, controller.signal), () => active.delete(key));
  };

  const runTask = async (trigger: Extract<TaskTrigger, { kind: "task" }>, signal: AbortSignal): Promise<void> => {
    const progress = new ProgressComment(trigger.requestedBy, trigger.pullRequest);
    const publisher = new IssueCommentPublisher(octokit, trigger.target, () => progress.render(), options.commentIntervalMs ?? 2000, onError);
    let release = slots.tryAcquire();
    if (!release) {
      progress.markQueued();
      await publisher.publishNow();
      release = await slots.acquire(signal).catch(() => undefined);
      if (!release) {
        progress.fail(abortedError(signal));
        return publisher.finish();
      }
    }
    try {
      const followUp = trigger.pullRequest;
      const handle = startAgentTask({
        ...options.taskOptions,
        repo: trigger.target.cloneUrl,
        task: trigger.task,
        ...(options.sandbox ? { sandbox: options.sandbox } : {}),
        ...(options.model ? { model: options.model } : {}),
        // A follow-up commits on top of the pull request's branch and leaves the pull request's title and body alone.
        ...(followUp
          ? { gitHost: followUpGitHost(gitHost, octokit, trigger.target, followUp), branch: followUp.head, baseBranch: followUp.base, pullRequest: {} }
          : { gitHost, pullRequest: { ...options.taskOptions?.pullRequest, closesIssue: trigger.target.issueNumber } }),
        secrets: [...(options.taskOptions?.secrets ?? []), options.github.token, options.webhookSecret],
        signal,
      });
      progress.markStarted();
      await publisher.publishNow();
      for await (const event of handle) {
        if (progress.apply(event)) publisher.publishSoon();
      }
      try {
        progress.complete(await handle.result);
      } catch (error) {
        progress.fail(error);
        onError(error);
      }
      await publisher.finish();
    } finally {
      release();
    }
  };

  webhooks.on("issues.labeled", (event) => decide(event.id, triggerFromLabel(event, settings)));
  webhooks.on("issue_comment.created", (event) => decide(event.id, triggerFromComment(event, settings)));

  return {
    webhooks,
    activeTasks: () => [...active.keys()],
    handleRequest(request, response) {
      receiveWebhook(webhooks, request, response, { path: options.path ?? "/webhooks", decisionFor: (id) => takeDecision(decisions, id) }).catch((error: unknown) => {
        onError(error);
        if (!response.headersSent) response.writeHead(500, { "content-type": "application/json" });
        response.end(JSON.stringify({ error: "internal error" }));
      });
    },
    async idle() {
      while (jobs.size > 0) await Promise.allSettled([...jobs]);
    },
    async close() {
      for (const controller of active.values()) controller.abort(new Error("The bot is shutting down."));
      while (jobs.size > 0) await Promise.allSettled([...jobs]);
    },
  };
}

function takeDecision(decisions: Map<string, string>, id: string): string {
  const decision = decisions.get(id) ?? "ignored: no handler for this event";
  decisions.delete(id);
  return decision;
}
