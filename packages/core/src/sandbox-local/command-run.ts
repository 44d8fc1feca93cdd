import type { ChildProcessWithoutNullStreams } from "node:child_process";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { abortedError, agentError, ErrorCode, RunningAgentError } from "../errors.js";
import { awaitProcessTreeEnd, signalProcessTree } from "../process-tree.js";
import type { SandboxExecOptions, SandboxExecResult } from "../spec/sandbox-spec.js";

/** Output kept per stream by default; the callbacks still see everything. */
export const DEFAULT_MAX_OUTPUT_BYTES = 16 * 1024 * 1024;

// After the command exits, its pipes may stay open in a stray grandchild: give the last bytes this long.
const drainAfterExitMs = 2_000;

/** A started command that {@link runToCompletion} watches. */
export interface RunningCommand {
  child: ChildProcessWithoutNullStreams;
  /** Set by the session when it is destroyed or expires while the command runs. */
  onStop(listener: (reason: RunningAgentError) => void): () => void;
}

/**
 * Feeds stdin, streams and collects output, and settles with the exit code. A timeout, an abort or
 * a stop from the session kills the whole process tree and rejects with a typed error only once
 * the process is gone.
 */
export function runToCompletion(
  command: string[],
  running: RunningCommand,
  options: SandboxExecOptions,
  maxOutputBytes: number,
  /** Streamed to stdin instead of `options.stdin`; its failure stops the command and is the rejection. */
  stdinSource?: AsyncIterable<Uint8Array>,
): Promise<SandboxExecResult> {
  const { child } = running;
  return new Promise((resolve, reject) => {
    const stdout = new OutputBuffer(maxOutputBytes);
    const stderr = new OutputBuffer(maxOutputBytes);
    let stopReason: RunningAgentError | undefined;
    let spawnError: Error | undefined;

    const stop = (reason: RunningAgentError) => {
      stopReason ??= reason;
      signalProcessTree(child);
    };
    const timer =
      options.timeoutMs !== undefined
        ? setTimeout(
            () =>
              stop(
                agentError(ErrorCode.SANDBOX_EXEC_TIMEOUT, `The command ${JSON.stringify(command[0])} did not finish within ${options.timeoutMs} ms and was killed.`, {
                  details: { timeoutMs: options.timeoutMs },
                }),
              ),
            options.timeoutMs,
          )
        : undefined;
    const onAbort = () => stop(abortedError(options.signal));
    options.signal?.addEventListener("abort", onAbort, { once: true });
    const removeStopListener = running.onStop(stop);

    child.stdout.on("data", (chunk: Buffer) => {
      stdout.push(chunk);
      options.onStdout?.(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr.push(chunk);
      options.onStderr?.(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    });
    // A command that does not read its stdin closes the pipe early: that is not an error.
    child.stdin.on("error", () => undefined);
    if (stdinSource) {
      pipeline(Readable.from(stdinSource), child.stdin).catch((error: unknown) => {
        // A command that exits early closes its stdin (EPIPE): its exit code says why.
        if ((error as NodeJS.ErrnoException).code === "EPIPE" || (error as NodeJS.ErrnoException).code === "ERR_STREAM_PREMATURE_CLOSE") return;
        stop(RunningAgentError.isInstance(error) ? error : agentError(ErrorCode.SANDBOX_FILE_ERROR, `The input of ${JSON.stringify(command[0])} failed: ${(error as Error).message}`, { cause: error }));
      });
    } else if (options.stdin !== undefined) child.stdin.end(typeof options.stdin === "string" ? Buffer.from(options.stdin, "utf8") : options.stdin);
    else child.stdin.end();

    child.on("error", (error) => {
      spawnError = error;
    });
    let drainTimer: NodeJS.Timeout | undefined;
    child.on("exit", () => {
      // Background processes of a finished command end with it (bubblewrap does the same with its PID namespace).
      signalProcessTree(child);
      drainTimer = setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
      }, drainAfterExitMs);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      clearTimeout(drainTimer);
      options.signal?.removeEventListener("abort", onAbort);
      removeStopListener();
      if (stopReason) {
        const reason = stopReason;
        // The caller hears of the stop once nothing of the command's tree is left.
        return void awaitProcessTreeEnd(child).then(() => reject(reason));
      }
      if (spawnError) {
        return reject(
          agentError(ErrorCode.SANDBOX_EXEC_FAILED, `Could not start ${JSON.stringify(command[0])}: ${spawnError.message}`, {
            cause: spawnError,
          }),
        );
      }
      const result: SandboxExecResult = {
        exitCode: code ?? 128 + signalNumber(signal),
        stdout: stdout.text(),
        stderr: stderr.text(),
      };
      if (stdout.truncated || stderr.truncated) result.truncated = true;
      resolve(result);
    });
  });
}

class OutputBuffer {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  truncated = false;

  constructor(private readonly limit: number) {}

  push(chunk: Buffer): void {
    if (this.size >= this.limit) {
      this.truncated = true;
      return;
    }
    const room = this.limit - this.size;
    const kept = chunk.byteLength > room ? chunk.subarray(0, room) : chunk;
    if (kept !== chunk) this.truncated = true;
    this.chunks.push(kept);
    this.size += kept.byteLength;
  }

  text(): string {
    return Buffer.concat(this.chunks).toString("utf8");
  }
}

const signalNumbers: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGABRT: 6, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGTERM: 15 };

function signalNumber(signal: NodeJS.Signals | null): number {
  return signal ? (signalNumbers[signal] ?? 0) : 0;
}
