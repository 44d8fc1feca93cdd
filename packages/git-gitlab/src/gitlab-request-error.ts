import { abortedError, agentError, ErrorCode, RunningAgentError } from "@running-agent/core";
import { GitLabResponseError, GitLabUnreachableError, rateLimitWaitSeconds } from "./gitlab-client.js";

/** What the adapter was doing when a request failed, for the message and the code. */
export interface GitLabRequestContext {
  /** A phrase that completes "could not …", e.g. `read project group/app`. */
  action: string;
  /** The code for a 404. Default GIT_HOST_ERROR. */
  notFound?: ErrorCode;
  /** The code for other 4xx answers. Default GIT_HOST_ERROR. */
  otherwise?: ErrorCode;
  signal?: AbortSignal | undefined;
}

/** Turns a failed GitLab request into the typed error for it, with the same codes as the GitHub host. Never includes the token. */
export function toGitLabError(error: unknown, context: GitLabRequestContext): RunningAgentError {
  if (RunningAgentError.isInstance(error)) return error;
  if (context.signal?.aborted || (error instanceof Error && error.name === "AbortError")) return abortedError(context.signal);
  if (error instanceof GitLabUnreachableError) {
    return agentError(ErrorCode.GIT_HOST_ERROR, `Could not ${context.action}: GitLab could not be reached (${error.message}).`, { cause: error });
  }
  if (!(error instanceof GitLabResponseError)) {
    return agentError(ErrorCode.GIT_HOST_ERROR, `Could not ${context.action}: ${(error as Error)?.message ?? String(error)}`, { cause: error });
  }
  const { status, headers } = error;
  const message = gitLabMessage(error.body);
  const details: Record<string, unknown> = { status };
  if (status === 401) {
    return agentError(ErrorCode.AUTH_FAILED, `GitLab rejected the token (401 ${message}): it is missing, expired or revoked. Could not ${context.action}.`, { cause: error, details });
  }
  if (status === 429) {
    const retryAfterSeconds = rateLimitWaitSeconds(headers);
    return agentError(
      ErrorCode.RATE_LIMITED,
      `GitLab's rate limit was hit and the wait is too long to retry now (could not ${context.action})${retryAfterSeconds === undefined ? "" : `; retry in ${retryAfterSeconds} s`}: ${message}`,
      { cause: error, details: { ...details, ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }) } },
    );
  }
  if (status === 403) {
    const scope = isRecord(error.body) && error.body.error === "insufficient_scope" ? ` The token lacks the scope GitLab needs${typeof error.body.scope === "string" ? ` (${error.body.scope})` : ""}.` : "";
    return agentError(ErrorCode.PERMISSION_DENIED, `GitLab refused to let this token ${context.action} (403): ${message}.${scope}`, { cause: error, details });
  }
  if (status === 404) {
    return agentError(context.notFound ?? ErrorCode.GIT_HOST_ERROR, `Could not ${context.action}: GitLab answered 404 (${message}: it does not exist, or this token cannot see it).`, { cause: error, details });
  }
  if (status >= 400 && status < 500) {
    return agentError(context.otherwise ?? ErrorCode.GIT_HOST_ERROR, `Could not ${context.action}: GitLab answered ${status}: ${message}`, { cause: error, details });
  }
  return agentError(ErrorCode.GIT_HOST_ERROR, `Could not ${context.action}: GitLab answered ${status} after retries: ${message}`, { cause: error, details });
}

/**
 * GitLab's error text from its body: `{ message: "404 Project Not Found" }`, `{ message: ["..."] }`,
 * `{ message: { field: ["..."] } }`, `{ error, error_description }`, or plain text.
 */
export function gitLabMessage(body: unknown): string {
  if (typeof body === "string") return body.trim() || "no message";
  if (!isRecord(body)) return "no message";
  const { message } = body;
  if (typeof message === "string") return message;
  if (Array.isArray(message)) return message.map(String).join("; ");
  if (isRecord(message)) {
    return Object.entries(message)
      .map(([field, value]) => `${field} ${Array.isArray(value) ? value.join(", ") : String(value)}`)
      .join("; ");
  }
  if (typeof body.error === "string") return typeof body.error_description === "string" ? `${body.error}: ${body.error_description}` : body.error;
  return "no message";
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
