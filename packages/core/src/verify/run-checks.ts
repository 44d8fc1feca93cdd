import { performance } from "node:perf_hooks";
import { ErrorCode, RunningAgentError } from "../errors.js";
import type { AgentTaskEventInput } from "../events.js";
import type { SandboxSession } from "../spec/sandbox-spec.js";
import type { CheckResult, CheckRound, CheckSpec } from "./check-types.js";

/** A check's default time limit. */
export const DEFAULT_CHECK_TIMEOUT_MS = 10 * 60_000;
/** How much of a check's output is kept for the result, the fix prompt and the PR body. */
export const CHECK_OUTPUT_TAIL = 4_000;

/** What {@link runChecks} needs. */
export interface RunChecksInput {
  session: SandboxSession;
  checks: readonly CheckSpec[];
  round: number;
  signal: AbortSignal;
  /** Redacts what it is given; the tails kept in results pass through it too. */
  redact: (text: string) => string;
  emit: (event: AgentTaskEventInput) => void;
}

/**
 * Runs every check in order in the sandbox's workspace (`sh -c`, trusted like setup commands),
 * streaming output as events. A check that exits non-zero or outlives its limit fails (the
 * provider kills its whole tree); every check runs even after one fails, so the agent sees all
 * failures at once. An abort rejects at once.
 */
export async function runChecks(input: RunChecksInput): Promise<CheckRound> {
  const results: CheckResult[] = [];
  for (const check of input.checks) results.push(await runCheck(input, check));
  return { round: input.round, checks: results, passed: results.every((result) => result.passed) };
}

async function runCheck(input: RunChecksInput, check: CheckSpec): Promise<CheckResult> {
  const { session, round } = input;
  const tail = new TextTail(CHECK_OUTPUT_TAIL * 4);
  const decoder = { stdout: new TextDecoder(), stderr: new TextDecoder() };
  const forward = (stream: "stdout" | "stderr") => (chunk: Uint8Array) => {
    const text = decoder[stream].decode(chunk, { stream: true });
    tail.add(text);
    input.emit({ type: "check.output", round, name: check.name, stream, text });
  };
  input.emit({ type: "check.started", round, name: check.name, command: check.command });
  const started = performance.now();
  let exitCode: number | null = null;
  let timedOut = false;
  const timeoutMs = check.timeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS;
  try {
    const result = await session.exec(["sh", "-c", check.command], {
      cwd: session.workdir,
      timeoutMs,
      signal: input.signal,
      onStdout: forward("stdout"),
      onStderr: forward("stderr"),
    });
    exitCode = result.exitCode;
  } catch (error) {
    if (!(RunningAgentError.isInstance(error) && error.code === ErrorCode.SANDBOX_EXEC_TIMEOUT) || input.signal.aborted) throw error;
    timedOut = true;
    tail.add(`\n[the check was stopped after ${timeoutMs} ms]\n`);
  }
  const durationMs = performance.now() - started;
  const passed = exitCode === 0;
  input.emit({ type: "check.completed", round, name: check.name, exitCode, passed, timedOut, durationMs });
  return { name: check.name, command: check.command, passed, exitCode, timedOut, durationMs, outputTail: lastChars(input.redact(tail.text()), CHECK_OUTPUT_TAIL) };
}

/** The last `limit` characters, cut at a line start where one is near. */
export function lastChars(text: string, limit: number): string {
  if (text.length <= limit) return text;
  const cut = text.slice(-limit);
  const newline = cut.indexOf("\n");
  return newline >= 0 && newline < limit / 4 ? cut.slice(newline + 1) : cut;
}

/** Keeps about the last `capacity` characters of a stream of text in bounded memory. */
class TextTail {
  #parts: string[] = [];
  #length = 0;
  constructor(private readonly capacity: number) {}
  add(text: string): void {
    this.#parts.push(text);
    this.#length += text.length;
    while (this.#parts.length > 1 && this.#length - this.#parts[0]!.length >= this.capacity) this.#length -= this.#parts.shift()!.length;
  }
  text(): string {
    return this.#parts.join("").slice(-this.capacity);
  }
}
