import { createAppAuth } from "@octokit/auth-app";
import { Octokit } from "@octokit/rest";
import type { GitHubSettings } from "@running-agent/git-github";

/**
 * The bot's own REST client (comments, reactions, reviews, check runs): as the GitHub App
 * installation when `app` is set (its tokens minted and renewed by `@octokit/auth-app`;
 * check runs need this), else with the token.
 */
export function createBotOctokit(github: GitHubSettings): Octokit {
  const common = { ...(github.baseUrl ? { baseUrl: github.baseUrl } : {}), userAgent: github.userAgent ?? "running-agent-github-bot" };
  if (github.app) {
    return new Octokit({ ...common, authStrategy: createAppAuth, auth: { appId: github.app.appId, privateKey: github.app.privateKey, installationId: github.app.installationId } });
  }
  return new Octokit({ ...common, auth: github.token });
}

/** The login the bot acts as: the App's bot account (`slug[bot]`, read with the App's JWT) or the token's user. */
export async function readBotLogin(octokit: Octokit, github: GitHubSettings): Promise<string> {
  if (github.app) {
    const { data: app } = await octokit.rest.apps.getAuthenticated();
    if (!app?.slug) throw new Error("GitHub did not say the App's slug.");
    return `${app.slug}[bot]`;
  }
  const { data: user } = await octokit.rest.users.getAuthenticated();
  return user.login;
}
