import { randomUUID } from "node:crypto";
import type { WebhookIssueEventSchema, WebhookIssueNoteEventSchema, WebhookLabelSchema, WebhookProjectSchema, WebhookUserSchema } from "@gitbeaker/core";
import type { GitLabState, ServerIssue, ServerProject, ServerWebhook } from "./gitlab-server-state.js";
import type { ServerUser } from "./gitlab-json.js";

/*
 * Project webhooks as GitLab sends them: a POST per hook with `X-Gitlab-Event`, the hook's secret
 * as `X-Gitlab-Token`, and `Idempotency-Key` (the same on a resend). Payloads are typed against
 * `@gitbeaker/core`'s webhook schemas, with the fields a bot reads.
 */

/** One webhook POST and what the receiver answered. Holds no secret token. */
export interface WebhookDelivery {
  /** `Note Hook` or `Issue Hook`. */
  event: "Note Hook" | "Issue Hook";
  /** The hook's URL the POST went to. */
  url: string;
  /** GitLab's `Idempotency-Key`, the same when the delivery is resent. */
  idempotencyKey: string;
  /** The receiver's status; 0 when it could not be reached. */
  status: number;
  /** The receiver's response body as text; the network error's message when it could not be reached. */
  responseBody: string;
  /** The JSON body sent: an {@link IssueNoteHookPayload} or an {@link IssueHookPayload}. */
  payload: unknown;
}

/** A user as webhooks describe them: GitLab's webhook user fields plus the email. */
export type EventUser = WebhookUserSchema & {
  /** The user's email, which GitLab adds to a webhook's user. */
  email: string;
};
/** A project as webhooks describe it: the fields of GitLab's webhook project schema a bot reads. */
export type EventProject = Pick<WebhookProjectSchema, "id" | "name" | "description" | "web_url" | "avatar_url" | "git_ssh_url" | "git_http_url" | "namespace" | "visibility_level" | "path_with_namespace" | "default_branch" | "homepage" | "url" | "ssh_url" | "http_url">;
/** A label as webhooks describe it: the fields of GitLab's webhook label schema. */
export type EventLabel = Pick<WebhookLabelSchema, "id" | "title" | "color" | "project_id" | "created_at" | "updated_at" | "template" | "description" | "type">;

/** The Note Hook of a comment on an issue. */
export type IssueNoteHookPayload = Pick<WebhookIssueNoteEventSchema, "object_kind" | "event_type" | "project_id"> & {
  /** Who wrote the comment (with their email, as GitLab sends it). */
  user: EventUser;
  /** The project the issue is in. */
  project: EventProject;
  /** The comment itself: its text in `note`, its author, its URL. */
  object_attributes: Pick<WebhookIssueNoteEventSchema["object_attributes"], "id" | "note" | "noteable_type" | "author_id" | "created_at" | "updated_at" | "project_id" | "system" | "url"> & {
    /** Always `create`: the local server sends a Note Hook only for a new comment. */
    action: "create";
  };
  /** The issue commented on. */
  issue: Pick<WebhookIssueNoteEventSchema["issue"], "id" | "iid" | "title" | "description" | "state" | "author_id" | "project_id" | "created_at" | "updated_at"> & {
    /** The issue's labels at the time of the comment. */
    labels: EventLabel[];
  };
};

/** The Issue Hook of an issue whose labels changed. */
export type IssueHookPayload = Pick<WebhookIssueEventSchema, "object_kind" | "event_type"> & {
  /** Who changed the labels. */
  user: EventUser;
  /** The project the issue is in. */
  project: EventProject;
  /** The issue as it now is. */
  object_attributes: Pick<WebhookIssueEventSchema["object_attributes"], "id" | "iid" | "title" | "description" | "state" | "action" | "url" | "author_id" | "project_id" | "created_at" | "updated_at"> & {
    /** The issue's labels after the change. */
    labels: EventLabel[];
  };
  /** The issue's labels after the change (GitLab sends them twice). */
  labels: EventLabel[];
  /** What changed. */
  changes: {
    /** The labels before and after: a bot compares them to see which label was added. */
    labels: {
      /** The labels before the change. */
      previous: EventLabel[];
      /** The labels after the change. */
      current: EventLabel[];
    };
  };
};

/** Sends a project's webhooks, and resends a delivery as GitLab's "Resend request" does. */
export function createWebhookSender(state: GitLabState) {
  const sent = new WeakMap<WebhookDelivery, { hook: ServerWebhook; body: string; eventUuid: string }>();

  const post = async (hook: ServerWebhook, event: WebhookDelivery["event"], body: string, idempotencyKey: string, eventUuid: string): Promise<{ status: number; responseBody: string }> => {
    try {
      const response = await fetch(hook.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "user-agent": "GitLab/17.6.0",
          "x-gitlab-event": event,
          "x-gitlab-instance": new URL(state.webUrl).origin,
          "x-gitlab-webhook-uuid": randomUUID(),
          "x-gitlab-event-uuid": eventUuid,
          "idempotency-key": idempotencyKey,
          ...(hook.token === undefined ? {} : { "x-gitlab-token": hook.token }),
        },
        body,
      });
      return { status: response.status, responseBody: await response.text() };
    } catch (error) {
      return { status: 0, responseBody: (error as Error).message };
    }
  };

  const deliver = async (project: ServerProject, kind: "note" | "issues", payload: IssueNoteHookPayload | IssueHookPayload): Promise<WebhookDelivery[]> => {
    const event = kind === "note" ? "Note Hook" : "Issue Hook";
    const body = JSON.stringify(payload);
    const eventUuid = randomUUID();
    const hooks = project.webhooks.filter((hook) => hook.events.has(kind));
    return Promise.all(
      hooks.map(async (hook) => {
        const idempotencyKey = randomUUID();
        const delivery: WebhookDelivery = { event, url: hook.url, idempotencyKey, payload, ...(await post(hook, event, body, idempotencyKey, eventUuid)) };
        sent.set(delivery, { hook, body, eventUuid });
        return delivery;
      }),
    );
  };

  const resend = async (delivery: WebhookDelivery): Promise<WebhookDelivery> => {
    const original = sent.get(delivery);
    if (!original) throw new Error("resendWebhook: not a delivery of this server.");
    const again: WebhookDelivery = { ...delivery, ...(await post(original.hook, delivery.event, original.body, delivery.idempotencyKey, original.eventUuid)) };
    sent.set(again, original);
    return again;
  };

  return { deliver, resend };
}

/** The project, user and label shapes GitLab puts in its webhook payloads. */
export function webhookParts(state: GitLabState, project: ServerProject) {
  const webUrl = `${state.webUrl}/${project.path}`;
  const host = new URL(state.webUrl).hostname;
  const projectJson: EventProject = {
    id: project.id,
    name: project.path.split("/").pop()!,
    description: project.description ?? "",
    web_url: webUrl,
    avatar_url: null,
    git_ssh_url: `git@${host}:${project.path}.git`,
    git_http_url: `${webUrl}.git`,
    namespace: project.path.split("/").slice(-2, -1)[0]!,
    visibility_level: project.visibility === "public" ? 20 : project.visibility === "internal" ? 10 : 0,
    path_with_namespace: project.path,
    default_branch: project.defaultBranch,
    homepage: webUrl,
    url: `git@${host}:${project.path}.git`,
    ssh_url: `git@${host}:${project.path}.git`,
    http_url: `${webUrl}.git`,
  };
  const userJson = (user: ServerUser): EventUser => ({ id: user.id, name: user.name, username: user.username, avatar_url: `${state.webUrl}/uploads/-/system/user/avatar/${user.id}/avatar.png`, email: "[REDACTED]" });
  const labelJson = (title: string): EventLabel => ({
    id: labelId(project, title),
    title,
    color: "#428bca",
    project_id: project.id,
    created_at: project.createdAt,
    updated_at: project.createdAt,
    template: false,
    description: "",
    type: "ProjectLabel",
  });
  const issueUrl = (issue: ServerIssue) => `${webUrl}/-/issues/${issue.iid}`;
  return { projectJson, userJson, labelJson, issueUrl };
}

const labelIds = new WeakMap<ServerProject, Map<string, number>>();

/** A label's id, the same for the same title in a project. */
function labelId(project: ServerProject, title: string): number {
  let ids = labelIds.get(project);
  if (!ids) labelIds.set(project, (ids = new Map()));
  if (!ids.has(title)) ids.set(title, project.id * 1000 + ids.size + 1);
  return ids.get(title)!;
}
