import { spawn, type ChildProcess } from "node:child_process";
import type { IncomingMessage, ServerResponse } from "node:http";
import { gitEnvironment } from "../git/git-command.js";

/** Options for {@link serveGitHttpBackend}: one smart-HTTP request whose access the server has already checked. */
export interface GitHttpBackendOptions {
  /** The folder git serves repositories from (`GIT_PROJECT_ROOT`). */
  projectRoot: string;
  /** The path inside it, e.g. `/octo/repo.git/info/refs`. */
  pathInfo: string;
  /** The query string without `?`, e.g. `service=git-upload-pack`. */
  query: string;
  /** Who is pushing or fetching (`REMOTE_USER`; never a secret). */
  remoteUser?: string;
  /** Running git processes, so that the server can kill them when it stops. */
  children?: Set<ChildProcess>;
}

/** What {@link serveGitHttpBackend} answered. */
export interface GitHttpBackendResult {
  /** The HTTP status git chose (500 when it wrote no headers). */
  status: number;
  /** Size of the request body in bytes (a push's pack). */
  requestBytes: number;
}

/**
 * Runs git's own smart-HTTP CGI, `git http-backend`, for one request, and streams the request
 * into it and its answer into the response (both with back-pressure: the server holds no pack).
 */
export async function serveGitHttpBackend(request: IncomingMessage, response: ServerResponse, options: GitHttpBackendOptions): Promise<GitHttpBackendResult> {
  const declaredLength = request.headers["content-length"];
  const child = spawn("git", ["http-backend"], {
    stdio: ["pipe", "pipe", "pipe"],
    env: gitEnvironment({
      GIT_PROJECT_ROOT: options.projectRoot,
      GIT_HTTP_EXPORT_ALL: "1",
      // Access was checked by the server; receive-pack needs this (or REMOTE_USER) to run at all.
      GIT_CONFIG_COUNT: "1",
      GIT_CONFIG_KEY_0: "http.receivepack",
      GIT_CONFIG_VALUE_0: "true",
      REQUEST_METHOD: request.method ?? "GET",
      PATH_INFO: options.pathInfo,
      QUERY_STRING: options.query,
      CONTENT_TYPE: request.headers["content-type"] ?? "",
      // Without it (a chunked upload such as a large push), http-backend reads the body to its end.
      ...(declaredLength !== undefined ? { CONTENT_LENGTH: declaredLength } : {}),
      REMOTE_ADDR: request.socket.remoteAddress ?? "127.0.0.1",
      ...(options.remoteUser !== undefined ? { REMOTE_USER: options.remoteUser } : {}),
      ...(request.headers["content-encoding"] ? { HTTP_CONTENT_ENCODING: String(request.headers["content-encoding"]) } : {}),
      ...(request.headers["git-protocol"] ? { GIT_PROTOCOL: String(request.headers["git-protocol"]) } : {}),
    }),
  });
  options.children?.add(child);
  child.on("close", () => options.children?.delete(child));
  child.stdin.on("error", () => undefined);
  let requestBytes = 0;
  request.on("data", (chunk: Buffer) => {
    requestBytes += chunk.byteLength;
  });
  request.pipe(child.stdin);
  // http-backend's own diagnostics are not needed by tests; drain them so it never blocks.
  child.stderr.resume();
  const status = await relayCgiResponse(child, response);
  return { status, requestBytes };
}

/** Reads a whole request body into memory (test servers: bodies are small). */
export function readRequestBody(request: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => resolve(Buffer.concat(chunks)));
    request.on("error", reject);
  });
}

/** Reads HTTP Basic credentials from an Authorization header; undefined when there are none. */
export function parseBasicAuthorization(header: string | undefined):
  | {
      /** The user name before the colon. */
      username: string;
      /** The password (or token) after it. */
      password: string;
    }
  | undefined {
  if (!header?.toLowerCase().startsWith("basic ")) return undefined;
  const decoded = Buffer.from(header.slice(6).trim(), "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon === -1) return undefined;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

// CGI output: header lines (with `Status:`) up to a blank line, then the body, streamed through.
function relayCgiResponse(child: ChildProcess, response: ServerResponse): Promise<number> {
  return new Promise((resolve) => {
    let head = Buffer.alloc(0);
    let status = 0;
    // Back-pressure: git waits while the client is slower, so the server never holds a whole pack.
    const write = (chunk: Buffer) => {
      if (response.destroyed || response.write(chunk)) return;
      child.stdout!.pause();
      response.once("drain", () => child.stdout!.resume());
    };
    // A client that went away: the rest is read and dropped, so git is not left blocked.
    response.once("close", () => child.stdout!.resume());
    child.stdout!.on("data", (chunk: Buffer) => {
      if (status !== 0) {
        write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const crlf = head.indexOf("\r\n\r\n");
      const lf = head.indexOf("\n\n");
      const end = crlf !== -1 && (lf === -1 || crlf < lf) ? crlf : lf;
      if (end === -1) return;
      const headers: Record<string, string> = {};
      status = 200;
      for (const line of head.subarray(0, end).toString("latin1").split(/\r?\n/)) {
        const colon = line.indexOf(":");
        if (colon === -1) continue;
        const name = line.slice(0, colon).trim();
        const value = line.slice(colon + 1).trim();
        if (name.toLowerCase() === "status") status = Number.parseInt(value, 10) || 500;
        else headers[name] = value;
      }
      response.writeHead(status, headers);
      const rest = head.subarray(end + (end === crlf ? 4 : 2));
      if (rest.byteLength > 0) write(rest);
    });
    child.on("close", () => {
      if (status === 0) {
        status = 500;
        if (!response.headersSent) response.writeHead(500, { "content-type": "text/plain" });
      }
      response.end();
      resolve(status);
    });
  });
}
