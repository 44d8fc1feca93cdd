import { agentError, ErrorCode } from "@running-agent/core";
import type { GitLabSettings } from "./gitlab-settings.js";

const GITLAB_URL = "https://gitlab.com";

/** Where the adapter talks to, all without a trailing slash. */
export interface GitLabEndpoints {
  /** The web URL repository URLs start with (may have a path: a relative URL root). */
  webUrl: string;
  /** `<webUrl>/api/v4`. */
  apiUrl: string;
  /** The base URL git clones and pushes from (the `gitUrl` setting, default {@link GitLabEndpoints.webUrl}); a repository's HTTPS URL is this plus its path and `.git`. */
  gitUrl: string;
  /** Hosts (with port) whose repository URLs this adapter serves. */
  hosts: Set<string>;
}

/** Works out the base URLs from the settings: gitlab.com by default. No I/O. */
export function resolveGitLabEndpoints(settings: Pick<GitLabSettings, "baseUrl" | "gitUrl">): GitLabEndpoints {
  const webUrl = baseUrlSetting("baseUrl", settings.baseUrl ?? GITLAB_URL).replace(/\/api\/v4$/, "");
  const gitUrl = baseUrlSetting("gitUrl", settings.gitUrl ?? webUrl);
  const hosts = new Set([new URL(webUrl).host, new URL(gitUrl).host]);
  if (hosts.has("gitlab.com")) hosts.add("www.gitlab.com");
  return { webUrl, apiUrl: `${webUrl}/api/v4`, gitUrl, hosts };
}

function baseUrlSetting(name: string, value: unknown): string {
  let url: URL;
  try {
    url = new URL(String(value));
  } catch (cause) {
    throw agentError(ErrorCode.INVALID_OPTIONS, `createGitLab: ${name} must be an http(s) URL.`, { cause });
  }
  if (typeof value !== "string" || (url.protocol !== "https:" && url.protocol !== "http:")) {
    throw agentError(ErrorCode.INVALID_OPTIONS, `createGitLab: ${name} must be an http(s) URL.`);
  }
  if (url.username || url.password) {
    throw agentError(ErrorCode.INVALID_OPTIONS, `createGitLab: ${name} must not contain credentials; pass the token as \`token\`.`);
  }
  if (url.search || url.hash) throw agentError(ErrorCode.INVALID_OPTIONS, `createGitLab: ${name} must not have a query or fragment.`);
  return url.href.replace(/\/+$/, "");
}
