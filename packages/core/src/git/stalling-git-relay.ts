import { createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** What {@link startStallingGitRelay} does with one request. */
export type RelayBehaviour =
  /** Relayed as it is. */
  | { kind: "pass" }
  /** Read, never answered: the connection stays open and silent. */
  | { kind: "silent" }
  /** The status, headers and the first `bytes` of the answer, then nothing more. */
  | { kind: "stall-after"; bytes: number }
  /** The whole answer, in `pieces` parts with `gapMs` between them: slow but always moving. */
  | { kind: "drip"; pieces: number; gapMs: number }
  /** The request body taken `bytes` at a time with `gapMs` between (a slow upload that keeps moving), then relayed. */
  | { kind: "read-slowly"; bytes: number; gapMs: number };

/** One request the relay held back or slowed. */
export interface HeldRequest {
  method: string;
  path: string;
  behaviour: RelayBehaviour["kind"];
  /** Bytes of the answer sent before it stalled (or in all, for a drip). */
  bytesSent: number;
}

/** A relay in front of a git HTTP server. */
export interface StallingGitRelay extends AsyncDisposable {
  /** Base URL, `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** Requests that were not simply relayed, as they were handled. */
  readonly held: HeldRequest[];
  /** Connections accepted so far. */
  readonly connections: () => number;
  close(): Promise<void>;
}

/**
 * For tests: a git remote that accepts connections and then stops answering, at the point
 * `decide` picks per request (method and path), relaying the rest to `target` (a smart-HTTP
 * server such as startGitHttpServer). Loopback only.
 */
export async function startStallingGitRelay(target: string, decide: (method: string, path: string) => RelayBehaviour): Promise<StallingGitRelay> {
  const held: HeldRequest[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let connections = 0;
  const server = createServer((request, response) => {
    handle(request, response).catch(() => response.destroy());
  });
  server.on("connection", () => connections++);

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const method = request.method ?? "GET";
    const path = request.url ?? "/";
    const behaviour = decide(method, path);
    const body = behaviour.kind === "read-slowly" ? await readSlowly(request, behaviour.bytes, behaviour.gapMs, timers) : await readAll(request);
    if (behaviour.kind === "silent") {
      held.push({ method, path, behaviour: behaviour.kind, bytesSent: 0 });
      return;
    }
    const answer = await relay(target, method, path, request.headers, body);
    if (behaviour.kind === "read-slowly") held.push({ method, path, behaviour: behaviour.kind, bytesSent: 0 });
    if (behaviour.kind === "pass" || behaviour.kind === "read-slowly") {
      response.writeHead(answer.status, answer.headers);
      response.end(answer.body);
      return;
    }
    // Sent as a stream of its own length, so that only the missing bytes show the stall.
    const headers = { ...answer.headers, "transfer-encoding": "chunked" };
    delete headers["content-length"];
    response.writeHead(answer.status, headers);
    if (behaviour.kind === "stall-after") {
      const part = answer.body.subarray(0, behaviour.bytes);
      response.write(part);
      held.push({ method, path, behaviour: behaviour.kind, bytesSent: part.byteLength });
      return;
    }
    const record: HeldRequest = { method, path, behaviour: behaviour.kind, bytesSent: 0 };
    held.push(record);
    const size = Math.ceil(answer.body.byteLength / behaviour.pieces);
    const sendFrom = (offset: number): void => {
      if (offset >= answer.body.byteLength) return void response.end();
      const part = answer.body.subarray(offset, offset + size);
      response.write(part);
      record.bytesSent += part.byteLength;
      const timer = setTimeout(() => {
        timers.delete(timer);
        sendFrom(offset + size);
      }, behaviour.gapMs);
      timers.add(timer);
    };
    sendFrom(0);
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      for (const timer of timers) clearTimeout(timer);
      server.close(() => resolve());
      server.closeAllConnections();
    });
    return closing;
  };
  return { url: `http://127.0.0.1:${port}`, held, connections: () => connections, close, [Symbol.asyncDispose]: close };
}

function readAll(stream: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("end", () => resolve(Buffer.concat(chunks)));
    stream.on("error", reject);
  });
}

/** Reads `bytes`, pauses `gapMs`, and so on: TCP back-pressure makes the sender wait in between. */
function readSlowly(stream: IncomingMessage, bytes: number, gapMs: number, timers: Set<NodeJS.Timeout>): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let sinceGap = 0;
    stream.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
      sinceGap += chunk.byteLength;
      if (sinceGap < bytes) return;
      sinceGap = 0;
      stream.pause();
      const timer = setTimeout(() => {
        timers.delete(timer);
        stream.resume();
      }, gapMs);
      timers.add(timer);
    });
    stream.on("end", () => resolve(Buffer.concat(chunks)));
    stream.on("error", reject);
  });
}

function relay(target: string, method: string, path: string, headers: IncomingHttpHeaders, body: Buffer): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const forwarded = { ...headers, host: new URL(target).host, "content-length": String(body.byteLength) };
    delete forwarded["transfer-encoding"];
    const outgoing = httpRequest(new URL(path, target), { method, headers: forwarded }, (incoming) => {
      readAll(incoming).then((answer) => resolve({ status: incoming.statusCode ?? 502, headers: incoming.headers, body: answer }), reject);
    });
    outgoing.on("error", reject);
    outgoing.end(body);
  });
}
