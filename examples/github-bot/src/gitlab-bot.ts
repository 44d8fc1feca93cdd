import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { Gitlab } from "@gitbeaker/rest";
import { runAgentTask, RunningAgentError, type AgentTaskOptions, type AgentTaskResult, type ModelConfig, type SandboxProvider } from "@running-agent/core";
import { createGitLab, type GitLabSettings } from "@running-agent/git-gitlab";
import { header, MAX_BODY_BYTES, readBody, send } from "./receive-webhook.js";

/** Settings for {@link createGitLabBot}. */
export interface GitLabBotOptions {
  /** The webhook's secret token: GitLab sends it as `X-Gitlab-Token` with every delivery. */
  webhookSecret: string;
  /** The GitLab connection: a token with the `api` scope and the Developer role, and `baseUrl` for a self-managed instance. */
  gitlab: GitLabSettings & { token: string };
  /** The label that starts a task on an issue. Default `agent`. */
  label?: string;
  /** The comment command that starts a task. Default `/agent`. */
  command?: string;
  /** Where the agent runs. Default: the core's local sandbox. */
  sandbox?: SandboxProvider;
  /** The model. Default: the core's default. */
  model?: ModelConfig | string;
  /** More options for every task (setup commands, timeouts, limits, pull request settings). */
  taskOptions?: Omit<AgentTaskOptions, "repo" | "task" | "sandbox" | "gitHost" | "model" | "signal">;
  /** The path webhooks are posted to. Default `/gitlab-webhooks`. */
  path?: string;
  /** Told about failures that no request sees (a note that could not be written, a task that failed). */
  onError?: (error: unknown) => void;
}

/** A running GitLab bot: hand {@link GitLabBot.handleRequest} to an HTTP server. */
export interface GitLabBot {
  /** A Node request listener: checks the secret token and answers each delivery with what the bot decided. */
  handleRequest(request: IncomingMessage, response: ServerResponse): void;
  /** Tasks running, as `group/project#iid`. */
  activeTasks(): string[];
  /** Resolves when every task started so far has finished and its note is written. */
  idle(): Promise<void>;
  /** Cancels every running task and waits for its cleanup and final note. */
  close(): Promise<void>;
}

/** What one delivery asks for. */
type GitLabTrigger =
  | { kind: "ignored"; reason: string }
  | { kind: "task"; projectPath: string; projectId: number; cloneUrl: string; issueIid: number; task: string; actor: { id: number; username: string } };

/** GitLab's Developer role: the lowest that may push, and so the lowest whose request the bot runs. */
const DEVELOPER_ACCESS = 30;
/** Deliveries remembered for redelivery checks. */
const SEEN_LIMIT = 1000;

/**
 * A GitLab bot on the library: when a project member with the Developer role or higher labels
 * an issue (default `agent`) or comments `/agent <task>` on it, it runs the task through
 * `@running-agent/git-gitlab`, answers on the issue with a note, and opens a merge request that
 * closes the issue. Deliveries without the webhook's secret token are answered 401 and start
 * nothing; a delivery seen before (GitLab's `Idempotency-Key`) starts nothing again.
 */
export function createGitLabBot(options: GitLabBotOptions): GitLabBot {
  if (!options.webhookSecret) throw new TypeError("createGitLabBot: webhookSecret is required.");
  if (!options.gitlab?.token) throw new TypeError("createGitLabBot: gitlab.token is required.");
  const label = (options.label ?? "agent").toLowerCase();
  const command = options.command ?? "/agent";
  const path = options.path ?? "/gitlab-webhooks";
  const onError = options.onError ?? ((error: unknown) => console.error("gitlab-bot:", error));
  const gitHost = createGitLab(options.gitlab);
  const gitlab = new Gitlab({ host: gitHost.endpoints.webUrl, token: options.gitlab.token });
  const active = new Map<string, AbortController>();
  const tasks = new Set<Promise<void>>();
  const seen = new Set<string>();
  let botUserId: Promise<number> | undefined;

  /** Whether the actor may start a task: a member (direct or through a group) with the Developer role or higher. */
  const mayStart = async (projectId: number, userId: number): Promise<boolean> => {
    try {
      const member = await gitlab.ProjectMembers.show(projectId, userId, { includeInherited: true });
      return member.access_level >= DEVELOPER_ACCESS;
    } catch (error) {
      if ((error as { cause?: { response?: { status?: number } } }).cause?.response?.status === 404) return false;
      throw error;
    }
  };

  const decide = async (event: string, payload: unknown): Promise<string> => {
    const trigger = event === "Note Hook" ? triggerFromNote(payload, command) : event === "Issue Hook" ? triggerFromLabel(payload, label) : { kind: "ignored" as const, reason: `no handler for ${event}` };
    if (trigger.kind === "ignored") return `ignored: ${trigger.reason}`;
    if (!gitHost.supports(trigger.cloneUrl)) return `ignored: ${trigger.projectPath} is not on ${gitHost.endpoints.webUrl}`;
    // The bot's own notes never start a task, whatever they say.
    botUserId ??= gitlab.Users.showCurrentUser().then(
      (user) => user.id,
      (error: unknown) => {
        // Asked again with the next delivery, rather than failing every one after.
        botUserId = undefined;
        throw error;
      },
    );
    if (trigger.actor.id === (await botUserId)) return "ignored: the bot's own note";
    const key = `${trigger.projectPath}#${trigger.issueIid}`;
    if (active.has(key)) return `ignored: a task is already running on ${key}`;
    // Anyone may comment on a public project, and the agent pushes with the bot's token.
    if (!(await mayStart(trigger.projectId, trigger.actor.id))) return `ignored: ${trigger.actor.username} is not a Developer (or higher) of ${trigger.projectPath}`;
    if (active.has(key)) return `ignored: a task is already running on ${key}`;
    const controller = new AbortController();
    active.set(key, controller);
    const work = runTask(trigger, controller.signal)
      .catch(onError)
      .finally(() => {
        active.delete(key);
        tasks.delete(work);
      });
    tasks.add(work);
    return `started a task on ${key}`;
  };

  const note = (trigger: Extract<GitLabTrigger, { kind: "task" }>, body: string) => gitlab.IssueNotes.create(trigger.projectId, trigger.issueIid, body);

  const runTask = async (trigger: Extract<GitLabTrigger, { kind: "task" }>, signal: AbortSignal): Promise<void> => {
    await note(trigger, `Working on it, @${trigger.actor.username}: the agent runs now, and this issue gets a merge request when it is done.`);
    let body: string;
    try {
      const result = await runAgentTask({
        ...options.taskOptions,
        repo: trigger.cloneUrl,
        task: trigger.task,
        gitHost,
        ...(options.sandbox ? { sandbox: options.sandbox } : {}),
        ...(options.model ? { model: options.model } : {}),
        pullRequest: { ...options.taskOptions?.pullRequest, closesIssue: trigger.issueIid },
        secrets: [...(options.taskOptions?.secrets ?? []), options.gitlab.token, options.webhookSecret],
        signal,
      });
      body = outcomeNote(result);
    } catch (error) {
      onError(error);
      body = RunningAgentError.isInstance(error) ? `The task failed (${error.code}): ${error.message}` : "The task failed with an unexpected error; the bot's log has it.";
    }
    await note(trigger, body);
  };

  return {
    handleRequest(request, response) {
      receive(request, response).catch((error: unknown) => {
        onError(error);
        if (!response.headersSent) send(response, 500, { error: "internal error" });
        else response.end();
      });
    },
    activeTasks: () => [...active.keys()],
    async idle() {
      while (tasks.size > 0) await Promise.allSettled([...tasks]);
    },
    async close() {
      for (const controller of active.values()) controller.abort(new Error("The bot is shutting down."));
      while (tasks.size > 0) await Promise.allSettled([...tasks]);
    },
  };

  async function receive(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const pathname = new URL(request.url ?? "/", "http://localhost").pathname.replace(/\/+$/, "") || "/";
    if (pathname !== path) return send(response, 404, { error: `Not found: ${pathname}. GitLab webhooks go to ${path}.` });
    if (request.method !== "POST") return send(response, 405, { error: "Webhooks are POSTed." }, { allow: "POST" });
    if (!/^application\/json\s*(;|$)/i.test(request.headers["content-type"] ?? "")) return send(response, 415, { error: 'The content type must be "application/json".' });
    // GitLab documents no payload cap for webhooks; the GitHub receiver's 25 MB applies.
    const body = await readBody(request);
    if (body === undefined) return send(response, 413, { error: `The payload is larger than ${MAX_BODY_BYTES} bytes.` });
    if (!sameSecret(header(request, "x-gitlab-token"), options.webhookSecret)) {
      return send(response, 401, { error: "The secret token (X-Gitlab-Token) is missing or does not match the webhook's." });
    }
    const event = header(request, "x-gitlab-event");
    if (!event) return send(response, 400, { error: "X-Gitlab-Event is required." });
    let payload: unknown;
    try {
      payload = JSON.parse(body);
    } catch {
      return send(response, 400, { error: "The payload is not valid JSON." });
    }
    // GitLab keeps the Idempotency-Key on a retry and on "Resend request"; older versions send only the event's UUID.
    const deliveryId = header(request, "idempotency-key") ?? header(request, "x-gitlab-event-uuid");
    if (deliveryId !== undefined) {
      if (seen.has(deliveryId)) return send(response, 202, { result: `ignored: delivery ${deliveryId} was received before` });
      seen.add(deliveryId);
      if (seen.size > SEEN_LIMIT) seen.delete(seen.values().next().value!);
    }
    let result: string;
    try {
      result = await decide(event, payload);
    } catch (error) {
      // GitLab retries a failed delivery with the same key: that retry must be decided again.
      if (deliveryId !== undefined) seen.delete(deliveryId);
      throw error;
    }
    send(response, 202, { result });
  }
}

/** `/agent <task>` (or a bare `/agent`) in a comment on an issue. */
export function triggerFromNote(payload: unknown, command: string): GitLabTrigger {
  const hook = payload as NotePayload;
  if (hook?.object_kind !== "note" || typeof hook.object_attributes?.note !== "string") return { kind: "ignored", reason: "not a note" };
  if (hook.object_attributes.noteable_type !== "Issue" || !hook.issue) return { kind: "ignored", reason: `a note on a ${hook.object_attributes.noteable_type ?? "thing"} (only issues take ${command})` };
  const text = hook.object_attributes.note.trim();
  if (!(text === command || text.startsWith(`${command} `) || text.startsWith(`${command}\n`))) return { kind: "ignored", reason: `the note does not start with ${command}` };
  const request = text.slice(command.length).trim();
  const issue = `Issue #${hook.issue.iid}: ${hook.issue.title}\n\n${hook.issue.description ?? ""}`.trim();
  const target = targetOf(hook, hook.issue.iid);
  return target.kind === "task" ? { ...target, task: request ? `${request}\n\n${issue}` : issue } : target;
}

/** The label added to an issue (`changes.labels`: in `current`, not in `previous`), in any letter case. */
export function triggerFromLabel(payload: unknown, label: string): GitLabTrigger {
  const hook = payload as IssuePayload;
  if (hook?.object_kind !== "issue" || !hook.object_attributes) return { kind: "ignored", reason: "not an issue event" };
  const titles = (labels: Array<{ title: string }> | null | undefined) => new Set((labels ?? []).map((entry) => entry.title.toLowerCase()));
  const changes = hook.changes?.labels;
  if (!changes || !titles(changes.current).has(label) || titles(changes.previous).has(label)) return { kind: "ignored", reason: `the label ${label} was not added` };
  const issue = hook.object_attributes;
  const target = targetOf(hook, issue.iid);
  return target.kind === "task" ? { ...target, task: `${issue.title}\n\n${issue.description ?? ""}`.trim() } : target;
}

function targetOf(hook: HookBase, issueIid: number): GitLabTrigger {
  if (typeof hook.project?.git_http_url !== "string" || typeof hook.project.id !== "number" || typeof hook.user?.id !== "number") return { kind: "ignored", reason: "the payload names no project or user" };
  return { kind: "task", task: "", projectPath: hook.project.path_with_namespace, projectId: hook.project.id, cloneUrl: hook.project.git_http_url, issueIid, actor: { id: hook.user.id, username: hook.user.username } };
}

/** The final note: the merge request, or that nothing changed. */
function outcomeNote(result: AgentTaskResult): string {
  const mergeRequest = result.pullRequest;
  if (result.status === "no_changes" || !mergeRequest) return `The agent finished without changing anything.${result.summary ? `\n\n${result.summary}` : ""}`;
  return `${mergeRequest.created ? "Opened" : "Updated"} !${mergeRequest.number}: ${mergeRequest.url}${result.summary ? `\n\n${result.summary}` : ""}`;
}

/** Compared in constant time, on digests so that the lengths match. */
function sameSecret(given: string | undefined, secret: string): boolean {
  if (given === undefined) return false;
  const digest = (value: string) => createHash("sha256").update(value).digest();
  return timingSafeEqual(digest(given), digest(secret));
}

interface HookBase {
  project: { id: number; path_with_namespace: string; git_http_url: string };
  user: { id: number; username: string };
}
interface NotePayload extends HookBase {
  object_kind: string;
  object_attributes?: { note?: string; noteable_type?: string };
  issue?: { iid: number; title: string; description: string | null };
}
interface IssuePayload extends HookBase {
  object_kind: string;
  object_attributes?: { iid: number; title: string; description: string | null };
  changes?: { labels?: { previous: Array<{ title: string }> | null; current: Array<{ title: string }> | null } };
}
