import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { constants as fsConstants, rmSync } from "node:fs";
import { chmod, lstat, mkdir, mkdtemp, open, readdir, readFile, realpath, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { PassThrough } from "node:stream";
import { tmpdir } from "node:os";
import { basename, dirname, isAbsolute, join } from "node:path";
import { packDirectory, packDirectoryStream, unpackArchive } from "../archive.js";
import { abortedError, agentError, ErrorCode, RunningAgentError } from "../errors.js";
import { startEgressProxy, type EgressProxy } from "../network/egress-proxy.js";
import { forwardLoopbackToSocket, type SocketForwarder } from "../network/socket-forwarder.js";
import { removeTree } from "../remove-tree.js";
import { awaitProcessTreeEnd, isPidAlive, killProcessesByEnvironment, signalProcessTree, sweepProcessesByEnvironment } from "../process-tree.js";
import {
  SANDBOX_EGRESS_PROXY_URL,
  SANDBOX_SPEC_VERSION,
  type ExposedPort,
  type SandboxArchiveOptions,
  type FoundPreparedState,
  type SandboxCreateOptions,
  type SandboxExecOptions,
  type SandboxExecResult,
  type SandboxProcess,
  type SandboxProvider,
  type SandboxSession,
  type SandboxSpawnOptions,
} from "../spec/sandbox-spec.js";
import {
  bubblewrapArguments,
  fileTransferArguments,
  findExecutable,
  probeBubblewrap,
  readSystemLayout,
  SANDBOX_OPENCODE_BINARY,
  SANDBOX_SCRATCH,
  SANDBOX_WORKDIR,
  sandboxAccounts,
  withNetworkRelays,
  type SystemLayout,
} from "./bubblewrap.js";
import { DEFAULT_MAX_OUTPUT_BYTES, runToCompletion } from "./command-run.js";
import { resolveOpencodeBinary } from "./opencode-binary.js";
import { fileError, SessionPaths } from "./session-paths.js";
import type { PreparedStateCache } from "./prepared-state-cache.js";

/** Settings for {@link createLocalSandbox}. */
export interface LocalSandboxOptions {
  /**
   * How commands are isolated from the host.
   * - `"bubblewrap"` (default): every command runs in a bubblewrap sandbox; `create()` rejects with
   *   ISOLATION_UNAVAILABLE when bubblewrap is missing or cannot make namespaces.
   * - `"none"`: plain child processes in the session's temp folder, with the caller's privileges.
   *   Sessions report `isolated: false`. Only for machines where bubblewrap cannot run.
   */
  isolation?: "bubblewrap" | "none";
  /** Host path of the OpenCode binary. Default: the binary of the `opencode-ai` npm package. */
  opencodeBinary?: string;
  /** Path or name of the bwrap executable. Default: `bwrap` on PATH. */
  bubblewrapPath?: string;
  /** Where session folders are made. Default: `os.tmpdir()`. */
  tempDirectory?: string;
  /** Bytes of stdout and of stderr kept per command (callbacks see all). Default 16 MiB. */
  maxOutputBytes?: number;
  /**
   * What to do with `resources` limits, which this provider cannot enforce (see the README):
   * `"reject"` (default) fails `create()` with CAPABILITY_UNSUPPORTED; `"ignore"` runs without them.
   */
  unenforcedResources?: "reject" | "ignore";
  /**
   * Keeps each workspace as it is after the setup commands (`createPreparedStateCache`), so that a
   * later task on the same repository, commit and setup commands starts from a copy instead of running
   * them again. Only with bubblewrap, where the workspace is always `/workspace` (setup outputs such as
   * virtualenvs hold absolute paths).
   */
  preparedStates?: PreparedStateCache;
}

const sessionPrefix = "running-agent-";
const ownerFile = "owner.json";
const basePath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const envName = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Every process of a session carries the session id in this variable, so that destroy() and reapOrphans() find those that left their process group. */
export const SESSION_ENVIRONMENT_VARIABLE = "RUNNING_AGENT_SESSION";

/**
 * The local sandbox provider: each session is a temp folder on this machine (`workspace/` and
 * `scratch/`), and commands run as child processes isolated with bubblewrap. With a network policy
 * other than `"open"` each command gets its own network namespace: the only way out is the host's
 * egress proxy (reached through a Unix socket and a socat relay inside), and exposed ports are
 * reached from the host the same way. Without a policy the host's network is shared.
 * Synchronous and free of I/O: nothing happens until `create()`.
 *
 * @example
 * ```ts
 * await using session = await createLocalSandbox().create({ taskId: "demo" });
 * const { stdout } = await session.exec(["git", "--version"]);
 * ```
 */
export function createLocalSandbox(options: LocalSandboxOptions = {}): SandboxProvider {
  return new LocalSandboxProvider(options);
}

class LocalSandboxProvider implements SandboxProvider {
  readonly specificationVersion = SANDBOX_SPEC_VERSION;
  readonly providerId = "local";
  /** With the `"open"` policy the network namespace is shared, so the sandbox reaches the host's loopback (and a model proxy on it). */
  readonly reachesHostLoopback = true;
  /** Create makes a few folders here: a host clone beside it would only slow it down. */
  readonly quickCreate = true;
  private readonly isolation: "bubblewrap" | "none";
  private hostOpencodeBinary: string | null | undefined;
  private systemLayout: SystemLayout | undefined;

  constructor(private readonly options: LocalSandboxOptions) {
    const isolation = options.isolation ?? "bubblewrap";
    if (isolation !== "bubblewrap" && isolation !== "none") {
      throw agentError(ErrorCode.INVALID_OPTIONS, `Unknown isolation ${JSON.stringify(isolation)} for the local sandbox: use "bubblewrap" or "none".`);
    }
    this.isolation = isolation;
    if (options.preparedStates && isolation !== "bubblewrap") {
      throw agentError(ErrorCode.INVALID_OPTIONS, "preparedStates needs isolation \"bubblewrap\": unisolated workspaces have a different path each time, which setup outputs may hold.");
    }
  }

  /** Under bubblewrap a policy is enforced through the host's egress proxy. */
  /** False when commands share the host's network (isolation "none"): no policy but "open" can apply, so that is the default. */
  get appliesNetworkPolicy(): boolean {
    return this.isolation === "bubblewrap";
  }

  get egressProxy(): boolean {
    return this.isolation === "bubblewrap";
  }

  /** Inside a bubblewrap session the binary is bound at a fixed path; unisolated it is the host path. */
  get opencodeBinary(): string | undefined {
    if (this.isolation === "bubblewrap") return SANDBOX_OPENCODE_BINARY;
    return this.resolveHostOpencodeBinary();
  }

  private resolveHostOpencodeBinary(): string | undefined {
    if (this.hostOpencodeBinary === undefined) this.hostOpencodeBinary = this.options.opencodeBinary ?? resolveOpencodeBinary() ?? null;
    return this.hostOpencodeBinary ?? undefined;
  }

  async validate(): Promise<void> {
    if (this.isolation === "bubblewrap") await this.bubblewrapPath();
  }

  private async bubblewrapPath(): Promise<{ path: string; disableUserns: boolean }> {
    const requested = this.options.bubblewrapPath ?? "bwrap";
    const path = findExecutable(requested);
    const howToFix = 'Install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap), or pass createLocalSandbox({ isolation: "none" }) to run commands unisolated on this machine.';
    if (!path) throw agentError(ErrorCode.ISOLATION_UNAVAILABLE, `bubblewrap (${requested}) was not found. ${howToFix}`);
    const probe = await probeBubblewrap(path);
    if (probe.failure) {
      throw agentError(ErrorCode.ISOLATION_UNAVAILABLE, `bubblewrap cannot create a sandbox here (${probe.failure}). ${howToFix}`, { details: { bubblewrapPath: path } });
    }
    return { path, disableUserns: probe.disableUserns };
  }

  async create(options: SandboxCreateOptions): Promise<SandboxSession> {
    this.checkCreateOptions(options);
    if (options.signal?.aborted) throw abortedError(options.signal);
    const bubblewrap = this.isolation === "bubblewrap" ? await this.bubblewrapPath() : undefined;
    const hostOpencodeBinary = this.resolveHostOpencodeBinary();
    const requestedBinary = this.options.opencodeBinary;
    if (requestedBinary !== undefined && !(isAbsolute(requestedBinary) && findExecutable(requestedBinary))) {
      throw agentError(ErrorCode.INVALID_OPTIONS, `opencodeBinary must be the absolute path of an executable file; ${JSON.stringify(requestedBinary)} is not.`);
    }
    const parent = this.options.tempDirectory ?? tmpdir();
    const root = await realpath(await mkdtemp(join(parent, sessionPrefix))).catch((cause: unknown) => {
      throw agentError(ErrorCode.SANDBOX_CREATE_FAILED, `Cannot make a session folder in ${parent}.`, { cause });
    });
    let ownedEgressProxy: EgressProxy | undefined;
    try {
      await mkdir(join(root, "workspace"), { mode: 0o755 });
      await mkdir(join(root, "scratch"), { mode: 0o700 });
      await mkdir(join(root, "system"), { mode: 0o700 });
      await writeFile(join(root, "system", ownerFile), JSON.stringify({ pid: process.pid, taskId: options.taskId, createdAt: new Date().toISOString() }));
      const accounts = sandboxAccounts();
      await writeFile(join(root, "system", "passwd"), accounts.passwd, { mode: 0o644 });
      await writeFile(join(root, "system", "group"), accounts.group, { mode: 0o644 });
      if (options.signal?.aborted) throw abortedError(options.signal);
      this.systemLayout ??= readSystemLayout();
      const network = options.network ?? "open";
      let ownNetwork: SessionSettings["ownNetwork"];
      if (bubblewrap && network !== "open") {
        if (!findExecutable("socat")) {
          throw agentError(ErrorCode.ISOLATION_UNAVAILABLE, `The local sandbox's network policy needs socat for its relays (Debian/Ubuntu: apt-get install socat), or use network "open".`);
        }
        await mkdir(join(root, "system", "ports"), { mode: 0o700 });
        // A caller that gives no proxy of its own still gets the policy applied: this session runs one.
        if (typeof network === "object" && !options.egressProxy) ownedEgressProxy = await startEgressProxy({ policy: network });
        ownNetwork = { egressSocket: options.egressProxy?.socketPath ?? ownedEgressProxy?.socketPath, ownedEgressProxy };
      }
      return new LocalSandboxSession({
        root,
        createOptions: options,
        bubblewrap,
        systemLayout: this.systemLayout,
        hostOpencodeBinary,
        maxOutputBytes: this.options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES,
        preparedStates: this.options.preparedStates,
        ownNetwork,
      });
    } catch (error) {
      await ownedEgressProxy?.close();
      await removeFolder(root);
      if (RunningAgentError.isInstance(error)) throw error;
      throw agentError(ErrorCode.SANDBOX_CREATE_FAILED, `Cannot prepare the session folder ${root}.`, { cause: error });
    }
  }

  /** The kept state to start from (the cache's record of each state's lineage and commit); none without a cache. */
  async findPreparedState(query: { lineage: string; key?: string }): Promise<FoundPreparedState | undefined> {
    return this.options.preparedStates?.find(query);
  }

  private checkCreateOptions(options: SandboxCreateOptions): void {
    if (typeof options !== "object" || options === null || typeof options.taskId !== "string" || options.taskId === "") {
      throw agentError(ErrorCode.INVALID_OPTIONS, "create() needs options with a non-empty taskId.");
    }
    for (const [label, variables] of [
      ["env", options.env],
      ["secrets", options.secrets],
    ] as const) {
      checkEnvironment(variables, label);
    }
    const resources = options.resources;
    const asked = resources ? Object.entries(resources).filter(([, value]) => value !== undefined) : [];
    if (asked.length > 0 && (this.options.unenforcedResources ?? "reject") === "reject") {
      throw agentError(
        ErrorCode.CAPABILITY_UNSUPPORTED,
        `The local sandbox cannot enforce resource limits (${asked.map(([key]) => key).join(", ")}). Leave resources out, pass createLocalSandbox({ unenforcedResources: "ignore" }) to run without them, or use the Docker sandbox.`,
        { details: { resources: Object.fromEntries(asked) } },
      );
    }
    const network = options.network;
    if (network !== undefined && network !== "open" && network !== "none" && !(typeof network === "object" && network !== null && Array.isArray(network.allow))) {
      throw agentError(ErrorCode.INVALID_OPTIONS, `network must be "none", "open" or { allow: [...] }, got ${JSON.stringify(network)}.`);
    }
    if (this.isolation === "none" && network !== undefined && network !== "open") {
      throw agentError(
        ErrorCode.CAPABILITY_UNSUPPORTED,
        `The unisolated local sandbox shares the host's network, so it cannot apply the network policy ${JSON.stringify(network)}. Use "open", or bubblewrap isolation.`,
      );
    }
    if (options.timeoutMs !== undefined && !(Number.isFinite(options.timeoutMs) && options.timeoutMs > 0)) {
      throw agentError(ErrorCode.INVALID_OPTIONS, `timeoutMs must be a positive number of milliseconds, got ${String(options.timeoutMs)}.`);
    }
  }

  /** Removes session folders whose owning process is gone (left by a crash). */
  async reapOrphans(options: { olderThanMs?: number } = {}): Promise<number> {
    const parent = this.options.tempDirectory ?? tmpdir();
    const names = await readdir(parent).catch(() => [] as string[]);
    let removed = 0;
    for (const name of names) {
      if (!name.startsWith(sessionPrefix)) continue;
      const folder = join(parent, name);
      const owner = await readFile(join(folder, "system", ownerFile), "utf8")
        .then((text) => JSON.parse(text) as { pid?: number; createdAt?: string })
        .catch(() => undefined);
      // Only folders this provider made carry an owner file; anything else with the prefix is left alone.
      if (!owner || typeof owner.pid !== "number") continue;
      if (owner.pid === process.pid ? liveSessionRoots.has(folder) : isPidAlive(owner.pid)) continue;
      const age = Date.now() - Date.parse(owner.createdAt ?? "");
      if (options.olderThanMs !== undefined && !(age >= options.olderThanMs)) continue;
      // Unisolated processes of the crashed owner may still run (bubblewrap ones die with their parent).
      await sweepProcessesByEnvironment(SESSION_ENVIRONMENT_VARIABLE, name);
      await removeFolder(folder);
      removed += 1;
    }
    return removed;
  }
}

function checkEnvironment(variables: Record<string, string> | undefined, label: string): void {
  if (variables === undefined) return;
  if (typeof variables !== "object" || variables === null) throw agentError(ErrorCode.INVALID_OPTIONS, `${label} must be an object of strings.`);
  for (const [name, value] of Object.entries(variables)) {
    if (!envName.test(name)) throw agentError(ErrorCode.INVALID_OPTIONS, `${label}: ${JSON.stringify(name)} is not a valid environment variable name.`);
    if (typeof value !== "string" || value.includes("\0")) {
      throw agentError(ErrorCode.INVALID_OPTIONS, `${label}: the value of ${name} must be a string without NUL bytes.`);
    }
  }
}

interface SessionSettings {
  root: string;
  createOptions: SandboxCreateOptions;
  bubblewrap: { path: string; disableUserns: boolean } | undefined;
  systemLayout: SystemLayout;
  hostOpencodeBinary: string | undefined;
  maxOutputBytes: number;
  preparedStates: PreparedStateCache | undefined;
  /** Set when commands get their own network namespace; the egress socket is absent for `"none"`. */
  ownNetwork?: { egressSocket: string | undefined; ownedEgressProxy: EgressProxy | undefined };
}

// Sessions of this process, so that an exiting process can still kill their children and remove their folders.
const liveSessions = new Set<LocalSandboxSession>();
const liveSessionRoots = new Set<string>();
let exitHookInstalled = false;

function trackSession(session: LocalSandboxSession): void {
  liveSessions.add(session);
  liveSessionRoots.add(session.root);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once("exit", () => {
      for (const live of liveSessions) live.destroySync();
    });
  }
}

class LocalSandboxSession implements SandboxSession {
  readonly id: string;
  readonly workdir: string;
  readonly scratchDir: string;
  readonly isolated: boolean;
  readonly root: string;
  private readonly paths: SessionPaths;
  private readonly processes = new Set<ChildProcessWithoutNullStreams>();
  private readonly stopListeners = new Set<(reason: RunningAgentError) => void>();
  private readonly baseEnvironment: Record<string, string>;
  private state: "open" | "expired" | "destroyed" = "open";
  private destroying: Promise<void> | undefined;
  private readonly lifetimeTimer: NodeJS.Timeout | undefined;
  readonly preparedStates: SandboxSession["preparedStates"];
  /** Host-side TCP listeners of exposed ports (own network only), each forwarding to the port's socket. */
  private readonly exposedPorts = new Map<number, SocketForwarder>();
  /** Exposed ports whose relay runs in a live spawned process. */
  private readonly relayedPorts = new Set<number>();

  constructor(private readonly settings: SessionSettings) {
    this.root = settings.root;
    this.id = basename(settings.root);
    this.isolated = settings.bubblewrap !== undefined;
    const hostWorkspace = join(settings.root, "workspace");
    const hostScratch = join(settings.root, "scratch");
    this.workdir = this.isolated ? SANDBOX_WORKDIR : hostWorkspace;
    this.scratchDir = this.isolated ? SANDBOX_SCRATCH : hostScratch;
    this.paths = new SessionPaths(this.workdir, [
      { sandboxPath: this.workdir, hostPath: hostWorkspace },
      { sandboxPath: this.scratchDir, hostPath: hostScratch },
    ]);
    const opencodeFolder = this.isolated ? dirname(SANDBOX_OPENCODE_BINARY) : settings.hostOpencodeBinary ? dirname(settings.hostOpencodeBinary) : undefined;
    this.baseEnvironment = {
      PATH: opencodeFolder ? `${opencodeFolder}:${basePath}` : basePath,
      HOME: this.scratchDir,
      LANG: "C.UTF-8",
      ...(this.isolated ? { USER: "agent", LOGNAME: "agent", TMPDIR: "/tmp" } : {}),
      ...(settings.ownNetwork?.egressSocket ? proxyEnvironment() : {}),
      [SESSION_ENVIRONMENT_VARIABLE]: this.id,
      ...settings.createOptions.env,
      ...settings.createOptions.secrets,
    };
    const lifetime = settings.createOptions.timeoutMs;
    if (lifetime !== undefined) {
      this.lifetimeTimer = setTimeout(() => this.expire(), lifetime);
      this.lifetimeTimer.unref();
    }
    const cache = settings.preparedStates;
    if (cache) {
      this.preparedStates = {
        restore: (key) => {
          this.checkOpen();
          return cache.restoreInto(key, hostWorkspace);
        },
        save: (key, origin) => {
          this.checkOpen();
          return cache.saveFrom(key, hostWorkspace, origin);
        },
      };
    }
    trackSession(this);
  }

  async exec(command: string[], options: SandboxExecOptions = {}): Promise<SandboxExecResult> {
    this.checkOpen();
    checkCommand(command);
    checkEnvironment(options.env, "exec env");
    if (options.timeoutMs !== undefined && !(Number.isFinite(options.timeoutMs) && options.timeoutMs > 0)) {
      throw agentError(ErrorCode.INVALID_OPTIONS, `timeoutMs must be a positive number of milliseconds, got ${String(options.timeoutMs)}.`);
    }
    if (options.signal?.aborted) throw abortedError(options.signal);
    const child = await this.launch(command, options.cwd, options.env, []);
    return runToCompletion(command, { child, onStop: (listener) => this.onStop(listener) }, options, this.settings.maxOutputBytes);
  }

  async spawn(command: string[], options: SandboxSpawnOptions = {}): Promise<SandboxProcess> {
    this.checkOpen();
    checkCommand(command);
    checkEnvironment(options.env, "spawn env");
    // A long-running process serves the exposed ports no other live process relays yet.
    const ports = this.settings.ownNetwork ? [...this.exposedPorts.keys()].filter((port) => !this.relayedPorts.has(port)) : [];
    const child = await this.launch(command, options.cwd, options.env, ports);
    for (const port of ports) this.relayedPorts.add(port);
    child.once("exit", () => {
      for (const port of ports) this.relayedPorts.delete(port);
    });
    await new Promise<void>((resolve, reject) => {
      child.once("spawn", resolve);
      child.once("error", (cause) =>
        reject(agentError(ErrorCode.SANDBOX_EXEC_FAILED, `Could not start ${JSON.stringify(command[0])}: ${cause.message}`, { cause })),
      );
    });
    child.stdin.end();
    child.stdin.on("error", () => undefined);
    child.stdout.on("data", (chunk: Buffer) => options.onStdout?.(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)));
    child.stderr.on("data", (chunk: Buffer) => options.onStderr?.(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)));
    const exited = new Promise<number | null>((resolve) => {
      child.once("exit", (code) => {
        // Whatever the process left running in its group goes with it.
        signalProcessTree(child);
        resolve(code);
      });
    });
    let killing: Promise<void> | undefined;
    return {
      exited,
      kill: () => {
        killing ??= (async () => {
          if (child.exitCode === null && child.signalCode === null) {
            signalProcessTree(child, "SIGTERM");
            const timer = setTimeout(() => signalProcessTree(child, "SIGKILL"), 3_000);
            await exited;
            clearTimeout(timer);
          }
          // What the process started in its group is gone too once kill() resolves.
          await awaitProcessTreeEnd(child);
        })();
        return killing;
      },
    };
  }

  async readFile(path: string): Promise<Uint8Array> {
    this.checkOpen();
    const hostPath = await this.paths.resolve(path, { followFinal: true });
    const handle = await open(hostPath, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW).catch((error: NodeJS.ErrnoException) => {
      throw fileError(path, error);
    });
    try {
      if (!(await handle.stat()).isFile()) throw agentError(ErrorCode.SANDBOX_FILE_ERROR, `${path}: not a regular file.`, { details: { path } });
      return new Uint8Array(await handle.readFile());
    } finally {
      await handle.close();
    }
  }

  async writeFile(path: string, content: string | Uint8Array, options: { mode?: number } = {}): Promise<void> {
    this.checkOpen();
    const hostPath = await this.paths.resolve(path, { followFinal: true, createParents: true });
    const flags = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_TRUNC | fsConstants.O_NOFOLLOW;
    const handle = await open(hostPath, flags, options.mode ?? 0o644).catch((error: NodeJS.ErrnoException) => {
      throw fileError(path, error);
    });
    try {
      await handle.writeFile(content);
      if (options.mode !== undefined) await handle.chmod(options.mode);
    } finally {
      await handle.close();
    }
  }

  async putArchive(directory: string, tar: Uint8Array): Promise<void> {
    this.checkOpen();
    const hostPath = await this.paths.resolve(directory, { followFinal: true, createParents: true });
    await unpackArchive(tar, hostPath);
  }

  async getArchive(directory: string): Promise<Uint8Array> {
    this.checkOpen();
    const hostPath = await this.paths.resolve(directory, { followFinal: true });
    return packDirectory(hostPath);
  }

  /** Unpacked by tar inside the sandbox (C speed, and a hostile archive can only harm the sandbox), fed as the archive arrives. */
  async putArchiveStream(directory: string, archive: AsyncIterable<Uint8Array>, options: SandboxArchiveOptions = {}): Promise<void> {
    this.checkOpen();
    if (options.signal?.aborted) throw abortedError(options.signal);
    const hostPath = await this.paths.resolve(directory, { followFinal: true, createParents: true });
    await mkdir(hostPath).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== "EEXIST") throw fileError(directory, error);
    });
    const command = ["tar", "-x", "-p", "-f", "-", "--no-same-owner", "-C", this.paths.toSandbox(hostPath)];
    const child = await this.launch(command, undefined, undefined, [], "write");
    const running = { child, onStop: (listener: (reason: RunningAgentError) => void) => this.onStop(listener) };
    const result = await runToCompletion(command, running, options.signal ? { signal: options.signal } : {}, 64 * 1024, archive);
    if (result.exitCode !== 0) {
      throw agentError(ErrorCode.SANDBOX_FILE_ERROR, `Cannot unpack an archive into ${directory}: ${result.stderr.trim() || `tar exited with ${result.exitCode}`}`, { details: { path: directory } });
    }
  }

  /**
   * The whole folder is packed on the host. Given paths are packed by tar run inside the session, as
   * the sandbox sees them: a folder swapped for a symlink meanwhile can only lead to what the sandbox
   * itself can read, never to a host file (a host-side read could be raced that way).
   */
  async getArchiveStream(directory: string, options: SandboxArchiveOptions & { paths?: readonly string[] } = {}): Promise<AsyncIterable<Uint8Array>> {
    this.checkOpen();
    if (options.signal?.aborted) throw abortedError(options.signal);
    const hostPath = await this.paths.resolve(directory, { followFinal: true });
    if (!options.paths) return packDirectoryStream(hostPath);
    return this.packPathsInside(directory, this.paths.toSandbox(hostPath), options.paths, options.signal);
  }

  // Streams tar's stdout (with backpressure, nothing buffered here); a failed tar destroys the stream, and a reader that stops ends tar.
  private async packPathsInside(directory: string, sandboxPath: string, paths: readonly string[], signal: AbortSignal | undefined): Promise<AsyncIterable<Uint8Array>> {
    // Missing paths are warnings (exit 0), folders come as folder entries and are not descended into.
    const command = ["tar", "-c", "-f", "-", "--null", "--no-recursion", "--hard-dereference", "--ignore-failed-read", "--numeric-owner", "-C", sandboxPath, "-T", "-"];
    const child = await this.launch(command, undefined, undefined, [], "read");
    const output = new PassThrough();
    const stderr: Buffer[] = [];
    let stderrBytes = 0;
    let failure: RunningAgentError | undefined;
    const stop = (reason: RunningAgentError) => {
      failure ??= reason;
      signalProcessTree(child);
    };
    const onAbort = () => stop(abortedError(signal));
    signal?.addEventListener("abort", onAbort, { once: true });
    const removeStopListener = this.onStop(stop);
    child.stderr.on("data", (chunk: Buffer) => {
      if (stderrBytes < 64 * 1024) stderr.push(chunk);
      stderrBytes += chunk.byteLength;
    });
    child.once("error", (cause) => stop(agentError(ErrorCode.SANDBOX_EXEC_FAILED, `Could not start tar: ${cause.message}`, { cause })));
    child.stdout.pipe(output, { end: false });
    child.once("close", (code) => {
      signal?.removeEventListener("abort", onAbort);
      removeStopListener();
      if (failure) output.destroy(failure);
      else if (code !== 0) output.destroy(agentError(ErrorCode.SANDBOX_FILE_ERROR, `Cannot pack paths of ${directory}: ${Buffer.concat(stderr).toString("utf8").trim() || `tar exited with ${String(code)}`}`, { details: { path: directory } }));
      else output.end();
    });
    // A reader that gives up (a refused entry, a secret) ends tar and whatever it started.
    output.once("close", () => {
      if (child.exitCode === null && child.signalCode === null) signalProcessTree(child);
    });
    child.stdin.on("error", () => undefined);
    child.stdin.end(paths.map((path) => `${path}\0`).join(""));
    return output;
  }

  async hostFolder(directory: string): Promise<string> {
    this.checkOpen();
    return this.paths.resolve(directory, { followFinal: true });
  }

  async exposePort(port: number): Promise<ExposedPort> {
    this.checkOpen();
    if (!Number.isInteger(port) || port < 1 || port > 65_535) {
      throw agentError(ErrorCode.SANDBOX_PORT_UNAVAILABLE, `${String(port)} is not a TCP port number (1-65535).`);
    }
    // The network is shared with the host: the port is already reachable on loopback.
    if (!this.settings.ownNetwork) return { url: `http://127.0.0.1:${port}` };
    const known = this.exposedPorts.get(port);
    if (known) return { url: known.url };
    // Own network: a loopback listener here forwards each connection to the relay's socket inside.
    const forwarder = await forwardLoopbackToSocket(join(this.root, "system", "ports", `${port}.sock`));
    this.exposedPorts.set(port, forwarder);
    return { url: forwarder.url };
  }

  async allocatePort(): Promise<number> {
    this.checkOpen();
    return new Promise((resolve, reject) => {
      const server = createServer();
      server.once("error", (cause) => reject(agentError(ErrorCode.SANDBOX_PORT_UNAVAILABLE, "Cannot find a free loopback port.", { cause })));
      server.listen(0, "127.0.0.1", () => {
        const address = server.address();
        server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(agentError(ErrorCode.SANDBOX_PORT_UNAVAILABLE, "Cannot find a free loopback port."))));
      });
    });
  }

  destroy(): Promise<void> {
    this.destroying ??= (async () => {
      this.state = "destroyed";
      clearTimeout(this.lifetimeTimer);
      await this.stopAll(agentError(ErrorCode.SANDBOX_DESTROYED, "The sandbox was destroyed while the command ran."));
      await Promise.all([...this.exposedPorts.values()].map((forwarder) => forwarder.close()));
      this.exposedPorts.clear();
      await this.settings.ownNetwork?.ownedEgressProxy?.close();
      await removeFolder(this.root);
      liveSessions.delete(this);
      liveSessionRoots.delete(this.root);
    })();
    return this.destroying;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.destroy();
  }

  /** Last-chance cleanup from the process exit hook: synchronous by necessity. */
  destroySync(): void {
    this.state = "destroyed";
    for (const child of this.processes) signalProcessTree(child);
    killProcessesByEnvironment(SESSION_ENVIRONMENT_VARIABLE, this.id);
    try {
      rmSync(this.root, { recursive: true, force: true });
    } catch {
      // Best effort while the process exits.
    }
  }

  private expire(): void {
    if (this.state !== "open") return;
    this.state = "expired";
    void this.stopAll(agentError(ErrorCode.SANDBOX_TERMINATED, `The sandbox reached its time limit of ${this.settings.createOptions.timeoutMs} ms and was stopped.`));
  }

  private async stopAll(reason: RunningAgentError): Promise<void> {
    for (const listener of this.stopListeners) listener(reason);
    const children = [...this.processes];
    for (const child of children) signalProcessTree(child);
    await Promise.all(children.map((child) => new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once("exit", () => resolve())))));
    // Under bubblewrap the kernel empties the PID namespace, but asynchronously; unisolated, some may
    // have left the process group. Either way, wait until no process of the session is left.
    await sweepProcessesByEnvironment(SESSION_ENVIRONMENT_VARIABLE, this.id);
  }

  private onStop(listener: (reason: RunningAgentError) => void): () => void {
    this.stopListeners.add(listener);
    return () => this.stopListeners.delete(listener);
  }

  private checkOpen(): void {
    if (this.state === "destroyed") throw agentError(ErrorCode.SANDBOX_DESTROYED, `The sandbox ${this.id} was destroyed; create a new one.`);
    if (this.state === "expired") {
      throw agentError(ErrorCode.SANDBOX_TERMINATED, `The sandbox ${this.id} reached its time limit of ${this.settings.createOptions.timeoutMs} ms.`);
    }
  }

  /**
   * Starts `command` in the session. A `transfer` (the session's own tar into or out of its folders)
   * runs in the file-transfer sandbox ({@link fileTransferArguments}: its folders and the system's only,
   * no network and so no relays) with a fixed environment: nothing of the task's (a TAR_OPTIONS there
   * would steer tar), only what finds and stops it.
   */
  private async launch(command: string[], cwd: string | undefined, env: Record<string, string> | undefined, relayedPorts: number[], transfer?: "read" | "write"): Promise<ChildProcessWithoutNullStreams> {
    const sandboxCwd = cwd ?? this.workdir;
    const hostCwd = await this.paths.resolve(sandboxCwd, { followFinal: true });
    const stats = await lstat(hostCwd).catch(() => undefined);
    if (!stats?.isDirectory()) throw agentError(ErrorCode.SANDBOX_EXEC_FAILED, `The working folder ${sandboxCwd} does not exist in the sandbox.`, { details: { cwd: sandboxCwd } });
    this.checkOpen();
    // Environment goes to the child's (or bwrap's) own environment, never onto a command line.
    const environment = transfer ? { PATH: basePath, LC_ALL: "C", [SESSION_ENVIRONMENT_VARIABLE]: this.id } : { ...this.baseEnvironment, ...env };
    let file: string;
    let args: string[];
    const ownNetwork = this.settings.ownNetwork;
    if (this.settings.bubblewrap && transfer) {
      file = this.settings.bubblewrap.path;
      const mounts = { system: this.settings.systemLayout, hostWorkspace: join(this.root, "workspace"), hostScratch: join(this.root, "scratch") };
      args = [...fileTransferArguments({ ...mounts, writable: transfer === "write", cwd: this.paths.toSandbox(hostCwd), disableUserns: this.settings.bubblewrap.disableUserns }), "--", ...command];
    } else if (this.settings.bubblewrap) {
      file = this.settings.bubblewrap.path;
      args = [
        ...bubblewrapArguments({
          system: this.settings.systemLayout,
          hostWorkspace: join(this.root, "workspace"),
          hostScratch: join(this.root, "scratch"),
          hostPasswd: join(this.root, "system", "passwd"),
          hostGroup: join(this.root, "system", "group"),
          hostOpencodeBinary: this.settings.hostOpencodeBinary,
          cwd: this.paths.toSandbox(hostCwd),
          disableUserns: this.settings.bubblewrap.disableUserns,
          ...(ownNetwork ? { ownNetwork: { hostPortSockets: join(this.root, "system", "ports"), ...(ownNetwork.egressSocket ? { hostEgressSocket: ownNetwork.egressSocket } : {}) } } : {}),
        }),
        "--",
        ...(ownNetwork ? withNetworkRelays(command, { egress: ownNetwork.egressSocket !== undefined, ports: relayedPorts, egressPort: egressProxyPort }) : command),
      ];
    } else {
      [file, ...args] = command as [string, ...string[]];
    }
    const child = spawn(file, args, {
      cwd: hostCwd,
      env: environment,
      stdio: ["pipe", "pipe", "pipe"],
      // Its own process group, so that the whole tree can be signalled at once.
      detached: true,
    });
    this.processes.add(child);
    child.once("close", () => this.processes.delete(child));
    child.once("error", () => this.processes.delete(child));
    return child;
  }
}

const egressProxyPort = Number(new URL(SANDBOX_EGRESS_PROXY_URL).port);

/** What programs inside read to find the egress proxy; their own loopback stays direct. */
function proxyEnvironment(): Record<string, string> {
  const noProxy = "localhost,127.0.0.1,::1";
  return { HTTP_PROXY: SANDBOX_EGRESS_PROXY_URL, HTTPS_PROXY: SANDBOX_EGRESS_PROXY_URL, http_proxy: SANDBOX_EGRESS_PROXY_URL, https_proxy: SANDBOX_EGRESS_PROXY_URL, NO_PROXY: noProxy, no_proxy: noProxy };
}

function checkCommand(command: string[]): void {
  if (!Array.isArray(command) || command.length === 0 || command.some((part) => typeof part !== "string" || part.includes("\0")) || command[0] === "") {
    throw agentError(ErrorCode.INVALID_OPTIONS, "A command is a non-empty array of strings (an argument vector, not a shell string).");
  }
}

async function removeFolder(folder: string): Promise<void> {
  try {
    await removeTree(folder);
  } catch {
    // A folder made read-only inside the sandbox blocks removal for non-root callers: open it up and retry.
    await makeWritable(folder);
    await removeTree(folder);
  }
}

async function makeWritable(folder: string): Promise<void> {
  const stats = await lstat(folder).catch(() => undefined);
  if (!stats?.isDirectory()) return;
  await chmod(folder, 0o700).catch(() => undefined);
  for (const name of await readdir(folder).catch(() => [] as string[])) await makeWritable(join(folder, name));
}
