import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import type { Socket } from "node:net";

/** A tool call the scripted model makes. */
export interface ScriptedToolCall {
  /** The tool's name as the client offered it, e.g. `write`, `bash`, `read`. */
  name: string;
  /** The arguments: an object (sent as JSON) or a raw string (sent as is, to test bad arguments). */
  arguments: Record<string, unknown> | string;
  /** The call id; generated when absent. */
  id?: string;
}

/** Token counts reported in the usage chunk. Estimated from the text sizes when absent. */
export interface ScriptedUsage {
  /** Input tokens reported. */
  promptTokens?: number;
  /** Output tokens reported. */
  completionTokens?: number;
}

/** Fields every answering turn may carry. */
interface ScriptedTurnTiming {
  /** Wait this long before the response starts (simulates a slow model). */
  delayMs?: number;
  /** Wait this long between streamed chunks (simulates slow generation). */
  chunkDelayMs?: number;
}

/** The model answers with tool calls (and optionally some text before them). `finish_reason` is `tool_calls`. */
export interface ScriptedToolCallsTurn extends ScriptedTurnTiming {
  /** The calls, streamed in order. */
  toolCalls: ScriptedToolCall[];
  /** Text streamed before the calls. */
  text?: string;
  /** The usage chunk's counts. */
  usage?: ScriptedUsage;
}

/** The model answers with text. `finish_reason` is `stop`. */
export interface ScriptedTextTurn extends ScriptedTurnTiming {
  /** The answer, streamed in chunks. */
  text: string;
  /** The usage chunk's counts. */
  usage?: ScriptedUsage;
}

/** The server answers with an HTTP error (e.g. 500, 429, 400). */
export interface ScriptedErrorTurn extends Pick<ScriptedTurnTiming, "delayMs"> {
  /** The HTTP status. */
  status: number;
  /** The response body; an object is sent as JSON. Default: an OpenAI-style `{ error: { message, type } }`. */
  body?: unknown;
  /** Extra response headers (e.g. `retry-after`). */
  headers?: Record<string, string>;
}

/** The server accepts the request and never answers (until the client gives up or the server closes). */
export interface ScriptedHangTurn {
  /** Marks the turn as a hang. */
  hang: true;
}

/** One fixed answer of the script. */
export type ScriptedStaticTurn = ScriptedToolCallsTurn | ScriptedTextTurn | ScriptedErrorTurn | ScriptedHangTurn;

/** A turn computed from the request it answers (e.g. to echo a tool result). */
export type ScriptedTurnFunction = (request: RecordedModelRequest) => ScriptedStaticTurn | Promise<ScriptedStaticTurn>;

/** One turn of the script: each chat-completions request plays the next turn. */
export type ScriptedTurn = ScriptedStaticTurn | ScriptedTurnFunction;

/** A request the server received, kept for assertions. */
export interface RecordedModelRequest {
  /** The HTTP method. */
  method: string;
  /** The path with the query, e.g. `/v1/chat/completions`. */
  path: string;
  /** Header names are lower case. */
  headers: IncomingHttpHeaders;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  body: any;
  /** The body as text. */
  rawBody: string;
  /** Milliseconds since the epoch. */
  receivedAt: number;
  /** For chat-completions requests: the index of the turn that answered it. */
  turnIndex?: number;
}

/** Options for {@link startScriptedModelServer}. */
export interface ScriptedModelServerOptions {
  /** The turns, played in order, one per chat-completions request. */
  script?: ScriptedTurn[];
  /** What every request gets once the script has run out. Default `{ text: "Done." }`, so a client never hangs. */
  afterScript?: ScriptedTurn;
  /** When set, requests must carry `Authorization: Bearer <apiKey>`; others get 401. */
  apiKey?: string;
  /** Model ids listed by `GET /v1/models`. Default `["scripted-model"]`. */
  models?: string[];
  /** Port to listen on; default 0 (a free port). The host is always 127.0.0.1. */
  port?: number;
}

/** A running scripted model server. Dispose it (or call {@link ScriptedModelServer.close}) when done. */
export interface ScriptedModelServer extends AsyncDisposable {
  /** The OpenAI-compatible base URL, `http://127.0.0.1:PORT/v1`. */
  readonly url: string;
  /** The port it listens on, on 127.0.0.1. */
  readonly port: number;
  /** Every request received, in order (including `GET /v1/models` and rejected ones). */
  readonly requests: readonly RecordedModelRequest[];
  /** Only the chat-completions requests, in order. */
  readonly chatRequests: readonly RecordedModelRequest[];
  /** How many chat-completions requests have been answered from the script (not counting `afterScript`). */
  readonly turnsPlayed: number;
  /** Resolves once at least `count` chat-completions requests have arrived; rejects on timeout or when the server closes first. */
  waitForChatRequests(count: number, options?: { timeoutMs?: number }): Promise<void>;
  /** Stops listening and destroys every open connection (hanging requests included). Idempotent. */
  close(): Promise<void>;
}

const DEFAULT_AFTER_SCRIPT: ScriptedTextTurn = { text: "Done." };

/**
 * Starts an OpenAI-compatible chat-completions server on 127.0.0.1 that plays a script.
 *
 * Each `POST /v1/chat/completions` request plays the next turn: tool calls, text, an HTTP error, a hang,
 * or a function of the request. Streaming requests (`stream: true`, as OpenCode and most agents send) get
 * server-sent chunks the way OpenAI streams them, ending with a usage chunk and `data: [DONE]`; others
 * get one JSON completion. `GET /v1/models` lists the model ids. Every request is recorded.
 *
 * @example
 * ```ts
 * await using model = await startScriptedModelServer({
 *   apiKey: "test-key",
 *   script: [
 *     { toolCalls: [{ name: "write", arguments: { filePath: "hello.txt", content: "hi\n" } }] },
 *     { text: "Wrote hello.txt." },
 *   ],
 * });
 * // point the agent at model.url with the key "test-key"; afterwards inspect model.chatRequests
 * ```
 */
export async function startScriptedModelServer(options: ScriptedModelServerOptions = {}): Promise<ScriptedModelServer> {
  const script = [...(options.script ?? [])];
  const afterScript = options.afterScript ?? DEFAULT_AFTER_SCRIPT;
  const models = options.models ?? ["scripted-model"];
  const requests: RecordedModelRequest[] = [];
  const chatRequests: RecordedModelRequest[] = [];
  const sockets = new Set<Socket>();
  const chatWaiters = new Set<{ check: () => void; cancel: () => void }>();
  let turnsPlayed = 0;
  let closed = false;

  const server = createServer((request, response) => {
    handleRequest(request, response).catch((error: unknown) => {
      if (!response.headersSent) {
        sendJson(response, 500, { error: { message: `scripted model server: ${String(error)}`, type: "server_error" } });
      } else {
        response.destroy();
      }
    });
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });

  async function handleRequest(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const rawBody = await readBody(request);
    let body: unknown;
    try {
      body = rawBody.length > 0 ? JSON.parse(rawBody) : undefined;
    } catch {
      body = undefined;
    }
    const recorded: RecordedModelRequest = {
      method: request.method ?? "GET",
      path: request.url ?? "/",
      headers: request.headers,
      body,
      rawBody,
      receivedAt: Date.now(),
    };
    requests.push(recorded);
    const pathname = new URL(recorded.path, "http://127.0.0.1").pathname.replace(/\/+$/, "");

    if (options.apiKey !== undefined && request.headers.authorization !== `Bearer ${options.apiKey}`) {
      sendJson(response, 401, { error: { message: "Incorrect API key provided.", type: "invalid_request_error", code: "invalid_api_key" } });
      return;
    }
    if (recorded.method === "GET" && pathname === "/v1/models") {
      sendJson(response, 200, { object: "list", data: models.map((id) => ({ id, object: "model", created: 0, owned_by: "scripted" })) });
      return;
    }
    if (recorded.method !== "POST" || pathname !== "/v1/chat/completions") {
      sendJson(response, 404, { error: { message: `No route for ${recorded.method} ${pathname}`, type: "invalid_request_error" } });
      return;
    }

    const fromScript = turnsPlayed < script.length;
    const scripted = fromScript ? script[turnsPlayed] : afterScript;
    recorded.turnIndex = turnsPlayed;
    if (fromScript) turnsPlayed += 1;
    chatRequests.push(recorded);
    for (const waiter of chatWaiters) waiter.check();

    const turn = typeof scripted === "function" ? await scripted(recorded) : scripted!;
    await answerTurn(turn, recorded, response);
  }

  async function answerTurn(turn: ScriptedStaticTurn, request: RecordedModelRequest, response: ServerResponse): Promise<void> {
    if ("hang" in turn) return; // never answer; close() destroys the socket
    if (turn.delayMs) await sleep(turn.delayMs);
    if (response.destroyed) return;
    if ("status" in turn) {
      const errorBody = turn.body ?? { error: { message: `Scripted error ${turn.status}`, type: turn.status >= 500 ? "server_error" : "invalid_request_error" } };
      if (typeof errorBody === "string") {
        response.writeHead(turn.status, { "content-type": "text/plain", ...turn.headers });
        response.end(errorBody);
      } else {
        sendJson(response, turn.status, errorBody, turn.headers);
      }
      return;
    }
    const model = typeof request.body?.model === "string" ? request.body.model : models[0];
    const id = `chatcmpl-scripted-${request.turnIndex ?? 0}-${requests.length}`;
    const created = Math.floor(Date.now() / 1000);
    const text = turn.text ?? "";
    const toolCalls = ("toolCalls" in turn ? turn.toolCalls : []).map((call, index) => ({
      id: call.id ?? `call_${request.turnIndex ?? 0}_${index}`,
      name: call.name,
      arguments: typeof call.arguments === "string" ? call.arguments : JSON.stringify(call.arguments),
    }));
    const finishReason = toolCalls.length > 0 ? "tool_calls" : "stop";
    const usage = {
      prompt_tokens: turn.usage?.promptTokens ?? Math.max(1, Math.ceil(request.rawBody.length / 4)),
      completion_tokens:
        turn.usage?.completionTokens ?? Math.max(1, Math.ceil((text.length + toolCalls.reduce((sum, call) => sum + call.arguments.length, 0)) / 4)),
    };
    const usageBlock = { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens };

    if (request.body?.stream !== true) {
      sendJson(response, 200, {
        id,
        object: "chat.completion",
        created,
        model,
        choices: [
          {
            index: 0,
            message: {
              role: "assistant",
              content: text.length > 0 ? text : null,
              ...(toolCalls.length > 0
                ? { tool_calls: toolCalls.map((call) => ({ id: call.id, type: "function", function: { name: call.name, arguments: call.arguments } })) }
                : {}),
            },
            finish_reason: finishReason,
          },
        ],
        usage: usageBlock,
      });
      return;
    }

    response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
    const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) => ({ id, object: "chat.completion.chunk", created, model, choices, ...extra });
    const events: unknown[] = [chunk([{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }])];
    for (const piece of splitText(text)) {
      events.push(chunk([{ index: 0, delta: { content: piece }, finish_reason: null }]));
    }
    toolCalls.forEach((call, index) => {
      events.push(
        chunk([
          {
            index: 0,
            delta: { tool_calls: [{ index, id: call.id, type: "function", function: { name: call.name, arguments: "" } }] },
            finish_reason: null,
          },
        ]),
      );
      for (const piece of splitText(call.arguments)) {
        events.push(chunk([{ index: 0, delta: { tool_calls: [{ index, function: { arguments: piece } }] }, finish_reason: null }]));
      }
    });
    events.push(chunk([{ index: 0, delta: {}, finish_reason: finishReason }]));
    if (request.body?.stream_options?.include_usage !== false) events.push(chunk([], { usage: usageBlock }));
    for (const event of events) {
      if (response.destroyed) return;
      response.write(`data: ${JSON.stringify(event)}\n\n`);
      if (turn.chunkDelayMs) await sleep(turn.chunkDelayMs);
    }
    response.end("data: [DONE]\n\n");
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;

  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    for (const waiter of chatWaiters) waiter.cancel();
    const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of sockets) socket.destroy();
    await stopped;
  };

  return {
    url: `http://127.0.0.1:${port}/v1`,
    port,
    requests,
    chatRequests,
    get turnsPlayed() {
      return turnsPlayed;
    },
    waitForChatRequests(count, waitOptions = {}) {
      if (chatRequests.length >= count) return Promise.resolve();
      if (closed) return Promise.reject(new Error("The scripted model server is closed."));
      return new Promise<void>((resolve, reject) => {
        const end = (error?: Error) => {
          chatWaiters.delete(waiter);
          if (timer) clearTimeout(timer);
          if (error) reject(error);
          else resolve();
        };
        const waiter = {
          check: () => {
            if (chatRequests.length >= count) end();
          },
          cancel: () => end(new Error(`The scripted model server closed before ${count} chat requests arrived (got ${chatRequests.length}).`)),
        };
        const timer =
          waitOptions.timeoutMs === undefined
            ? undefined
            : setTimeout(() => end(new Error(`Timed out waiting for ${count} chat requests (got ${chatRequests.length}).`)), waitOptions.timeoutMs);
        chatWaiters.add(waiter);
      });
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    request.on("error", reject);
  });
}

function sendJson(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  response.writeHead(status, { "content-type": "application/json", ...headers });
  response.end(JSON.stringify(body));
}

/** Cuts text into a few pieces so that clients see real deltas. */
function splitText(text: string): string[] {
  const characters = Array.from(text); // by code point, so no piece ends inside a surrogate pair
  if (characters.length === 0) return [];
  const size = Math.max(8, Math.ceil(characters.length / 4));
  const pieces: string[] = [];
  for (let start = 0; start < characters.length; start += size) pieces.push(characters.slice(start, start + size).join(""));
  return pieces;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * The working directory OpenCode names in its system prompt, read from a recorded request.
 * OpenCode's file tools want absolute paths, so scripts build them from this. `.` when absent.
 */
export function workingDirectoryOf(request: RecordedModelRequest): string {
  const match = /Working directory: ([^\s"\\]+)/.exec(JSON.stringify(request.body?.messages ?? []));
  return match?.[1] ?? ".";
}
