import type { ChildProcess } from "node:child_process";
import { timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { parseBasicAuthorization, serveGitHttpBackend } from "./git-http-backend.js";
import { listenOnLoopback, stopGitServer } from "./git-server-lifecycle.js";

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
  /** The HTTP method. */
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
    const credentials = parseBasicAuthorization(request.headers.authorization);
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
    const answer = await serveGitHttpBackend(request, response, {
      projectRoot: options.root,
      pathInfo: decodeURIComponent(url.pathname),
      query: url.search.slice(1),
      ...(credentials ? { remoteUser: credentials.username || "git" } : {}),
      children,
    });
    record.status = answer.status;
    record.requestBytes = answer.requestBytes;
  }

  const port = await listenOnLoopback(server);
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= stopGitServer(server, children);
    return closing;
  };
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close,
    [Symbol.asyncDispose]: close,
  };
}

function matches(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.byteLength === b.byteLength && timingSafeEqual(a, b);
}
