import { spawn, type ChildProcess } from "node:child_process";
import type { IncomingMessage, ServerResponse } from "node:http";
import { serverGitEnvironment } from "./git-plumbing.js";

/** One git smart-HTTP request to hand to `git http-backend`, after the server has checked access. */
export interface GitBackendRequest {
  request: IncomingMessage;
  response: ServerResponse;
  /** The folder that holds `<owner>/<name>.git`. */
  projectRoot: string;
  /** The path inside it, e.g. `/octo/repo.git/info/refs`. */
  pathInfo: string;
  query: string;
  /** Who is pushing or fetching (never a secret). */
  remoteUser: string;
  /** Running children, so that the server can kill them when it stops. */
  children: Set<ChildProcess>;
}

/**
 * Runs git's own smart-HTTP CGI, `git http-backend`, for one request and relays its answer.
 * Returns the HTTP status git chose.
 */
export async function runGitHttpBackend(options: GitBackendRequest): Promise<number> {
  const { request, response } = options;
  const body = await readBody(request);
  const child = spawn("git", ["http-backend"], {
    stdio: ["pipe", "pipe", "pipe"],
    env: serverGitEnvironment({
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
      CONTENT_LENGTH: String(body.byteLength),
      REMOTE_ADDR: request.socket.remoteAddress ?? "127.0.0.1",
      REMOTE_USER: options.remoteUser,
      ...(request.headers["content-encoding"] ? { HTTP_CONTENT_ENCODING: String(request.headers["content-encoding"]) } : {}),
      ...(request.headers["git-protocol"] ? { GIT_PROTOCOL: String(request.headers["git-protocol"]) } : {}),
    }),
  });
  options.children.add(child);
  child.on("close", () => options.children.delete(child));
  child.stdin.on("error", () => undefined);
  child.stdin.end(body);
  child.stderr.resume();
  return relayCgiResponse(child, response);
}

// CGI output: header lines (with `Status:`) up to a blank line, then the body, streamed through.
function relayCgiResponse(child: ChildProcess, response: ServerResponse): Promise<number> {
  return new Promise((resolve) => {
    let head = Buffer.alloc(0);
    let status = 0;
    child.stdout!.on("data", (chunk: Buffer) => {
      if (status !== 0) {
        response.write(chunk);
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
      if (rest.byteLength > 0) response.write(rest);
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

/** Reads a whole request body into memory (test server: bodies are small). */
export function readBody(request: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => resolve(Buffer.concat(chunks)));
    request.on("error", reject);
  });
}
