import { randomBytes } from "node:crypto";
import { createOpencodeClient, type Event as OpencodeEvent, type Message, type Part } from "@opencode-ai/sdk/v2/client";
import { abortedError, agentError, ErrorCode, RunningAgentError } from "../errors.js";
import type { AgentTaskEventInput, TokenUsage } from "../events.js";
import type { SandboxProcess, SandboxSession } from "../spec/sandbox-spec.js";
import type { ResolvedModel } from "./model-resolution.js";
import { agentPrompt, sessionTitle } from "./agent-prompt.js";
import { buildOpencodeConfig, buildOpencodeEnv, opencodeFolders, preSeededArchive } from "./opencode-config.js";
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
  signal?: AbortSignal;
  /** Receives agent.text, agent.tool, agent.file, agent.retry, agent.usage and log events. */
  emit: (event: AgentTaskEventInput) => void;
  /** Port for the server inside the sandbox; default `session.allocatePort?.()` or 4096. */
  port?: number;
  /** Address the server listens on inside the sandbox. Default `127.0.0.1`. */
  listenHostname?: string;
  /** How long the server may take to print its ready line. Default 60 s (bounded by `timeoutMs`). */
  startTimeoutMs?: number;
  /** Told of each secret the run makes (the server's password, which the agent's shell can see). */
  addSecret?: (secret: string) => void;
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
  /** From spawning the server to the model's first answer starting to stream, in ms. */
  firstModelRequestMs?: number;
}

const DEFAULT_PORT = 4096;
const DEFAULT_START_TIMEOUT_MS = 60_000;
const READY_LINE = "opencode server listening on";
const OUTPUT_TAIL_BYTES = 4096;
/** How often, and how far apart, a dead server's sandbox is asked with a no-op whether it still runs. */
const NO_OP_ATTEMPTS = 5;
const NO_OP_RETRY_MS = 400;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Runs OpenCode on the task inside the sandbox: writes a headless setup into the scratch folder,
 * starts `opencode serve`, sends the task, turns OpenCode's events into the library's events, and
 * ends when the agent is done, fails, times out, or is aborted. The server is always stopped.
 *
 * Errors: AGENT_START_FAILED, AGENT_FAILED, MODEL_ERROR, AGENT_TIMEOUT, ABORTED (all with phase `agent`).
 */
export async function runOpencodeAgent(input: AgentRunInput): Promise<AgentRunOutput> {
  const { session, model } = input;
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

  const folders = opencodeFolders(session.scratchDir);
  await session.putArchive(folders.root, await preSeededArchive());
  const password = randomBytes(24).toString("base64url");
  input.addSecret?.(password);
  const env = buildOpencodeEnv({
    folders,
    config: buildOpencodeConfig(model, model.apiKey === undefined ? undefined : input.apiKeyEnv),
    allowRepoAgentConfig: input.allowRepoAgentConfig,
    serverPassword: password,
  });
  const port = input.port ?? (await session.allocatePort?.()) ?? DEFAULT_PORT;
  const exposed = await session.exposePort(port);

  const output = new OutputTail();
  const ready = deferred<void>();
  let stdoutText = "";
  const spawnedAt = Date.now();
  let server: SandboxProcess;
  try {
    server = await session.spawn([input.opencodeBinary, "serve", "--hostname", input.listenHostname ?? "127.0.0.1", "--port", String(port)], {
      cwd: session.workdir,
      env,
      onStdout: (chunk) => {
        output.add(chunk);
        if (stdoutText.length < 64 * 1024) stdoutText += Buffer.from(chunk).toString("utf8");
        if (stdoutText.includes(READY_LINE)) ready.resolve();
      },
      onStderr: (chunk) => output.add(chunk),
    });
  } catch (cause) {
    if (RunningAgentError.isInstance(cause) && cause.code === ErrorCode.ABORTED) throw withPhase(cause);
    throw agentError(ErrorCode.AGENT_START_FAILED, `Could not start the OpenCode server (${input.opencodeBinary}): ${messageOf(cause)}`, {
      phase: "agent",
      cause,
      ...(RunningAgentError.isInstance(cause) ? { details: { sandboxError: cause.code } } : {}),
    });
  }

  const run = new AgentRun(input, emit, server, output);
  try {
    const startTimeoutMs = input.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
    const remainingMs = Math.max(0, deadline - Date.now());
    await run.waitForReady(ready.promise, Math.min(startTimeoutMs, remainingMs), remainingMs <= startTimeoutMs);
    const serverStartMs = Date.now() - spawnedAt;
    emit({ type: "log", level: "info", message: `OpenCode server ready in ${serverStartMs} ms.` });
    const client = createOpencodeClient({
      baseUrl: exposed.url,
      directory: session.workdir,
      headers: { ...exposed.headers, authorization: `Basic ${Buffer.from(`opencode:${password}`).toString("base64")}` },
    });
    const result = await run.drive(client, deadline);
    return {
      ...result,
      serverStartMs,
      ...(run.firstStepAt === undefined ? {} : { firstModelRequestMs: run.firstStepAt - spawnedAt }),
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
  private idleSeen = false;
  private connections = 0;
  private readonly timers: NodeJS.Timeout[] = [];
  private abortListener: (() => void) | undefined;

  private stopped = false;
  private lastRetry: { attempt: number; message: string } | undefined;
  /** Emits until the run is stopped: nothing reaches the caller after runOpencodeAgent returns. */
  private readonly emit = (event: AgentTaskEventInput): void => {
    if (!this.stopped) this.emitToCaller(event);
  };

  constructor(
    private readonly input: AgentRunInput,
    private readonly emitToCaller: (event: AgentTaskEventInput) => void,
    private readonly server: SandboxProcess,
    private readonly output: OutputTail,
  ) {
    // The outcome may settle while nobody awaits it yet; the awaiting code reads it later.
    this.outcome.promise.catch(() => undefined);
    server.exited.then(
      (code) => void this.explainServerExit(code).then((error) => this.fail(error)),
      () => undefined,
    );
    if (input.signal) {
      const signal = input.signal;
      this.abortListener = () => this.fail(abortedError(signal, "agent"));
      if (signal.aborted) this.abortListener();
      else signal.addEventListener("abort", this.abortListener, { once: true });
    }
  }

  get firstStepAt(): number | undefined {
    return this.mapper?.firstStepAt;
  }

  /**
   * Waits for the ready line; the start limit, a server exit, the deadline or an abort end the wait.
   * `limitIsDeadline`: the run's time ends first, so the timer means AGENT_TIMEOUT (decided up front:
   * a timer may fire a millisecond before the wall clock reaches the deadline).
   */
  async waitForReady(ready: Promise<void>, startLimitMs: number, limitIsDeadline: boolean): Promise<void> {
    const startTimer = setTimeout(() => {
      this.fail(
        limitIsDeadline
          ? agentError(ErrorCode.AGENT_TIMEOUT, `The agent did not finish within ${this.input.timeoutMs} ms (the OpenCode server was still starting).`, { phase: "agent" })
          : agentError(ErrorCode.AGENT_START_FAILED, this.withTail(`The OpenCode server did not become ready within ${startLimitMs} ms.`), { phase: "agent" }),
      );
    }, startLimitMs);
    try {
      await Promise.race([ready, this.outcome.promise]);
    } catch (error) {
      if (RunningAgentError.isInstance(error) && error.code === ErrorCode.AGENT_FAILED) {
        throw agentError(ErrorCode.AGENT_START_FAILED, error.message.replace("exited unexpectedly", "exited before it was ready"), { phase: "agent" });
      }
      throw error;
    } finally {
      clearTimeout(startTimer);
    }
  }

  /**
   * The server died under us. When the sandbox itself is gone (killed, out of memory), its
   * provider's typed error says so better than the server's exit code: ask it with a no-op.
   */
  private async explainServerExit(code: number | null): Promise<RunningAgentError> {
    const fallback = agentError(ErrorCode.AGENT_FAILED, this.withTail(`The OpenCode server exited unexpectedly (exit code ${code}).`), { phase: "agent" });
    // Only a server that died on its own is worth a question; one we stopped or that ended with the run is not.
    // A sandbox that is going away can answer the first question with a failed no-op (e.g. its
    // runtime no longer knows the container) before its provider has seen the end: ask again.
    for (let attempt = 0; attempt < NO_OP_ATTEMPTS; attempt++) {
      if (this.ended || this.stopped || this.input.signal?.aborted) return fallback;
      try {
        const answer = await this.input.session.exec(["true"], { timeoutMs: 10_000 });
        if (answer.exitCode === 0) return fallback;
      } catch (error) {
        if (RunningAgentError.isInstance(error) && error.code !== ErrorCode.SANDBOX_EXEC_TIMEOUT) {
          return new RunningAgentError({ code: error.code, message: `${error.message} (the OpenCode server exited with code ${code}).`, phase: "agent", cause: error });
        }
        return fallback;
      }
      await sleep(NO_OP_RETRY_MS);
    }
    return fallback;
  }

  /** Connects, sends the task, and resolves when the agent is done. */
  async drive(client: Client, deadline: number): Promise<Omit<AgentRunOutput, "serverStartMs" | "firstModelRequestMs">> {
    this.client = client;
    this.timers.push(
      setTimeout(
        () => {
          const retrying = this.lastRetry ? ` The model call was failing and being retried (attempt ${this.lastRetry.attempt}): ${this.lastRetry.message}` : "";
          this.fail(
            agentError(ErrorCode.AGENT_TIMEOUT, `The agent did not finish within ${this.input.timeoutMs} ms; it was stopped.${retrying}`, {
              phase: "agent",
              ...(this.lastRetry ? { details: { retryAttempts: this.lastRetry.attempt } } : {}),
            }),
          );
        },
        Math.max(0, deadline - Date.now()),
      ),
    );

    // Subscribe first: the stream has no replay, so nothing the session does may come before it.
    const connected = deferred<void>();
    this.eventPump = this.pumpEvents(client, connected);
    await this.until(connected.promise);

    const created = await this.until(client.session.create({ title: sessionTitle(this.input.task) }));
    if (!created.data) throw this.failNow(ErrorCode.AGENT_START_FAILED, `OpenCode could not create a session: ${errorText(created.error)}`);
    this.sessionId = created.data.id;
    this.mapper = new OpencodeEventMapper(created.data.id, this.input.session.workdir, this.emit);

    const prompt = await this.until(
      client.session.promptAsync({
        sessionID: created.data.id,
        model: { providerID: this.input.model.opencodeProviderId, modelID: this.input.model.model },
        parts: [{ type: "text", text: agentPrompt(this.input.task) }],
      }),
    );
    if (prompt.error !== undefined || (prompt.response && !prompt.response.ok)) {
      throw this.failNow(ErrorCode.AGENT_FAILED, this.withTail(`OpenCode did not accept the task: ${errorText(prompt.error)}`));
    }
    this.promptSent = true;
    if (this.idleSeen) void this.checkFinished();

    await this.outcome.promise;
    const messages = await this.readMessages();
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

  /** The session went idle: it is done once an assistant message answered the prompt. */
  private async checkFinished(known?: SessionMessages): Promise<void> {
    if (this.ended) return;
    const messages = known ?? (await this.readMessages().catch(() => undefined));
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
    return { summary: summaryOf(messages), usage: usageOfMessages(messages.map((message) => message.info)), finishReason, messages: messages.length };
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
    const tail = this.output.text().trim();
    return tail ? `${message} Server output (last lines):\n${tail}` : message;
  }

  /** Stops everything: aborts the session when it may still be running, closes the stream, kills the server. */
  async stop(): Promise<void> {
    const interrupted = !this.ended || (await this.outcome.promise.then(() => false, () => true));
    this.ended = true;
    this.stopped = true;
    this.outcome.resolve();
    for (const timer of this.timers) clearTimeout(timer);
    if (this.abortListener) this.input.signal?.removeEventListener("abort", this.abortListener);
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

function lastAssistant(messages: SessionMessages): { info: Message; parts: Part[] } | undefined {
  for (let index = messages.length - 1; index >= 0; index -= 1) if (messages[index]!.info.role === "assistant") return messages[index];
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

function withPhase(error: RunningAgentError): RunningAgentError {
  error.phase ??= "agent";
  return error;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
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

/** Keeps the last few KiB of the server's output for error messages. */
class OutputTail {
  private buffer = "";
  add(chunk: Uint8Array): void {
    this.buffer = (this.buffer + Buffer.from(chunk).toString("utf8")).slice(-OUTPUT_TAIL_BYTES);
  }
  text(): string {
    return this.buffer;
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
