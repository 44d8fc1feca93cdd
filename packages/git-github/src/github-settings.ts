import type { Octokit } from "@octokit/rest";

/** The options `new Octokit(...)` takes. */
export type OctokitOptions = NonNullable<ConstructorParameters<typeof Octokit>[0]>;

/** A GitHub App installation: the adapter mints installation tokens with `@octokit/auth-app`. */
export interface GitHubAppSettings {
  /** The App's id (or client id). */
  appId: number | string;
  /** The App's private key, PEM (PKCS#1 or PKCS#8). */
  privateKey: string;
  /** The installation on the account that owns the repositories. */
  installationId: number;
}

/** Settings for {@link createGitHub}. Everything is optional. */
export interface GitHubSettings {
  /** A personal access token (classic or fine-grained). Default: `GITHUB_TOKEN` from the environment. */
  token?: string;
  /** Authenticate as a GitHub App installation instead of with a token. */
  app?: GitHubAppSettings;
  /**
   * The REST API base URL. Default `https://api.github.com`; for GitHub Enterprise Server
   * `https://HOST/api/v3`.
   */
  baseUrl?: string;
  /**
   * The web base URL that repository URLs start with. Default: `https://github.com` for
   * github.com, the API URL without `/api/v3` for GitHub Enterprise Server.
   */
  webUrl?: string;
  /** The base URL git clones and pushes from. Default: {@link webUrl}. */
  gitUrl?: string;
  /** Sent as the `user-agent` header. Default `running-agent-git-github`. */
  userAgent?: string;
  /**
   * Longest wait, in seconds, the adapter accepts when GitHub says to retry after a rate
   * limit. Longer waits fail with RATE_LIMITED. Default 60.
   */
  maxRateLimitWaitSeconds?: number;
  /**
   * The longest one REST call may take (connect, answer and body), in milliseconds; then it fails
   * with GIT_HOST_ERROR and is not retried. Default 30 000. Git clones and pushes have their own
   * stall limit, the task's `gitStallTimeoutMs`.
   */
  requestTimeoutMs?: number;
  /**
   * An installation token is minted anew when it expires within this many seconds.
   * Default 300 (GitHub's tokens live an hour).
   */
  tokenRefreshMarginSeconds?: number;
  /**
   * Extra Octokit options, merged over the adapter's own (`retry` and `throttle` are merged
   * key by key), e.g. `{ retry: { retries: 5 } }` or `{ throttle: { id: "my-bot" } }`.
   */
  octokit?: Partial<OctokitOptions>;
}
