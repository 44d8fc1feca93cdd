import { createAppAuth, type InstallationAccessTokenAuthentication } from "@octokit/auth-app";
import { agentError, ErrorCode } from "@running-agent/core";
import type { GitHubAppSettings } from "./github-settings.js";
import { toGitHubError } from "./github-request-error.js";
import { checkHeaderSafeToken } from "./check-header-safe-token.js";

type AppAuth = ReturnType<typeof createAppAuth>;
type RequestFunction = NonNullable<Parameters<typeof createAppAuth>[0]["request"]>;

/** A token and, for App installation tokens, the permissions GitHub granted it. */
export interface GitHubToken {
  token: string;
  /** e.g. `{ contents: "write", pull_requests: "write" }`; only for installation tokens. */
  installationPermissions?: Record<string, string>;
}

/** Where an API or git call gets its token: the task's override, the App installation, or the host's token. */
export class GitHubTokenSource {
  readonly #token: string | undefined;
  readonly #appAuth: AppAuth | undefined;
  readonly #app: GitHubAppSettings | undefined;
  readonly #refreshMarginMs: number;
  /** Every installation token minted so far, so the redactor can know them. */
  readonly #mintedTokens = new Set<string>();

  constructor(options: { token: string | undefined; app: GitHubAppSettings | undefined; request: RequestFunction; refreshMarginSeconds: number }) {
    this.#token = options.token;
    this.#app = options.app;
    this.#refreshMarginMs = options.refreshMarginSeconds * 1000;
    if (options.app) {
      this.#appAuth = createAppAuth({
        appId: options.app.appId,
        privateKey: options.app.privateKey,
        installationId: options.app.installationId,
        request: options.request,
      });
    }
  }

  /** The token for a call: the per-task one when given, else a fresh installation token, else the host's. */
  async token(override: string | undefined): Promise<GitHubToken> {
    if (override) {
      checkHeaderSafeToken(override, "The task's gitToken");
      return { token: override };
    }
    if (this.#appAuth) return this.#installationToken();
    if (this.#token) return { token: this.#token };
    throw agentError(
      ErrorCode.AUTH_FAILED,
      "No GitHub credentials: pass `token` or `app` to createGitHub, set GITHUB_TOKEN, or give the task a token.",
    );
  }

  /** The App's JWT for calls made as the App itself (e.g. `GET /app`); undefined without an App. */
  async appJwt(): Promise<string | undefined> {
    if (!this.#appAuth) return undefined;
    try {
      const { token } = await this.#appAuth({ type: "app" });
      this.#mintedTokens.add(token);
      return token;
    } catch (error) {
      throw installationError(error, this.#app!.installationId);
    }
  }

  /** True when calls without a per-task token act as a GitHub App installation. */
  get isApp(): boolean {
    return this.#appAuth !== undefined;
  }

  /** The secrets held now: the configured token, the App's private key and every minted token. */
  secrets(): string[] {
    return [this.#token, this.#app?.privateKey, ...this.#mintedTokens].filter((secret): secret is string => Boolean(secret));
  }

  /**
   * `@octokit/auth-app` caches installation tokens for 59 minutes whatever their expiry says;
   * a token that expires within the margin is minted anew so that a clone, a push and the
   * pull request never run on a token about to lapse.
   */
  async #installationToken(): Promise<GitHubToken> {
    const appAuth = this.#appAuth!;
    let authentication = await this.#mint(appAuth, false);
    if (Date.parse(authentication.expiresAt) - Date.now() < this.#refreshMarginMs) {
      authentication = await this.#mint(appAuth, true);
    }
    this.#mintedTokens.add(authentication.token);
    return { token: authentication.token, installationPermissions: authentication.permissions as Record<string, string> };
  }

  async #mint(appAuth: AppAuth, refresh: boolean): Promise<InstallationAccessTokenAuthentication> {
    try {
      return await appAuth({ type: "installation", refresh });
    } catch (error) {
      throw installationError(error, this.#app!.installationId);
    }
  }
}

function installationError(error: unknown, installationId: number) {
  return toGitHubError(error, {
    action: `mint an installation token for GitHub App installation ${installationId}`,
    notFound: ErrorCode.AUTH_FAILED,
    otherwise: ErrorCode.AUTH_FAILED,
  });
}
