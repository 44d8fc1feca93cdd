import { shortSocketPath } from "./short-socket-path.js";
import { mkdtemp, rm } from "node:fs/promises";
import { lookup } from "node:dns/promises";
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";
import { connect, isIP, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import { createModelRoute, type ModelRoute } from "../agent/model-proxy.js";
import type { ResolvedModel } from "../agent/model-resolution.js";
import { SANDBOX_EGRESS_PROXY_URL } from "../spec/sandbox-spec.js";
import type { SandboxNetworkPolicy } from "../spec/sandbox-spec.js";
import { EgressRules, type EgressDecision } from "./network-policy.js";

/** `"open"` admits every name and address, special ranges included; `"none"` nothing. */
function rulesFor(policy: SandboxNetworkPolicy): EgressRules {
  if (policy === "open") return new EgressRules(["0.0.0.0/0", "::/0"], { anyName: true });
  return new EgressRules(policy === "none" ? [] : policy.allow);
}

/** A connection the proxy refused. */
export interface BlockedConnection {
  /** The host name or address asked for. */
  host: string;
  /** The port asked for. */
  port: number;
  /** Why, in a sentence. */
  reason: string;
  /** `CONNECT` for a tunnel (HTTPS), else the HTTP method. */
  method: string;
}

/** Settings for {@link startEgressProxy}. */
export interface EgressProxyOptions {
  /** Where connections may go: `"none"`, `"open"` (anywhere), or domains, `*.domains`, addresses and CIDR ranges. */
  policy: SandboxNetworkPolicy;
  /** The model reached through the proxy's own route (origin-form requests). */
  model?: ResolvedModel;
  /** True (default): the sandbox holds a run token and the route adds the real key; false: the sandbox's own key passes through. */
  keyOnHost?: boolean;
  /** Called for each refused connection. */
  onBlocked?: (blocked: BlockedConnection) => void;
}

/** The host-side egress proxy of one sandbox: the only way out of it, and its way to the model. */
export interface EgressProxy {
  /** The Unix socket it listens on; providers bind it into the sandbox. */
  readonly socketPath: string;
  /** Refused connections so far, in order (at most 1000 kept). */
  readonly blocked: readonly BlockedConnection[];
  /** The model route, when a model was given: its token and the model as the sandbox sees it. */
  readonly modelRoute?: ModelRoute;
  /** The model as OpenCode inside must be configured with: its base URL through this proxy. */
  readonly sandboxModel?: ResolvedModel;
  /** Replaces the policy (setup commands may have their own); open connections stay. */
  setPolicy(policy: SandboxNetworkPolicy): void;
  /** Replaces the refusal listener (a pooled sandbox's proxy reports to the task that takes it). */
  setOnBlocked(listener: ((blocked: BlockedConnection) => void) | undefined): void;
  /** Stops listening, ends open connections and removes the socket. */
  close(): Promise<void>;
}

const MAX_BLOCKED_KEPT = 1000;

/**
 * Starts an HTTP proxy on a Unix socket: `CONNECT host:port` tunnels and absolute-form plain HTTP
 * requests go out when the allow-list admits them, by host name first (a name off the list is
 * refused without being resolved) and then by each resolved address (loopback, link-local and
 * private ranges only when an address or CIDR entry names them, so that an allowed name resolving
 * to 127.0.0.1 is refused). DNS is resolved here, on the host, and the connection goes to the
 * address that was checked. Origin-form requests are the model's route: the run's token in, the
 * real key out, so the key never enters the sandbox.
 */
export async function startEgressProxy(options: EgressProxyOptions): Promise<EgressProxy> {
  let rules = rulesFor(options.policy);
  let onBlocked = options.onBlocked;
  const blocked: BlockedConnection[] = [];
  const modelRoute = options.model ? createModelRoute(options.model, { keyOnHost: options.keyOnHost ?? true }) : undefined;
  const folder = await mkdtemp(join(tmpdir(), "running-agent-egress-"));
  const socketPath = join(folder, "egress.sock");
  const sockets = new Set<Duplex>();
  const track = (socket: Duplex) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  };

  function refuse(host: string, port: number, method: string, reason: string): void {
    const entry = { host, port, reason, method };
    if (blocked.length < MAX_BLOCKED_KEPT) blocked.push(entry);
    onBlocked?.(entry);
  }

  /** Checks a destination and resolves the address to connect to, or the reason it is refused. */
  async function decide(host: string, port: number): Promise<{ address: string } | { refused: string }> {
    if (!(Number.isInteger(port) && port > 0 && port < 65_536)) return { refused: `${port} is not a port` };
    const current = rules;
    if (isIP(host) !== 0) {
      const decision = current.allowsAddress(host, false);
      return decision.allowed ? { address: host } : { refused: decision.reason };
    }
    if (!current.allowsName(host)) return { refused: `${host} is not on the allow-list` };
    let addresses: Array<{ address: string }>;
    try {
      addresses = await lookup(host, { all: true, verbatim: true });
    } catch (error) {
      return { refused: `${host} does not resolve (${(error as NodeJS.ErrnoException).code ?? "error"})` };
    }
    // Every address must pass: a name that resolves to both a public and a private address is refused.
    const decisions: EgressDecision[] = addresses.map((entry) => current.allowsAddress(entry.address, true));
    const refusal = decisions.find((decision): decision is Extract<EgressDecision, { allowed: false }> => !decision.allowed);
    if (refusal || addresses.length === 0) return { refused: `${host} resolves to ${refusal ? refusal.reason : "no address"}` };
    return { address: addresses[0]!.address };
  }

  const server = createServer((incoming, outgoing) => {
    let target = incoming.url ?? "/";
    // A client that sends its model requests through the proxy variables names the proxy itself: same route.
    if (target.startsWith(`${SANDBOX_EGRESS_PROXY_URL}/`)) target = incoming.url = target.slice(SANDBOX_EGRESS_PROXY_URL.length);
    if (target.startsWith("/")) {
      if (modelRoute && target.startsWith(modelRoute.basePath)) return modelRoute.handle(incoming, outgoing);
      outgoing.writeHead(404, { "content-type": "text/plain" }).end("Not a proxy request.\n");
      return;
    }
    void forwardPlainHttp(incoming, outgoing);
  });
  server.on("connection", track);
  server.on("connect", (incoming: IncomingMessage, client: Duplex, head: Buffer) => void tunnel(incoming, client, head));

  async function forwardPlainHttp(incoming: IncomingMessage, outgoing: ServerResponse): Promise<void> {
    let url: URL;
    try {
      url = new URL(incoming.url ?? "");
    } catch {
      outgoing.writeHead(400, { "content-type": "text/plain" }).end("Bad request URL.\n");
      return;
    }
    if (url.protocol !== "http:") {
      outgoing.writeHead(400, { "content-type": "text/plain" }).end("Only http:// URLs are proxied as requests; use CONNECT for https.\n");
      return;
    }
    const host = url.hostname.replace(/^\[|\]$/g, "");
    const port = Number(url.port || 80);
    const decision = await decide(host, port);
    if ("refused" in decision) {
      refuse(host, port, incoming.method ?? "GET", decision.refused);
      outgoing.writeHead(403, { "content-type": "text/plain" }).end(`Refused by the sandbox's network policy: ${decision.refused}.\n`);
      return;
    }
    const headers: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(incoming.headers)) {
      if (value !== undefined && !name.startsWith("proxy-")) headers[name] = value;
    }
    const upstream = httpRequest({ host: decision.address, port, method: incoming.method, path: `${url.pathname}${url.search}`, headers, setHost: false }, (response) => {
      outgoing.writeHead(response.statusCode ?? 502, response.headers);
      response.pipe(outgoing);
    });
    upstream.on("error", (error) => {
      if (!outgoing.headersSent) outgoing.writeHead(502, { "content-type": "text/plain" });
      outgoing.end(`The egress proxy could not reach ${host}:${port}: ${error.message}\n`);
    });
    outgoing.on("close", () => upstream.destroy());
    incoming.pipe(upstream);
  }

  async function tunnel(incoming: IncomingMessage, client: Duplex, head: Buffer): Promise<void> {
    track(client);
    client.on("error", () => undefined);
    const match = /^\[?([^\]]+?)\]?:(\d+)$/.exec(incoming.url ?? "");
    if (!match) {
      client.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n");
      return;
    }
    const host = match[1]!;
    const port = Number(match[2]);
    const decision = await decide(host, port);
    if ("refused" in decision) {
      refuse(host, port, "CONNECT", decision.refused);
      client.end(`HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nRefused by the sandbox's network policy: ${decision.refused}.\n`);
      return;
    }
    const upstream: Socket = connect({ host: decision.address, port });
    track(upstream);
    upstream.once("connect", () => {
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.once("error", (error) => {
      if (client.writable) client.end(`HTTP/1.1 502 Bad Gateway\r\nconnection: close\r\n\r\n${error.message}\n`);
      else client.destroy();
    });
    client.once("close", () => upstream.destroy());
  }

  // A deep TMPDIR makes a path longer than a socket address may be: listen through a short link.
  const listenPath = await shortSocketPath(socketPath);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(listenPath.path, () => resolve());
    });
  } catch (error) {
    await listenPath.release();
    await rm(folder, { recursive: true, force: true });
    throw error;
  }
  let closing: Promise<void> | undefined;
  return {
    socketPath,
    blocked,
    ...(modelRoute ? { modelRoute, sandboxModel: modelRoute.sandboxModel(`${SANDBOX_EGRESS_PROXY_URL}${modelRoute.basePath}`) } : {}),
    setPolicy: (policy) => {
      rules = rulesFor(policy);
    },
    setOnBlocked: (listener) => {
      onBlocked = listener;
    },
    close: () =>
      (closing ??= (async () => {
        for (const socket of sockets) socket.destroy();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await listenPath.release();
        await rm(folder, { recursive: true, force: true });
      })()),
  };
}
