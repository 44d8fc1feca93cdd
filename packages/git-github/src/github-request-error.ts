import { abortedError, agentError, ErrorCode, RunningAgentError } from "@running-agent/core";
import { GitHubRequestTimeout } from "./github-octokit.js";

/** What the adapter was doing when a request failed, for the message and the code. */
export interface GitHubRequestContext {
  /** A phrase that completes "could not …", e.g. `read repository o/r`. */
  action: string;
  /** The code for a 404. Default GIT_HOST_ERROR. */
  notFound?: ErrorCode;
  /** The code for other 4xx answers. Default GIT_HOST_ERROR. */
  otherwise?: ErrorCode;
  signal?: AbortSignal | undefined;
}

interface RequestErrorShape {
  status?: number;
  message?: string;
  response?: { headers?: Record<string, string | number | undefined>; data?: unknown };
}

/** Turns an Octokit error into the typed error for it. Never includes a token: Octokit redacts headers, and only GitHub's message is quoted. */
export function toGitHubError(error: unknown, context: GitHubRequestContext): RunningAgentError {
  if (RunningAgentError.isInstance(error)) return error;
  if (error instanceof GitHubRequestTimeout) {
    return agentError(ErrorCode.GIT_HOST_ERROR, `Could not ${context.action}: GitHub did not answer within ${error.requestTimeoutMs / 1000} s (requestTimeoutMs). Check that the API URL is right and the server is up.`, {
      cause: error,
      details: { requestTimeoutMs: error.requestTimeoutMs },
    });
  }
  if (context.signal?.aborted || (error instanceof Error && error.name === "AbortError")) return abortedError(context.signal);
  const requestError = error as RequestErrorShape;
  const status = typeof requestError.status === "number" ? requestError.status : undefined;
  const headers = requestError.response?.headers ?? {};
  const gitHubMessage = messageOf(requestError);
  const details: Record<string, unknown> = { status };
  if (status === 401) {
    return agentError(ErrorCode.AUTH_FAILED, `GitHub rejected the token (401 ${gitHubMessage}): it is missing, expired or revoked. Could not ${context.action}.`, { cause: error, details });
  }
  if ((status === 403 || status === 429) && isRateLimit(status, headers, gitHubMessage)) {
    const retryAfterSeconds = retryAfter(headers);
    return agentError(
      ErrorCode.RATE_LIMITED,
      `GitHub's rate limit was hit and the wait is too long to retry now (could not ${context.action})${retryAfterSeconds === undefined ? "" : `; retry in ${retryAfterSeconds} s`}: ${gitHubMessage}`,
      { cause: error, details: { ...details, ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }) } },
    );
  }
  if (status === 403) {
    return agentError(ErrorCode.PERMISSION_DENIED, `GitHub refused to let this token ${context.action} (403): ${gitHubMessage}`, { cause: error, details });
  }
  if (status === 404) {
    return agentError(context.notFound ?? ErrorCode.GIT_HOST_ERROR, `Could not ${context.action}: GitHub answered 404 Not Found (it does not exist, or this token cannot see it).`, { cause: error, details });
  }
  if (status !== undefined && status >= 400 && status < 500) {
    return agentError(context.otherwise ?? ErrorCode.GIT_HOST_ERROR, `Could not ${context.action}: GitHub answered ${status}: ${gitHubMessage}`, { cause: error, details });
  }
  // Octokit reports a request that got no answer at all (refused, reset, DNS) as a 500 without a response.
  const answered = requestError.response !== undefined && status !== undefined;
  return agentError(
    ErrorCode.GIT_HOST_ERROR,
    !answered || status < 500
      ? `Could not ${context.action}: GitHub could not be reached (${gitHubMessage}).`
      : `Could not ${context.action}: GitHub answered ${status} after retries: ${gitHubMessage}`,
    { cause: error, details },
  );
}

function messageOf(error: RequestErrorShape): string {
  const data = error.response?.data as { message?: unknown; errors?: Array<{ message?: unknown; field?: unknown; code?: unknown }> } | undefined;
  const base = typeof data?.message === "string" ? data.message : (error.message ?? "unknown error");
  const extra = (data?.errors ?? [])
    .map((entry) => (typeof entry.message === "string" ? entry.message : [entry.field, entry.code].filter(Boolean).join(" ")))
    .filter(Boolean);
  return extra.length > 0 ? `${base} (${extra.join("; ")})` : base;
}

function isRateLimit(status: number, headers: Record<string, string | number | undefined>, message: string): boolean {
  return status === 429 || String(headers["x-ratelimit-remaining"]) === "0" || /rate limit/i.test(message);
}

function retryAfter(headers: Record<string, string | number | undefined>): number | undefined {
  const header = Number(headers["retry-after"]);
  if (Number.isFinite(header) && header >= 0) return header;
  const reset = Number(headers["x-ratelimit-reset"]);
  if (Number.isFinite(reset) && reset > 0) return Math.max(0, Math.ceil(reset - Date.now() / 1000));
  return undefined;
}
