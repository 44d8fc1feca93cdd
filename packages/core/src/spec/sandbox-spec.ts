/**
 * The sandbox seam. A provider makes sessions; a session is one isolated place where the
 * repository lives and the agent runs. Version: `sandbox-v1`.
 *
 * Paths given to a session are absolute paths inside the sandbox, or relative to its
 * {@link SandboxSession.workdir}.
 */
export const SANDBOX_SPEC_VERSION = "sandbox-v1" as const;

/**
 * Network access a sandbox gets.
 * - `"none"`: no way out at all (the OpenCode server is still reachable from the host).
 * - `{ allow }`: only the listed domains (`example.com` admits it and its subdomains, `*.example.com`
 *   only subdomains), IP addresses and CIDR ranges. Loopback, link-local and private addresses are
 *   refused unless an address or CIDR entry names them.
 * - `"open"`: unrestricted egress (the local sandbox then shares the host's network).
 *
 * The core maps the older `{ mode: ... }` forms onto these before a provider sees them.
 */
export type SandboxNetworkPolicy =
  | "none"
  | "open"
  | {
      /** Domains (`example.com`, `*.example.com`), addresses and CIDR ranges the sandbox may reach. */
      allow: string[];
    };

/**
 * Where the host's egress proxy is reached inside a sandbox that takes one
 * ({@link SandboxProvider.egressProxy}): `HTTP_PROXY`/`HTTPS_PROXY` point here, and so does the
 * model's base URL (the proxy's model route).
 */
export const SANDBOX_EGRESS_PROXY_URL = "http://127.0.0.1:3128";

/** CPU, memory and process limits. Providers map what they can and reject what they cannot honour. */
export interface SandboxResources {
  /** CPU cores (fractions allowed). */
  cpu?: number;
  /** Memory limit in MiB. */
  memoryMiB?: number;
  /** Maximum number of processes. */
  pids?: number;
}

/** What the core asks for when it opens a sandbox. */
export interface SandboxCreateOptions {
  /** The task id: providers put it on labels or tags so that leftovers can be traced. */
  taskId: string;
  /** Non-secret environment for every command. */
  env?: Record<string, string>;
  /** Secret environment (API keys). Providers pass these out of band, never on a command line. */
  secrets?: Record<string, string>;
  /** Resource limits. */
  resources?: SandboxResources;
  /** Network policy; providers choose a default when absent. */
  network?: SandboxNetworkPolicy;
  /**
   * The host's egress proxy for this sandbox (only for providers with {@link SandboxProvider.egressProxy}):
   * a Unix socket the provider makes reachable at {@link SANDBOX_EGRESS_PROXY_URL} inside, as the only
   * route out. The proxy applies `network`; the provider only has to leave no other route.
   */
  egressProxy?: {
    /** The proxy's Unix socket on the host. */
    socketPath: string;
  };
  /** The longest the sandbox may live, in ms; providers enforce it where they can. */
  timeoutMs?: number;
  /** Extra labels or tags. */
  labels?: Record<string, string>;
  /**
   * Only for providers with {@link SandboxProvider.startsFromPreparedStates}: the key of the prepared
   * state the session should start from when the provider keeps one (see {@link SandboxPreparedStates}).
   * Without one kept (or with a stale one), the session starts as usual.
   */
  preparedStateKey?: string;
  /** Aborts creation. */
  signal?: AbortSignal;
}

/** Options for one command. */
export interface SandboxExecOptions {
  /** Working directory inside the sandbox; defaults to the workdir. */
  cwd?: string;
  /** Extra environment for this command. */
  env?: Record<string, string>;
  /** Bytes written to the command's stdin, which is then closed. Without it stdin is empty. */
  stdin?: string | Uint8Array;
  /** Kill the command after this many ms and reject with SANDBOX_EXEC_TIMEOUT. */
  timeoutMs?: number;
  /** Kill the command when aborted and reject with ABORTED. */
  signal?: AbortSignal;
  /** Called with each chunk of stdout as it arrives. */
  onStdout?: (chunk: Uint8Array) => void;
  /** Called with each chunk of stderr as it arrives. */
  onStderr?: (chunk: Uint8Array) => void;
}

/** The outcome of a command that ran to its end (a non-zero exit is not an error). */
export interface SandboxExecResult {
  /** The command's exit code. */
  exitCode: number;
  /** All of stdout, decoded as UTF-8 (providers may cap it; see {@link SandboxExecResult.truncated}). */
  stdout: string;
  /** All of stderr, decoded as UTF-8. */
  stderr: string;
  /** True when output was cut to a provider's cap. */
  truncated?: boolean;
}

/** A long-running process (the OpenCode server). */
export interface SandboxProcess {
  /** Resolves with the exit code when the process ends (null when killed by a signal). */
  readonly exited: Promise<number | null>;
  /** Stops the process and what it started. Idempotent. */
  kill(): Promise<void>;
}

/** Options for a long-running process. */
export interface SandboxSpawnOptions {
  /** Working directory inside the sandbox; defaults to the workdir. */
  cwd?: string;
  /** Extra environment for the process. */
  env?: Record<string, string>;
  /** Called with each chunk of stdout as it arrives. */
  onStdout?: (chunk: Uint8Array) => void;
  /** Called with each chunk of stderr as it arrives. */
  onStderr?: (chunk: Uint8Array) => void;
}

/** A port inside the sandbox made reachable from the host. */
export interface ExposedPort {
  /** Base URL the host uses, e.g. `http://127.0.0.1:49152`. */
  url: string;
  /** Extra headers the host must send (for tunnels that need them). */
  headers?: Record<string, string>;
}

/** A file in the sandbox's tree, as listed by {@link SandboxSession.getArchive}. */
export interface SandboxFile {
  /** Path relative to the workdir, with forward slashes. */
  path: string;
  /** The file's bytes. */
  content: Uint8Array;
  /** Its permission bits (e.g. `0o755`), when the provider reports them. */
  mode?: number;
}

/** Options of the streaming archive members. */
export interface SandboxArchiveOptions {
  /** Stops the transfer and rejects with ABORTED. */
  signal?: AbortSignal;
}

/**
 * Optional capability of a session: the workdir as it is after the setup commands, kept under a key
 * and put back in a later session, so that the setup runs once per key. The core's key names the
 * repository, the commit and the setup commands: any change to one of them (a lockfile included) is
 * another key, and a state is never used for another key.
 */
export interface SandboxPreparedStates {
  /**
   * Set when the session was created from the state kept under this key (a provider with
   * {@link SandboxProvider.startsFromPreparedStates}: a committed image, a filesystem snapshot). Its
   * workdir already holds the repository and the setup's outputs: the core places no files, and
   * `restore` of this key resolves true without copying anything.
   */
  readonly startedFrom?: string;
  /** Replaces the workdir's contents with the state kept under `key`. Resolves false, workdir untouched, when there is none. */
  restore(key: string): Promise<boolean>;
  /**
   * Keeps the workdir's current contents under `key`, with its origin when the core gives one: a provider
   * that keeps it beside the state answers {@link SandboxProvider.findPreparedState} for its lineage.
   */
  save(key: string, origin?: PreparedStateOrigin): Promise<void>;
}

/**
 * What a prepared state was made from, kept beside it by the provider (host-side: a file, an image
 * label, an index in memory; never read from the sandbox). States of one lineage differ only in their
 * commit, so a task whose base moved can start from an older one and bring in what changed.
 */
export interface PreparedStateOrigin {
  /** The core's digest of the repository, its remote and the setup commands (the key without the commit). */
  lineage: string;
  /** The base commit the state's workdir holds. */
  commit: string;
}

/** A kept state {@link SandboxProvider.findPreparedState} found. */
export interface FoundPreparedState {
  /** The state's key, to restore it or to create a session from it. */
  key: string;
  /** The base commit it holds. */
  commit: string;
}

/** One open sandbox. */
export interface SandboxSession extends AsyncDisposable {
  /** Provider-specific id (container id, sandbox id, temp folder name). */
  readonly id: string;
  /** Absolute path inside the sandbox where the repository is placed and the agent works. */
  readonly workdir: string;
  /**
   * Absolute path inside the sandbox of a writable folder outside {@link workdir}, for tool state
   * (OpenCode's HOME and XDG folders). Nothing in it is ever collected as a change.
   */
  readonly scratchDir: string;
  /** True when the session is isolated from the host (false only for an explicitly unisolated local run). */
  readonly isolated: boolean;

  /** Runs a command given as an argument vector (never a shell string built by the core). */
  exec(command: string[], options?: SandboxExecOptions): Promise<SandboxExecResult>;

  /** Starts a long-running process and returns at once. */
  spawn(command: string[], options?: SandboxSpawnOptions): Promise<SandboxProcess>;

  /** Reads a file. Rejects with SANDBOX_FILE_ERROR when missing. */
  readFile(path: string): Promise<Uint8Array>;

  /** Writes a file, creating parent folders. */
  writeFile(path: string, content: string | Uint8Array, options?: { mode?: number }): Promise<void>;

  /** Unpacks a tar archive (ustar/pax) into a folder, creating it. */
  putArchive(directory: string, tar: Uint8Array): Promise<void>;

  /** Packs a folder into a tar archive (entries relative to that folder; symlinks stay links). */
  getArchive(directory: string): Promise<Uint8Array>;

  /**
   * Optional streaming form of {@link putArchive}: unpacks the tar read from `archive` as it
   * arrives, without holding it whole. The core uses it when present (placing the repository).
   */
  putArchiveStream?(directory: string, archive: AsyncIterable<Uint8Array>, options?: SandboxArchiveOptions): Promise<void>;

  /**
   * Optional streaming form of {@link getArchive}. With `paths` (relative to `directory`), the
   * archive holds only those that exist, each a file or a symlink (folders are not descended into,
   * missing paths are left out). The core uses it to bring back only what changed.
   */
  getArchiveStream?(directory: string, options?: SandboxArchiveOptions & { paths?: readonly string[] }): Promise<AsyncIterable<Uint8Array>>;

  /**
   * Optional, for a provider whose files are host files (the local sandbox): the host folder that
   * holds `directory`. The core then reads metadata there itself (the workspace listing, with
   * `find` on the host, never following a link) instead of starting a command inside.
   */
  hostFolder?(directory: string): Promise<string>;

  /**
   * Makes a TCP port that a process inside listens on reachable from the host.
   * Called before the process starts listening; the returned URL works once it does.
   */
  exposePort(port: number): Promise<ExposedPort>;

  /** Suggests a port number that is free for {@link exposePort} (providers that share the host's network must avoid clashes). */
  allocatePort?(): Promise<number>;

  /** Removes the sandbox and everything it started. Idempotent; never throws for an already destroyed sandbox. */
  destroy(): Promise<void>;

  /** Optional: prepared states (see {@link SandboxPreparedStates}). */
  readonly preparedStates?: SandboxPreparedStates;
}

/** Optional capability: filesystem snapshots that later sandboxes start from. */
export interface SandboxSnapshotCapability {
  /** Takes a snapshot of the session's filesystem and returns its id. */
  snapshot(session: SandboxSession): Promise<string>;
}

/** A sandbox provider: a factory of sessions. `createX(settings)` builds one without I/O. */
export interface SandboxProvider {
  /** Always `sandbox-v1` for this version of the spec. */
  readonly specificationVersion: typeof SANDBOX_SPEC_VERSION;
  /** A short id: `local`, `docker`, `modal`. */
  readonly providerId: string;
  /**
   * Where the OpenCode binary is inside sessions of this provider, when it is not `opencode` on PATH.
   */
  readonly opencodeBinary?: string;
  /**
   * The address servers inside must listen on for {@link SandboxSession.exposePort} to reach them
   * (`0.0.0.0` where the tunnel connects to the sandbox's network interface, as Modal's does).
   * Default `127.0.0.1`.
   */
  readonly listenHostname?: string;
  /**
   * True when processes inside reach the host's 127.0.0.1 (a shared network namespace: the local
   * sandbox, Docker with host networking). Needed for `modelProxy`, which keeps the model's key on the host.
   */
  readonly reachesHostLoopback?: boolean;
  /**
   * True when the provider enforces `network` by routing all traffic through the host's egress proxy
   * (`egressProxy` in the create options): the core then starts one per sandbox, and the model's key
   * stays on the host behind it.
   */
  readonly egressProxy?: boolean;

  /**
   * How many OpenCode servers may start at once in sessions of this provider (one bound shared by all
   * tasks that use this provider object). Absent: the core's per-process default (CPU cores, at least 2),
   * which suits providers whose sandboxes share this machine's CPU.
   */
  readonly maxConcurrentAgentStarts?: number;

  /**
   * True when sessions start from a prepared state named at create time
   * ({@link SandboxCreateOptions.preparedStateKey}) instead of having one restored into an open
   * session. The core then clones on the host before it opens the sandbox (the key names the
   * commit), and places no files in a session that started from the state.
   */
  readonly startsFromPreparedStates?: boolean;

  /**
   * True when {@link SandboxProvider.create} only writes a few folders on this machine, with no engine
   * or remote API to wait on (the local sandbox). The core then clones on the host after the create
   * instead of beside it, where the clone would only compete with it for the CPU. Default false.
   */
  readonly quickCreate?: boolean;

  /** Opens a session. Rejects with a typed error and leaves nothing behind on failure. */
  create(options: SandboxCreateOptions): Promise<SandboxSession>;

  /**
   * Optional, for providers that keep prepared states with their origin: the state kept under `key`
   * (when given) when there is a fresh one of this lineage, else the newest fresh state of the lineage (another
   * commit of the same repository and setup commands), else undefined. The core then starts a task
   * whose base moved from that state and brings in only what changed (unless a setup input changed).
   */
  findPreparedState?(query: { lineage: string; key?: string; signal?: AbortSignal }): Promise<FoundPreparedState | undefined>;

  /**
   * Cheap check that the provider can work at all (engine reachable, credentials valid). Called during
   * validation, with the task's network policy: a provider that cannot enforce it here rejects with
   * CAPABILITY_UNSUPPORTED.
   */
  validate?(options?: { signal?: AbortSignal; network?: SandboxNetworkPolicy }): Promise<void>;

  /** Removes sessions of this provider left by a crashed process. Returns how many it removed. */
  reapOrphans?(options?: { olderThanMs?: number }): Promise<number>;

  /** Optional snapshot capability. */
  readonly snapshots?: SandboxSnapshotCapability;
}
