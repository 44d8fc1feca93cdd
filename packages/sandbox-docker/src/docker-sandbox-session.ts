import { randomUUID } from "node:crypto";
import { posix } from "node:path";
import { PassThrough, Readable } from "node:stream";
import {
  abortedError,
  agentError,
  ErrorCode,
  packEntries,
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
import type Dockerode from "dockerode";
import { startContainerProcess, startTreeKiller, type ContainerProcessOutcome, type TreeKiller } from "./container-process.js";
import { engineMessage, engineStatus, isGone } from "./engine-error.js";
import type { PortPlan } from "./port-plan.js";
import { firstEntry, readAll, withOwner, withoutDotPrefix, type FileOwner } from "./tar-archive.js";

/** Exit status of a process killed by SIGKILL (the OOM killer's signal). */
const SIGKILL_EXIT = 137;

/** How a session was made; passed by the provider. */
export interface DockerSandboxSessionInit {
  /** The started container the session runs commands in. */
  container: Dockerode.Container;
  /** The working folder inside the container (made by the provider): commands run there and relative paths resolve against it. */
  workdir: string;
  /** The scratch folder inside the container, made by the provider (OpenCode's state goes there). */
  scratchDir: string;
  /** How the container's ports reach the host. */
  ports: PortPlan;
  /** Environment set on every command (the container's own env is inherited as well). */
  env: Record<string, string>;
  /** The cgroup's OOM-kill count when the session started. */
  oomKillBaseline: number;
  /** The session is torn down after this long (the sandbox's `timeoutMs`). */
  lifetimeMs?: number;
  /** settings.user: every command of the task runs as it. Unset: the container's user (root). */
  user?: string;
  /** That user's numeric ids: files written in are given to it. */
  owner?: FileOwner;
  /** Prepared states of the provider's cache, for this container. */
  preparedStates?: SandboxPreparedStates;
}

/** Why a session ended before `destroy` was called. */
type EndReason = { code: typeof ErrorCode.SANDBOX_TERMINATED | typeof ErrorCode.SANDBOX_OUT_OF_MEMORY; message: string };

/** One task's container. Created by {@link DockerSandboxProvider.create}. */
export class DockerSandboxSession implements SandboxSession {
  readonly id: string;
  readonly workdir: string;
  readonly scratchDir: string;
  readonly isolated = true;
  readonly preparedStates: SandboxPreparedStates | undefined;

  private readonly container: Dockerode.Container;
  private readonly ports: PortPlan;
  private readonly env: Record<string, string>;
  private readonly user: string | undefined;
  private readonly owner: FileOwner | undefined;
  private oomKillBaseline: number;
  private destroyed = false;
  private destroying: Promise<void> | undefined;
  private ended: EndReason | undefined;
  private readonly lifetimeTimer: NodeJS.Timeout | undefined;
  /** The tree killer, started with the first spawn; stops go to it instead of an exec each. */
  private killer: Promise<TreeKiller | undefined> | undefined;
  /** Folders the provider made at create: archives go into them without a `mkdir` exec first. */
  private readonly madeFolders: ReadonlySet<string>;

  constructor(init: DockerSandboxSessionInit) {
    this.container = init.container;
    this.id = init.container.id;
    this.workdir = init.workdir;
    this.scratchDir = init.scratchDir;
    this.ports = init.ports;
    this.env = init.env;
    this.user = init.user;
    this.owner = init.owner;
    this.oomKillBaseline = init.oomKillBaseline;
    this.preparedStates = init.preparedStates;
    this.madeFolders = new Set([init.workdir, init.scratchDir]);
    if (init.lifetimeMs !== undefined) {
      this.lifetimeTimer = setTimeout(() => {
        this.ended = { code: ErrorCode.SANDBOX_TERMINATED, message: `The sandbox reached its time limit of ${init.lifetimeMs} ms and was removed.` };
        void this.destroy();
      }, init.lifetimeMs);
      this.lifetimeTimer.unref();
    }
  }

  async exec(command: string[], options: SandboxExecOptions = {}): Promise<SandboxExecResult> {
    checkCommand(command);
    this.assertUsable();
    if (options.signal?.aborted) throw abortedError(options.signal);
    if (options.timeoutMs !== undefined && !(Number.isFinite(options.timeoutMs) && options.timeoutMs > 0)) {
      throw agentError(ErrorCode.INVALID_OPTIONS, `exec timeoutMs must be a positive number, got ${String(options.timeoutMs)}.`);
    }
    const running = await this.start(command, options);

    let stoppedBy: "timeout" | "abort" | undefined;
    const stop = (reason: "timeout" | "abort") => {
      stoppedBy ??= reason;
      void running.kill();
    };
    const timer = options.timeoutMs !== undefined ? setTimeout(() => stop("timeout"), options.timeoutMs) : undefined;
    const onAbort = () => stop("abort");
    options.signal?.addEventListener("abort", onAbort, { once: true });
    // Aborted while the command was being started: the listener came too late to see it.
    if (options.signal?.aborted) stop("abort");
    let outcome: ContainerProcessOutcome;
    try {
      outcome = await running.outcome.catch((error: unknown) => {
        if (this.destroyed && !this.ended) throw destroyedError(error);
        throw agentError(ErrorCode.SANDBOX_EXEC_FAILED, `Lost the command ${JSON.stringify(command[0])}: ${engineMessage(error)}`, { cause: error });
      });
    } finally {
      if (timer) clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
    }

    if (this.destroyed && !this.ended) throw destroyedError();
    if (stoppedBy === "abort") throw abortedError(options.signal);
    if (stoppedBy === "timeout") {
      throw agentError(ErrorCode.SANDBOX_EXEC_TIMEOUT, `The command ${JSON.stringify(command[0])} ran longer than ${options.timeoutMs} ms and was killed.`, {
        details: { timeoutMs: options.timeoutMs, command: command[0] },
      });
    }
    if (outcome.exitCode === null || outcome.exitCode === SIGKILL_EXIT) await this.explainKill(outcome.exitCode);
    const refusal = runtimeRefusal(outcome);
    // The container's processes are gone but the Engine does not mark it stopped yet: it is ending.
    if (refusal === "container stopped") await this.explainKill(null);
    // The runtime could not start the command at all (e.g. a missing cwd): not the command's exit code.
    if (refusal !== undefined) {
      throw agentError(ErrorCode.SANDBOX_EXEC_FAILED, `Could not start ${JSON.stringify(command[0])}: ${outcome.stdout.toString("utf8").trim()}`, {
        details: { command: command[0] },
      });
    }
    return {
      exitCode: outcome.exitCode ?? SIGKILL_EXIT,
      stdout: outcome.stdout.toString("utf8"),
      stderr: outcome.stderr.toString("utf8"),
      ...(outcome.truncated ? { truncated: true } : {}),
    };
  }

  async spawn(command: string[], options: SandboxSpawnOptions = {}): Promise<SandboxProcess> {
    checkCommand(command);
    this.assertUsable();
    const running = await this.start(command, options);
    // A spawned process is stopped later (OpenCode's server at the end of the agent phase): the killer starts now, beside it.
    this.killer ??= startTreeKiller(this.container, this.user).catch(() => undefined);
    let killed = false;
    const exited = running.outcome.then(
      (outcome) => (killed || outcome.exitCode === null ? null : outcome.exitCode),
      () => null,
    );
    return {
      exited,
      kill: async () => {
        killed = true;
        if (this.destroyed) return;
        await running.kill();
        await exited;
      },
    };
  }

  async readFile(path: string): Promise<Uint8Array> {
    this.assertUsable();
    let target = this.resolvePath(path);
    // Follow symlinks the way the sandbox would (the Engine archives a link itself, not its target).
    for (let hops = 0; hops < 40; hops++) {
      const archive = await this.fetchArchive(target, path);
      const entry = await firstEntry(archive);
      if (!entry) throw fileError(`${path} could not be read from the sandbox (empty archive).`);
      if (entry.type === "file") return new Uint8Array(entry.content);
      if (entry.type === "symlink" && entry.linkname) {
        target = posix.resolve(posix.dirname(target), entry.linkname);
        continue;
      }
      throw fileError(`${path} is not a regular file (${entry.type}).`);
    }
    throw fileError(`${path}: too many levels of symbolic links.`);
  }

  async writeFile(path: string, content: string | Uint8Array, options: { mode?: number } = {}): Promise<void> {
    this.assertUsable();
    const target = this.resolvePath(path);
    if (target === "/") throw fileError("Cannot write a file at /.");
    // Written now: the Engine gives the file the archive's modification time.
    const packed = await packEntries([{ path: target.slice(1), content, modifiedAt: new Date(), ...(options.mode !== undefined ? { mode: options.mode } : {}) }]);
    let archive: Buffer = Buffer.from(packed.buffer, packed.byteOffset, packed.byteLength);
    if (this.owner) {
      // The Engine would make missing parents as root, where the user could not write: the user makes them.
      await this.makeDirectory(posix.dirname(target));
      archive = (await withOwner(archive, this.owner)).archive;
    }
    // Unpacked at the root: the Engine creates the missing parent folders (as root).
    await this.upload("/", archive, path);
  }

  async putArchive(directory: string, tar: Uint8Array): Promise<void> {
    this.assertUsable();
    const target = this.resolvePath(directory);
    let archive: Buffer = Buffer.from(tar);
    if (this.owner) {
      const owned = await withOwner(archive, this.owner).catch((error: unknown) => {
        throw fileError(`The archive for ${directory} could not be read: ${error instanceof Error ? error.message : String(error)}`, error);
      });
      archive = owned.archive;
      await this.makeDirectory(target, owned.implicitFolders);
    } else if (this.madeFolders.has(target)) {
      // Made at create: no exec to make it first (a round trip and a process); made again only if it went.
      try {
        await this.container.putArchive(archive, { path: target, noOverwriteDirNonDir: true });
        return;
      } catch (error) {
        if (!isMissingPath(error)) throw this.fileOperationError(error, `${directory} could not be written`);
        await this.makeDirectory(target);
      }
    } else {
      await this.makeDirectory(target);
    }
    await this.upload(target, archive, directory);
  }

  async getArchive(directory: string): Promise<Uint8Array> {
    this.assertUsable();
    const target = this.resolvePath(directory);
    // `folder/.` makes the Engine archive the folder's contents with `./name` entries.
    const archive = await this.fetchArchive(target === "/" ? "/." : `${target}/.`, directory);
    return new Uint8Array(await withoutDotPrefix(archive));
  }

  /** Streamed straight to the Engine (which unpacks it); with a `user`, entries are rewritten to its ids first, whole. */
  async putArchiveStream(directory: string, archive: AsyncIterable<Uint8Array>, options: SandboxArchiveOptions = {}): Promise<void> {
    this.assertUsable();
    if (options.signal?.aborted) throw abortedError(options.signal);
    if (this.owner) {
      const chunks: Uint8Array[] = [];
      for await (const chunk of archive) chunks.push(chunk);
      return this.putArchive(directory, Buffer.concat(chunks));
    }
    const target = this.resolvePath(directory);
    // The workdir and scratch folder were made at create (a stream cannot be sent again: one that went fails below).
    if (!this.madeFolders.has(target)) await this.makeDirectory(target);
    try {
      // Never let an archive replace a folder with a file or the other way round.
      await this.container.putArchive(Readable.from(archive), { path: target, noOverwriteDirNonDir: true, ...(options.signal ? { abortSignal: options.signal } : {}) });
    } catch (error) {
      if (options.signal?.aborted) throw abortedError(options.signal);
      throw this.fileOperationError(error, `${directory} could not be written`);
    }
  }

  /**
   * With `paths`, GNU tar inside the container packs just those (missing ones left out), so that
   * only the changed files cross; without, the Engine's archive of the whole folder.
   */
  async getArchiveStream(directory: string, options: SandboxArchiveOptions & { paths?: readonly string[] } = {}): Promise<AsyncIterable<Uint8Array>> {
    this.assertUsable();
    if (options.signal?.aborted) throw abortedError(options.signal);
    if (!options.paths) return Readable.from([await this.getArchive(directory)]);
    const target = this.resolvePath(directory);
    const output = new PassThrough();
    const running = await this.start(["tar", "-c", "-f", "-", "--null", "--no-recursion", "--hard-dereference", "--ignore-failed-read", "-T", "-"], {
      cwd: target,
      stdin: options.paths.map((path) => `${path}\0`).join(""),
      onStdout: (chunk) => output.write(chunk),
    });
    const onAbort = () => void running.kill();
    options.signal?.addEventListener("abort", onAbort, { once: true });
    running.outcome.then(
      (outcome) => {
        options.signal?.removeEventListener("abort", onAbort);
        if (options.signal?.aborted) output.destroy(abortedError(options.signal));
        else if (outcome.exitCode !== 0) output.destroy(fileError(`${directory} could not be packed: ${outcome.stderr.toString("utf8").trim() || `tar exited with ${String(outcome.exitCode)}`}`));
        else output.end();
      },
      (error: unknown) => output.destroy(error as Error),
    );
    return output;
  }

  async exposePort(port: number): Promise<ExposedPort> {
    this.assertUsable();
    return this.ports.expose(port, this.container);
  }

  async allocatePort(): Promise<number> {
    this.assertUsable();
    return this.ports.allocate();
  }

  async destroy(): Promise<void> {
    this.destroyed = true;
    if (this.lifetimeTimer) clearTimeout(this.lifetimeTimer);
    this.destroying ??= (async () => {
      this.ports.release();
      void this.killer?.then((killer) => killer?.close());
      try {
        await this.container.remove({ force: true, v: true });
      } catch (error) {
        // Gone already (auto-removed after a kill, or removed by someone else): that is the goal.
        if (isGone(error) || engineStatus(error) === 409) return;
        throw agentError(ErrorCode.SANDBOX_EXEC_FAILED, `Could not remove container ${this.id.slice(0, 12)}: ${engineMessage(error)}`, { cause: error });
      }
    })();
    return this.destroying;
  }

  /** `await using session = …`: the same as {@link destroy}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.destroy();
  }

  private async start(command: string[], options: SandboxExecOptions | SandboxSpawnOptions) {
    const env = { ...this.env, ...(options.env ?? {}) };
    for (const [key, value] of Object.entries(options.env ?? {})) checkEnvEntry(key, value);
    try {
      return await startContainerProcess(this.container, {
        command,
        cwd: options.cwd ? this.resolvePath(options.cwd) : this.workdir,
        env,
        ...("stdin" in options && options.stdin !== undefined ? { stdin: options.stdin } : {}),
        ...(options.onStdout ? { onStdout: options.onStdout } : {}),
        ...(options.onStderr ? { onStderr: options.onStderr } : {}),
        name: randomUUID(),
        ...(this.user !== undefined ? { user: this.user } : {}),
        killer: () => this.killer,
      });
    } catch (error) {
      if (this.destroyed && !this.ended) throw destroyedError(error);
      if (isGone(error)) await this.awaitContainerEnd();
      throw agentError(ErrorCode.SANDBOX_EXEC_FAILED, `Could not start ${JSON.stringify(command[0])} in the container: ${engineMessage(error)}`, { cause: error });
    }
  }

  /**
   * A command died of SIGKILL, or its exec vanished: find out whether the memory limit did it,
   * or the container itself was killed. Throws the typed error in those cases; returns when the
   * kill came from elsewhere (the command's own business).
   */
  private async explainKill(exitCode: number | null): Promise<void> {
    if (this.ended) throw agentError(this.ended.code, this.ended.message);
    // A container killed from outside ends its execs before the Engine marks it stopped: look
    // again for a moment while the container cannot run a command.
    for (let attempt = 0; attempt < 30; attempt++) {
      await this.throwIfContainerEnded();
      const count = await readOomKillCount(this.container).catch(() => undefined);
      if (count !== undefined) {
        if (count > this.oomKillBaseline) {
          this.oomKillBaseline = count;
          throw agentError(
            ErrorCode.SANDBOX_OUT_OF_MEMORY,
            "A command in the sandbox was killed by the container's memory limit. Raise resources.memoryMiB or make the task use less memory.",
            { details: { containerId: this.id } },
          );
        }
        // The container runs commands and no OOM kill happened: the SIGKILL was the command's own business.
        if (exitCode === SIGKILL_EXIT) return;
        throw agentError(ErrorCode.SANDBOX_EXEC_FAILED, "The Engine lost track of the command (its exec vanished).", { details: { containerId: this.id } });
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await this.endSession(undefined);
  }

  /**
   * The Engine refused a command because the container is stopping: throws the session's end once
   * the Engine's state shows it (the refusal can come a moment before). Returns if it still runs.
   */
  private async awaitContainerEnd(): Promise<void> {
    for (let attempt = 0; attempt < 30; attempt++) {
      await this.throwIfContainerEnded();
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** Throws the session's end (TERMINATED or OUT_OF_MEMORY) when the container no longer runs. */
  private async throwIfContainerEnded(): Promise<void> {
    let state: Dockerode.ContainerInspectInfo["State"] | undefined;
    try {
      state = (await this.container.inspect()).State;
    } catch (error) {
      if (!isGone(error)) throw agentError(ErrorCode.SANDBOX_EXEC_FAILED, `Could not inspect the container: ${engineMessage(error)}`, { cause: error });
    }
    if (!state || !state.Running) await this.endSession(state);
  }

  /** The container stopped or vanished under the session: remember why, remove what remains, and throw. */
  private async endSession(state: Dockerode.ContainerInspectInfo["State"] | undefined): Promise<never> {
    this.ended = state?.OOMKilled
      ? { code: ErrorCode.SANDBOX_OUT_OF_MEMORY, message: "The container was killed by its memory limit. Raise resources.memoryMiB or make the task use less memory." }
      : {
          code: ErrorCode.SANDBOX_TERMINATED,
          message: `The container ${this.id.slice(0, 12)} was stopped from outside while the task ran (killed, removed, or the engine restarted).`,
        };
    await this.destroy().catch(() => undefined);
    throw agentError(this.ended.code, this.ended.message, { details: { containerId: this.id, ...(state ? { exitCode: state.ExitCode } : {}) } });
  }

  private assertUsable(): void {
    if (this.ended) throw agentError(this.ended.code, this.ended.message);
    if (this.destroyed) throw destroyedError();
  }

  private resolvePath(path: string): string {
    if (typeof path !== "string" || path === "" || path.includes("\0")) {
      throw agentError(ErrorCode.SANDBOX_FILE_ERROR, `Invalid sandbox path ${JSON.stringify(path)}.`);
    }
    return posix.resolve(this.workdir, path);
  }

  /** `mkdir -p` as the sandbox's user, for the folder and (relative to it) the given subfolders. */
  private async makeDirectory(target: string, subfolders: string[] = []): Promise<void> {
    // A name that leaves the target is the Engine's to refuse at upload, not ours to create.
    const inside = subfolders.map((folder) => posix.join(target, folder)).filter((folder) => folder.startsWith(target === "/" ? "/" : `${target}/`));
    const folders = [target, ...inside];
    const outcome = await (await this.start(["mkdir", "-p", "--", ...folders], {})).outcome;
    if (outcome.exitCode !== 0) throw fileError(`Could not create folder ${target}: ${outcome.stderr.toString("utf8").trim()}`);
  }

  private async fetchArchive(target: string, shownPath: string): Promise<Buffer> {
    try {
      return await readAll(await this.container.getArchive({ path: target }));
    } catch (error) {
      throw this.fileOperationError(error, `${shownPath} could not be read`);
    }
  }

  private async upload(target: string, archive: Buffer, shownPath: string): Promise<void> {
    try {
      // Never let an archive replace a folder with a file or the other way round.
      await this.container.putArchive(archive, { path: target, noOverwriteDirNonDir: true });
    } catch (error) {
      throw this.fileOperationError(error, `${shownPath} could not be written`);
    }
  }

  private fileOperationError(error: unknown, what: string): RunningAgentError {
    if (this.destroyed && !this.ended) return destroyedError(error);
    const status = engineStatus(error);
    if (status === 404 && !/could not find the file/i.test(engineMessage(error))) {
      return agentError(ErrorCode.SANDBOX_TERMINATED, `The container ${this.id.slice(0, 12)} is gone (${engineMessage(error)}).`, { cause: error });
    }
    return fileError(`${what}: ${status === 404 ? "no such file or folder" : engineMessage(error)}`, error);
  }
}

/**
 * Reads the container's cgroup OOM-kill counter (cgroup v2 `memory.events`, or v1
 * `memory.oom_control`; one of the two is always missing, so `cat` exits 1). Rejects when the
 * command could not run, which is the case while a killed container is going away.
 */
export async function readOomKillCount(container: Dockerode.Container): Promise<number> {
  const running = await startContainerProcess(container, {
    command: ["cat", "/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control"],
    cwd: "/",
    env: {},
    name: `oom-${randomUUID()}`,
  });
  const outcome = await running.outcome;
  if ((outcome.exitCode !== 0 && outcome.exitCode !== 1) || runtimeRefusal(outcome)) throw new Error(`reading the OOM counter failed (exit ${String(outcome.exitCode)})`);
  return parseOomKillCount(outcome.stdout.toString("utf8"));
}

/**
 * Whether the container runtime refused to start an exec (it answers with exit code 126 and its
 * message on stdout, the command never ran): the container is stopping, or the exec itself could
 * not start (e.g. a missing working directory). Undefined for a command's own exit code.
 */
export function runtimeRefusal(outcome: Pick<ContainerProcessOutcome, "exitCode" | "stdout">): "container stopped" | "exec failed" | undefined {
  if (outcome.exitCode !== 126) return undefined;
  const head = outcome.stdout.subarray(0, 200).toString("utf8");
  // containerd no longer knowing the container's task is the same end seen a moment later.
  if (head.startsWith("cannot exec in a stopped state") || /^OCI runtime exec failed: .*(stopped|not running)/.test(head) || /^(task|container) [0-9a-f]+ not found/.test(head)) {
    return "container stopped";
  }
  if (head.startsWith("OCI runtime exec failed")) return "exec failed";
  return undefined;
}

/** The `oom_kill N` counter from cgroup memory files; 0 when absent. */
export function parseOomKillCount(text: string): number {
  const match = /^oom_kill (\d+)$/m.exec(text);
  return match ? Number(match[1]) : 0;
}

function checkCommand(command: string[]): void {
  if (!Array.isArray(command) || command.length === 0 || command.some((part) => typeof part !== "string" || part.includes("\0")) || command[0] === "") {
    throw agentError(ErrorCode.INVALID_OPTIONS, "A sandbox command is a non-empty array of strings without NUL bytes, e.g. [\"git\", \"status\"].");
  }
}

/** Checks one environment entry (names as POSIX shells accept them, values without NUL). */
export function checkEnvEntry(key: string, value: unknown): void {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) {
    throw agentError(ErrorCode.INVALID_OPTIONS, `Invalid environment variable name ${JSON.stringify(key)}: use letters, digits and underscores, not starting with a digit.`);
  }
  if (typeof value !== "string" || value.includes("\0")) {
    throw agentError(ErrorCode.INVALID_OPTIONS, `The environment variable ${key} must be a string without NUL bytes.`);
  }
}

/** The Engine's answer to an archive put into a folder that does not exist. */
function isMissingPath(error: unknown): boolean {
  return engineStatus(error) === 404 && /could not find the file/i.test(engineMessage(error));
}

function destroyedError(cause?: unknown): RunningAgentError {
  return agentError(ErrorCode.SANDBOX_DESTROYED, "The sandbox was destroyed.", cause === undefined ? {} : { cause });
}

function fileError(message: string, cause?: unknown): RunningAgentError {
  return agentError(ErrorCode.SANDBOX_FILE_ERROR, message, cause === undefined ? {} : { cause });
}
