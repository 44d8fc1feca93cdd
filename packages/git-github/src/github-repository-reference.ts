import { agentError, ErrorCode, isServedProtocol, parseScpLikeRemote } from "@running-agent/core";
import type { GitHubEndpoints } from "./github-endpoints.js";

/** A repository named by a URL this adapter serves. */
export interface GitHubRepositoryReference {
  owner: string;
  name: string;
  /** The URL as given, with any embedded credentials removed; safe for messages. */
  displayUrl: string;
}

const OWNER = /^[A-Za-z0-9](?:[A-Za-z0-9_-]{0,99})$/;
const NAME = /^[A-Za-z0-9._-]{1,100}$/;

/**
 * Reads `https://HOST/owner/name(.git)`, `git@HOST:owner/name.git` or `ssh://git@HOST/owner/name`
 * for a host this adapter serves. Returns undefined for other hosts; throws INVALID_REPO for a
 * served host with a path that does not name a repository. No I/O.
 */
export function parseGitHubRepositoryReference(repo: string, endpoints: GitHubEndpoints): GitHubRepositoryReference | undefined {
  if (typeof repo !== "string") return undefined;
  const trimmed = repo.trim();
  const scp = parseScpLikeRemote(trimmed);
  let host: string;
  let path: string;
  let displayUrl: string;
  if (scp) {
    host = scp.host;
    path = scp.path;
    displayUrl = `${host}:${path}`;
  } else {
    let url: URL;
    try {
      url = new URL(trimmed);
    } catch {
      return undefined;
    }
    if (!isServedProtocol(url, [endpoints.webUrl, endpoints.gitUrl])) return undefined;
    host = url.protocol === "ssh:" ? url.hostname.toLowerCase() : url.host.toLowerCase();
    url.username = "";
    url.password = "";
    displayUrl = url.href;
    try {
      path = decodeURIComponent(url.pathname);
    } catch {
      if (!endpoints.hosts.has(host)) return undefined;
      throw invalid(displayUrl);
    }
    if (url.search || url.hash) {
      if (!endpoints.hosts.has(host)) return undefined;
      throw invalid(displayUrl.replace(/[?#].*$/, ""));
    }
  }
  if (!endpoints.hosts.has(host)) return undefined;
  const segments = path.replace(/^\/+|\/+$/g, "").split("/");
  if (segments.length !== 2) throw invalid(displayUrl);
  const owner = segments[0]!;
  const name = segments[1]!.replace(/\.git$/, "");
  if (!OWNER.test(owner) || !NAME.test(name) || name === "." || name === "..") throw invalid(displayUrl);
  return { owner, name, displayUrl };
}

function invalid(displayUrl: string) {
  return agentError(ErrorCode.INVALID_REPO, `${displayUrl} does not name a GitHub repository; expected https://HOST/OWNER/REPO(.git).`, {
    details: { repo: displayUrl },
  });
}
