import type { Duplex } from "node:stream";
import { Writable } from "node:stream";
import type Dockerode from "dockerode";
import { isGone } from "./engine-error.js";

/** Output kept per stream before it is cut (the callbacks still see everything). */
export const OUTPUT_CAP_BYTES = 16 * 1024 * 1024;

/** Folder inside every container for the pid files of running commands (outside workdir and scratchDir); owned by settings.user when one is set. */
export const CONTROL_DIR = "/run/running-agent";

/**
 * Wraps a command so that its pid is written to a file first: Docker's exec API has no kill, so a
 * stop is done from a second exec that reads that pid and kills the tree under it. The command's
 * argument vector is passed as `"$@"`: no shell string is ever built from it. The file is removed
 * when the command ends, so a stale pid is never killed.
 */
const PID_WRAPPER = 'pid_file=$1; shift; echo $$ > "$pid_file" || exit 125; "$@"; status=$?; rm -f "$pid_file"; exit $status';

/**
 * Kills a process and all its descendants: stop each first so that none forks or is reparented
 * while the tree is walked, then SIGKILL. Uses /proc only (no procps in minimal images).
 */
const KILL_TREE = [
  'pid=$(cat "$1" 2>/dev/null) || exit 0',
  'kill_tree() { kill -STOP "$1" 2>/dev/null; for child in $(cat /proc/"$1"/task/*/children 2>/dev/null); do kill_tree "$child"; done; kill -KILL "$1" 2>/dev/null; }',
  'kill_tree "$pid"',
].join("\n");

/** Marks the tree killer's shell in the container's process list (its first argument). */
export const TREE_KILLER_NAME = "running-agent-tree-killer";

/**
 * The tree killer's loop: one pid file per line in, the same line back once its tree is killed. A
 * stop then costs a line on a connection that is already open, not an exec of its own (a round
 * trip to the Engine and a process start by the runtime).
 */
const TREE_KILLER = [
  'kill_tree() { kill -STOP "$1" 2>/dev/null; for child in $(cat /proc/"$1"/task/*/children 2>/dev/null); do kill_tree "$child"; done; kill -KILL "$1" 2>/dev/null; }',
  'while read -r pid_file; do pid=$(cat "$pid_file" 2>/dev/null) && kill_tree "$pid"; echo "$pid_file"; done',
].join("\n");

/** How long a kill waits for the tree killer's answer before it runs the kill in an exec of its own. */
const TREE_KILLER_ANSWER_MS = 2000;

/** A long-lived shell in the container that kills process trees on request; see {@link startTreeKiller}. */
export interface TreeKiller {
  /** Kills the tree whose root's pid is in `pidFile`; rejects when the killer is gone or does not answer in time. */
  kill(pidFile: string): Promise<void>;
  /** Ends the killer's connection (the container's removal ends its shell). */
  close(): void;
}

/**
 * Starts the tree killer as `user` (the container's when unset): the same user as the commands it
 * stops, so that it can stop nothing else. Its connection does not keep this process alive.
 */
export async function startTreeKiller(container: Dockerode.Container, user: string | undefined): Promise<TreeKiller> {
  const exec = await container.exec({
    Cmd: ["/bin/sh", "-c", TREE_KILLER, TREE_KILLER_NAME],
    ...(user !== undefined ? { User: user } : {}),
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: false,
    Tty: false,
  });
  const stream = (await exec.start({ hijack: true, stdin: true })) as Duplex & { unref?: () => void };
  stream.unref?.();
  const waiting = new Map<string, Array<{ resolve: () => void; reject: (error: Error) => void }>>();
  let gone: Error | undefined;
  const end = (error: Error) => {
    gone ??= error;
    for (const callbacks of waiting.values()) for (const callback of callbacks) callback.reject(gone);
    waiting.clear();
  };
  let text = "";
  const lines = {
    write(chunk: Buffer) {
      text += chunk.toString("utf8");
      for (let newline = text.indexOf("\n"); newline >= 0; newline = text.indexOf("\n")) {
        const line = text.slice(0, newline);
        text = text.slice(newline + 1);
        const callbacks = waiting.get(line);
        const first = callbacks?.shift();
        if (callbacks?.length === 0) waiting.delete(line);
        first?.resolve();
      }
    },
  };
  demultiplex(stream, lines, lines);
  stream.on("end", () => end(new Error("the tree killer ended")));
  stream.on("close", () => end(new Error("the tree killer ended")));
  stream.on("error", (error: Error) => end(error));
  return {
    kill(pidFile) {
      if (gone) return Promise.reject(gone);
      // A pid file is ours (CONTROL_DIR or /tmp, a uuid): one line, nothing the shell would expand.
      if (/[\n\r]/.test(pidFile)) return Promise.reject(new Error("a pid file path with a line break"));
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("the tree killer did not answer")), TREE_KILLER_ANSWER_MS);
        timer.unref();
        const callbacks = waiting.get(pidFile) ?? [];
        callbacks.push({ resolve: () => (clearTimeout(timer), resolve()), reject: (error) => (clearTimeout(timer), reject(error)) });
        waiting.set(pidFile, callbacks);
        stream.write(`${pidFile}\n`);
      });
    },
    close() {
      end(new Error("the tree killer was closed"));
      stream.destroy();
    },
  };
}

/** How a command in a container ended. `exitCode` is null when the Engine could no longer tell (exec or container gone). */
export interface ContainerProcessOutcome {
  exitCode: number | null;
  stdout: Buffer;
  stderr: Buffer;
  truncated: boolean;
}

/** What to run. */
export interface ContainerProcessOptions {
  command: string[];
  cwd: string;
  env: Record<string, string>;
  stdin?: string | Uint8Array;
  onStdout?: (chunk: Uint8Array) => void;
  onStderr?: (chunk: Uint8Array) => void;
  /** Unique name of this process, for its pid file in {@link CONTROL_DIR}. */
  name: string;
  /** A pid file path instead (for commands run before the control folder exists). */
  pidFile?: string;
  /** Runs as this user (Docker's `user[:group]`) instead of the container's; the kill runs as the same user. */
  user?: string;
  /** The session's tree killer (of the same user), when it has one: a stop asks it first, an exec of its own only if it fails. */
  killer?: () => Promise<TreeKiller | undefined> | undefined;
}

/** A started command: its outcome, and a way to kill it with everything it started. */
export interface ContainerProcess {
  readonly outcome: Promise<ContainerProcessOutcome>;
  /** Kills the process tree; resolves when the output stream has ended (or the Engine gave up on it). */
  kill(): Promise<void>;
}

/** Starts a command through the Engine's exec API with stdout and stderr kept apart. */
export async function startContainerProcess(container: Dockerode.Container, options: ContainerProcessOptions): Promise<ContainerProcess> {
  const pidFile = options.pidFile ?? `${CONTROL_DIR}/${options.name}.pid`;
  const hasStdin = options.stdin !== undefined;
  const exec = await container.exec({
    Cmd: ["/bin/sh", "-c", PID_WRAPPER, "sh", pidFile, ...options.command],
    WorkingDir: options.cwd,
    Env: Object.entries(options.env).map(([key, value]) => `${key}=${value}`),
    ...(options.user !== undefined ? { User: options.user } : {}),
    AttachStdout: true,
    AttachStderr: true,
    AttachStdin: hasStdin,
    Tty: false,
  });
  const stream = (await exec.start({ hijack: true, stdin: hasStdin })) as Duplex;

  const stdout = new CappedOutput(options.onStdout);
  const stderr = new CappedOutput(options.onStderr);
  const ended = new Promise<void>((resolve) => {
    let settled = false;
    const finish = () => {
      if (!settled) {
        settled = true;
        resolve();
      }
    };
    stream.on("end", finish);
    stream.on("close", finish);
    stream.on("error", finish);
  });
  demultiplex(stream, stdout, stderr);

  if (hasStdin) {
    const bytes = typeof options.stdin === "string" ? Buffer.from(options.stdin) : Buffer.from(options.stdin as Uint8Array);
    // Half-closing the hijacked connection closes the command's stdin.
    stream.end(bytes);
  }

  const outcome = ended.then(async (): Promise<ContainerProcessOutcome> => {
    const exitCode = await exitCodeOf(exec);
    return { exitCode, stdout: stdout.bytes(), stderr: stderr.bytes(), truncated: stdout.truncated || stderr.truncated };
  });

  let killing: Promise<void> | undefined;
  const kill = (): Promise<void> => {
    killing ??= (async () => {
      // The pid file may not be written yet right after the start: retry until the stream ends.
      for (let attempt = 0; attempt < 20; attempt++) {
        const killer = await options.killer?.();
        await (killer ? killer.kill(pidFile).catch(() => killProcessTree(container, pidFile, options.user)) : killProcessTree(container, pidFile, options.user)).catch(() => undefined);
        const stopped = await Promise.race([ended.then(() => true), delay(250).then(() => false)]);
        if (stopped) return;
      }
      stream.destroy();
    })();
    return killing;
  };

  return { outcome, kill };
}

/**
 * Runs as the command's own user (the container's when unset): a non-root user can stop its own
 * processes, and a pid file it could rewrite never makes it kill someone else's.
 */
async function killProcessTree(container: Dockerode.Container, pidFile: string, user: string | undefined): Promise<void> {
  const exec = await container.exec({
    Cmd: ["/bin/sh", "-c", KILL_TREE, "sh", pidFile],
    ...(user !== undefined ? { User: user } : {}),
    AttachStdout: false,
    AttachStderr: false,
  });
  const stream = (await exec.start({ hijack: true, stdin: false })) as Duplex;
  await new Promise<void>((resolve) => {
    stream.on("end", resolve);
    stream.on("close", resolve);
    stream.on("error", () => resolve());
    stream.resume();
  });
}

/** The exit code once the Engine marks the exec finished (it can lag the end of the stream a little). */
async function exitCodeOf(exec: Dockerode.Exec): Promise<number | null> {
  for (let attempt = 0; attempt < 100; attempt++) {
    try {
      const info = await exec.inspect();
      if (!info.Running) return typeof info.ExitCode === "number" ? info.ExitCode : null;
    } catch (error) {
      if (isGone(error)) return null;
      throw error;
    }
    await delay(attempt < 10 ? 20 : 100);
  }
  return null;
}

/**
 * Splits Docker's multiplexed stream (8-byte frame headers: stream type, 3 zero bytes, big-endian
 * length) into stdout and stderr.
 */
export function demultiplex(stream: Duplex, stdout: { write(chunk: Buffer): unknown }, stderr: { write(chunk: Buffer): unknown }): void {
  let pending: Buffer = Buffer.alloc(0);
  stream.on("data", (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (pending.length >= 8) {
      const length = pending.readUInt32BE(4);
      if (pending.length < 8 + length) break;
      const payload = pending.subarray(8, 8 + length);
      if (pending[0] === 2) stderr.write(payload);
      else stdout.write(payload);
      pending = pending.subarray(8 + length);
    }
  });
}

/** Collects a stream's output up to a cap, passing every chunk to a callback. */
class CappedOutput extends Writable {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  truncated = false;

  constructor(private readonly onChunk: ((chunk: Uint8Array) => void) | undefined) {
    super();
  }

  override write(chunk: Buffer): boolean {
    if (this.onChunk) {
      try {
        this.onChunk(new Uint8Array(chunk));
      } catch {
        // A throwing callback must not break the command's output handling.
      }
    }
    const room = OUTPUT_CAP_BYTES - this.size;
    if (room <= 0) {
      this.truncated = true;
      return true;
    }
    const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
    if (kept.length < chunk.length) this.truncated = true;
    this.chunks.push(Buffer.from(kept));
    this.size += kept.length;
    return true;
  }

  bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
