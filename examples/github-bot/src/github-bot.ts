import type { IncomingMessage, ServerResponse } from "node:http";
import type { Octokit } from "@octokit/rest";
import { Webhooks } from "@octokit/webhooks";
import { agentError, type AgentTaskOptions, type AgentTaskResult, type ErrorCode, type ModelConfig, type Phase, type SandboxProvider } from "@running-agent/core";
import { createGitHub, type GitHubSettings } from "@running-agent/git-github";
import { JobWorker, openSqliteJobStore, STORABLE_OPTION_NAMES, watchJob, type JobRecord, type JobSpec, type JobStore } from "@running-agent/jobs";
import type { AgentTaskEvent } from "@running-agent/core";
import { IssueCommentPublisher } from "./issue-comment-publisher.js";
import { ProgressComment } from "./progress-comment.js";
import { followUpGitHost } from "./follow-up-git-host.js";
import { createBotOctokit, readBotLogin } from "./bot-octokit.js";
import { CheckRunReporter } from "./check-run-reporter.js";
import { readReviewRequest } from "./review-request.js";
import {
  triggerFromAssignment,
  triggerFromComment,
  triggerFromLabel,
  triggerFromPullRequest,
  triggerFromReview,
  triggerFromReviewComment,
  type IssueTarget,
  type PickedUp,
  type PullRequestFollowUp,
  type TaskTrigger,
  type TriggerSettings,
} from "./task-trigger.js";
import { receiveWebhook } from "./receive-webhook.js";

/** Settings for {@link createGitHubBot}. */
export interface GitHubBotOptions {
  /** The secret of the webhook (GitHub signs every delivery with it). */
  webhookSecret: string;
  /**
   * The GitHub connection: a GitHub App installation (`app`: contents, issues, pull requests and
   * checks write; check runs need an App) or a `token` with contents, issues and pull requests
   * write access, and the API URL for GitHub Enterprise Server.
   */
  github: GitHubSettings;
  /** The bot's login (`user`, or `slug[bot]` for an App). Default: read from GitHub (`GET /user`, or `GET /app`) at the first delivery that needs it. */
  login?: string;
  /**
   * The user whose assignment to an issue starts a task. Default: the bot's login. GitHub does
   * not let issues be assigned to an App's bot account, so an App that takes assignments names a
   * user here (a machine user, say).
   */
  assignee?: string;
  /** Bot accounts that may start tasks as people with write access do, e.g. `["dependabot[bot]", "renovate[bot]"]`. Default none. */
  allowedBots?: readonly string[];
  /** Report each run as a check run on the commit it pushed. Default: with an App (GitHub refuses check runs to tokens). */
  checkRuns?: boolean;
  /** The check run's name. Default `Running Agent`. */
  checkRunName?: string;
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
  /**
   * Where tasks are kept as jobs (`@running-agent/jobs`), each keyed by its webhook delivery
   * (`X-GitHub-Delivery`): a redelivery of one the store has seen starts nothing. Default: an
   * embedded store in memory (deliveries seen by this process). Closed by the caller.
   */
  store?: JobStore;
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
  if (!options.github?.token && !options.github?.app) throw new TypeError("createGitHubBot: github.token or github.app is required.");
  const baseSettings = {
    label: options.label ?? "agent",
    command: options.command ?? "/agent",
    allowedAssociations: options.allowedAssociations ?? DEFAULT_ASSOCIATIONS,
    allowedBots: options.allowedBots ?? [],
    ...(options.assignee ? { assignee: options.assignee } : {}),
  };
  // The login is read once, when the first delivery needs it (a bot that only answers pings never calls GitHub).
  let settingsRead: Promise<TriggerSettings> | undefined;
  const readSettings = (): Promise<TriggerSettings> => {
    settingsRead ??= (options.login ? Promise.resolve(options.login) : readBotLogin(octokit, options.github)).then((login) => ({ ...baseSettings, login }));
    // A failed read is tried again on the next delivery.
    settingsRead.catch(() => (settingsRead = undefined));
    return settingsRead;
  };
  const checkRunsOn = options.checkRuns ?? Boolean(options.github.app);
  const onError = options.onError ?? ((error: unknown) => console.error("github-bot:", error));
  const webhooks = new Webhooks({ secret: options.webhookSecret });
  const gitHost = createGitHub(options.github);
  const octokit: Octokit = createBotOctokit(options.github);
  const ownStore = options.store === undefined;
  const store = options.store ?? openSqliteJobStore({ path: ":memory:" });
  // What a job needs that a store cannot keep (the follow-up's Git host) is rebuilt from its labels.
  const worker = new JobWorker({
    store,
    concurrency: options.maxConcurrentTasks ?? 2,
    pollMs: 200,
    taskDefaults: {
      ...options.taskOptions,
      ...(options.sandbox ? { sandbox: options.sandbox } : {}),
      ...(options.model ? { model: options.model } : {}),
      gitHost,
      secrets: [...(options.taskOptions?.secrets ?? []), ...(options.github.token ? [options.github.token] : []), ...(options.github.app ? [options.github.app.privateKey] : []), options.webhookSecret],
    },
    taskOptionsFor: (job) => {
      const labels = job.labels;
      if (!labels.followUp) return {};
      const target = JSON.parse(labels.target!) as IssueTarget;
      return { gitHost: followUpGitHost(gitHost, octokit, target, JSON.parse(labels.followUp) as PullRequestFollowUp) };
    },
  });
  const workerStarted = worker.start();
  // Jobs whose progress comment is being kept (running or waiting for a slot).
  let following = 0;
  // Every active task's cancel switch, by `owner/repo#issue`.
  const active = new Map<string, AbortController>();
  const jobs = new Set<Promise<void>>();
  // What each delivery led to, so that the response (shown in GitHub's delivery log) says it.
  const decisions = new Map<string, string>();

  // Jobs that idle() and close() wait for: tasks and refusal replies.
  const track = (work: Promise<void>, onSettled?: () => void): Promise<void> => {
    const job = work.catch(onError).finally(() => {
      onSettled?.();
      jobs.delete(job);
    });
    jobs.add(job);
    return job;
  };
  // Per pull request, when its last task (running or waiting) is done: a follow-up that comes
  // while one runs waits for it, so that each request is one commit on top of the other.
  const finished = new Map<string, Promise<void>>();
  // Keys of requests waiting their turn (not stored yet), so that a redelivery does not queue them twice.
  const waiting = new Set<string>();
  let closing = false;

  const decide = async (deliveryId: string, triggerOf: (settings: TriggerSettings) => TaskTrigger): Promise<void> => {
    if (await store.getByKey(deliveryKey(deliveryId))) {
      decisions.set(deliveryId, `ignored: delivery ${deliveryId} was received before`);
      return;
    }
    let settings: TriggerSettings;
    try {
      settings = await readSettings();
    } catch (error) {
      onError(error);
      decisions.set(deliveryId, `failed: could not read the bot's own account: ${(error as Error).message}`);
      return;
    }
    const trigger = triggerOf(settings);
    if (trigger.kind === "ignored") {
      decisions.set(deliveryId, `ignored: ${trigger.reason}`);
      return;
    }
    if (trigger.kind === "refused") return refuse(trigger, (decision) => decisions.set(deliveryId, decision));
    if (trigger.requestKey && (await store.getByKey(trigger.requestKey))) {
      decisions.set(deliveryId, `ignored: ${describeRequest(trigger)} was picked up before`);
      return;
    }
    const key = `${trigger.target.owner}/${trigger.target.repo}#${trigger.target.issueNumber}`;
    const requestKey = trigger.requestKey ?? deliveryKey(deliveryId);
    if (waiting.has(requestKey)) {
      decisions.set(deliveryId, `ignored: ${trigger.requestKey ? describeRequest(trigger) : `delivery ${deliveryId}`} is waiting its turn already`);
      return;
    }
    if (active.has(key) || finished.has(key)) {
      if (trigger.kind === "task") {
        decisions.set(deliveryId, `ignored: a task is already running on ${key}`);
        return;
      }
      // A request on a pull request waits for the task on it, then runs on the branch as that task left it.
      decisions.set(deliveryId, `queued: after the task running on ${key}`);
      if (trigger.pickedUp) track(react(trigger.target, trigger.pickedUp));
      waiting.add(requestKey);
      const previous = finished.get(key) ?? Promise.resolve();
      const mine: Promise<void> = track(
        (async () => {
          await previous;
          waiting.delete(requestKey);
          if (closing) return;
          // The delivery was answered already; failures went to onError.
          const started = await begin(deliveryId, { ...trigger, pickedUp: undefined }, key, () => {});
          await started?.following;
        })(),
        () => {
          waiting.delete(requestKey);
          if (finished.get(key) === mine) finished.delete(key);
        },
      );
      finished.set(key, mine);
      return;
    }
    const started = await begin(deliveryId, trigger, key, (decision) => decisions.set(deliveryId, decision));
    if (started) {
      const mine: Promise<void> = started.following.finally(() => {
        if (finished.get(key) === mine) finished.delete(key);
      });
      finished.set(key, mine);
    }
  };

  /** Reads what the trigger needs, stores its job and follows it; once started, resolves with the following (wrapped: a promise would be awaited). */
  const begin = async (
    deliveryId: string,
    trigger: Extract<TaskTrigger, { kind: "task" | "pull-request" | "review" }>,
    key: string,
    report: (decision: string) => void,
  ): Promise<{ following: Promise<void> } | undefined> => {
    const controller = new AbortController();
    // Held while GitHub is read, so that a second delivery for the same issue or pull request waits its turn like any other.
    active.set(key, controller);
    let task: Extract<TaskTrigger, { kind: "task" | "refused" | "ignored" }>;
    try {
      task = await resolveTrigger(trigger);
    } catch (error) {
      active.delete(key);
      onError(error);
      report(`failed: ${(error as Error).message}`);
      return undefined;
    }
    if (controller.signal.aborted || closing) {
      // close() ran while GitHub was read: start nothing it would not wait for.
      active.delete(key);
      report("ignored: the bot is shutting down");
      return undefined;
    }
    if (task.kind !== "task") {
      active.delete(key);
      if (task.kind === "ignored") report(`ignored: ${task.reason}`);
      else refuse(task, report);
      return undefined;
    }
    const job = await submitJob(deliveryId, task).catch((error: unknown) => error as Error);
    if (job instanceof Error || job === undefined) {
      active.delete(key);
      if (job) onError(job);
      report(job ? `failed: could not store the task: ${job.message}` : `ignored: ${task.requestKey ? describeRequest(task) : `delivery ${deliveryId}`} was received before`);
      return undefined;
    }
    report(`started a task on ${key}`);
    if (task.pickedUp) track(react(task.target, task.pickedUp));
    return { following: track(followJob(task, job, controller.signal), () => active.delete(key)) };
  };

  const refuse = (refusal: Extract<TaskTrigger, { kind: "refused" }>, report: (decision: string) => void): void => {
    report(`refused: ${refusal.reason}`);
    if (!refusal.reply) return;
    const { owner, repo, issueNumber } = refusal.target;
    track(octokit.rest.issues.createComment({ owner, repo, issue_number: issueNumber, body: refusal.reply }).then(() => {}));
  };

  /** Reads from GitHub what a trigger needs before it can run: the sender's permission, the review, the pull request. */
  const resolveTrigger = async (trigger: Extract<TaskTrigger, { kind: "task" | "pull-request" | "review" }>): Promise<Extract<TaskTrigger, { kind: "task" | "refused" | "ignored" }>> => {
    const { owner, repo, issueNumber } = trigger.target;
    const key = `${owner}/${repo}#${issueNumber}`;
    if (trigger.checkWriteAccessOf) {
      const username = trigger.checkWriteAccessOf;
      const { data } = await octokit.rest.repos.getCollaboratorPermissionLevel({ owner, repo, username }).catch((error: unknown) => {
        throw new Error(`could not read the permission of ${username} on ${owner}/${repo}: ${(error as Error).message}`, { cause: error });
      });
      if (data.permission !== "admin" && data.permission !== "write") {
        return { kind: "refused", target: trigger.target, reason: `${username} (${data.permission} access) may not start tasks: that takes write access to the repository` };
      }
    }
    let request: Extract<TaskTrigger, { kind: "task" | "pull-request" }>;
    if (trigger.kind === "review") {
      const review = await readReviewRequest(octokit, trigger.target, trigger.reviewId).catch((error: unknown) => {
        throw new Error(`could not read review ${trigger.reviewId} of pull request ${key}: ${(error as Error).message}`, { cause: error });
      });
      if (!review) return { kind: "ignored", reason: `review ${trigger.reviewId} has no body and no comments to address` };
      const { kind: _kind, reviewId: _reviewId, ...rest } = trigger;
      request = { ...rest, kind: "pull-request", request: review.request, threads: review.threads };
    } else {
      request = trigger;
    }
    if (request.kind === "task") return request;
    const { data: pullRequest } = await octokit.rest.pulls.get({ owner, repo, pull_number: issueNumber }).catch((error: unknown) => {
      throw new Error(`could not read pull request ${key}: ${(error as Error).message}`, { cause: error });
    });
    return triggerFromPullRequest(request, pullRequest);
  };

  /** A 👀 on what the bot picked up: the issue, the comment, or the review (which only GraphQL can react to). */
  const react = async (target: IssueTarget, pickedUp: PickedUp): Promise<void> => {
    const where = { owner: target.owner, repo: target.repo, content: "eyes" as const };
    if (pickedUp.kind === "issue") await octokit.rest.reactions.createForIssue({ ...where, issue_number: pickedUp.number });
    else if (pickedUp.kind === "issue-comment") await octokit.rest.reactions.createForIssueComment({ ...where, comment_id: pickedUp.id });
    else if (pickedUp.kind === "review-comment") await octokit.rest.reactions.createForPullRequestReviewComment({ ...where, comment_id: pickedUp.id });
    else await octokit.graphql("mutation($id: ID!) { addReaction(input: { subjectId: $id, content: EYES }) { reaction { content } } }", { id: pickedUp.nodeId });
  };

  /** Stores the task as a job keyed by its delivery; undefined when that delivery is already stored. */
  const submitJob = async (deliveryId: string, trigger: Extract<TaskTrigger, { kind: "task" }>): Promise<JobRecord | undefined> => {
    await workerStarted;
    const followUp = trigger.pullRequest;
    const { job, created } = await store.submit({
      // A review's deliveries (each comment's and the submission's) share the review's key: one task between them.
      key: trigger.requestKey ?? deliveryKey(deliveryId),
      spec: {
        ...storableTaskOptions(options.taskOptions),
        repo: trigger.target.cloneUrl,
        task: trigger.task,
        // A follow-up commits on top of the pull request's branch and leaves the pull request's title and body alone.
        ...(followUp ? { branch: followUp.head, baseBranch: followUp.base, pullRequest: {} } : { pullRequest: { ...options.taskOptions?.pullRequest, closesIssue: trigger.target.issueNumber } }),
      },
      labels: { target: JSON.stringify(trigger.target), requestedBy: trigger.requestedBy, ...(followUp ? { followUp: JSON.stringify(followUp) } : {}) },
      // A task the bot was asked for once runs once: a failure is reported, not retried behind the comment's back.
      maxAttempts: 1,
    });
    return created ? job : undefined;
  };

  /** Keeps the issue's progress comment up to date from the job's stored events, wherever the job runs. */
  const followJob = async (trigger: Extract<TaskTrigger, { kind: "task" }>, job: JobRecord, signal: AbortSignal): Promise<void> => {
    const progress = new ProgressComment(trigger.requestedBy, trigger.pullRequest);
    const publisher = new IssueCommentPublisher(octokit, trigger.target, () => progress.render(), options.commentIntervalMs ?? 2000, onError);
    const checkRun = checkRunsOn ? new CheckRunReporter(octokit, trigger.target, options.checkRunName ?? "Running Agent", new Date(), onError) : undefined;
    const onAbort = () => void store.requestCancel(job.id, "The bot is shutting down.").catch(onError);
    signal.addEventListener("abort", onAbort, { once: true });
    let started = false;
    let last: JobRecord = job;
    try {
      // Jobs this bot follows run oldest first: with as many ahead as there are slots, this one waits.
      if (following++ >= worker.concurrency) {
        progress.markQueued();
        await publisher.publishNow();
      }
      for await (const message of watchJob(store, job.id)) {
        if (message.kind === "event") {
          const event = message.event as AgentTaskEvent;
          if (progress.apply(event)) publisher.publishSoon();
          if (event.type === "branch.pushed") void checkRun?.pushed(event.commit, progress.render());
          continue;
        }
        last = message.job;
        if (!started && last.status !== "queued") {
          started = true;
          progress.markStarted();
          await publisher.publishNow();
        }
      }
    } finally {
      following -= 1;
      signal.removeEventListener("abort", onAbort);
    }
    if (last.status === "completed" || last.status === "no_changes") progress.complete(last.result as AgentTaskResult);
    else {
      const failure = last.error ?? { code: "INTERNAL", message: `The job ended ${last.status}.` };
      const error = agentError(failure.code as ErrorCode, failure.message, failure.phase ? { phase: failure.phase as Phase } : {});
      progress.fail(error);
      onError(error);
    }
    await publisher.finish();
    const conclusion = progress.conclusion();
    if (checkRun && conclusion) await checkRun.finish(conclusion.conclusion, conclusion.title, progress.render());
    // Each review thread the task was about gets its own answer.
    for (const commentId of trigger.threads ?? []) {
      const { owner, repo, issueNumber } = trigger.target;
      await octokit.rest.pulls.createReplyForReviewComment({ owner, repo, pull_number: issueNumber, comment_id: commentId, body: progress.threadReply() }).catch(onError);
    }
  };

  webhooks.on("issues.labeled", (event) => decide(event.id, (settings) => triggerFromLabel(event, settings)));
  webhooks.on("issues.assigned", (event) => decide(event.id, (settings) => triggerFromAssignment(event, settings)));
  webhooks.on("issue_comment.created", (event) => decide(event.id, (settings) => triggerFromComment(event, settings)));
  webhooks.on("pull_request_review_comment.created", (event) => decide(event.id, (settings) => triggerFromReviewComment(event, settings)));
  webhooks.on("pull_request_review.submitted", (event) => decide(event.id, (settings) => triggerFromReview(event, settings)));

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
      closing = true;
      for (const controller of active.values()) controller.abort(new Error("The bot is shutting down."));
      while (jobs.size > 0) await Promise.allSettled([...jobs]);
      await workerStarted.catch(() => undefined);
      await worker.stop();
      if (ownStore) await store.close();
    },
  };
}

function describeRequest(trigger: { requestKey?: string }): string {
  const match = /#(\d+)\/(\d+)$/.exec(trigger.requestKey ?? "");
  return match ? `review ${match[2]} of pull request #${match[1]}` : "this request";
}

function deliveryKey(deliveryId: string): string {
  return `github-delivery:${deliveryId}`;
}

/** The bot's task options that a job can store; the rest (hooks, providers) go to the worker as defaults. */
function storableTaskOptions(taskOptions: GitHubBotOptions["taskOptions"]): Partial<JobSpec> {
  return Object.fromEntries(Object.entries(taskOptions ?? {}).filter(([name]) => STORABLE_OPTION_NAMES.includes(name as never))) as Partial<JobSpec>;
}

function takeDecision(decisions: Map<string, string>, id: string): string {
  const decision = decisions.get(id) ?? "ignored: no handler for this event";
  decisions.delete(id);
  return decision;
}
