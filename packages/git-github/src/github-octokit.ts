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
  octokit: Partial<OctokitOptions> | undefined;
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
    request: { ...extra.request, ...(signal ? { signal } : {}) },
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
