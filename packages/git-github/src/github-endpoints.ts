import { agentError, ErrorCode } from "@running-agent/core";
import type { GitHubSettings } from "./github-settings.js";

const GITHUB_API_URL = "https://api.github.com";
const GITHUB_WEB_URL = "https://github.com";

/** Where the adapter talks to: the REST API, the web pages and git. All without a trailing slash. */
export interface GitHubEndpoints {
  /** The REST API base URL (the `baseUrl` setting): `https://api.github.com`, or `https://HOST/api/v3` on GitHub Enterprise Server. */
  apiUrl: string;
  /** The web base URL repository and pull-request pages start with (the `webUrl` setting): `https://github.com` by default, the API's host on GHES. */
  webUrl: string;
  /** The base URL git clones and pushes from (the `gitUrl` setting, default {@link GitHubEndpoints.webUrl}). */
  gitUrl: string;
  /** Hosts (with port) whose repository URLs this adapter serves. */
  hosts: Set<string>;
}

/** Works out the three base URLs from the settings: github.com by default, GHES from `baseUrl`. */
export function resolveGitHubEndpoints(settings: Pick<GitHubSettings, "baseUrl" | "webUrl" | "gitUrl">): GitHubEndpoints {
  const apiUrl = baseUrlSetting("baseUrl", settings.baseUrl ?? GITHUB_API_URL);
  const webUrl = baseUrlSetting("webUrl", settings.webUrl ?? defaultWebUrl(apiUrl));
  const gitUrl = baseUrlSetting("gitUrl", settings.gitUrl ?? webUrl);
  const hosts = new Set([new URL(webUrl).host, new URL(gitUrl).host]);
  // github.com URLs name the same repositories whether or not they start with www.
  if (hosts.has("github.com")) hosts.add("www.github.com");
  return { apiUrl, webUrl, gitUrl, hosts };
}

/** github.com's API lives on its own host; GitHub Enterprise Server's under `/api/v3` of the web host. */
function defaultWebUrl(apiUrl: string): string {
  if (apiUrl === GITHUB_API_URL) return GITHUB_WEB_URL;
  const url = new URL(apiUrl);
  url.pathname = url.pathname.replace(/\/api\/v3$/, "");
  return url.href.replace(/\/+$/, "");
}

function baseUrlSetting(name: string, value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch (cause) {
    throw agentError(ErrorCode.INVALID_OPTIONS, `createGitHub: ${name} must be an http(s) URL.`, { cause });
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw agentError(ErrorCode.INVALID_OPTIONS, `createGitHub: ${name} must be an http(s) URL.`);
  }
  if (url.username || url.password) {
    throw agentError(ErrorCode.INVALID_OPTIONS, `createGitHub: ${name} must not contain credentials; pass the token as \`token\`.`);
  }
  if (url.search || url.hash) {
    throw agentError(ErrorCode.INVALID_OPTIONS, `createGitHub: ${name} must not have a query or fragment.`);
  }
  return url.href.replace(/\/+$/, "");
}
