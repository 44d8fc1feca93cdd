import { setTimeout as sleep } from "node:timers/promises";
import { Gitlab } from "@gitbeaker/core";
import { createRequesterFn, type FormattedResponse, type ResponseBodyTypes } from "@gitbeaker/requester-utils";

/** The client type the adapter uses: `@gitbeaker/core`'s API with snake_case bodies. */
export type GitLabClient = InstanceType<typeof Gitlab<false>>;

/** What every client of one adapter shares. */
export interface GitLabClientSettings {
  webUrl: string;
  userAgent: string;
  maxRateLimitWaitSeconds: number;
  maxRetries: number;
  dispatcher: object | undefined;
}

/** GitLab answered with an error status. Holds no credential: the request's headers are not kept. */
export class GitLabResponseError extends Error {
  override readonly name = "GitLabResponseError";
  constructor(
    readonly status: number,
    readonly headers: Record<string, string>,
    readonly body: unknown,
    readonly method: string,
    readonly endpoint: string,
  ) {
    super(`${method} ${endpoint}: ${status}`);
  }
}

/** No answer at all: refused, reset, DNS, TLS. */
export class GitLabUnreachableError extends Error {
  override readonly name = "GitLabUnreachableError";
}

const RETRIED = new Set([429, 502, 503, 504]);

/**
 * A client for one token, on `@gitbeaker/core` with a request handler of our own: gitbeaker's
 * default one retries a 429 ten times within milliseconds and never reads Retry-After, and
 * takes no undici dispatcher for a private CA. This one waits what GitLab asks (up to
 * `maxRateLimitWaitSeconds`), stops on the caller's signal and keeps the answer for the error.
 */
export function createGitLabClient(settings: GitLabClientSettings, token: string, signal?: AbortSignal): GitLabClient {
  const handler = async (endpoint: string, options: Record<string, unknown> = {}): Promise<FormattedResponse> => {
    const method = String(options.method ?? "GET");
    const base = String(options.prefixUrl ?? "");
    const url = new URL(endpoint, base.endsWith("/") ? base : `${base}/`);
    url.search = typeof options.searchParams === "string" ? options.searchParams : "";
    const headers = { ...(options.headers as Record<string, string> | undefined), "user-agent": settings.userAgent };
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      try {
        response = await fetch(url, {
          method,
          headers,
          ...(options.body === undefined ? {} : { body: options.body as string }),
          ...(signal ? { signal } : {}),
          ...(settings.dispatcher ? { dispatcher: settings.dispatcher } : {}),
        } as RequestInit);
      } catch (error) {
        if (signal?.aborted) throw error;
        throw new GitLabUnreachableError(`${method} ${url.pathname}: ${(error as Error).cause instanceof Error ? ((error as Error).cause as Error).message : (error as Error).message}`, { cause: error });
      }
      const answerHeaders = Object.fromEntries(response.headers.entries());
      if (response.ok) return { body: await readBody(response), headers: answerHeaders, status: response.status };
      const body = await readBody(response).catch(() => undefined);
      const wait = RETRIED.has(response.status) ? retryWaitSeconds(response.status, answerHeaders, attempt) : undefined;
      if (wait === undefined || attempt >= settings.maxRetries || wait > settings.maxRateLimitWaitSeconds) {
        throw new GitLabResponseError(response.status, answerHeaders, body, method, url.pathname);
      }
      await sleep(wait * 1000, undefined, signal ? { signal } : {});
    }
  };
  const requesterFn = createRequesterFn((_service, requestOptions) => Promise.resolve(requestOptions), handler as never);
  return new Gitlab({ host: settings.webUrl, token, requesterFn, rateLimits: {} });
}

/** Seconds to wait before retrying: what a 429 asks for (Retry-After, else RateLimit-Reset), a short backoff for a 5xx. */
export function retryWaitSeconds(status: number, headers: Record<string, string | undefined>, attempt: number): number | undefined {
  if (status === 429) return rateLimitWaitSeconds(headers) ?? 1;
  return Math.min(8, 0.5 * 2 ** attempt);
}

/** The wait a rate-limited answer names: `Retry-After` seconds, else `RateLimit-Reset` (a Unix time). */
export function rateLimitWaitSeconds(headers: Record<string, string | undefined>): number | undefined {
  const retryAfter = Number(headers["retry-after"]);
  if (headers["retry-after"] !== undefined && Number.isFinite(retryAfter) && retryAfter >= 0) return retryAfter;
  const reset = Number(headers["ratelimit-reset"]);
  if (headers["ratelimit-reset"] !== undefined && Number.isFinite(reset) && reset > 0) return Math.max(0, Math.ceil(reset - Date.now() / 1000));
  return undefined;
}

async function readBody(response: Response): Promise<ResponseBodyTypes> {
  if (response.status === 204) return null;
  const type = (response.headers.get("content-type") ?? "").split(";")[0]!.trim();
  const text = await response.text();
  if (type === "application/json") return text === "" ? {} : (JSON.parse(text) as ResponseBodyTypes);
  return text;
}
