import { createOpencodeClient, type Event as OpencodeEvent, type Message, type Part } from "@opencode-ai/sdk/v2/client";
import { abortedError, agentError, ErrorCode, RunningAgentError } from "../errors.js";
import type { AgentTaskEventInput, TokenUsage } from "../events.js";
import type { SandboxProcess, SandboxSession } from "../spec/sandbox-spec.js";
import type { ResolvedModel } from "./model-resolution.js";
import { agentPrompt, sessionTitle } from "./agent-prompt.js";
import { explainServerExit, startOpencodeServer, withTail, type OpencodeServer, type OutputTail } from "./opencode-server.js";
import type { StartAdmission } from "./start-admission.js";
import { OpencodeEventMapper, usageOfMessages, type SessionSignal } from "./opencode-events.js";

/** What {@link runOpencodeAgent} needs. */
export interface AgentRunInput {
  /** The open sandbox; the repository is already in `session.workdir`. */
  session: SandboxSession;
  /** The OpenCode executable inside the sandbox (`provider.opencodeBinary ?? "opencode"`). */
  opencodeBinary: string;
  model: ResolvedModel;
  /**
   * The env var that holds the model's API key inside the sandbox (the sandbox got the key as a secret
   * under this name). OpenCode's config refers to it as `{env:NAME}`, so the key is never in argv or config.
   */
  apiKeyEnv: string;
  /** The user's task (untrusted text; it only ever travels as a prompt). */
  task: string;
  /** Let the repository's own opencode.json, .opencode/ and AGENTS.md apply. */
  allowRepoAgentConfig: boolean;
  /** The longest the whole agent run may take, server start included. */
  timeoutMs: number;
  /**
   * Ends the run with AGENT_TIMEOUT when it aborts, as `timeoutMs` running out does (same message,
   * with the model's retries): for a limit that is not a fixed span from the start. The engine's
   * tests use it to end a run after an event they wait for, not after a guessed time.
   */
  timeoutSignal?: AbortSignal;
  signal?: AbortSignal;
  /** Receives agent.text, agent.tool, agent.file, agent.retry, agent.usage and log events. */
  emit: (event: AgentTaskEventInput) => void;
  /** Port for the server inside the sandbox; default `session.allocatePort?.()` or 4096. */
  port?: number;
  /** Address the server listens on inside the sandbox. Default `127.0.0.1`. */
  listenHostname?: string;
  /** How long the server may take to print its ready line once admitted. Default 60 s, stretched by the machine's load (bounded by `timeoutMs`). */
  startTimeoutMs?: number;
  /** Told of each secret the run makes (the server's password, which the agent's shell can see). */
  addSecret?: (secret: string) => void;
  /**
   * Continue this session (from an earlier run's {@link AgentRunOutput.sessionId}, on the same
   * sandbox and scratch folder) with `message` instead of starting a new one with the task.
   */
  continueSession?: { sessionId: string; message: string };
  /** Bounds how many servers start at once. Default: one admission per process (CPU cores, at least 2). */
  admission?: StartAdmission;
  /**
   * A server already started (and warmed) in `session` with the same model, key variable and repo-config
   * choice, e.g. by a sandbox pool: the run uses it instead of starting one, and stops it at the end.
   */
  server?: OpencodeServer;
}

/** What a finished agent run returns. */
export interface AgentRunOutput {
  /** The agent's final answer (the text of its last message). */
  summary: string;
  usage: TokenUsage;
  /** The last assistant message's finish reason (`stop`, `length`, ...). */
  finishReason: string;
  /** Messages in the session (the prompt included). */
  messages: number;
  /** From spawning the server to its ready line, in ms. */
  serverStartMs: number;
  /** From spawning the server (from the call, for a given server) to the model's first answer starting to stream, in ms. */
  firstModelRequestMs?: number;
  /** OpenCode's session id, to continue the conversation later. */
  sessionId: string;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Runs OpenCode on the task inside the sandbox: starts `opencode serve` with a headless setup (or takes
 * the ready `server` given), sends the task, turns OpenCode's events into the library's events, and
 * ends when the agent is done, fails, times out, or is aborted. The server is always stopped.
 *
 * Errors: AGENT_START_FAILED, AGENT_FAILED, MODEL_ERROR, AGENT_TIMEOUT, ABORTED (all with phase `agent`).
 */
export async function runOpencodeAgent(input: AgentRunInput): Promise<AgentRunOutput> {
  const { session } = input;
  if (input.signal?.aborted) throw abortedError(input.signal, "agent");
  if (!ENV_NAME.test(input.apiKeyEnv)) {
    throw agentError(ErrorCode.INVALID_OPTIONS, `"${input.apiKeyEnv}" is not a valid environment variable name for the API key.`, { phase: "agent" });
  }
  if (!(Number.isFinite(input.timeoutMs) && input.timeoutMs > 0)) {
    throw agentError(ErrorCode.INVALID_OPTIONS, `The agent's timeout must be a positive number of milliseconds, got ${String(input.timeoutMs)}.`, { phase: "agent" });
  }
  const startedAt = Date.now();
  const deadline = startedAt + input.timeoutMs;
  const emit = (event: AgentTaskEventInput) => {
    try {
      input.emit(event);
    } catch {
      // A failing listener must not break the run.
    }
  };

  let server = input.server;
  if (server) {
    emit({ type: "log", level: "info", message: `Using the OpenCode server started ahead of the agent phase (ready in ${server.readyAt - server.spawnedAt} ms).` });
  } else {
    server = await startOpencodeServer({
      session,
      opencodeBinary: input.opencodeBinary,
      model: input.model,
      apiKeyEnv: input.apiKeyEnv,
      allowRepoAgentConfig: input.allowRepoAgentConfig,
      deadline,
      timeoutMs: input.timeoutMs,
      ...(input.port === undefined ? {} : { port: input.port }),
      ...(input.listenHostname === undefined ? {} : { listenHostname: input.listenHostname }),
      ...(input.startTimeoutMs === undefined ? {} : { startTimeoutMs: input.startTimeoutMs }),
      ...(input.admission === undefined ? {} : { admission: input.admission }),
      ...(input.signal === undefined ? {} : { signal: input.signal }),
    });
    emit({ type: "log", level: "info", message: `OpenCode server ready in ${server.readyAt - server.spawnedAt} ms.` });
  }
  input.addSecret?.(server.password);
  const serverStartMs = server.readyAt - server.spawnedAt;
  const origin = input.server ? startedAt : server.spawnedAt;

  const run = new AgentRun(input, emit, server);
  try {
    const client = createOpencodeClient({ baseUrl: server.url, directory: session.workdir, headers: server.headers });
    const result = await run.drive(client, deadline);
    return {
      ...result,
      serverStartMs,
      ...(run.firstStepAt === undefined ? {} : { firstModelRequestMs: run.firstStepAt - origin }),
    };
  } finally {
    await run.stop();
  }
}

type Client = ReturnType<typeof createOpencodeClient>;
type SessionMessages = Array<{ info: Message; parts: Part[] }>;

/** One run's moving parts: the server process, the event stream, and how the run ends. */
class AgentRun {
  private readonly outcome = deferred<void>();
  private ended = false;
  private client: Client | undefined;
  private sessionId: string | undefined;
  private mapper: OpencodeEventMapper | undefined;
  private readonly events = new AbortController();
  private eventPump: Promise<void> | undefined;
  private promptSent = false;
  /** The session's messages as read once it was idle with its answer, for the result. */
  private finalMessages: SessionMessages | undefined;
  private checking: Promise<void> | undefined;
  private checkAgain = false;
  private idleSeen = false;
  private connections = 0;
  private readonly timers: NodeJS.Timeout[] = [];
  private abortListener: (() => void) | undefined;
  private timeoutListener: (() => void) | undefined;

  private stopped = false;
  private readonly server: SandboxProcess;
  private readonly output: OutputTail;
  private lastRetry: { attempt: number; message: string } | undefined;
  /** Emits until the run is stopped: nothing reaches the caller after runOpencodeAgent returns. */
  private readonly emit = (event: AgentTaskEventInput): void => {
    if (!this.stopped) this.emitToCaller(event);
  };

  constructor(
    private readonly input: AgentRunInput,
    private readonly emitToCaller: (event: AgentTaskEventInput) => void,
    private readonly opencode: OpencodeServer,
  ) {
    this.server = opencode.process;
    this.output = opencode.output;
    // The outcome may settle while nobody awaits it yet; the awaiting code reads it later.
    this.outcome.promise.catch(() => undefined);
    this.server.exited.then(
      (code) =>
        void explainServerExit(input.session, code, this.output, () => !this.ended && !this.stopped && !input.signal?.aborted).then((error) => this.fail(error)),
      () => undefined,
    );
    if (input.signal) {
      const signal = input.signal;
      this.abortListener = () => this.fail(abortedError(signal, "agent"));
      if (signal.aborted) this.abortListener();
      else signal.addEventListener("abort", this.abortListener, { once: true });
    }
    if (input.timeoutSignal) {
      this.timeoutListener = () => this.timedOut();
      if (input.timeoutSignal.aborted) this.timeoutListener();
      else input.timeoutSignal.addEventListener("abort", this.timeoutListener, { once: true });
    }
  }

  /** The run's time is up: AGENT_TIMEOUT, saying what the model was doing when it is known. */
  private timedOut(): void {
    if (!this.client) {
      this.fail(agentError(ErrorCode.AGENT_TIMEOUT, `The agent did not finish within ${this.input.timeoutMs} ms (the OpenCode server was still starting).`, { phase: "agent" }));
      return;
    }
    const retrying = this.lastRetry ? ` The model call was failing and being retried (attempt ${this.lastRetry.attempt}): ${this.lastRetry.message}` : "";
    this.fail(
      agentError(ErrorCode.AGENT_TIMEOUT, `The agent did not finish within ${this.input.timeoutMs} ms; it was stopped.${retrying}`, {
        phase: "agent",
        ...(this.lastRetry ? { details: { retryAttempts: this.lastRetry.attempt } } : {}),
      }),
    );
  }

  get firstStepAt(): number | undefined {
    return this.mapper?.firstStepAt;
  }

  /** Connects, sends the task, and resolves when the agent is done. */
  async drive(client: Client, deadline: number): Promise<Omit<AgentRunOutput, "serverStartMs" | "firstModelRequestMs">> {
    this.client = client;
    this.timers.push(setTimeout(() => this.timedOut(), Math.max(0, deadline - Date.now())));

    // Subscribe first: the stream has no replay, so nothing the session does may come before it.
    const connected = deferred<void>();
    this.eventPump = this.pumpEvents(client, connected);
    await this.until(connected.promise);

    const continued = this.input.continueSession;
    let sessionId: string;
    if (continued) {
      sessionId = continued.sessionId;
    } else {
      const created = await this.until(client.session.create({ title: sessionTitle(this.input.task) }));
      if (!created.data) throw this.failNow(ErrorCode.AGENT_START_FAILED, `OpenCode could not create a session: ${errorText(created.error)}`);
      sessionId = created.data.id;
    }
    this.sessionId = sessionId;
    this.mapper = new OpencodeEventMapper(sessionId, this.input.session.workdir, this.emit);

    const prompt = await this.until(
      client.session.promptAsync({
        sessionID: sessionId,
        model: { providerID: this.input.model.opencodeProviderId, modelID: this.input.model.model },
        parts: [{ type: "text", text: continued ? continued.message : agentPrompt(this.input.task) }],
      }),
    );
    if (prompt.error !== undefined || (prompt.response && !prompt.response.ok)) {
      throw this.failNow(ErrorCode.AGENT_FAILED, this.withTail(`OpenCode did not accept the task: ${errorText(prompt.error)}`));
    }
    this.promptSent = true;
    if (this.idleSeen) void this.checkFinished();

    await this.outcome.promise;
    // The messages read when the session went idle are its final ones: no second read (a round trip into the sandbox).
    const messages = this.finalMessages ?? (await this.readMessages());
    return this.resultOf(messages);
  }

  private async pumpEvents(client: Client, connected: ReturnType<typeof deferred<void>>): Promise<void> {
    while (!this.ended) {
      try {
        // One attempt per subscription: this loop reconnects and re-reads state itself.
        const subscription = await client.event.subscribe(undefined, { signal: this.events.signal, sseMaxRetryAttempts: 1 });
        for await (const event of subscription.stream) {
          if (this.ended) break;
          if ((event as OpencodeEvent).type === "server.connected") {
            this.connections += 1;
            connected.resolve();
            if (this.connections > 1) {
              this.emit({ type: "log", level: "debug", message: "OpenCode's event stream reconnected; re-reading the session." });
              void this.resync();
            }
            continue;
          }
          this.onEvent(event as OpencodeEvent);
        }
      } catch {
        // The stream dropped; reconnect below.
      }
      if (this.ended) break;
      await sleep(250);
    }
  }

  private onEvent(event: OpencodeEvent): void {
    const signal = this.mapper?.handle(event);
    if (signal) void this.onSignal(signal);
  }

  private async onSignal(signal: SessionSignal): Promise<void> {
    const client = this.client!;
    switch (signal.kind) {
      case "permission":
        this.emit({ type: "log", level: "warn", message: `OpenCode asked for the "${signal.permission}" permission; denied (the run is unattended).` });
        await client.permission.reply({ requestID: signal.requestId, reply: "reject", message: "This run is unattended; the permission is denied." }).catch(() => undefined);
        return;
      case "question":
        this.emit({ type: "log", level: "warn", message: "OpenCode asked a question; rejected (the run is unattended)." });
        await client.question.reject({ requestID: signal.requestId }).catch(() => undefined);
        return;
      case "error": {
        const error = signal.error;
        if (error?.name === "MessageAbortedError" && this.ended) return;
        this.fail(errorFromSession(error, this.output));
        return;
      }
      case "idle":
        // An idle that races ahead of the prompt's response is checked once the prompt is known to be sent.
        this.idleSeen = true;
        if (this.promptSent) await this.checkFinished();
        return;
      case "retry":
        this.lastRetry = { attempt: signal.attempt, message: signal.message };
        return;
      default:
        return;
    }
  }

  /** After a reconnect: re-read status and messages, emit what was missed, and see whether the run ended meanwhile. */
  private async resync(): Promise<void> {
    if (!this.sessionId || !this.client) return;
    const messages = await this.readMessages().catch(() => undefined);
    if (this.ended) return;
    if (messages) this.mapper?.replay(messages);
    const status = await this.client.session.status().catch(() => undefined);
    const busy = status?.data?.[this.sessionId];
    if (this.promptSent && (busy === undefined || busy.type === "idle")) await this.checkFinished(messages);
  }

  /**
   * The session went idle: it is done once an assistant message answered the prompt. One check at a
   * time (OpenCode signals an idle twice, as a status and as an event): one that comes during another
   * runs again after it, with a read of its own, unless that one ended the run.
   */
  private checkFinished(known?: SessionMessages): Promise<void> {
    if (this.checking) {
      this.checkAgain = true;
      return this.checking;
    }
    this.checking = (async () => {
      try {
        let given = known;
        do {
          this.checkAgain = false;
          await this.checkFinishedOnce(given);
          given = undefined;
        } while (this.checkAgain && !this.ended);
      } finally {
        this.checking = undefined;
      }
    })();
    return this.checking;
  }

  private async checkFinishedOnce(known?: SessionMessages): Promise<void> {
    if (this.ended) return;
    // Messages a resync read before it saw the idle status may predate the end: only a read made here is final.
    const messages = known ?? (await this.readMessages().catch(() => undefined));
    const final = known === undefined ? messages : undefined;
    if (!messages) return;
    const last = lastAssistant(messages);
    if (!last) {
      // Idle before the prompt was taken up is not the end; idle after it without any answer is a failure.
      const status = await this.client!.session.status().catch(() => undefined);
      const current = status?.data?.[this.sessionId!];
      if (this.ended || (current !== undefined && current.type !== "idle")) return;
      this.fail(agentError(ErrorCode.AGENT_FAILED, this.withTail("OpenCode went idle without an answer from the model."), { phase: "agent" }));
      return;
    }
    if (last.info.role === "assistant" && last.info.error && last.info.error.name !== "MessageAbortedError") {
      this.fail(errorFromSession(last.info.error, this.output));
      return;
    }
    if (!this.ended) this.finalMessages = final;
    this.finish();
  }

  private async readMessages(): Promise<SessionMessages> {
    const response = await this.client!.session.messages({ sessionID: this.sessionId! });
    if (!response.data) throw agentError(ErrorCode.AGENT_FAILED, `Could not read the session's messages: ${errorText(response.error)}`, { phase: "agent" });
    return response.data;
  }

  private resultOf(messages: SessionMessages): Omit<AgentRunOutput, "serverStartMs" | "firstModelRequestMs"> {
    const last = lastAssistant(messages);
    const finishReason = last?.info.role === "assistant" ? (last.info.finish ?? "unknown") : "unknown";
    return { summary: summaryOf(messages), usage: usageOfMessages(messages.map((message) => message.info)), finishReason, messages: messages.length, sessionId: this.sessionId! };
  }

  /** Ends the run successfully. */
  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    this.outcome.resolve();
  }

  /** Ends the run with an error (the first ending wins). */
  private fail(error: RunningAgentError): void {
    if (this.ended) return;
    this.ended = true;
    this.outcome.reject(error);
  }

  private failNow(code: ErrorCode, message: string): RunningAgentError {
    const error = agentError(code, message, { phase: "agent" });
    this.fail(error);
    return error;
  }

  /** Awaits a step of the run, but gives up as soon as the run has ended (timeout, abort, exit). */
  private async until<T>(step: Promise<T>): Promise<T> {
    step.catch(() => undefined);
    await Promise.race([step, this.outcome.promise]);
    if (this.ended) {
      // The outcome settled: surface it (an error, or success while a step was still pending).
      await this.outcome.promise;
    }
    return step;
  }

  private withTail(message: string): string {
    return withTail(message, this.output);
  }

  /** Stops everything: aborts the session when it may still be running, closes the stream, kills the server. */
  async stop(): Promise<void> {
    const interrupted = !this.ended || (await this.outcome.promise.then(() => false, () => true));
    this.ended = true;
    this.stopped = true;
    this.outcome.resolve();
    for (const timer of this.timers) clearTimeout(timer);
    if (this.abortListener) this.input.signal?.removeEventListener("abort", this.abortListener);
    if (this.timeoutListener) this.input.timeoutSignal?.removeEventListener("abort", this.timeoutListener);
    if (interrupted && this.client && this.sessionId) {
      // Tell OpenCode to stop retrying or running tools before the process goes; bounded, best effort.
      const abort = this.client.session.abort({ sessionID: this.sessionId }).catch(() => undefined);
      await Promise.race([abort, sleep(2000)]);
    }
    this.events.abort();
    // A failing kill (e.g. the sandbox is already gone) must not hide how the run ended.
    await this.server.kill().catch(() => undefined);
    await Promise.race([this.eventPump?.catch(() => undefined), sleep(1000)]);
  }
}

function errorFromSession(
  error: { name: string; data?: { message?: string; statusCode?: number; providerID?: string } } | undefined,
  output: OutputTail,
): RunningAgentError {
  const message = error?.data?.message ?? "unknown error";
  if (error?.name === "APIError" || error?.name === "ProviderAuthError") {
    const status = error.data?.statusCode;
    return agentError(ErrorCode.MODEL_ERROR, `The model's API refused the request${status ? ` (HTTP ${status})` : ""}: ${message}`, {
      phase: "agent",
      details: { opencodeError: error.name, ...(status ? { statusCode: status } : {}) },
    });
  }
  if (error?.name === "UnknownError" && message.startsWith("Model not found")) {
    return agentError(
      ErrorCode.INVALID_MODEL,
      `OpenCode does not know this model (${message}). Use a model from its catalogue, or pass limits: { context, output } in the model config to declare it.`,
      { phase: "agent", details: { opencodeError: error.name } },
    );
  }
  const tail = output.text().trim();
  return agentError(ErrorCode.AGENT_FAILED, `OpenCode failed: ${error?.name ?? "Error"}: ${message}${tail ? `\nServer output (last lines):\n${tail}` : ""}`, {
    phase: "agent",
    details: { opencodeError: error?.name ?? "unknown" },
  });
}

/** The last assistant message after the last user message: the answer to the latest prompt (a continued session holds older answers). */
function lastAssistant(messages: SessionMessages): { info: Message; parts: Part[] } | undefined {
  for (let index = messages.length - 1; index >= 0; index -= 1) {
    const role = messages[index]!.info.role;
    if (role === "assistant") return messages[index];
    if (role === "user") return undefined;
  }
  return undefined;
}

/** The text of the last assistant message that has any. */
function summaryOf(messages: SessionMessages): string {
  for (let index = messages.length - 1; index >= 0; index -= 1) {
    const message = messages[index]!;
    if (message.info.role !== "assistant") continue;
    const text = message.parts
      .filter((part): part is Extract<Part, { type: "text" }> => part.type === "text" && !part.synthetic && !part.ignored)
      .map((part) => part.text)
      .join("\n")
      .trim();
    if (text) return text;
  }
  return "";
}

function errorText(error: unknown): string {
  if (error === undefined || error === null) return "no details";
  if (typeof error === "string") return error;
  try {
    return JSON.stringify(error).slice(0, 1000);
  } catch {
    return String(error);
  }
}

function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (error: unknown) => void } {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((resolvePromise, rejectPromise) => {
    resolve = resolvePromise;
    reject = rejectPromise;
  });
  return { promise, resolve, reject };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
