import { Octokit } from "@octokit/rest";
import { retry } from "@octokit/plugin-retry";
import { throttling } from "@octokit/plugin-throttling";
import type { OctokitOptions } from "./github-settings.js";

/** `@octokit/rest` with GitHub's recommended retry and throttling plugins. */
const OctokitWithPlugins = Octokit.plugin(retry, throttling);

/** The client type the adapter uses (the plugins add behaviour, not methods it calls). */
export type GitHubOctokit = Octokit;

/** What every client of one adapter shares. */
export interface GitHubClientSettings {
  apiUrl: string;
  userAgent: string;
  maxRateLimitWaitSeconds: number;
  requestTimeoutMs: number;
  octokit: Partial<OctokitOptions> | undefined;
}

/**
 * A REST call that got no complete answer within `requestTimeoutMs`. Named AbortError so that
 * Octokit passes it through as it is and the retry plugin does not retry it (a server that did
 * not answer in time is not expected to answer the next attempt sooner).
 */
export class GitHubRequestTimeout extends Error {
  override readonly name = "AbortError";
  readonly requestTimeoutMs: number;
  constructor(requestTimeoutMs: number) {
    super(`no answer within ${requestTimeoutMs} ms`);
    this.requestTimeoutMs = requestTimeoutMs;
  }
}

/** A client for one token (or none, for minting App tokens, which authenticate per request). */
export function createGitHubOctokit(settings: GitHubClientSettings, token: string | undefined, signal?: AbortSignal): GitHubOctokit {
  const extra = settings.octokit ?? {};
  const waitLimit = settings.maxRateLimitWaitSeconds;
  const options: OctokitOptions = {
    ...extra,
    baseUrl: settings.apiUrl,
    userAgent: settings.userAgent,
    ...(token ? { auth: token } : {}),
    request: { ...extra.request, fetch: fetchWithTimeout(extra.request?.fetch ?? globalThis.fetch, settings.requestTimeoutMs), ...(signal ? { signal } : {}) },
    // Silences Octokit's console output; errors reach the caller as typed errors.
    log: extra.log ?? { debug() {}, info() {}, warn() {}, error() {} },
    retry: {
      // 429 belongs to the throttling plugin, which honours retry-after.
      doNotRetry: [400, 401, 403, 404, 410, 422, 429, 451],
      ...extra.retry,
    },
    throttle: {
      id: "running-agent",
      // Retry a rate limit only when GitHub asks for a short wait, and at most twice.
      onRateLimit: (retryAfter, _options, _octokit, retryCount) => retryCount < 2 && retryAfter <= waitLimit,
      onSecondaryRateLimit: (retryAfter, _options, _octokit, retryCount) => retryCount < 2 && retryAfter <= waitLimit,
      ...extra.throttle,
    },
  };
  return new OctokitWithPlugins(options);
}

const NULL_BODY_STATUSES = new Set([101, 204, 205, 304]);

/** Each request, body included, bounded by its own timer; the task's signal still aborts it as before. */
function fetchWithTimeout(fetch: typeof globalThis.fetch, requestTimeoutMs: number): typeof globalThis.fetch {
  return async (input, init = {}) => {
    const timeout = AbortSignal.timeout(requestTimeoutMs);
    const signal = init.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
    try {
      const response = await fetch(input, { ...init, signal });
      // Octokit reads the body after this returns: read it here, under the same timer.
      const body = await response.arrayBuffer();
      const whole = new Response(NULL_BODY_STATUSES.has(response.status) ? null : body, { status: response.status, statusText: response.statusText, headers: response.headers });
      Object.defineProperty(whole, "url", { value: response.url });
      return whole;
    } catch (error) {
      if (timeout.aborted && !init.signal?.aborted) throw new GitHubRequestTimeout(requestTimeoutMs);
      throw error;
    }
  };
}
