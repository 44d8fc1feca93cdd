import { randomUUID } from "node:crypto";
import { posix } from "node:path";
import { Readable } from "node:stream";
import {
  abortedError,
  agentError,
  ErrorCode,
  RunningAgentError,
  type ExposedPort,
  type SandboxArchiveOptions,
  type SandboxExecOptions,
  type SandboxExecResult,
  type SandboxPreparedStates,
  type SandboxProcess,
  type SandboxSession,
  type SandboxSpawnOptions,
} from "@running-agent/core";
import type { ContainerProcess, Sandbox } from "modal";
import type { ModalSandboxHandle } from "./modal-sdk-handles.js";
import { modalError } from "./modal-error.js";

/** What a session needs to know besides the SDK's sandbox. */
export interface ModalSessionLayout {
  /** Where the repository lives inside the sandbox. */
  workdir: string;
  /** The writable folder outside the workdir for tool state and command ids. */
  scratchDir: string;
  /** The tunnel ports declared at creation, handed out in order by `allocatePort()`. */
  ports: number[];
  /** How long `exposePort` waits for Modal to report a tunnel, in ms. */
  tunnelTimeoutMs: number;
}

/**
 * Each command runs in a session of its own whose id is written to a file, so that a later exec
 * can kill the whole tree: the SDK has no call to stop a running exec. `setsid -w` waits for the
 * command and passes its exit status on. Arguments travel as positional parameters, never as shell
 * text.
 */
const TRACKED_COMMAND = 'mkdir -p -- "${0%/*}" && echo $$ > "$0" && exec "$@"';
const KILL_COMMAND = 'if [ -f "$0" ]; then kill -KILL "-$(cat "$0")" 2>/dev/null; rm -f "$0"; fi; true';

const STDIN_CHUNK_BYTES = 1024 * 1024;
/** How long a kill may hold its caller: a sandbox that no longer answers must not hang it. */
const KILL_LIMIT_MS = 5000;

/** One Modal sandbox seen through the sandbox spec. */
export class ModalSandboxSession implements SandboxSession {
  readonly id: string;
  readonly workdir: string;
  readonly scratchDir: string;
  readonly isolated = true;
  private destroyed = false;
  private destroying: Promise<void> | undefined;
  private nextPort = 0;

  private readonly sandbox: Sandbox;

  constructor(
    sandbox: ModalSandboxHandle,
    private readonly layout: ModalSessionLayout,
    /** Prepared states of the provider's cache, for this sandbox. */
    readonly preparedStates?: SandboxPreparedStates,
  ) {
    this.sandbox = sandbox as Sandbox;
    this.id = sandbox.sandboxId;
    this.workdir = layout.workdir;
    this.scratchDir = layout.scratchDir;
  }

  /** The SDK's sandbox, for Modal features the spec does not cover: cast it to modal's `Sandbox`. */
  get modalSandbox(): ModalSandboxHandle {
    return this.sandbox;
  }

  /** `stdinSource` (internal): stdin streamed from an archive instead of `options.stdin`. */
  async exec(command: string[], options: SandboxExecOptions = {}, stdinSource?: AsyncIterable<Uint8Array>): Promise<SandboxExecResult> {
    this.checkOpen("run a command");
    checkCommand(command);
    if (options.signal?.aborted) throw abortedError(options.signal);
    const started = await this.start(command, options, stdinSource);
    const stdout: Uint8Array[] = [];
    const stderr: Uint8Array[] = [];
    const pumps = Promise.all([
      pump(started.process.stdout, (chunk) => {
        stdout.push(chunk);
        options.onStdout?.(chunk);
      }),
      pump(started.process.stderr, (chunk) => {
        stderr.push(chunk);
        options.onStderr?.(chunk);
      }),
    ]);
    // A stopped command's streams may fail after we have stopped listening.
    pumps.catch(() => undefined);
    let stopReason: RunningAgentError | undefined;
    let rejectStopped!: (reason: RunningAgentError) => void;
    const stopped = new Promise<never>((_, reject) => (rejectStopped = reject));
    stopped.catch(() => undefined);
    // A stopped command rejects only once its tree has been killed: a caller that sees the
    // timeout or the abort must not see the command write anything after it.
    let killing: Promise<void> = Promise.resolve();
    const stop = (reason: RunningAgentError) => {
      if (stopReason) return;
      stopReason = reason;
      killing = settledWithin(this.killTracked(started.pidFile), KILL_LIMIT_MS);
      void killing.then(() => rejectStopped(reason));
    };
    const timer =
      options.timeoutMs !== undefined
        ? setTimeout(
            () => stop(agentError(ErrorCode.SANDBOX_EXEC_TIMEOUT, `The command ${JSON.stringify(command[0])} did not finish within ${options.timeoutMs} ms.`, { details: { timeoutMs: options.timeoutMs } })),
            options.timeoutMs,
          )
        : undefined;
    const onAbort = () => stop(abortedError(options.signal));
    options.signal?.addEventListener("abort", onAbort, { once: true });
    // An abort that came while the command was being started.
    if (options.signal?.aborted) onAbort();
    try {
      const exitCode = await Promise.race([started.process.wait(), stopped]);
      await pumps;
      if (stopReason) {
        await killing;
        throw stopReason;
      }
      if (exitCode >= 128) await this.checkAlive(`run ${JSON.stringify(command[0])}`);
      return { exitCode, stdout: decode(stdout), stderr: decode(stderr) };
    } catch (error) {
      if (stopReason) {
        await killing;
        throw stopReason;
      }
      await this.checkAlive(`run ${JSON.stringify(command[0])}`);
      throw modalError(error, ErrorCode.SANDBOX_EXEC_FAILED, `run ${JSON.stringify(command[0])}`);
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
    }
  }

  async spawn(command: string[], options: SandboxSpawnOptions = {}): Promise<SandboxProcess> {
    this.checkOpen("start a process");
    checkCommand(command);
    const started = await this.start(command, options);
    const pumps = Promise.all([pump(started.process.stdout, (chunk) => options.onStdout?.(chunk)), pump(started.process.stderr, (chunk) => options.onStderr?.(chunk))]);
    pumps.catch(() => undefined);
    let killed = false;
    const exited = (async () => {
      try {
        const code = await started.process.wait();
        await pumps.catch(() => undefined);
        return killed || code >= 128 ? null : code;
      } catch {
        return null;
      }
    })();
    return {
      exited,
      kill: async () => {
        if (killed) return;
        killed = true;
        if (!this.destroyed) await this.killTracked(started.pidFile).catch(() => undefined);
        // The process ends within moments of the kill; a sandbox that no longer answers must not hang the caller.
        await settledWithin(exited, KILL_LIMIT_MS);
      },
    };
  }

  async readFile(path: string): Promise<Uint8Array> {
    const target = this.resolve(path);
    const result = await this.execBytes(["cat", "--", target]);
    if (result.exitCode !== 0) throw agentError(ErrorCode.SANDBOX_FILE_ERROR, `Cannot read ${target} in the sandbox: ${result.stderr.trim()}`, { details: { path: target } });
    return result.stdout;
  }

  async writeFile(path: string, content: string | Uint8Array, options: { mode?: number } = {}): Promise<void> {
    const target = this.resolve(path);
    const mode = (options.mode ?? 0o644).toString(8);
    const result = await this.execBytes(["sh", "-c", 'mkdir -p -- "$(dirname -- "$0")" && cat > "$0" && chmod "$1" -- "$0"', target, mode], toBytes(content));
    if (result.exitCode !== 0) throw agentError(ErrorCode.SANDBOX_FILE_ERROR, `Cannot write ${target} in the sandbox: ${result.stderr.trim()}`, { details: { path: target } });
  }

  async putArchive(directory: string, tar: Uint8Array): Promise<void> {
    const target = this.resolve(directory);
    const result = await this.execBytes(["sh", "-c", 'mkdir -p -- "$0" && tar -x -f - -C "$0" --no-same-owner', target], tar);
    if (result.exitCode !== 0) throw agentError(ErrorCode.SANDBOX_FILE_ERROR, `Cannot unpack an archive into ${target}: ${result.stderr.trim()}`, { details: { path: target } });
  }

  /** Unpacked by tar inside, fed chunk by chunk as the archive arrives. */
  async putArchiveStream(directory: string, archive: AsyncIterable<Uint8Array>, options: SandboxArchiveOptions = {}): Promise<void> {
    if (options.signal?.aborted) throw abortedError(options.signal);
    const target = this.resolve(directory);
    const result = await this.execBytes(["sh", "-c", 'mkdir -p -- "$0" && tar -x -f - -C "$0" --no-same-owner', target], archive);
    if (result.exitCode !== 0) throw agentError(ErrorCode.SANDBOX_FILE_ERROR, `Cannot unpack an archive into ${target}: ${result.stderr.trim()}`, { details: { path: target } });
  }

  async getArchive(directory: string): Promise<Uint8Array> {
    const target = this.resolve(directory);
    // Entries are named relative to the folder, without a leading "./"; links stay links.
    const result = await this.execBytes(["sh", "-c", 'cd -- "$0" && find . -mindepth 1 -printf "%P\\0" | tar -c -f - --null --no-recursion --hard-dereference -T -', target]);
    if (result.exitCode !== 0) throw agentError(ErrorCode.SANDBOX_FILE_ERROR, `Cannot pack ${target}: ${result.stderr.trim()}`, { details: { path: target } });
    return result.stdout;
  }

  /**
   * With `paths`, tar inside packs just those (missing ones left out), so that only the changed
   * files cross; the bytes still arrive whole, as every exec's output does here.
   */
  async getArchiveStream(directory: string, options: SandboxArchiveOptions & { paths?: readonly string[] } = {}): Promise<AsyncIterable<Uint8Array>> {
    if (options.signal?.aborted) throw abortedError(options.signal);
    if (!options.paths) return Readable.from([await this.getArchive(directory)]);
    const target = this.resolve(directory);
    const list = new TextEncoder().encode(options.paths.map((path) => `${path}\0`).join(""));
    const result = await this.execBytes(["sh", "-c", 'cd -- "$0" && tar -c -f - --null --no-recursion --hard-dereference --ignore-failed-read -T -', target], list);
    if (result.exitCode !== 0) throw agentError(ErrorCode.SANDBOX_FILE_ERROR, `Cannot pack paths of ${target}: ${result.stderr.trim()}`, { details: { path: target } });
    return Readable.from([result.stdout]);
  }

  async allocatePort(): Promise<number> {
    this.checkOpen("allocate a port");
    const port = this.layout.ports[this.nextPort];
    if (port === undefined) {
      throw agentError(ErrorCode.SANDBOX_PORT_UNAVAILABLE, `All ${this.layout.ports.length} ports declared for Modal tunnels are in use; declare more with the \`ports\` setting.`);
    }
    this.nextPort += 1;
    return port;
  }

  async exposePort(port: number): Promise<ExposedPort> {
    this.checkOpen("expose a port");
    if (!this.layout.ports.includes(port)) {
      throw agentError(
        ErrorCode.SANDBOX_PORT_UNAVAILABLE,
        `Port ${port} was not declared when the Modal sandbox was created (Modal opens tunnels only for ports declared then). Use allocatePort() or the \`ports\` setting.`,
        { details: { port, declared: this.layout.ports } },
      );
    }
    let tunnels;
    try {
      tunnels = await this.sandbox.tunnels(this.layout.tunnelTimeoutMs);
    } catch (error) {
      await this.checkAlive("open a tunnel");
      throw modalError(error, ErrorCode.SANDBOX_PORT_UNAVAILABLE, `open a tunnel to port ${port}`);
    }
    const tunnel = tunnels[port];
    if (!tunnel) throw agentError(ErrorCode.SANDBOX_PORT_UNAVAILABLE, `Modal reported no tunnel for port ${port}.`, { details: { port } });
    // A loopback tunnel comes from a development server, which speaks plain HTTP (the SDK makes the
    // same distinction for its own connections); Modal's own tunnels are HTTPS.
    const loopback = tunnel.host === "127.0.0.1" || tunnel.host === "localhost" || tunnel.host === "::1";
    return { url: loopback ? `http://${tunnel.host}:${tunnel.port}` : tunnel.url };
  }

  async destroy(): Promise<void> {
    this.destroying ??= (async () => {
      this.destroyed = true;
      try {
        await this.sandbox.terminate();
      } catch {
        // Already gone (terminated, timed out, or never fully started): nothing is left to stop.
      }
      this.sandbox.detach();
    })();
    return this.destroying;
  }

  /** `await using session = …`: the same as {@link destroy}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.destroy();
  }

  /** Runs a command to its end with stdin bytes, returning raw stdout (file transfer). */
  private async execBytes(command: string[], stdin?: Uint8Array | AsyncIterable<Uint8Array>): Promise<{ exitCode: number; stdout: Uint8Array; stderr: string }> {
    this.checkOpen("transfer files");
    const stdout: Uint8Array[] = [];
    const stderr: Uint8Array[] = [];
    const streamed = stdin !== undefined && !(stdin instanceof Uint8Array) ? stdin : undefined;
    const result = await this.exec(
      command,
      {
        ...(stdin instanceof Uint8Array ? { stdin } : {}),
        onStdout: (chunk) => stdout.push(chunk),
        onStderr: (chunk) => stderr.push(chunk),
      },
      streamed,
    );
    return { exitCode: result.exitCode, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr).toString("utf8") };
  }

  private async start(command: string[], options: SandboxExecOptions | SandboxSpawnOptions, stdinSource?: AsyncIterable<Uint8Array>): Promise<{ process: ContainerProcess<Uint8Array>; pidFile: string }> {
    const pidFile = posix.join(this.scratchDir, ".exec", `${randomUUID()}.pid`);
    const stdin = "stdin" in options && options.stdin !== undefined ? toBytes(options.stdin) : undefined;
    let process: ContainerProcess<Uint8Array>;
    try {
      process = await this.sandbox.exec(["setsid", "-w", "sh", "-c", TRACKED_COMMAND, pidFile, ...command], {
        mode: "binary",
        workdir: this.resolve(options.cwd ?? this.workdir),
        ...(options.env && Object.keys(options.env).length > 0 ? { env: options.env } : {}),
      });
    } catch (error) {
      await this.checkAlive(`start ${JSON.stringify(command[0])}`);
      throw modalError(error, ErrorCode.SANDBOX_EXEC_FAILED, `start ${JSON.stringify(command[0])}`);
    }
    try {
      const writer = process.stdin.getWriter();
      // Chunks keep each gRPC message well under the router's size limits.
      for (let offset = 0; stdin && offset < stdin.length; offset += STDIN_CHUNK_BYTES) await writer.write(stdin.subarray(offset, offset + STDIN_CHUNK_BYTES));
      for await (const chunk of stdinSource ?? []) {
        for (let offset = 0; offset < chunk.length; offset += STDIN_CHUNK_BYTES) await writer.write(chunk.subarray(offset, offset + STDIN_CHUNK_BYTES));
      }
      await writer.close();
    } catch (error) {
      await this.checkAlive(`write to ${JSON.stringify(command[0])}`);
      throw modalError(error, ErrorCode.SANDBOX_EXEC_FAILED, `write to the stdin of ${JSON.stringify(command[0])}`);
    }
    return { process, pidFile };
  }

  private async killTracked(pidFile: string): Promise<void> {
    try {
      const killer = await this.sandbox.exec(["sh", "-c", KILL_COMMAND, pidFile], { mode: "binary" });
      await killer.stdin.close();
      await killer.wait();
    } catch {
      // The sandbox is gone, and the command with it.
    }
  }

  /** Throws SANDBOX_TERMINATED when the sandbox has ended under us (died, timed out, terminated by someone else). */
  private async checkAlive(what: string): Promise<void> {
    if (this.destroyed) throw agentError(ErrorCode.SANDBOX_DESTROYED, `The sandbox was destroyed; cannot ${what}.`);
    let exitCode: number | null;
    try {
      exitCode = await this.sandbox.poll();
    } catch {
      return;
    }
    if (exitCode !== null) {
      throw agentError(ErrorCode.SANDBOX_TERMINATED, `The Modal sandbox ${this.id} ended (exit code ${exitCode}) while trying to ${what}.`, { details: { sandboxId: this.id, exitCode } });
    }
  }

  private checkOpen(what: string): void {
    if (this.destroyed) throw agentError(ErrorCode.SANDBOX_DESTROYED, `The sandbox ${this.id} was destroyed; cannot ${what}.`);
  }

  private resolve(path: string): string {
    return posix.resolve(this.workdir, path);
  }
}

function checkCommand(command: string[]): void {
  if (!Array.isArray(command) || command.length === 0 || command.some((part) => typeof part !== "string")) {
    throw agentError(ErrorCode.INVALID_OPTIONS, "A sandbox command is a non-empty array of strings.");
  }
}

async function pump(stream: ReadableStream<Uint8Array>, onChunk: (chunk: Uint8Array) => void): Promise<void> {
  for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) {
    if (chunk.length > 0) onChunk(chunk);
  }
}

function toBytes(content: string | Uint8Array): Uint8Array {
  return typeof content === "string" ? Buffer.from(content, "utf8") : content;
}

function decode(chunks: Uint8Array[]): string {
  return Buffer.concat(chunks).toString("utf8");
}

/** Resolves when `promise` settles (either way) or after `limitMs`, whichever comes first. */
async function settledWithin(promise: Promise<unknown>, limitMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise.catch(() => undefined), new Promise((resolve) => (timer = setTimeout(resolve, limitMs)))]);
  clearTimeout(timer);
}
