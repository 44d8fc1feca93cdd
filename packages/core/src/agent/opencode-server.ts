import { randomBytes } from "node:crypto";
import { createOpencodeClient, type Event as OpencodeEvent } from "@opencode-ai/sdk/v2/client";
import { abortedError, agentError, ErrorCode, RunningAgentError } from "../errors.js";
import type { SandboxProcess, SandboxSession } from "../spec/sandbox-spec.js";
import type { ResolvedModel } from "./model-resolution.js";
import { buildOpencodeConfig, buildOpencodeEnv, opencodeFolders, preSeededConfigEntries, WARM_UP_MODEL_ID, WARM_UP_PROVIDER_ID } from "./opencode-config.js";
import { defaultStartAdmission, defaultStartTimeoutMs, type StartAdmission } from "./start-admission.js";

/** What {@link startOpencodeServer} needs. */
export interface OpencodeServerStartInput {
  session: SandboxSession;
  /** The OpenCode executable inside the sandbox. */
  opencodeBinary: string;
  model: ResolvedModel;
  /** The env var that holds the model's key inside the sandbox; unused when the model has no key. */
  apiKeyEnv: string;
  allowRepoAgentConfig: boolean;
  /** Port inside the sandbox; default `session.allocatePort?.()` or 4096. */
  port?: number;
  /** Address the server listens on inside the sandbox. Default `127.0.0.1`. */
  listenHostname?: string;
  /** How long the server may take to print its ready line once admitted. Default: {@link defaultStartTimeoutMs}. */
  startTimeoutMs?: number;
  /** Bounds concurrent starts. Default: {@link defaultStartAdmission}. */
  admission?: StartAdmission;
  /** Epoch ms at which the run's own time is up: the start then ends with AGENT_TIMEOUT (`timeoutMs` names it). */
  deadline?: number;
  timeoutMs?: number;
  /** Configure the warm-up provider, for {@link warmUpOpencodeServer}. */
  warmUp?: boolean;
  signal?: AbortSignal;
}

/** A started, ready OpenCode server inside a sandbox. */
export interface OpencodeServer {
  /** The `opencode serve` process in the sandbox. */
  readonly process: SandboxProcess;
  /** The last few KiB of its output, for error messages. */
  readonly output: OutputTail;
  /** The base URL the host reaches it on, and the headers to send (the password included). */
  readonly url: string;
  /** Headers for every request to the server (its password included). */
  readonly headers: Record<string, string>;
  /** The server's password: the agent's shell sees it in its environment, so the run treats it as a secret. */
  readonly password: string;
  /** The port inside the sandbox. */
  readonly port: number;
  /** Epoch ms of the spawn and of the ready line. */
  readonly spawnedAt: number;
  /** Epoch ms of the ready line. */
  readonly readyAt: number;
  /** True once the process has exited. */
  readonly exited: boolean;
}

const DEFAULT_PORT = 4096;
const READY_LINE = "opencode server listening on";
const OUTPUT_TAIL_BYTES = 4096;
/** How often, and how far apart, a dead server's sandbox is asked with a no-op whether it still runs. */
const NO_OP_ATTEMPTS = 5;
const NO_OP_RETRY_MS = 400;

/**
 * Starts `opencode serve` in the sandbox with the headless setup (pre-seeded config folder, config and
 * env without secrets, a random server password) and resolves once it prints its ready line.
 * Waits for a turn of `admission` first; the start limit counts from the turn, not from the call.
 * On any failure the process is stopped before the promise rejects.
 *
 * Errors (phase `agent`): AGENT_START_FAILED, AGENT_TIMEOUT (the run's deadline came first), ABORTED,
 * or the sandbox's own error when the sandbox went away.
 */
export async function startOpencodeServer(input: OpencodeServerStartInput): Promise<OpencodeServer> {
  const { session, model } = input;
  const folders = opencodeFolders(session.scratchDir);
  const port = input.port ?? (await session.allocatePort?.()) ?? DEFAULT_PORT;
  const exposed = await session.exposePort(port);
  const password = randomBytes(24).toString("base64url");
  const env = buildOpencodeEnv({
    folders,
    config: buildOpencodeConfig(model, model.apiKey === undefined ? undefined : input.apiKeyEnv, input.warmUp ? port : undefined),
    allowRepoAgentConfig: input.allowRepoAgentConfig,
    serverPassword: password,
  });
  const release = await admit(input);
  try {
    return await spawnUntilReady(input, { env, port, password, url: exposed.url, headers: { ...exposed.headers, authorization: `Basic ${Buffer.from(`opencode:${password}`).toString("base64")}` } });
  } finally {
    release();
  }
}

/** Waits for a start turn; the run's deadline and the signal end the wait. */
async function admit(input: OpencodeServerStartInput): Promise<() => void> {
  const admission = input.admission ?? defaultStartAdmission;
  const waiting = new AbortController();
  const onAbort = () => waiting.abort(input.signal?.reason);
  if (input.signal?.aborted) throw abortedError(input.signal, "agent");
  input.signal?.addEventListener("abort", onAbort, { once: true });
  let timedOut = false;
  const timer =
    input.deadline === undefined
      ? undefined
      : setTimeout(() => {
          timedOut = true;
          waiting.abort();
        }, Math.max(0, input.deadline - Date.now()));
  try {
    return await admission.acquire(waiting.signal);
  } catch (error) {
    if (timedOut) {
      throw agentError(ErrorCode.AGENT_TIMEOUT, `The agent did not finish within ${input.timeoutMs} ms (the OpenCode server was waiting for its turn to start).`, { phase: "agent" });
    }
    if (input.signal?.aborted) throw abortedError(input.signal, "agent");
    throw error;
  } finally {
    clearTimeout(timer);
    input.signal?.removeEventListener("abort", onAbort);
  }
}

/**
 * `command` behind a shell that first writes the pre-seeded config folder ({@link preSeededConfigEntries})
 * under `root`, then becomes the command: one process start, where putting an archive first would be
 * another round trip to a container's Engine. The paths are ours; the root and the files' texts are
 * arguments, never part of the script.
 */
function seedingCommand(root: string, command: string[]): string[] {
  const entries = preSeededConfigEntries();
  const folders = entries.filter((entry) => entry.path.endsWith("/"));
  const files = entries.filter((entry) => !entry.path.endsWith("/"));
  const script = [
    'root=$1; shift',
    `mkdir -p ${folders.map((entry) => `"$root/${entry.path.slice(0, -1)}"`).join(" ")} || exit 1`,
    ...files.map((entry, index) => `printf '%s' "\${${index + 1}}" > "$root/${entry.path}" || exit 1`),
    `shift ${files.length}`,
    'exec "$@"',
  ].join("\n");
  return ["/bin/sh", "-c", script, "sh", root, ...files.map((entry) => entry.content ?? ""), ...command];
}

async function spawnUntilReady(
  input: OpencodeServerStartInput,
  plan: { env: Record<string, string>; port: number; password: string; url: string; headers: Record<string, string> },
): Promise<OpencodeServer> {
  const output = new OutputTail();
  let stdoutText = "";
  let onReady!: () => void;
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  const spawnedAt = Date.now();
  let child: SandboxProcess;
  try {
    const serve = [input.opencodeBinary, "serve", "--hostname", input.listenHostname ?? "127.0.0.1", "--port", String(plan.port)];
    child = await input.session.spawn(seedingCommand(opencodeFolders(input.session.scratchDir).root, serve), {
      cwd: input.session.workdir,
      env: plan.env,
      onStdout: (chunk) => {
        output.add(chunk);
        if (stdoutText.length < 64 * 1024) stdoutText += Buffer.from(chunk).toString("utf8");
        if (stdoutText.includes(READY_LINE)) onReady();
      },
      onStderr: (chunk) => output.add(chunk),
    });
  } catch (cause) {
    // A cancellation, or a sandbox answering outside its spec, says more than "could not start".
    if (RunningAgentError.isInstance(cause) && (cause.code === ErrorCode.ABORTED || cause.code === ErrorCode.SPEC_VIOLATION)) {
      cause.phase ??= "agent";
      throw cause;
    }
    throw agentError(ErrorCode.AGENT_START_FAILED, `Could not start the OpenCode server (${input.opencodeBinary}): ${messageOf(cause)}`, {
      phase: "agent",
      cause,
      ...(RunningAgentError.isInstance(cause) ? { details: { sandboxError: cause.code } } : {}),
    });
  }
  let exited = false;
  child.exited.then(
    () => (exited = true),
    () => (exited = true),
  );

  const startLimitMs = input.startTimeoutMs ?? defaultStartTimeoutMs();
  const remainingMs = input.deadline === undefined ? Number.POSITIVE_INFINITY : Math.max(0, input.deadline - Date.now());
  // Decided up front: a timer may fire a millisecond before the wall clock reaches the deadline.
  const limitIsDeadline = remainingMs <= startLimitMs;
  let settled = false;
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      ready.then(resolve);
      child.exited.then(
        async (code) => {
          const error = await explainServerExit(input.session, code, output, () => !settled && !input.signal?.aborted);
          reject(
            error.code === ErrorCode.AGENT_FAILED
              ? agentError(ErrorCode.AGENT_START_FAILED, error.message.replace("exited unexpectedly", "exited before it was ready"), { phase: "agent" })
              : error,
          );
        },
        reject,
      );
      timer = setTimeout(
        () =>
          reject(
            limitIsDeadline
              ? agentError(ErrorCode.AGENT_TIMEOUT, `The agent did not finish within ${input.timeoutMs} ms (the OpenCode server was still starting).`, { phase: "agent" })
              : agentError(ErrorCode.AGENT_START_FAILED, withTail(`The OpenCode server did not become ready within ${startLimitMs} ms.`, output), { phase: "agent" }),
          ),
        Math.min(startLimitMs, remainingMs),
      );
      onAbort = () => reject(abortedError(input.signal, "agent"));
      if (input.signal?.aborted) onAbort();
      else input.signal?.addEventListener("abort", onAbort, { once: true });
    });
  } catch (error) {
    settled = true;
    await child.kill().catch(() => undefined);
    throw error;
  } finally {
    settled = true;
    clearTimeout(timer);
    if (onAbort) input.signal?.removeEventListener("abort", onAbort);
  }
  return {
    process: child,
    output,
    url: plan.url,
    headers: plan.headers,
    password: plan.password,
    port: plan.port,
    spawnedAt,
    readyAt: Date.now(),
    get exited() {
      return exited;
    },
  };
}

/**
 * Runs OpenCode's first-prompt path once on a fresh server, so that the task's prompt does not pay for
 * it: a session prompted with the warm-up provider (which points at the server itself and gets a 401)
 * initialises the instance for `directory`, the tool registry, shell detection and location services,
 * and fails without any model call. The warm-up session is deleted afterwards. Needs a server started
 * with `warmUp: true`.
 */
export async function warmUpOpencodeServer(server: OpencodeServer, directory: string, options: { timeoutMs: number; signal?: AbortSignal }): Promise<void> {
  const client = createOpencodeClient({ baseUrl: server.url, directory, headers: server.headers });
  const stream = new AbortController();
  const stop = () => stream.abort();
  options.signal?.addEventListener("abort", stop, { once: true });
  const timer = setTimeout(stop, options.timeoutMs);
  try {
    const subscription = await client.event.subscribe(undefined, { signal: stream.signal, sseMaxRetryAttempts: 1 });
    const events = subscription.stream[Symbol.asyncIterator]();
    // The stream's first event says it is connected: after that, nothing the session does is missed.
    await events.next();
    const created = await client.session.create({ title: "warm-up" }, { signal: stream.signal });
    const sessionID = created.data?.id;
    if (!sessionID) throw new Error(`OpenCode could not create the warm-up session: ${JSON.stringify(created.error ?? null)}`);
    await client.session.promptAsync(
      { sessionID, model: { providerID: WARM_UP_PROVIDER_ID, modelID: WARM_UP_MODEL_ID }, parts: [{ type: "text", text: "warm-up" }] },
      { signal: stream.signal },
    );
    for (;;) {
      const next = await events.next();
      if (next.done) throw new Error("OpenCode's event stream ended during the warm-up.");
      const event = next.value as OpencodeEvent;
      if (event.type === "session.idle" && event.properties.sessionID === sessionID) break;
    }
    await client.session.delete({ sessionID }, { signal: stream.signal });
  } catch (cause) {
    if (options.signal?.aborted) throw abortedError(options.signal);
    throw agentError(
      ErrorCode.AGENT_START_FAILED,
      stream.signal.aborted ? `The OpenCode warm-up did not finish within ${options.timeoutMs} ms.` : `The OpenCode warm-up failed: ${messageOf(cause)}`,
      { cause },
    );
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", stop);
    stream.abort();
  }
}

/**
 * The server died. When the sandbox itself is gone (killed, out of memory), its provider's typed error
 * says so better than the exit code: ask it with a no-op, again while it answers with a failed no-op
 * (a runtime may forget a container before its provider has seen the end). `stillRelevant` stops the
 * asking once nobody waits for the answer.
 */
export async function explainServerExit(session: SandboxSession, code: number | null, output: OutputTail, stillRelevant: () => boolean): Promise<RunningAgentError> {
  const fallback = agentError(ErrorCode.AGENT_FAILED, withTail(`The OpenCode server exited unexpectedly (exit code ${code}).`, output), { phase: "agent" });
  for (let attempt = 0; attempt < NO_OP_ATTEMPTS; attempt++) {
    if (!stillRelevant()) return fallback;
    try {
      const answer = await session.exec(["true"], { timeoutMs: 10_000 });
      if (answer.exitCode === 0) return fallback;
    } catch (error) {
      if (RunningAgentError.isInstance(error) && error.code !== ErrorCode.SANDBOX_EXEC_TIMEOUT) {
        return new RunningAgentError({ code: error.code, message: `${error.message} (the OpenCode server exited with code ${code}).`, phase: "agent", cause: error });
      }
      return fallback;
    }
    await new Promise((resolve) => setTimeout(resolve, NO_OP_RETRY_MS));
  }
  return fallback;
}

/** `message`, followed by the server's last output lines when there are any. */
export function withTail(message: string, output: OutputTail): string {
  const tail = output.text().trim();
  return tail ? `${message} Server output (last lines):\n${tail}` : message;
}

/** Keeps the last few KiB of the server's output for error messages. */
export class OutputTail {
  private buffer = "";
  /** Appends a chunk of output, dropping what falls out of the tail. */
  add(chunk: Uint8Array): void {
    this.buffer = (this.buffer + Buffer.from(chunk).toString("utf8")).slice(-OUTPUT_TAIL_BYTES);
  }
  /** The kept tail as text. */
  text(): string {
    return this.buffer;
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
