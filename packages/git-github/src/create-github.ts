import {
  agentError,
  describeRepo,
  ErrorCode,
  GIT_HOST_SPEC_VERSION,
  isWebUrl,
  type ChangeRequest,
  type ChangeRequestInput,
  type CheckReport,
  type GitCredentials,
  type GitHost,
  type GitHostTaskOptions,
  type GitIdentity,
  type ResolvedRepository,
} from "@running-agent/core";
import { createPrivateKey, type KeyObject } from "node:crypto";
import { checkHeaderSafeToken } from "./check-header-safe-token.js";
import { resolveGitHubEndpoints, type GitHubEndpoints } from "./github-endpoints.js";
import { createGitHubOctokit, type GitHubClientSettings, type GitHubOctokit } from "./github-octokit.js";
import { parseGitHubRepositoryReference, type GitHubRepositoryReference } from "./github-repository-reference.js";
import { toGitHubError } from "./github-request-error.js";
import type { GitHubSettings } from "./github-settings.js";
import { GitHubTokenSource } from "./github-token-source.js";
import { openPullRequest } from "./open-pull-request.js";
import { createCommitStatuses } from "./commit-statuses.js";

const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * github.com or GitHub Enterprise Server as a {@link GitHost}: checks the repository and the
 * token's push permission, hands the token to the core's git over HTTP, and opens or updates
 * pull requests with `@octokit/rest`.
 */
export class GitHub implements GitHost {
  readonly specificationVersion = GIT_HOST_SPEC_VERSION;
  readonly hostId = "github";
  /** The base URLs this host talks to. */
  readonly endpoints: GitHubEndpoints;
  readonly #tokens: GitHubTokenSource;
  readonly #clientSettings: GitHubClientSettings;

  constructor(settings: GitHubSettings = {}) {
    if (settings.app !== undefined) checkAppSettings(settings.app);
    if (settings.token !== undefined && (typeof settings.token !== "string" || settings.token.trim() === "")) {
      throw agentError(ErrorCode.INVALID_OPTIONS, "createGitHub: token must be a non-empty string.");
    }
    const token = settings.app ? undefined : (settings.token ?? (process.env.GITHUB_TOKEN || undefined));
    if (token !== undefined) checkHeaderSafeToken(token, settings.token === undefined ? "createGitHub: GITHUB_TOKEN" : "createGitHub: token");
    if (settings.requestTimeoutMs !== undefined && !(Number.isInteger(settings.requestTimeoutMs) && settings.requestTimeoutMs >= 1 && settings.requestTimeoutMs <= MAX_TIMER_MS)) {
      throw agentError(ErrorCode.INVALID_OPTIONS, `createGitHub: requestTimeoutMs must be a whole number of milliseconds from 1 to ${MAX_TIMER_MS}.`);
    }
    for (const name of ["maxRateLimitWaitSeconds", "tokenRefreshMarginSeconds"] as const) {
      const value = settings[name];
      if (value !== undefined && !(typeof value === "number" && Number.isFinite(value) && value >= 0)) {
        throw agentError(ErrorCode.INVALID_OPTIONS, `createGitHub: ${name} must be a number of seconds, 0 or more.`);
      }
    }
    this.endpoints = resolveGitHubEndpoints(settings);
    this.#clientSettings = {
      apiUrl: this.endpoints.apiUrl,
      userAgent: settings.userAgent ?? "running-agent-git-github",
      maxRateLimitWaitSeconds: settings.maxRateLimitWaitSeconds ?? 60,
      requestTimeoutMs: settings.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
      octokit: settings.octokit,
    };
    // App tokens are minted with a client that has no token of its own: auth-app signs each mint with a JWT.
    const minter = createGitHubOctokit(this.#clientSettings, undefined);
    this.#tokens = new GitHubTokenSource({
      token,
      app: settings.app,
      request: minter.request,
      refreshMarginSeconds: settings.tokenRefreshMarginSeconds ?? 300,
    });
  }

  /**
   * `git@HOST:owner/repo.git` and `ssh://git@HOST/owner/repo` of a served host become the
   * repository's https URL (the core clones and pushes over HTTPS with the token); anything
   * else is left as it is. Throws INVALID_REPO for an ssh form of a served host that names no
   * repository.
   */
  normalizeRepo(repo: string): string | undefined {
    if (typeof repo !== "string" || /^https?:\/\//i.test(repo.trim())) return undefined;
    const reference = parseGitHubRepositoryReference(repo, this.endpoints);
    return reference ? `${this.endpoints.webUrl}/${reference.owner}/${reference.name}.git` : undefined;
  }

  supports(repo: string): boolean {
    try {
      return parseGitHubRepositoryReference(repo, this.endpoints) !== undefined;
    } catch {
      // A served host with a path that names no repository: ours to reject with a clear error.
      return true;
    }
  }

  async resolveRepository(repo: string, options: GitHostTaskOptions = {}): Promise<ResolvedRepository> {
    const reference = this.#reference(repo);
    const { token, installationPermissions } = await this.#tokens.token(options.token);
    const octokit = this.#client(token, options.signal);
    const fullName = `${reference.owner}/${reference.name}`;
    let data;
    try {
      ({ data } = await octokit.rest.repos.get({ owner: reference.owner, repo: reference.name }));
    } catch (error) {
      throw toGitHubError(error, { action: `read repository ${fullName}`, notFound: ErrorCode.REPO_NOT_FOUND, signal: options.signal });
    }
    if (data.archived) {
      throw agentError(ErrorCode.REPO_ARCHIVED, `${data.full_name} is archived on GitHub and takes no pushes or pull requests; unarchive it first.`, { details: { repo: data.full_name } });
    }
    // Installation tokens get no `permissions` on the repository; their own grant says whether they may write contents.
    // When GitHub says nothing either way, the push itself is the judge.
    const canPush = data.permissions ? data.permissions.push === true : installationPermissions ? installationPermissions.contents === "write" : true;
    if (!canPush) {
      throw agentError(
        ErrorCode.PERMISSION_DENIED,
        `The token can read ${data.full_name} but cannot push to it: give it write access to the repository's contents (a fine-grained token or App with "Contents: read and write", a classic token with the repo scope and collaborator access).`,
        { details: { repo: data.full_name } },
      );
    }
    const [owner, name] = data.full_name.split("/") as [string, string];
    return {
      id: data.full_name,
      remote: `${this.endpoints.gitUrl}/${owner}/${name}.git`,
      defaultBranch: data.default_branch,
      canPush,
      webUrl: data.html_url,
    };
  }

  async branchExists(repository: ResolvedRepository, branch: string, options: GitHostTaskOptions = {}): Promise<boolean> {
    if (typeof branch !== "string" || branch.trim() === "") throw agentError(ErrorCode.INVALID_BRANCH, "branchExists: the branch name is empty.");
    const { owner, name } = splitId(repository);
    const { token } = await this.#tokens.token(options.token);
    try {
      await this.#client(token, options.signal).rest.repos.getBranch({ owner, repo: name, branch });
      return true;
    } catch (error) {
      if ((error as { status?: number }).status === 404) return false;
      throw toGitHubError(error, { action: `read branch ${branch} of ${repository.id}`, signal: options.signal });
    }
  }

  async getCredentials(repository: ResolvedRepository, _access: "read" | "write", options: GitHostTaskOptions = {}): Promise<GitCredentials | undefined> {
    splitId(repository);
    const { token } = await this.#tokens.token(options.token);
    // GitHub accepts any username with a token as the password; x-access-token is what it documents for App tokens.
    return { username: "x-access-token", password: token };
  }

  async openChangeRequest(repository: ResolvedRepository, input: ChangeRequestInput, options: GitHostTaskOptions = {}): Promise<ChangeRequest> {
    const { owner, name } = splitId(repository);
    const { token } = await this.#tokens.token(options.token);
    return openPullRequest(this.#client(token, options.signal), { owner, name }, input, options.signal);
  }

  /** Records the run's checks as commit statuses (`running-agent/<name>`) on the pushed commit. */
  async reportChecks(repository: ResolvedRepository, report: CheckReport, options: GitHostTaskOptions = {}): Promise<void> {
    const { owner, name } = splitId(repository);
    const { token } = await this.#tokens.token(options.token);
    await createCommitStatuses(this.#client(token, options.signal), { owner, name }, report, options.signal);
  }

  /**
   * The commit identity of the account these credentials act as, with GitHub's noreply
   * address so that commits link to it: the App's bot (`slug[bot]`) or the token's user. Pass
   * it as `committer` (or `author`) to `runAgentTask`.
   */
  async commitIdentity(options: GitHostTaskOptions = {}): Promise<GitIdentity> {
    const noreply = `users.noreply.${new URL(this.endpoints.webUrl).hostname}`;
    if (this.#tokens.isApp && !options.token) {
      const jwt = await this.#tokens.appJwt();
      const client = this.#client(jwt!, options.signal);
      try {
        const { data: app } = await client.rest.apps.getAuthenticated();
        const login = `${app!.slug}[bot]`;
        const { data: user } = await this.#client((await this.#tokens.token(undefined)).token, options.signal).rest.users.getByUsername({ username: login });
        return { name: login, email: `${user.id}+${login}@${noreply}` };
      } catch (error) {
        throw toGitHubError(error, { action: "read the GitHub App's bot account", signal: options.signal });
      }
    }
    const { token } = await this.#tokens.token(options.token);
    try {
      const { data: user } = await this.#client(token, options.signal).rest.users.getAuthenticated();
      return { name: user.name || user.login, email: `${user.id}+${user.login}@${noreply}` };
    } catch (error) {
      throw toGitHubError(error, { action: "read the token's user account", signal: options.signal });
    }
  }

  secrets(): string[] {
    return this.#tokens.secrets();
  }

  #reference(repo: string): GitHubRepositoryReference {
    const reference = parseGitHubRepositoryReference(repo, this.endpoints);
    if (!reference) {
      const served = [...this.endpoints.hosts].join(", ");
      // A well-formed web URL of another host is someone else's repository; anything else is not a repository URL at all.
      if (isWebUrl(repo)) throw agentError(ErrorCode.UNSUPPORTED_REPO, `The GitHub host serves repositories on ${served}; ${describeRepo(repo)} is not one of them.`);
      throw agentError(ErrorCode.INVALID_REPO, `${describeRepo(repo)} is not a GitHub repository URL; expected https://HOST/OWNER/REPO(.git) on ${served}.`);
    }
    return reference;
  }

  #client(token: string, signal: AbortSignal | undefined): GitHubOctokit {
    return createGitHubOctokit(this.#clientSettings, token, signal);
  }
}

/** A GitHub Git host. Synchronous and without I/O: the token is checked by the first call that needs it. */
export function createGitHub(settings: GitHubSettings = {}): GitHub {
  return new GitHub(settings);
}

function splitId(repository: ResolvedRepository): { owner: string; name: string } {
  const parts = typeof repository?.id === "string" ? repository.id.split("/") : [];
  if (parts.length !== 2 || !parts[0] || !parts[1]) {
    throw agentError(ErrorCode.INVALID_REPO, "The GitHub host was given a repository it did not resolve; call resolveRepository first.");
  }
  return { owner: parts[0], name: parts[1] };
}

function checkAppSettings(app: GitHubSettings["app"]): void {
  const valid =
    typeof app === "object" &&
    app !== null &&
    (typeof app.appId === "number" || (typeof app.appId === "string" && app.appId.trim() !== "")) &&
    typeof app.privateKey === "string" &&
    app.privateKey.includes("PRIVATE KEY") &&
    Number.isInteger(app.installationId) &&
    app.installationId > 0;
  if (!valid) {
    throw agentError(ErrorCode.INVALID_OPTIONS, "createGitHub: app needs appId, a PEM privateKey and a positive integer installationId.");
  }
  // GitHub signs App JWTs with RS256: the key must be an RSA private key that node can read.
  let key: KeyObject;
  try {
    key = createPrivateKey(app.privateKey);
  } catch {
    // The cause is left out: it could quote part of the key.
    throw agentError(ErrorCode.INVALID_OPTIONS, "createGitHub: app.privateKey is not a readable PEM private key; pass the .pem file GitHub generated for the App (PKCS#1 or PKCS#8), with its line breaks.");
  }
  if (key.asymmetricKeyType !== "rsa") {
    throw agentError(ErrorCode.INVALID_OPTIONS, `createGitHub: app.privateKey is a ${key.asymmetricKeyType ?? "non-RSA"} key; GitHub Apps sign with RSA keys. Pass the .pem file GitHub generated for the App.`);
  }
}
