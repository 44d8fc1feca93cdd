import { agentError, ErrorCode } from "../errors.js";
import type { ChangeRequestInput, CheckReport } from "../spec/git-host-spec.js";

/*
 * Small pieces every hosted Git adapter (GitHub, GitLab) needs the same way: how a repository
 * is shown in a message, which URL protocols it serves, the input checks of openChangeRequest,
 * and a check's commit-status text.
 */

/** Whether `repo` is an http(s) URL with a host name: a web host's URL, for UNSUPPORTED_REPO rather than INVALID_REPO. */
export function isWebUrl(repo: unknown): boolean {
  if (typeof repo !== "string") return false;
  try {
    const url = new URL(repo.trim());
    return (url.protocol === "https:" || url.protocol === "http:") && url.hostname !== "";
  } catch {
    return false;
  }
}

/** The repository as safe to show: credentials, query and fragment removed from a URL; anything before an `@` removed from another string. */
export function describeRepo(repo: unknown): string {
  if (typeof repo !== "string") return `a ${typeof repo}`;
  try {
    const url = new URL(repo);
    url.username = "";
    url.password = "";
    url.search = "";
    url.hash = "";
    return url.href;
  } catch {
    return JSON.stringify(repo.replace(/[^@\s]*@/, ""));
  }
}

const SCP_LIKE = /^[A-Za-z0-9._-]+@([A-Za-z0-9.-]+):(.*)$/;

/**
 * git's scp-like form `user@host:path` (no `://`): the host in lower case and the path as given;
 * undefined for any other string.
 */
export function parseScpLikeRemote(repo: string):
  | {
      /** The host, in lower case. */
      host: string;
      /** The path after the colon, as given. */
      path: string;
    }
  | undefined {
  const match = repo.includes("://") ? null : SCP_LIKE.exec(repo);
  return match ? { host: match[1]!.toLowerCase(), path: match[2]! } : undefined;
}

/** https and ssh for every served host; http only where one of the served URLs is http on the same host and port (a local server). */
export function isServedProtocol(url: URL, servedUrls: readonly string[]): boolean {
  if (url.protocol === "https:" || url.protocol === "ssh:") return true;
  if (url.protocol !== "http:") return false;
  return servedUrls.some((base) => {
    const served = new URL(base);
    return served.protocol === "http:" && served.host === url.host;
  });
}

/** The checks of `openChangeRequest`'s input that hold for every host, before any request: INVALID_OPTIONS. */
export function checkChangeRequestInput(input: ChangeRequestInput): void {
  for (const field of ["head", "base", "title"] as const) {
    if (typeof input[field] !== "string" || input[field].trim() === "") {
      throw agentError(ErrorCode.INVALID_OPTIONS, `openChangeRequest: ${field} must be a non-empty string.`);
    }
  }
  if (typeof input.body !== "string") throw agentError(ErrorCode.INVALID_OPTIONS, "openChangeRequest: body must be a string.");
  for (const field of ["labels", "reviewers", "assignees"] as const) {
    const list = input[field];
    if (list !== undefined && (!Array.isArray(list) || list.some((entry) => typeof entry !== "string" || entry.trim() === ""))) {
      throw agentError(ErrorCode.INVALID_OPTIONS, `openChangeRequest: ${field} must be a list of non-empty strings.`);
    }
  }
}

/**
 * A check's commit-status description, `<command> passed in 1.2 s` (or `timed out`, `failed with
 * exit code N`, then `after N fix rounds`), cut with an ellipsis to the host's `maxLength`.
 */
export function checkStatusDescription(check: CheckReport["checks"][number], fixRounds: number, maxLength: number): string {
  const how = check.passed ? "passed" : check.timedOut ? "timed out" : `failed with exit code ${check.exitCode}`;
  const rounds = fixRounds > 0 ? ` after ${fixRounds} fix round${fixRounds === 1 ? "" : "s"}` : "";
  const description = `${check.command} ${how} in ${(check.durationMs / 1000).toFixed(1)} s${rounds}`;
  return description.length > maxLength ? `${description.slice(0, maxLength - 1)}…` : description;
}
