/** Settings for {@link createGitLab}. Everything is optional. */
export interface GitLabSettings {
  /**
   * A personal, project or group access token with the `api` scope (and `write_repository`
   * for the push). Default: `GITLAB_TOKEN` from the environment.
   */
  token?: string;
  /**
   * The instance's web URL, which repository URLs start with. Default `https://gitlab.com`;
   * for a self-managed instance e.g. `https://gitlab.example.com` (or with a relative URL root,
   * `https://example.com/gitlab`). The REST API is `<baseUrl>/api/v4`.
   */
  baseUrl?: string;
  /** The base URL git clones and pushes from. Default: {@link baseUrl}. */
  gitUrl?: string;
  /**
   * An undici `Dispatcher` (e.g. `new Agent({ connect: { ca } })` from `undici`) for the REST
   * calls, for a self-signed CA or a proxy. `NODE_EXTRA_CA_CERTS` works without it, and also
   * covers the core's clone and push.
   */
  dispatcher?: object;
  /** Sent as the `user-agent` header. Default `running-agent-git-gitlab`. */
  userAgent?: string;
  /**
   * Longest wait, in seconds, the adapter accepts when GitLab answers 429 with `Retry-After`
   * or `RateLimit-Reset`. Longer waits fail with RATE_LIMITED. Default 60.
   */
  maxRateLimitWaitSeconds?: number;
  /** Retries of a 429, 502, 503 or 504 before giving up. Default 2. */
  maxRetries?: number;
}
