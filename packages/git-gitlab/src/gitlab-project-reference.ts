import { agentError, ErrorCode, isServedProtocol, parseScpLikeRemote } from "@running-agent/core";
import type { GitLabEndpoints } from "./gitlab-endpoints.js";

/** A project named by a URL this adapter serves. */
export interface GitLabProjectReference {
  /** `group/sub/project`: the namespace path and the project path. */
  path: string;
  /** The URL as given, with any embedded credentials, query and fragment removed; safe for messages. */
  displayUrl: string;
}

// GitLab's rule for a namespace or project path segment: letters, digits, `_`, `.`, `-`, not starting with `-`.
const SEGMENT = /^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,254}$/;

/**
 * Reads `https://HOST/group/sub/project(.git)`, `git@HOST:group/project.git` or
 * `ssh://git@HOST/group/project.git` for a host this adapter serves. Returns undefined for other
 * hosts; throws INVALID_REPO for a served host with a path that names no project (one segment,
 * an empty segment, `.` or `..`, a `/-/` page). No I/O.
 */
export function parseGitLabProjectReference(repo: string, endpoints: GitLabEndpoints): GitLabProjectReference | undefined {
  if (typeof repo !== "string") return undefined;
  const trimmed = repo.trim();
  const scp = parseScpLikeRemote(trimmed);
  let host: string;
  let rawPath: string;
  let displayUrl: string;
  let hasQuery = false;
  if (scp) {
    host = scp.host;
    rawPath = `/${scp.path}`;
    displayUrl = `${host}:${scp.path}`;
  } else {
    let url: URL;
    try {
      url = new URL(trimmed);
    } catch {
      return undefined;
    }
    if (!isServedProtocol(url, [endpoints.webUrl, endpoints.gitUrl])) return undefined;
    host = url.protocol === "ssh:" ? url.hostname.toLowerCase() : url.host.toLowerCase();
    // The URL parser folds `..` and `.` away; the path is read from the string as given.
    rawPath = trimmed.replace(/^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/, "").replace(/[?#].*$/, "");
    hasQuery = url.search !== "" || url.hash !== "";
    url.username = "";
    url.password = "";
    url.search = "";
    url.hash = "";
    displayUrl = url.href;
  }
  if (!endpoints.hosts.has(host)) return undefined;
  if (hasQuery) throw invalid(displayUrl);
  let path = rawPath;
  // A self-managed instance under a relative URL root (`https://example.com/gitlab`).
  for (const base of [endpoints.webUrl, endpoints.gitUrl]) {
    const root = new URL(base).pathname.replace(/\/+$/, "");
    if (root && (path === root || path.startsWith(`${root}/`))) {
      path = path.slice(root.length);
      break;
    }
  }
  const segments = path.replace(/^\//, "").replace(/\/$/, "").split("/");
  let decoded: string[];
  try {
    decoded = segments.map((segment) => decodeURIComponent(segment));
  } catch {
    throw invalid(displayUrl);
  }
  const last = decoded.length - 1;
  decoded[last] = decoded[last]!.replace(/\.git$/, "");
  if (decoded.length < 2 || decoded.length > 21) throw invalid(displayUrl);
  for (const segment of decoded) {
    if (!SEGMENT.test(segment) || segment === "." || segment === ".." || /\.(git|atom)$/.test(segment)) throw invalid(displayUrl);
  }
  return { path: decoded.join("/"), displayUrl };
}

function invalid(displayUrl: string) {
  return agentError(
    ErrorCode.INVALID_REPO,
    `${displayUrl} does not name a GitLab project; expected https://HOST/GROUP[/SUBGROUP...]/PROJECT(.git), without empty, "." or ".." segments.`,
    { details: { repo: displayUrl } },
  );
}
