import { randomBytes, timingSafeEqual } from "node:crypto";
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";
import { request as httpsRequest } from "node:https";
import type { Socket } from "node:net";
import type { ModelProvider } from "../model.js";
import type { ResolvedModel } from "./model-resolution.js";

/** Where each built-in provider's API lives when the caller gives no base URL. */
const DEFAULT_BASE_URLS: Record<Exclude<ModelProvider, "openai-compatible">, string> = {
  google: "https://generativelanguage.googleapis.com/v1beta",
  anthropic: "https://api.anthropic.com/v1",
  openai: "https://api.openai.com/v1",
};

/** Headers a model SDK may carry its key in; the proxy takes the run token from any of them. */
const KEY_HEADERS = ["authorization", "x-api-key", "x-goog-api-key"] as const;

/** A model proxy on the host: the sandbox holds only a per-run token, the proxy adds the real key. */
export interface ModelProxy {
  /** The base URL the sandbox uses, e.g. `http://127.0.0.1:41234/v1beta`. */
  readonly url: string;
  /** The per-run token the sandbox presents instead of the key. Worth nothing outside this run. */
  readonly token: string;
  /** The model as the sandbox must see it: the proxy's URL and the token in place of the key. */
  readonly sandboxModel: ResolvedModel;
  /** Stops listening and ends open connections. */
  close(): Promise<void>;
}

/** The model's API as a route of a host-side server: checks the run's token, adds the real key, forwards. */
export interface ModelRoute {
  /** The per-run token the sandbox presents instead of the key. */
  readonly token: string;
  /** The upstream API's base path (e.g. `/v1beta`): the sandbox's base URL ends with it. */
  readonly basePath: string;
  /** Serves one request whose path starts with {@link basePath}. */
  handle(incoming: IncomingMessage, outgoing: ServerResponse): void;
  /** The model as the sandbox must see it, given the base URL (ending in {@link basePath}) it reaches the route on. */
  sandboxModel(url: string): ResolvedModel;
}

/** Builds the route that forwards the model SDK's requests to the model's API with the real key. */
export function createModelRoute(model: ResolvedModel, options: { keyOnHost?: boolean } = {}): ModelRoute {
  const keyOnHost = options.keyOnHost ?? true;
  const upstream = new URL(model.baseURL ?? DEFAULT_BASE_URLS[model.provider as Exclude<ModelProvider, "openai-compatible">]);
  const basePath = upstream.pathname.replace(/\/$/, "");
  const token = `run-${randomBytes(24).toString("hex")}`;

  function presentsToken(incoming: IncomingMessage): boolean {
    const expected = Buffer.from(token);
    return KEY_HEADERS.some((name) => {
      const value = incoming.headers[name];
      if (typeof value !== "string") return false;
      const presented = Buffer.from(value.replace(/^Bearer\s+/i, ""));
      return presented.length === expected.length && timingSafeEqual(presented, expected);
    });
  }

  function handle(incoming: IncomingMessage, outgoing: ServerResponse): void {
    if (keyOnHost && !presentsToken(incoming)) {
      outgoing.writeHead(401, { "content-type": "application/json" }).end('{"error":{"message":"This run\'s token is required."}}');
      return;
    }
    // The sandbox's path is relative to the proxy's base path; the same suffix goes after the upstream base path.
    const suffix = (incoming.url ?? "/").slice(basePath.length) || "/";
    const target = new URL(basePath + suffix, upstream);
    const headers: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(incoming.headers)) {
      if (value === undefined || name === "host" || name === "connection" || name === "proxy-connection" || (keyOnHost && (KEY_HEADERS as readonly string[]).includes(name))) continue;
      headers[name] = value;
    }
    if (keyOnHost && model.apiKey !== undefined) Object.assign(headers, keyHeaders(model.provider, model.apiKey));
    const send = target.protocol === "https:" ? httpsRequest : httpRequest;
    const upstreamRequest = send(target, { method: incoming.method, headers }, (response) => {
      outgoing.writeHead(response.statusCode ?? 502, response.headers);
      response.pipe(outgoing);
    });
    upstreamRequest.on("error", (error) => {
      if (!outgoing.headersSent) outgoing.writeHead(502, { "content-type": "application/json" });
      outgoing.end(JSON.stringify({ error: { message: `The model proxy could not reach the model's API: ${error.message}` } }));
    });
    outgoing.on("close", () => upstreamRequest.destroy());
    incoming.pipe(upstreamRequest);
  }

  return {
    token,
    basePath,
    handle,
    sandboxModel: (url) => ({
      ...model,
      apiKey: keyOnHost ? token : model.apiKey,
      baseURL: url,
      opencodeProvider: { ...model.opencodeProvider, options: { ...model.opencodeProvider.options, baseURL: url } },
    }),
  };
}

/**
 * Starts a proxy on 127.0.0.1 that forwards the model SDK's requests to the model's API with the
 * real key, so the key never enters the sandbox. Requests without the run's token get 401.
 * Responses (server-sent events included) stream through unchanged. For sandboxes that reach the
 * host's loopback; sandboxes behind the egress proxy get the same route there (`startEgressProxy`).
 */
export async function startModelProxy(model: ResolvedModel): Promise<ModelProxy> {
  const route = createModelRoute(model);
  const sockets = new Set<Socket>();
  const server = createServer((incoming, outgoing) => route.handle(incoming, outgoing));
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  const url = `http://127.0.0.1:${port}${route.basePath}`;
  return {
    url,
    token: route.token,
    sandboxModel: route.sandboxModel(url),
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

function keyHeaders(provider: ModelProvider, apiKey: string): Record<string, string> {
  if (provider === "anthropic") return { "x-api-key": apiKey };
  if (provider === "google") return { "x-goog-api-key": apiKey };
  return { authorization: `Bearer ${apiKey}` };
}
