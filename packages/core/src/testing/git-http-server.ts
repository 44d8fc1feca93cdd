import { spawn, type ChildProcess } from "node:child_process";
import { timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { gitEnvironment } from "../git/git-command.js";

/** Options for {@link startGitHttpServer}. */
export interface GitHttpServerOptions {
  /** Folder whose git repositories are served: `<url>/<name>` serves `<root>/<name>`. */
  root: string;
  /** When set, every request needs HTTP Basic auth with this password. */
  token?: string;
  /** When set (with a token), the Basic-auth user name must match too. */
  username?: string;
  /** Called as each request arrives (before it is answered), e.g. to abort a client mid-transfer. */
  onRequest?: (request: GitHttpRequestRecord) => void;
}

/** One request the server saw. Never holds the credentials themselves. */
export interface GitHttpRequestRecord {
  method: string;
  /** Path and query, e.g. `/repo.git/info/refs?service=git-upload-pack`. */
  path: string;
  /** True when the request carried an Authorization header. */
  authorizationPresent: boolean;
  /** The Basic-auth user name, when one was sent. */
  username?: string;
  /** True when the credentials matched (always true without a token). */
  authorized: boolean;
  /** The HTTP status sent back. */
  status: number;
  /** Size of the request body in bytes (a push's pack). */
  requestBytes: number;
}

/** A running smart-HTTP git server. */
export interface GitHttpServer extends AsyncDisposable {
  /** Base URL, `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** Every request so far, in order. */
  readonly requests: GitHttpRequestRecord[];
  /** Stops the server and any git process still running. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts git's own smart-HTTP server (`git http-backend`, one CGI process per request) behind
 * node:http on 127.0.0.1 and a free port, with an optional Basic-auth token. Clone, fetch and
 * push work with any git client. For tests: bodies are held in memory.
 */
export async function startGitHttpServer(options: GitHttpServerOptions): Promise<GitHttpServer> {
  const requests: GitHttpRequestRecord[] = [];
  const children = new Set<ChildProcess>();
  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      if (!response.headersSent) response.writeHead(500, { "content-type": "text/plain" });
      response.end(`git http-backend failed: ${(error as Error).message}\n`);
    });
  });

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? "/", "http://127.0.0.1");
    const credentials = parseBasicAuth(request.headers.authorization);
    const authorized = options.token === undefined || (credentials !== undefined && matches(credentials.password, options.token) && (options.username === undefined || credentials.username === options.username));
    const record: GitHttpRequestRecord = {
      method: request.method ?? "GET",
      path: `${url.pathname}${url.search}`,
      authorizationPresent: request.headers.authorization !== undefined,
      ...(credentials ? { username: credentials.username } : {}),
      authorized,
      status: 0,
      requestBytes: 0,
    };
    requests.push(record);
    options.onRequest?.(record);
    if (!authorized) {
      record.status = 401;
      response.writeHead(401, { "www-authenticate": 'Basic realm="git"', "content-type": "text/plain" });
      response.end("Authentication required\n");
      return;
    }
    const body = await readBody(request);
    record.requestBytes = body.byteLength;
    const child = spawn("git", ["http-backend"], {
      stdio: ["pipe", "pipe", "pipe"],
      env: gitEnvironment({
        GIT_PROJECT_ROOT: options.root,
        GIT_HTTP_EXPORT_ALL: "1",
        // Lets receive-pack (push) run without REMOTE_USER; auth is checked above.
        GIT_CONFIG_COUNT: "1",
        GIT_CONFIG_KEY_0: "http.receivepack",
        GIT_CONFIG_VALUE_0: "true",
        REQUEST_METHOD: record.method,
        PATH_INFO: decodeURIComponent(url.pathname),
        QUERY_STRING: url.search.slice(1),
        CONTENT_TYPE: request.headers["content-type"] ?? "",
        CONTENT_LENGTH: String(body.byteLength),
        REMOTE_ADDR: request.socket.remoteAddress ?? "127.0.0.1",
        ...(credentials ? { REMOTE_USER: credentials.username || "git" } : {}),
        ...(request.headers["content-encoding"] ? { HTTP_CONTENT_ENCODING: String(request.headers["content-encoding"]) } : {}),
        ...(request.headers["git-protocol"] ? { GIT_PROTOCOL: String(request.headers["git-protocol"]) } : {}),
      }),
    });
    children.add(child);
    child.on("close", () => children.delete(child));
    child.stdin.on("error", () => undefined);
    child.stdin.end(body);
    // http-backend's own diagnostics are not needed by tests; drain them so it never blocks.
    child.stderr.resume();
    await relayCgiResponse(child, response, record);
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      for (const child of children) child.kill("SIGKILL");
      server.close(() => resolve());
      server.closeAllConnections();
    });
    return closing;
  };
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close,
    [Symbol.asyncDispose]: close,
  };
}

// Reads the CGI output: header lines (with `Status:`) up to a blank line, then the body, streamed.
function relayCgiResponse(child: ChildProcess, response: ServerResponse, record: GitHttpRequestRecord): Promise<void> {
  return new Promise((resolve) => {
    let head = Buffer.alloc(0);
    let headersDone = false;
    child.stdout!.on("data", (chunk: Buffer) => {
      if (headersDone) {
        response.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const crlf = head.indexOf("\r\n\r\n");
      const lf = head.indexOf("\n\n");
      const end = crlf !== -1 && (lf === -1 || crlf < lf) ? crlf : lf;
      if (end === -1) return;
      const separatorLength = end === crlf ? 4 : 2;
      const headerText = head.subarray(0, end).toString("latin1");
      const rest = head.subarray(end + separatorLength);
      let status = 200;
      const headers: Record<string, string> = {};
      for (const line of headerText.split(/\r?\n/)) {
        const colon = line.indexOf(":");
        if (colon === -1) continue;
        const name = line.slice(0, colon).trim();
        const value = line.slice(colon + 1).trim();
        if (name.toLowerCase() === "status") status = Number.parseInt(value, 10) || 500;
        else headers[name] = value;
      }
      headersDone = true;
      record.status = status;
      response.writeHead(status, headers);
      if (rest.byteLength > 0) response.write(rest);
    });
    child.on("close", () => {
      if (!headersDone) {
        record.status = 500;
        if (!response.headersSent) response.writeHead(500, { "content-type": "text/plain" });
      }
      response.end();
      resolve();
    });
  });
}

function readBody(request: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => resolve(Buffer.concat(chunks)));
    request.on("error", reject);
  });
}

function parseBasicAuth(header: string | undefined): { username: string; password: string } | undefined {
  if (!header?.toLowerCase().startsWith("basic ")) return undefined;
  const decoded = Buffer.from(header.slice(6).trim(), "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon === -1) return undefined;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function matches(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.byteLength === b.byteLength && timingSafeEqual(a, b);
}
