import { isAbsolute, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { agentError, ErrorCode } from "../errors.js";

/** A repository reference after parsing: a local path, or an http(s) URL without credentials. */
export type RepoReference =
  | {
      /** A folder or `file://` URL on this machine. */
      kind: "local";
      /** Its absolute path. */
      path: string;
    }
  | {
      /** An `http://` or `https://` URL. */
      kind: "http";
      /** The URL with any `user:password@` removed. */
      url: string;
      /** True when the caller's URL carried credentials (they are dropped, never used). */
      hadCredentials: boolean;
    };

const ACCEPTED = "Pass an https:// (or http://) URL, a file:// URL, or a local path (absolute, or starting with ./ or ../).";

/**
 * Parses what the user passed as `repo`. Credentials in an http(s) URL are stripped (tokens
 * belong to the Git host, not the URL). Relative paths are resolved against the current
 * directory. Throws INVALID_REPO for anything else (ssh://, git@host:path, other schemes, empty).
 */
export function parseRepoReference(repo: string): RepoReference {
  if (typeof repo !== "string" || repo.trim() === "") throw invalid("The repo is empty.");
  const text = repo.trim();
  if (/[\0\r\n]/.test(text)) throw invalid("The repo contains a control character.");

  if (/^https?:\/\//i.test(text)) return parseHttpUrl(text);
  if (/^file:\/\//i.test(text)) {
    let path: string;
    try {
      path = fileURLToPath(text);
    } catch (cause) {
      throw invalid(`The file:// URL ${JSON.stringify(text)} is malformed.`, cause);
    }
    return { kind: "local", path: resolve(path) };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    const scheme = text.slice(0, text.indexOf(":"));
    throw invalid(`The "${scheme}" scheme is not supported.`);
  }
  // scp-like ssh syntax: user@host:path or host:path.
  if (/^[^/]*:/.test(text)) throw invalid(`${JSON.stringify(redactUserInfo(text))} looks like an SSH address, which is not supported.`);
  if (isAbsolute(text) || text.startsWith("./") || text.startsWith("../") || text === "." || text === "..") {
    return { kind: "local", path: resolve(text) };
  }
  throw invalid(`${JSON.stringify(text)} is neither a URL nor a path.`);
}

function parseHttpUrl(text: string): RepoReference {
  let url: URL;
  try {
    url = new URL(text);
  } catch (cause) {
    throw invalid(`The URL ${JSON.stringify(redactUserInfo(text))} is malformed.`, cause);
  }
  if (url.hostname === "") throw invalid("The URL has no host.");
  try {
    decodeURIComponent(url.pathname);
  } catch (cause) {
    throw invalid(`The URL's path ${JSON.stringify(url.pathname)} has a malformed percent-encoding (a % not followed by a valid UTF-8 sequence).`, cause);
  }
  const hadCredentials = url.username !== "" || url.password !== "";
  url.username = "";
  url.password = "";
  url.hash = "";
  if (url.search !== "") throw invalid("The repository URL must not have a query string.");
  let cleaned = url.toString();
  // A trailing slash would make git ask for `//info/refs`.
  while (cleaned.endsWith("/") && new URL(cleaned).pathname !== "/") cleaned = cleaned.slice(0, -1);
  if (new URL(cleaned).pathname === "/") throw invalid(`The URL ${cleaned} names no repository.`);
  return { kind: "http", url: cleaned, hadCredentials };
}

// An invalid URL may still carry a token, and a password may hold an unencoded '/': everything
// before the last '@' of the address is dropped.
function redactUserInfo(text: string): string {
  return text.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^\s]*@/i, "$1***@").replace(/^[^\s]*@/, "***@");
}

function invalid(reason: string, cause?: unknown) {
  return agentError(ErrorCode.INVALID_REPO, `${reason} ${ACCEPTED}`, { phase: "validate", ...(cause ? { cause } : {}) });
}
