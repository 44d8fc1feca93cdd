import type { Duplex } from "node:stream";
import {
  abortedError,
  agentError,
  ErrorCode,
  RunningAgentError,
  SANDBOX_SPEC_VERSION,
  type FoundPreparedState,
  type PreparedStateOrigin,
  type SandboxCreateOptions,
  type SandboxNetworkPolicy,
  type SandboxProvider,
  type SandboxResources,
} from "@running-agent/core";
import type Dockerode from "dockerode";
import { CONTROL_DIR, demultiplex, startContainerProcess } from "./container-process.js";
import { DEFAULT_IMAGE } from "./default-image.js";
import { describeEndpoint, resolveDockerClient, type DockerConnection } from "./docker-client.js";
import { checkEnvEntry, DockerSandboxSession, parseOomKillCount } from "./docker-sandbox-session.js";
import { engineMessage, engineStatus, engineUnavailableError, isEngineUnreachable, isGone } from "./engine-error.js";
import { egressProxyEnvironment, reapSocketFolders, RELAY_EXIT_CODES, socketRelayPorts, type SocketRelayPorts } from "./egress-relays.js";
import { hostNetworkPorts, noPorts, publishedPorts, type PortPlan } from "./port-plan.js";
import type { FileOwner } from "./tar-archive.js";
import type { DockerPreparedStateCache, PreparedBaseImage } from "./docker-prepared-state-cache.js";

/** Label on every container this package makes. */
export const MANAGED_LABEL = "running-agent.managed";
/** Label with the task id. */
export const TASK_ID_LABEL = "running-agent.task-id";
/** Label with the creation time (ISO 8601). */
export const CREATED_AT_LABEL = "running-agent.created-at";

/** The Docker network a sandbox joins. */
export type DockerNetwork =
  | "none"
  | "host"
  | "bridge"
  | {
      /** A network the Engine already has (`docker network create`). */
      name: string;
    };

/** Settings of {@link createDockerSandbox}. Every field is optional. */
export interface DockerSandboxSettings {
  /** The image every task runs in. Default: {@link DEFAULT_IMAGE} (build it with `buildDefaultImage`). It needs `sh`, `git` and OpenCode. */
  image?: string;
  /** The Engine: a Dockerode client or its options (socket, TCP with TLS, SSH). Default: dockerode's defaults, which honour DOCKER_HOST. */
  docker?: DockerConnection;
  /** Default limits; a task's own `resources` override them field by field. Default: 4096 MiB memory, 1024 processes, CPU unlimited. */
  resources?: SandboxResources;
  /**
   * The network used when a task needs one (the model's API must be reachable from it).
   * `bridge` (default) publishes the agent server's port on the host's loopback; `host` shares the
   * engine host's network (ports are host ports); `{ name }` joins a network you made (e.g. one
   * whose egress you filter); `none` cuts the network off for every task.
   */
  network?: DockerNetwork;
  /**
   * With `egress: "network"`: Docker cannot filter egress by host name. With `use-network` (default)
   * an allow-list policy runs on {@link network}; with `reject` it fails with CAPABILITY_UNSUPPORTED.
   */
  allowList?: "use-network" | "reject";
  /**
   * How a task's policy other than `"open"` is enforced.
   * - `"proxy"` (default): through the host's egress proxy, which the core starts per sandbox. The
   *   container runs with `none` networking; a folder of Unix sockets on this machine is bound into
   *   it, and socat relays inside (the default image has socat) are its only ways out (127.0.0.1:3128
   *   to the proxy, which also serves the model with the key on the host) and in (exposed ports, such
   *   as OpenCode's). No root or nsenter is needed, but the Engine must share this machine's
   *   filesystem: with a remote Engine (TCP, SSH) such a policy fails in validate with
   *   CAPABILITY_UNSUPPORTED.
   * - `"network"`: no proxy; `"none"` runs with `none` networking (no exposed ports) and an
   *   allow-list on {@link network} (see {@link allowList}), e.g. a network whose egress you filter.
   */
  egress?: "proxy" | "network";
  /** Environment for every container (non-secret). */
  env?: Record<string, string>;
  /** Extra labels on every container; {@link DockerSandboxProvider.reapOrphans} only touches containers that carry them. */
  labels?: Record<string, string>;
  /** `never` (default): the image must be there. `missing`: pull it when absent. `always`: pull before each task. */
  pullPolicy?: "never" | "missing" | "always";
  /** Where OpenCode is inside the image. Default: `opencode` on PATH. */
  opencodeBinary?: string;
  /** The task's working folder in the container. Default `/workspace`. */
  workdir?: string;
  /** A writable folder outside the workdir for tool state. Default `/var/tmp/running-agent`. */
  scratchDir?: string;
  /** With a bridge or named network: container ports published on the host (reserved at create). Default `[4096, 4097]`. */
  publishedPorts?: number[];
  /** The host name this process uses to reach the sandbox's ports. Default `127.0.0.1` (a local engine). */
  portHost?: string;
  /**
   * The user every command runs as (the agent, OpenCode, each exec), in Docker's form: `"1000"`,
   * `"1000:1000"`, or a user (and group) named in the image, e.g. `"agent"` or `"agent:agent"`.
   * The workdir and scratch folder are given to that user, and files put in through `writeFile`
   * and `putArchive` are owned by it. Default: root, as the image's Docker default.
   */
  user?: string;
  /**
   * Prepared states (`createDockerPreparedStateCache`): after the setup commands, a task's container is
   * committed to an image labelled with the core's key (repository, commit, setup commands), and later
   * tasks on that key start their container from it, with the repository placed and the setup done.
   * The task's scratch folder and the control folder are then anonymous volumes (removed with the
   * container), so that OpenCode's state never enters an image.
   */
  preparedStates?: DockerPreparedStateCache;
}

const DEFAULT_RESOURCES: SandboxResources = { memoryMiB: 4096, pids: 1024 };
/** Containers outlive their task's time limit by this much before their init exits by itself. */
const LIFETIME_GRACE_SECONDS = 120;
/** Without a time limit a container still ends by itself after a day (crashed callers leave nothing forever). */
const MAX_LIFETIME_SECONDS = 24 * 60 * 60;

/**
 * Makes a sandbox provider that runs each task in its own container on a Docker Engine.
 * Synchronous and free of I/O: settings are checked here, the Engine is first contacted by
 * `validate` or `create`.
 */
export function createDockerSandbox(settings: DockerSandboxSettings = {}): DockerSandboxProvider {
  return new DockerSandboxProvider(settings);
}

/** The Docker sandbox provider. Make it with {@link createDockerSandbox}. */
export class DockerSandboxProvider implements SandboxProvider {
  readonly specificationVersion = SANDBOX_SPEC_VERSION;
  readonly providerId = "docker";
  readonly opencodeBinary: string | undefined;
  /**
   * Where servers inside listen: all interfaces with a bridge or named network (published ports
   * reach the container's interface, not its loopback); loopback with host networking, so that
   * the agent server is not exposed on the host's other interfaces.
   */
  readonly listenHostname: string;
  /** With host networking the container shares the host's loopback, where a model proxy can listen. */
  readonly reachesHostLoopback: boolean;
  /** The image tasks run in. */
  readonly image: string;
  /** True with settings.preparedStates: a task on a kept key starts its container from the state's image. */
  readonly startsFromPreparedStates: boolean;

  private readonly settings: DockerSandboxSettings;
  private client: Dockerode | undefined;

  constructor(settings: DockerSandboxSettings) {
    checkSettings(settings);
    this.settings = settings;
    this.image = settings.image ?? DEFAULT_IMAGE;
    this.opencodeBinary = settings.opencodeBinary;
    const network = settings.network ?? "bridge";
    // With `none` networking (also under the egress relays) all interfaces are only the loopback.
    this.listenHostname = network === "host" || network === "none" ? "127.0.0.1" : "0.0.0.0";
    this.reachesHostLoopback = network === "host";
    this.startsFromPreparedStates = settings.preparedStates !== undefined;
  }

  /** With `egress: "proxy"` (the default) and a local Engine the core's egress proxy enforces the policy (see the setting). */
  get egressProxy(): boolean {
    return this.egressMode() === "proxy";
  }

  /** `remote`: the proxy is wanted but the Engine does not share this machine's filesystem, so nothing but `"open"` can run. */
  private egressMode(): "proxy" | "network" | "remote" {
    if (this.settings.egress === "network") return "network";
    return isLocalEngine(this.docker) ? "proxy" : "remote";
  }

  /** A policy this provider cannot enforce here, as the typed error to throw. */
  private unenforceable(policy: SandboxNetworkPolicy | undefined): RunningAgentError | undefined {
    if (policy === undefined || policy === "open" || this.egressMode() !== "remote") return undefined;
    return agentError(
      ErrorCode.CAPABILITY_UNSUPPORTED,
      `The Docker Engine at ${describeEndpoint(this.docker)} is not on this machine, so the host's egress proxy cannot be bound into its containers and the network policy ${JSON.stringify(policy)} cannot be enforced. Use a local Engine, network "open", or egress "network" with a Docker network whose egress you filter.`,
      { details: { endpoint: describeEndpoint(this.docker) } },
    );
  }

  /** The Dockerode client (made on first use). */
  get docker(): Dockerode {
    this.client ??= resolveDockerClient(this.settings.docker);
    return this.client;
  }

  /** Checks that the task's policy can be enforced, that the Engine answers and the image is there (pulling it when the pull policy says so). Creates nothing. */
  async validate(options: { signal?: AbortSignal; network?: SandboxNetworkPolicy } = {}): Promise<void> {
    const unenforceable = this.unenforceable(options.network);
    if (unenforceable) throw unenforceable;
    await this.ping(options.signal);
    await this.ensureImage(options.signal, false);
  }

  /** With prepared states: the image of the task's key, else the newest of its lineage, on this provider's image (see the cache's labels). */
  async findPreparedState(query: { lineage: string; key?: string; signal?: AbortSignal }): Promise<FoundPreparedState | undefined> {
    const cache = this.settings.preparedStates;
    if (!cache) return undefined;
    const base = await this.ensureImage(query.signal, false);
    return cache.findInLineage(this.docker, query, base.id);
  }

  async create(options: SandboxCreateOptions): Promise<DockerSandboxSession> {
    const plan = this.planContainer(options);
    if (options.signal?.aborted) throw abortedError(options.signal);
    await this.ping(options.signal);
    const base = await this.ensureImage(options.signal, this.settings.pullPolicy === "always");
    if (options.signal?.aborted) throw abortedError(options.signal);
    const cache = this.settings.preparedStates;
    let startedFrom: string | undefined;
    if (cache && options.preparedStateKey !== undefined) {
      const image = await cache.find(this.docker, options.preparedStateKey, base.id);
      if (image) {
        plan.spec.Image = image;
        startedFrom = options.preparedStateKey;
      }
    }

    const relays = "relayLines" in plan.ports ? (plan.ports as SocketRelayPorts) : undefined;
    // The relays run as root: in the container's own preparation when that runs as root (the image's user), else in an exec of their own.
    const withRelays = relays !== undefined && runsAsRoot(base.user) ? relays : undefined;
    // Without settings.user the container's own process prepares it before it sleeps (no exec); with one, execs do (as the user, then as root).
    const opencode = this.opencodeBinary ?? "opencode";
    if (this.settings.user === undefined) plan.spec.Entrypoint = ["/bin/sh", "-c", preparingEntrypoint(withRelays), "sh", plan.workdir, plan.scratchDir, CONTROL_DIR, opencode];

    let container: Dockerode.Container;
    try {
      container = await this.docker.createContainer(plan.spec);
    } catch (error) {
      throw createError(error, plan.spec);
    }
    try {
      // Attached before the start, so that nothing the preparation prints is missed.
      const preparation = this.settings.user === undefined ? await attachPreparation(container) : undefined;
      await container.start().catch((error: unknown) => {
        preparation?.detach();
        throw createError(error, plan.spec);
      });
      let prepared: { oomKillBaseline: number; owner?: FileOwner; homeWritable?: boolean };
      if (preparation) {
        const ended = await preparation.ended(options.signal);
        const { output } = ended;
        // Docker's init could not start the shell: the image has none (as an exec's 127 would say).
        const exitCode = ended.exitCode === null && /exec \/bin\/sh failed/i.test(output) ? 127 : ended.exitCode;
        if (withRelays && (exitCode === 0 || RELAY_EXIT_CODES.includes(exitCode ?? -1))) withRelays.relaysStarted(exitCode, output);
        if (exitCode !== 0) throw this.prepareError(exitCode, output, opencode);
        prepared = { oomKillBaseline: parseOomKillCount(output) };
        if (relays && !withRelays) await relays.startRelays(container);
      } else {
        if (relays && !withRelays) await relays.startRelays(container);
        if (options.signal?.aborted) throw abortedError(options.signal);
        prepared = await this.prepareForUser(container, plan, this.settings.user!, withRelays);
      }
      if (options.signal?.aborted) throw abortedError(options.signal);
      // A user without a writable home (no passwd entry: HOME is /) gets the scratch folder, unless the caller set HOME.
      const homeSet = this.settings.env?.HOME !== undefined || options.env?.HOME !== undefined;
      return new DockerSandboxSession({
        container,
        workdir: plan.workdir,
        scratchDir: plan.scratchDir,
        ports: plan.ports,
        env: { ...(prepared.owner && !prepared.homeWritable && !homeSet ? { HOME: plan.scratchDir } : {}), ...plan.commandEnv },
        oomKillBaseline: prepared.oomKillBaseline,
        ...(prepared.owner && this.settings.user !== undefined ? { owner: prepared.owner, user: this.settings.user } : {}),
        ...(options.timeoutMs !== undefined ? { lifetimeMs: options.timeoutMs } : {}),
        ...(cache
          ? {
              preparedStates: {
                ...(startedFrom !== undefined ? { startedFrom } : {}),
                restore: async (key: string) => key === startedFrom,
                save: async (key: string, origin?: PreparedStateOrigin) => void (await cache.commit(this.docker, container, key, base, origin)),
              },
            }
          : {}),
      });
    } catch (error) {
      plan.ports.release();
      await container.remove({ force: true, v: true }).catch(() => undefined);
      if (options.signal?.aborted) throw abortedError(options.signal);
      throw error;
    }
  }

  /**
   * Removes containers of this package (and with this provider's `labels`) older than the cutoff,
   * e.g. left by a process that crashed, and the socket folders of enforced containers that no
   * container binds any more. Default cutoff: one hour. Returns how many containers it removed.
   */
  async reapOrphans(options: { olderThanMs?: number } = {}): Promise<number> {
    const olderThanMs = options.olderThanMs ?? 60 * 60 * 1000;
    if (!(Number.isFinite(olderThanMs) && olderThanMs >= 0)) {
      throw agentError(ErrorCode.INVALID_OPTIONS, `reapOrphans olderThanMs must be a number >= 0, got ${String(olderThanMs)}.`);
    }
    const labels = [`${MANAGED_LABEL}=true`, ...Object.entries(this.settings.labels ?? {}).map(([key, value]) => `${key}=${value}`)];
    let containers: Dockerode.ContainerInfo[];
    try {
      containers = await this.docker.listContainers({ all: true, filters: { label: labels } });
    } catch (error) {
      if (isEngineUnreachable(error)) throw engineUnavailableError(error, describeEndpoint(this.docker));
      throw agentError(ErrorCode.SANDBOX_UNAVAILABLE, `Could not list containers: ${engineMessage(error)}`, { cause: error });
    }
    const cutoff = Date.now() - olderThanMs;
    let removed = 0;
    for (const info of containers) {
      const createdAt = Date.parse(info.Labels?.[CREATED_AT_LABEL] ?? "") || info.Created * 1000;
      if (createdAt > cutoff) continue;
      try {
        await this.docker.getContainer(info.Id).remove({ force: true, v: true });
        removed++;
      } catch (error) {
        if (!isGone(error) && engineStatus(error) !== 409) throw agentError(ErrorCode.SANDBOX_EXEC_FAILED, `Could not remove container ${info.Id.slice(0, 12)}: ${engineMessage(error)}`, { cause: error });
      }
    }
    // The host side of enforced containers: socket folders no container binds any more.
    if (isLocalEngine(this.docker)) await reapSocketFolders(this.docker, cutoff).catch(() => undefined);
    return removed;
  }

  private async ping(signal: AbortSignal | undefined): Promise<void> {
    try {
      await this.docker.ping();
    } catch (error) {
      if (signal?.aborted) throw abortedError(signal);
      throw engineUnavailableError(error, describeEndpoint(this.docker));
    }
  }

  private async ensureImage(signal: AbortSignal | undefined, forcePull: boolean): Promise<ImageFacts> {
    const image = this.docker.getImage(this.image);
    if (!forcePull) {
      try {
        return baseImageOf(await image.inspect());
      } catch (error) {
        if (engineStatus(error) !== 404) {
          if (isEngineUnreachable(error)) throw engineUnavailableError(error, describeEndpoint(this.docker));
          throw agentError(ErrorCode.SANDBOX_UNAVAILABLE, `Could not inspect image ${this.image}: ${engineMessage(error)}`, { cause: error });
        }
      }
    }
    if (this.settings.pullPolicy === "missing" || this.settings.pullPolicy === "always") {
      await this.pull(signal);
      return baseImageOf(await image.inspect());
    }
    throw imageNotFoundError(this.image);
  }

  private async pull(signal: AbortSignal | undefined): Promise<void> {
    try {
      const progress = await this.docker.pull(this.image, signal ? { abortSignal: signal } : {});
      await new Promise<void>((resolve, reject) => {
        this.docker.modem.followProgress(progress, (error: Error | null, output: Array<{ error?: string }>) => {
          const failure = error ?? output.find((event) => event.error)?.error;
          if (failure) reject(failure instanceof Error ? failure : new Error(failure));
          else resolve();
        });
      });
    } catch (error) {
      if (signal?.aborted) throw abortedError(signal);
      throw agentError(ErrorCode.SANDBOX_IMAGE_NOT_FOUND, `Could not pull image ${this.image}: ${engineMessage(error)}. ${howToBuild(this.image)}`, {
        cause: error,
        details: { image: this.image },
      });
    }
  }

  /** Checks the task's options and decides everything about the container, before any I/O. */
  private planContainer(options: SandboxCreateOptions): ContainerPlan {
    if (!options || typeof options.taskId !== "string" || options.taskId.trim() === "") {
      throw agentError(ErrorCode.INVALID_OPTIONS, "Sandbox create needs a non-empty taskId.");
    }
    const resources = { ...DEFAULT_RESOURCES, ...this.settings.resources, ...options.resources };
    checkResources(resources);
    const env: Record<string, string> = { ...this.settings.env, ...options.env, ...options.secrets };
    for (const [key, value] of Object.entries(env)) checkEnvEntry(key, value);
    const labels: Record<string, string> = {
      ...options.labels,
      ...this.settings.labels,
      [MANAGED_LABEL]: "true",
      [TASK_ID_LABEL]: options.taskId,
      [CREATED_AT_LABEL]: new Date().toISOString(),
    };
    for (const [key, value] of Object.entries(labels)) {
      if (typeof value !== "string") throw agentError(ErrorCode.INVALID_OPTIONS, `The label ${key} must be a string.`);
    }
    if (options.timeoutMs !== undefined && !(Number.isFinite(options.timeoutMs) && options.timeoutMs > 0)) {
      throw agentError(ErrorCode.INVALID_OPTIONS, `Sandbox timeoutMs must be a positive number, got ${String(options.timeoutMs)}.`);
    }

    checkPolicy(options.network);
    const unenforceable = this.unenforceable(options.network);
    if (unenforceable) throw unenforceable;
    // Enforced through the proxy: `none` networking, relays over bound sockets ("none" gets no way out, only its ports).
    const relayed = this.egressMode() === "proxy" && options.network !== undefined && options.network !== "open";
    const egressSocket = relayed && options.network !== "none" ? options.egressProxy?.socketPath : undefined;
    if (relayed && options.network !== "none" && !egressSocket) {
      throw agentError(ErrorCode.INVALID_OPTIONS, 'The Docker sandbox enforces a policy other than "open" through the host\'s egress proxy: pass its socket (egressProxy, which runAgentTask does), or set egress "network".');
    }
    const network = relayed ? "none" : this.networkFor(options);
    const portHost = this.settings.portHost ?? "127.0.0.1";
    const ports: PortPlan = relayed
      ? socketRelayPorts(egressSocket)
      : network === "none"
        ? noPorts()
        : network === "host"
          ? hostNetworkPorts(portHost)
          : publishedPorts(this.settings.publishedPorts ?? [4096, 4097], "127.0.0.1", portHost);
    const lifetimeSeconds = options.timeoutMs !== undefined ? Math.ceil(options.timeoutMs / 1000) + LIFETIME_GRACE_SECONDS : MAX_LIFETIME_SECONDS;
    const workdir = this.settings.workdir ?? "/workspace";
    const scratchDir = this.settings.scratchDir ?? "/var/tmp/running-agent";

    const spec: Dockerode.ContainerCreateOptions = {
      Image: this.image,
      // A plain `sleep` keeps the container up; it ends by itself after the task's time limit so
      // that a crashed caller leaves nothing running (the Engine then removes the container).
      Entrypoint: ["sleep"],
      Cmd: [String(lifetimeSeconds)],
      WorkingDir: "/",
      // With prepared states the task's environment goes on each command instead: a container's own is
      // written into any image committed from it (Config and ContainerConfig), and secrets must never be.
      Env: Object.entries({ ...(this.settings.preparedStates ? {} : env), ...(egressSocket ? egressProxyEnvironment() : {}) }).map(([key, value]) => `${key}=${value}`),
      Labels: labels,
      ...ports.containerSettings,
      HostConfig: {
        Init: true,
        AutoRemove: true,
        NetworkMode: typeof network === "string" ? network : network.name,
        ...(resources.memoryMiB !== undefined ? { Memory: mebibytes(resources.memoryMiB), MemorySwap: mebibytes(resources.memoryMiB) } : {}),
        ...(resources.cpu !== undefined ? { NanoCpus: Math.round(resources.cpu * 1e9) } : {}),
        ...(resources.pids !== undefined ? { PidsLimit: resources.pids } : {}),
        SecurityOpt: ["no-new-privileges"],
        ...(ports.containerSettings.PortBindings ? { PortBindings: ports.containerSettings.PortBindings } : {}),
        ...("binds" in ports ? { Binds: (ports as SocketRelayPorts).binds } : {}),
        // A volume's content is never committed: with prepared states, OpenCode's config and state and the pid
        // files stay out of the images. Anonymous volumes go with the container (AutoRemove, remove with v).
        // Not tmpfs: the Engine's archive endpoints, which put files in, cannot write into a tmpfs mount.
        ...(this.settings.preparedStates ? { Mounts: [scratchDir, CONTROL_DIR].map((target) => ({ Type: "volume" as const, Source: "", Target: target })) } : {}),
      },
    };
    return { spec, workdir, scratchDir, ports, commandEnv: this.settings.preparedStates ? env : {} };
  }

  private networkFor(options: SandboxCreateOptions): DockerNetwork {
    const configured = this.settings.network ?? "bridge";
    const policy = options.network;
    if (!policy || policy === "open") return configured;
    if (policy === "none") return "none";
    if (typeof policy === "object" && policy !== null && Array.isArray(policy.allow)) {
      if (this.settings.allowList === "reject") {
        throw agentError(
          ErrorCode.CAPABILITY_UNSUPPORTED,
          'With egress "network" the Docker sandbox cannot limit egress to a list of hosts. Use egress "proxy" (the default with a local Engine), network policy "open" or "none", or run on a named network whose egress you filter (settings.network = { name }) with allowList "use-network".',
        );
      }
    }
    return configured;
  }

  /**
   * With settings.user: checks the image as that user (git and OpenCode must be there and
   * runnable by it) and learns the numeric ids the Engine gave it; then, as root, makes the task's
   * folders and the control folder and gives them to it. The control folder is the user's so that
   * its commands can write their pid files; kills run as the user too.
   *
   * The container itself runs as root and each command's exec names the user: a container whose
   * own user is not root gives even root execs no capabilities (no chown), while an exec as the
   * user in a root container gets none either (checked by the tests: it cannot write /etc).
   */
  private async prepareForUser(
    container: Dockerode.Container,
    plan: ContainerPlan,
    user: string,
    relays: SocketRelayPorts | undefined,
  ): Promise<{ oomKillBaseline: number; owner: FileOwner; homeWritable: boolean }> {
    const opencode = this.opencodeBinary ?? "opencode";
    const check = [
      ...IMAGE_CHECKS,
      // Shell builtins only: the ids as the kernel has them (a bare uid without a passwd entry gets gid 0).
      'while read -r key real rest; do case "$key" in Uid:) uid=$real;; Gid:) gid=$real;; esac; done < /proc/self/status',
      'home=0; if [ -n "$HOME" ] && [ -w "$HOME" ]; then home=1; fi',
      'echo "running-agent-ids $uid $gid $home"',
      OOM_COUNTER,
      "exit 0",
    ].join("\n");
    // Positional parameters as in prepareContainer, so that IMAGE_CHECKS finds OpenCode in $4.
    const checked = await runPrepareStep(container, [check, "", "", "", opencode], "/tmp/.running-agent-check.pid", user);
    // The runtime resolves the name in the image's /etc/passwd and /etc/group when the exec starts.
    if (checked.exitCode === 126 && /unable to find (user|group)|no matching entries in (passwd|group) file/i.test(checked.output)) {
      throw agentError(
        ErrorCode.SANDBOX_IMAGE_INVALID,
        `The image ${this.image} has no user or group for settings.user ${JSON.stringify(user)} (${checked.output.trim().slice(0, 200)}). Add it to the image (useradd), or use numeric ids such as "1000:1000".`,
        { details: { image: this.image, missing: "user", user } },
      );
    }
    if (checked.exitCode !== 0) throw this.prepareError(checked.exitCode, checked.output, opencode);
    const ids = /^running-agent-ids (\d+) (\d+) ([01])$/m.exec(checked.output);
    if (!ids) throw agentError(ErrorCode.SANDBOX_CREATE_FAILED, `Could not learn the ids of user ${user} in the container: ${checked.output.trim().slice(0, 500)}`);
    const owner = { uid: Number(ids[1]), gid: Number(ids[2]) };

    const made = await runPrepareStep(
      container,
      [['mkdir -p "$1" "$2" "$3" && chown "$4" "$1" "$2" "$3" || exit 70', ...(relays?.relayLines() ?? [])].join("\n"), plan.workdir, plan.scratchDir, CONTROL_DIR, `${owner.uid}:${owner.gid}`],
      "/tmp/.running-agent-prepare.pid",
    );
    if (relays && (made.exitCode === 0 || RELAY_EXIT_CODES.includes(made.exitCode ?? -1))) relays.relaysStarted(made.exitCode, made.output);
    if (made.exitCode !== 0) {
      throw agentError(ErrorCode.SANDBOX_CREATE_FAILED, `Could not give the task's folders to user ${user} (exit ${String(made.exitCode)}): ${made.output.trim().slice(0, 500)}`);
    }
    return { oomKillBaseline: parseOomKillCount(checked.output), owner, homeWritable: ids[3] === "1" };
  }

  /** The typed error for a failed prepare step (see {@link IMAGE_CHECKS}' exit codes). */
  private prepareError(exitCode: number | null, output: string, opencode: string): RunningAgentError {
    if (exitCode === 71 || exitCode === 72) {
      const missing = exitCode === 71 ? "git" : `OpenCode (${opencode})`;
      return agentError(
        ErrorCode.SANDBOX_IMAGE_INVALID,
        `The image ${this.image} has no ${missing}${this.settings.user !== undefined ? ` that user ${this.settings.user} can run` : ""}. Use the default image (buildDefaultImage()), or add ${missing} to your image` +
          (exitCode === 72 ? " and set opencodeBinary to its path." : "."),
        { details: { image: this.image, missing: exitCode === 71 ? "git" : "opencode" } },
      );
    }
    if (exitCode === 126 || exitCode === 127) {
      return agentError(ErrorCode.SANDBOX_IMAGE_INVALID, `The image ${this.image} has no /bin/sh; the Docker sandbox needs a POSIX shell, git and OpenCode in the image.`, {
        details: { image: this.image, missing: "sh" },
      });
    }
    return agentError(ErrorCode.SANDBOX_CREATE_FAILED, `Preparing the container failed (exit ${String(exitCode)}): ${output.trim().slice(0, 500)}`);
  }
}

/** Shell lines that check the image: exit 71 without git, 72 without OpenCode (named by `$4`). */
const IMAGE_CHECKS = ["command -v git >/dev/null 2>&1 || exit 71", '{ [ -x "$4" ] || command -v "$4" >/dev/null 2>&1; } || exit 72'];

/** Prints the cgroup's OOM-kill counter (v2 or v1; the other file is missing). */
const OOM_COUNTER = "cat /sys/fs/cgroup/memory.events /sys/fs/cgroup/memory/memory.oom_control 2>/dev/null";

/** What the container's own process prints once it is prepared (its status follows), before it sleeps. */
const PREPARED_LINE = "running-agent-prepared";

/**
 * The container's entrypoint without settings.user: makes the task's folders, checks the image
 * (exit 70 to 72, see {@link IMAGE_CHECKS}), starts the relays when given, prints the cgroup's
 * OOM-kill count and a status line, then sleeps for the container's lifetime (Cmd, `$5`) under
 * Docker's init. Arguments: workdir, scratch folder, control folder, OpenCode.
 */
function preparingEntrypoint(relays: SocketRelayPorts | undefined): string {
  const steps = ['mkdir -p "$1" "$2" "$3" || exit 70', ...IMAGE_CHECKS, ...(relays?.relayLines() ?? []), OOM_COUNTER, "exit 0"];
  return [`( ${steps.join("\n")}\n)`, "status=$?", `echo "${PREPARED_LINE} $status"`, '[ "$status" = 0 ] || exit "$status"', 'exec sleep "$5"'].join("\n");
}

/** The attached output of a container whose entrypoint is {@link preparingEntrypoint}. */
interface AttachedPreparation {
  /** Resolves with the preparation's status and output once its status line came (or the container ended first); detaches then. */
  ended(signal: AbortSignal | undefined): Promise<{ exitCode: number | null; output: string }>;
  detach(): void;
}

async function attachPreparation(container: Dockerode.Container): Promise<AttachedPreparation> {
  let stream: NodeJS.ReadWriteStream & { destroy(): void };
  try {
    stream = (await container.attach({ stream: true, stdout: true, stderr: true })) as typeof stream;
  } catch (error) {
    throw agentError(ErrorCode.SANDBOX_CREATE_FAILED, `Could not attach to the new container: ${engineMessage(error)}`, { cause: error });
  }
  let output = "";
  const status = new Promise<number | null>((resolve) => {
    const collect = {
      write(chunk: Buffer) {
        output += chunk.toString("utf8");
        const line = new RegExp(`^${PREPARED_LINE} (\\d+)$`, "m").exec(output);
        if (line) resolve(Number(line[1]));
      },
    };
    demultiplex(stream as unknown as Duplex, collect, collect);
    stream.on("end", () => resolve(null));
    stream.on("close", () => resolve(null));
    stream.on("error", () => resolve(null));
  });
  return {
    async ended(signal) {
      let onAbort: (() => void) | undefined;
      try {
        if (signal?.aborted) throw abortedError(signal);
        const aborted = new Promise<never>((_, reject) => {
          onAbort = () => reject(abortedError(signal));
          signal?.addEventListener("abort", onAbort, { once: true });
        });
        const exitCode = await Promise.race([status, aborted]);
        return { exitCode, output: output.replace(new RegExp(`^${PREPARED_LINE} .*$`, "m"), "") };
      } finally {
        if (onAbort) signal?.removeEventListener("abort", onAbort);
        stream.destroy();
      }
    },
    detach: () => stream.destroy(),
  };
}

/** Runs one `sh -c` step of preparing a container; its output is stdout and stderr together. */
async function runPrepareStep(
  container: Dockerode.Container,
  script: [string, ...string[]],
  pidFile: string,
  user?: string,
): Promise<{ exitCode: number | null; output: string }> {
  try {
    const running = await startContainerProcess(container, {
      command: ["/bin/sh", "-c", script[0], "sh", ...script.slice(1)],
      cwd: "/",
      env: {},
      name: "prepare",
      pidFile,
      ...(user !== undefined ? { user } : {}),
    });
    const outcome = await running.outcome;
    return { exitCode: outcome.exitCode, output: outcome.stdout.toString("utf8") + outcome.stderr.toString("utf8") };
  } catch (error) {
    throw agentError(ErrorCode.SANDBOX_CREATE_FAILED, `Could not run a command in the new container: ${engineMessage(error)}`, { cause: error });
  }
}

/** What create needs of its image: the base a prepared state is tied to, and the user its commands run as by default. */
type ImageFacts = PreparedBaseImage & { user: string };

function baseImageOf(info: Dockerode.ImageInspectInfo): ImageFacts {
  return { id: info.Id, env: info.Config?.Env ?? [], user: info.Config?.User ?? "" };
}

/** True for an image user that is root (unset, `root` or uid 0, with any group). */
function runsAsRoot(user: string): boolean {
  return /^(|root|0)(:.*)?$/.test(user);
}

interface ContainerPlan {
  spec: Dockerode.ContainerCreateOptions;
  workdir: string;
  scratchDir: string;
  ports: PortPlan;
  /** Environment given to each command rather than set on the container. */
  commandEnv: Record<string, string>;
}

function mebibytes(value: number): number {
  return Math.round(value * 1024 * 1024);
}

function checkResources(resources: SandboxResources): void {
  for (const [name, value] of Object.entries(resources)) {
    if (value === undefined) continue;
    if (!["cpu", "memoryMiB", "pids"].includes(name)) {
      throw agentError(ErrorCode.INVALID_OPTIONS, `Unknown resource ${JSON.stringify(name)}: use cpu, memoryMiB or pids.`);
    }
    if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
      throw agentError(ErrorCode.INVALID_OPTIONS, `resources.${name} must be a positive number, got ${String(value)}.`);
    }
    if (name === "pids" && !Number.isInteger(value)) throw agentError(ErrorCode.INVALID_OPTIONS, `resources.pids must be an integer, got ${value}.`);
  }
}

function checkPolicy(policy: unknown): void {
  if (policy === undefined || policy === "open" || policy === "none") return;
  if (typeof policy === "object" && policy !== null && Array.isArray((policy as { allow?: unknown }).allow)) return;
  throw agentError(ErrorCode.INVALID_OPTIONS, `Unknown network policy ${JSON.stringify(policy)}: use "none", "open" or { allow: [...] }.`);
}

function checkSettings(settings: DockerSandboxSettings): void {
  if (typeof settings !== "object" || settings === null) throw agentError(ErrorCode.INVALID_OPTIONS, "createDockerSandbox takes a settings object.");
  if (settings.image !== undefined && (typeof settings.image !== "string" || settings.image.trim() === "")) {
    throw agentError(ErrorCode.INVALID_OPTIONS, "settings.image must be a non-empty image reference, e.g. \"running-agent/sandbox:opencode-1.18.33\".");
  }
  const network = settings.network;
  if (
    network !== undefined &&
    !(network === "none" || network === "host" || network === "bridge" || (typeof network === "object" && network !== null && typeof network.name === "string" && network.name !== ""))
  ) {
    throw agentError(ErrorCode.INVALID_OPTIONS, `settings.network must be "none", "host", "bridge" or { name }, got ${JSON.stringify(network)}.`);
  }
  if (settings.pullPolicy !== undefined && !["never", "missing", "always"].includes(settings.pullPolicy)) {
    throw agentError(ErrorCode.INVALID_OPTIONS, `settings.pullPolicy must be "never", "missing" or "always", got ${JSON.stringify(settings.pullPolicy)}.`);
  }
  if (settings.egress !== undefined && settings.egress !== "proxy" && settings.egress !== "network") {
    throw agentError(ErrorCode.INVALID_OPTIONS, `settings.egress must be "proxy" or "network", got ${JSON.stringify(settings.egress)}.`);
  }
  if (settings.allowList !== undefined && !["use-network", "reject"].includes(settings.allowList)) {
    throw agentError(ErrorCode.INVALID_OPTIONS, `settings.allowList must be "use-network" or "reject", got ${JSON.stringify(settings.allowList)}.`);
  }
  if (settings.resources) checkResources(settings.resources);
  for (const [key, value] of Object.entries(settings.env ?? {})) checkEnvEntry(key, value);
  for (const name of ["workdir", "scratchDir"] as const) {
    const path = settings[name];
    if (path !== undefined && (typeof path !== "string" || !path.startsWith("/") || path.includes("\0") || path === "/")) {
      throw agentError(ErrorCode.INVALID_OPTIONS, `settings.${name} must be an absolute path other than /, got ${JSON.stringify(path)}.`);
    }
  }
  if (settings.workdir && settings.scratchDir && (settings.scratchDir + "/").startsWith(settings.workdir.replace(/\/$/, "") + "/")) {
    throw agentError(ErrorCode.INVALID_OPTIONS, "settings.scratchDir must be outside settings.workdir (nothing in it may be collected as a change).");
  }
  if (settings.user !== undefined) checkUser(settings.user);
  if (settings.publishedPorts !== undefined) {
    if (!Array.isArray(settings.publishedPorts) || settings.publishedPorts.length === 0 || settings.publishedPorts.some((port) => !Number.isInteger(port) || port < 1 || port > 65535)) {
      throw agentError(ErrorCode.INVALID_OPTIONS, "settings.publishedPorts must be a non-empty list of port numbers (1 to 65535).");
    }
  }
}

/** A numeric id or a name as useradd/groupadd accept them (letters, digits, `_`, `-`, `.`; not starting with a digit or `-`). */
const USER_PART = /^(?:\d{1,10}|[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?)$/;

function checkUser(user: unknown): void {
  const parts = typeof user === "string" ? user.split(":") : [];
  const valid = parts.length >= 1 && parts.length <= 2 && parts.every((part) => USER_PART.test(part) && (!/^\d+$/.test(part) || Number(part) <= 2 ** 31 - 1));
  if (!valid) {
    throw agentError(
      ErrorCode.INVALID_OPTIONS,
      `settings.user must be a uid, a user name, or either with ":" and a gid or group name (e.g. "1000:1000" or "agent"), got ${JSON.stringify(user)}.`,
    );
  }
}

function howToBuild(image: string): string {
  return image === DEFAULT_IMAGE
    ? 'Build it with buildDefaultImage() from @running-agent/sandbox-docker (offline: buildDefaultImage({ baseImage: "<a local Debian image>" })).'
    : "Build or pull it first (docker build / docker pull), or set pullPolicy: \"missing\".";
}

function imageNotFoundError(image: string): RunningAgentError {
  return agentError(ErrorCode.SANDBOX_IMAGE_NOT_FOUND, `The image ${image} is not on the Docker Engine. ${howToBuild(image)}`, { details: { image } });
}

/**
 * True when the Engine runs on this machine and shares its filesystem, as far as the connection
 * tells: a Unix socket on Linux (Docker Desktop's socket on macOS leads into a VM). Create still
 * checks that a bound folder is really seen inside.
 */
function isLocalEngine(docker: Dockerode): boolean {
  // dockerode's default (no DOCKER_HOST) is a function that finds the local socket.
  const modem = (docker as unknown as { modem?: { socketPath?: unknown } }).modem;
  return process.platform === "linux" && (typeof modem?.socketPath === "string" || typeof modem?.socketPath === "function");
}

/** Maps a refused create or start to a typed error: limits the Engine will not apply, a missing network, or anything else. */
function createError(error: unknown, spec: Dockerode.ContainerCreateOptions): RunningAgentError {
  const message = engineMessage(error);
  if (isEngineUnreachable(error)) return engineUnavailableError(error, "the Docker Engine");
  if (/memory|cpu|pids|nanocpus|cgroup|swap/i.test(message) && engineStatus(error) !== 404) {
    return agentError(ErrorCode.SANDBOX_RESOURCE_LIMIT, `The Docker Engine refused the sandbox's resource limits: ${message}. Lower resources (cpu, memoryMiB, pids) to what this engine allows.`, {
      cause: error,
      details: { memory: spec.HostConfig?.Memory, nanoCpus: spec.HostConfig?.NanoCpus, pidsLimit: spec.HostConfig?.PidsLimit },
    });
  }
  if (engineStatus(error) === 404 && /network/i.test(message)) {
    return agentError(ErrorCode.SANDBOX_CREATE_FAILED, `The Docker network ${spec.HostConfig?.NetworkMode} does not exist on this engine (${message}). Create it, or choose "host" or "none".`, { cause: error });
  }
  if (engineStatus(error) === 404 && /image/i.test(message)) return imageNotFoundError(spec.Image ?? "");
  return agentError(ErrorCode.SANDBOX_CREATE_FAILED, `The Docker Engine could not create the sandbox container: ${message}`, { cause: error });
}
