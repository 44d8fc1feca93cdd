import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { chmod, cp, mkdir, rm } from "node:fs/promises";
import { readdirSync, readFileSync } from "node:fs";
import { createConnection } from "node:net";
import { join, relative } from "node:path";
import { Duplex } from "node:stream";

/** How a task of the local server is laid out and isolated. */
export interface LocalTaskOptions {
  /** Host folder that becomes the task's `/` (created; removed by {@link LocalTask.remove}). */
  rootDirectory: string;
  /** Host folder whose content seeds the root (a filesystem snapshot), if any. */
  seedDirectory?: string;
  /** Host files bound read-only into the task, keyed by their path inside. */
  readOnlyFiles: Record<string, string>;
  /** The entrypoint; a task without one idles until terminated. */
  entrypoint: string[];
  /** Working directory of the entrypoint and the default for commands. */
  workdir: string;
  /** Environment of every process in the task (image env, secrets). */
  environment: Record<string, string>;
  /** Gives the task a network namespace of its own (loopback only): Modal's `blockNetwork`. */
  blockNetwork: boolean;
}

/** One command started in a task, as the task command router sees it. */
export interface LocalExec {
  readonly stdout: OutputBuffer;
  readonly stderr: OutputBuffer;
  /** Resolves with the exit code, or the signal number when killed by one. */
  readonly exited: Promise<{ code?: number; signal?: number }>;
  writeStdin(offset: number, data: Uint8Array, eof: boolean): void;
  readonly stdinBytesWritten: number;
  readonly stdinClosed: boolean;
  kill(): void;
}

/** How a task's entrypoint ended, with the tail of bubblewrap's and the entrypoint's stderr. */
export interface TaskExit {
  code?: number;
  signal?: number;
  stderr: string;
}

const SIGNAL_NUMBERS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15 };
const BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/**
 * Output kept in full, with waiters for new bytes: the router serves reads from any offset, as
 * Modal's does, so a client that reconnects resumes where it left off.
 */
export class OutputBuffer {
  private chunks: Buffer[] = [];
  private length = 0;
  private ended = false;
  private waiters: Array<() => void> = [];

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.length += chunk.length;
    this.wake();
  }

  end(): void {
    this.ended = true;
    this.wake();
  }

  /** Bytes from `offset` on; waits for more when there are none yet. Empty once ended. */
  async read(offset: number, signal: AbortSignal): Promise<Buffer | undefined> {
    while (offset >= this.length && !this.ended) {
      if (signal.aborted) return undefined;
      // The listener goes with the wait: a long-lived stream waits many times on one signal.
      await new Promise<void>((resolve) => {
        const onAbort = () => resolve();
        this.waiters.push(() => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        });
        signal.addEventListener("abort", onAbort, { once: true });
      });
    }
    if (offset >= this.length) return undefined;
    return Buffer.concat(this.chunks).subarray(offset);
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}

/**
 * A Modal "task" of the local server: a real process tree under bubblewrap. The image is the host
 * system itself, read-only (`/usr`, `/etc`), with a writable root of its own; the OpenCode binary is
 * bound in where the image would have it. Commands join the task's namespaces with `nsenter`, the
 * way `exec` joins a running container, so they share its filesystem, processes and network.
 */
export class LocalTask {
  private init: ChildProcess | undefined;
  private initPid = 0;
  private readonly execs = new Set<ChildProcess>();
  /** Resolves with the entrypoint's exit once it ends for any reason. */
  readonly ended: Promise<TaskExit>;
  private resolveEnded!: (value: TaskExit) => void;
  private endedValue: TaskExit | undefined;

  constructor(readonly options: LocalTaskOptions) {
    this.ended = new Promise((resolve) => (this.resolveEnded = resolve));
  }

  get finished(): boolean {
    return this.endedValue !== undefined;
  }

  /** Lays out the root and starts the entrypoint under bubblewrap. */
  async start(): Promise<void> {
    const root = this.options.rootDirectory;
    await mkdir(root, { recursive: true });
    if (this.options.seedDirectory) await cp(this.options.seedDirectory, root, { recursive: true, verbatimSymlinks: true });
    for (const folder of ["tmp", "root", "var/tmp", this.options.workdir.slice(1)]) await mkdir(join(root, folder), { recursive: true });
    await chmod(join(root, "tmp"), 0o1777);
    const args = ["--die-with-parent", "--unshare-user", "--uid", "0", "--gid", "0", "--unshare-pid", "--unshare-ipc", "--unshare-uts"];
    if (this.options.blockNetwork) args.push("--unshare-net");
    args.push("--bind", root, "/", "--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc");
    for (const link of ["bin", "lib", "lib64", "sbin"]) args.push("--symlink", `usr/${link}`, `/${link}`);
    // /usr/local belongs to the image, not to the host: start it empty, then add the image's files.
    args.push("--tmpfs", "/usr/local");
    for (const [inside, host] of Object.entries(this.options.readOnlyFiles)) args.push("--ro-bind", host, inside);
    args.push("--proc", "/proc", "--dev", "/dev", "--hostname", "modal", "--chdir", this.options.workdir, "--info-fd", "3");
    const command = this.options.entrypoint.length > 0 ? this.options.entrypoint : ["sleep", "infinity"];
    // bubblewrap reports the child's pid before the child has finished its mounts; the first line on
    // stdout comes from inside, once the root is complete, and only then may commands join it.
    args.push("--", "/bin/sh", "-c", 'echo ready && exec "$@" > /dev/null', "entrypoint", ...command);
    const init = spawn("bwrap", args, {
      stdio: ["ignore", "pipe", "pipe", "pipe"],
      env: this.environment({}),
    });
    this.init = init;
    let stderr = "";
    init.stderr!.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4096)));
    init.on("exit", (code, signal) => this.finish(signal ? { signal: SIGNAL_NUMBERS[signal] ?? 9, stderr } : { code: code ?? 0, stderr }));
    const started = Promise.all([this.lineFrom(init.stdio[3] as NodeJS.ReadableStream, "}"), this.lineFrom(init.stdout!, "ready\n")]);
    const [info] = await Promise.race([
      started,
      new Promise<never>((_, reject) => {
        init.once("error", reject);
        init.once("exit", () => reject(new Error(`bubblewrap exited before the task started: ${stderr.trim()}`)));
      }),
    ]);
    this.initPid = (JSON.parse(info) as { "child-pid": number })["child-pid"];
  }

  private lineFrom(stream: NodeJS.ReadableStream, end: string): Promise<string> {
    return new Promise((resolve) => {
      let text = "";
      const onData = (chunk: Buffer) => {
        text += chunk.toString();
        if (text.includes(end)) {
          stream.off("data", onData);
          stream.resume();
          resolve(text);
        }
      };
      stream.on("data", onData);
    });
  }

  /** Starts a command inside the task. */
  exec(command: string[], options: { workdir?: string; environment: Record<string, string> }): LocalExec {
    if (this.finished || !this.initPid) throw new Error("The task has finished.");
    const workdir = options.workdir ?? this.options.workdir;
    const child = spawn(
      "nsenter",
      ["--target", String(this.initPid), "--user", "--mount", "--pid", "--ipc", "--uts", "--net", "--root", "--wd", "--", "env", "-C", workdir, ...command],
      { stdio: ["pipe", "pipe", "pipe"], env: this.environment(options.environment), detached: true },
    );
    this.execs.add(child);
    const stdout = new OutputBuffer();
    const stderr = new OutputBuffer();
    child.stdout!.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr!.on("data", (chunk: Buffer) => stderr.push(chunk));
    child.stdin!.on("error", () => {
      // The command closed its stdin early; what it did not read is dropped, as with a pipe.
    });
    const exited = (async () => {
      const [code, signal] = (await once(child, "close")) as [number | null, NodeJS.Signals | null];
      this.execs.delete(child);
      stdout.end();
      stderr.end();
      return signal ? { signal: SIGNAL_NUMBERS[signal] ?? 9 } : { code: code ?? 0 };
    })();
    let stdinBytesWritten = 0;
    let stdinClosed = false;
    return {
      stdout,
      stderr,
      exited,
      get stdinBytesWritten() {
        return stdinBytesWritten;
      },
      get stdinClosed() {
        return stdinClosed;
      },
      writeStdin(offset, data, eof) {
        if (stdinClosed) return;
        // Writes are idempotent by offset: a retried write of bytes already taken is skipped.
        const fresh = offset < stdinBytesWritten ? data.subarray(stdinBytesWritten - offset) : data;
        if (fresh.length > 0) {
          child.stdin!.write(fresh);
          stdinBytesWritten += fresh.length;
        }
        if (eof) {
          stdinClosed = true;
          child.stdin!.end();
        }
      },
      kill: () => killTree(child),
    };
  }

  /**
   * Opens a TCP connection to a port inside the task, for its tunnels. A task on the host's network
   * is reached directly; a task with a network of its own through a small relay that joins only its
   * network namespace and pipes one connection through its stdin and stdout.
   */
  connect(port: number): Duplex {
    if (!this.options.blockNetwork) return createConnection({ host: "127.0.0.1", port });
    const relay = spawn(
      "nsenter",
      [
        "--target",
        String(this.initPid),
        "--net",
        "--",
        process.execPath,
        "-e",
        `const s = require("net").connect(${port}, "127.0.0.1"); process.stdin.pipe(s).pipe(process.stdout); s.on("error", () => process.exit(1)); s.on("close", () => process.exit(0));`,
      ],
      { stdio: ["pipe", "pipe", "ignore"] },
    );
    const connection = Duplex.from({ readable: relay.stdout!, writable: relay.stdin! });
    connection.on("close", () => relay.kill("SIGKILL"));
    relay.on("exit", () => connection.destroy());
    return connection;
  }

  /**
   * Copies the task's own files (everything but the image's read-only parts and the kernel's
   * filesystems) to a host folder, from which a later task can start.
   */
  async snapshotInto(directory: string): Promise<void> {
    const root = this.options.rootDirectory;
    const imageParts = new Set(["usr", "etc", "proc", "dev", "bin", "lib", "lib64", "sbin"]);
    await cp(root, directory, {
      recursive: true,
      verbatimSymlinks: true,
      // Children of a skipped folder are never visited, so the top level is all there is to check.
      filter: (source) => !imageParts.has(relative(root, source)),
    });
  }

  /** Kills everything in the task: ending the PID namespace's first process ends all of them. */
  async terminate(): Promise<void> {
    for (const child of this.execs) killTree(child);
    if (this.init && this.init.exitCode === null && this.init.signalCode === null) {
      this.init.kill("SIGKILL");
      await this.ended;
    }
  }

  /** Removes the task's root folder (after {@link terminate}). */
  async remove(): Promise<void> {
    await rm(this.options.rootDirectory, { recursive: true, force: true });
  }

  /** Whether the task's first process is still there (a test's check for leftovers). */
  get alive(): boolean {
    return this.init !== undefined && this.init.exitCode === null && this.init.signalCode === null;
  }

  private finish(value: TaskExit): void {
    if (this.endedValue) return;
    this.endedValue = value;
    for (const child of this.execs) killTree(child);
    this.resolveEnded(value);
  }

  private environment(extra: Record<string, string>): Record<string, string> {
    return { PATH: BASE_PATH, HOME: "/root", LANG: "C.UTF-8", ...this.options.environment, ...extra };
  }
}

/** Kills a command's process group and every descendant that left it (found through /proc). */
function killTree(child: ChildProcess): void {
  if (child.pid === undefined) return;
  for (const pid of descendants(child.pid)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch {
    // Already gone.
  }
}

function descendants(rootPid: number): number[] {
  const parents = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      parents.set(Number(entry), Number(fields[1]));
    } catch {
      // The process ended while we looked.
    }
  }
  const found: number[] = [];
  const queue = [rootPid];
  while (queue.length > 0) {
    const parent = queue.shift()!;
    for (const [pid, ppid] of parents) {
      if (ppid === parent) {
        found.push(pid);
        queue.push(pid);
      }
    }
  }
  return found;
}
