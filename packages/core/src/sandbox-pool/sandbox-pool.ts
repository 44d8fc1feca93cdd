import { randomBytes } from "node:crypto";
import { isDeepStrictEqual } from "node:util";
import { abortedError, agentError, ErrorCode } from "../errors.js";
import type { ModelConfig } from "../model.js";
import { resolveModel, type ResolvedModel } from "../agent/model-resolution.js";
import type { ModelProxy } from "../agent/model-proxy.js";
import type { EgressProxy } from "../network/egress-proxy.js";
import { defaultNetworkPolicy, normalizeNetworkPolicy, type LegacyNetworkPolicy } from "../network/network-policy.js";
import { openSandboxAccess, type SandboxAccess } from "../network/sandbox-access.js";
import { startOpencodeServer, warmUpOpencodeServer, type OpencodeServer } from "../agent/opencode-server.js";
import { defaultStartTimeoutMs, providerStartAdmission, type StartAdmission } from "../agent/start-admission.js";
import { MODEL_API_KEY_ENV } from "../loop/model-key.js";
import type { FoundPreparedState, SandboxCreateOptions, SandboxNetworkPolicy, SandboxProvider, SandboxResources, SandboxSession } from "../spec/sandbox-spec.js";
import type { KeptPrepared } from "../prepared/keep-prepared.js";
import type { PreparedRepository } from "../prepared/prepare-repository.js";

/** Settings for {@link createSandboxPool}. */
export interface SandboxPoolOptions {
  /** How many ready sandboxes the pool holds. Default 1. */
  size?: number;
  /**
   * An idle sandbox is destroyed after this long unused, in ms, and is not replaced until a task takes
   * one from the pool again (an unused pool shrinks to nothing). Default 10 minutes.
   */
  idleTimeoutMs?: number;
  /**
   * The model the pooled OpenCode servers are started with, in the forms `runAgentTask` takes
   * (default: from the environment, as for a task). Only tasks whose model, key and `modelProxy` match
   * get a pooled sandbox; the others get a new one from the provider, as without a pool.
   */
  model?: ModelConfig | string;
  /** Keep the key on the host, as a task's `modelProxy` (default as for a task: on where the egress proxy enforces the network). Only tasks with the same setting get a pooled sandbox. */
  modelProxy?: boolean;
  /** Limits of the pooled sandboxes; only tasks that ask for the same get one. */
  resources?: SandboxResources;
  /** Network policy of the pooled sandboxes (default as for a task: the model's API host); only tasks with the same get one. */
  network?: SandboxNetworkPolicy | LegacyNetworkPolicy;
  /**
   * The lifetime pooled sandboxes are created with (`SandboxCreateOptions.timeoutMs`): it must cover the
   * idle time and the longest task. Default: the provider's own (local: none; Docker: 24 h; Modal: 1 h).
   */
  sandboxTimeoutMs?: number;
  /** Bounds concurrent OpenCode starts; share it with the tasks'. Default: the provider's admission (as tasks get). */
  admission?: StartAdmission;
  /** How long a pooled server may take to start and warm up once admitted. Default: as for a task. */
  startTimeoutMs?: number;
  /**
   * Start every pooled sandbox from the prepared state of one repository that this schedule keeps
   * (`keepPrepared` with the same provider): the repository is in the workdir with the setup's
   * outputs, and OpenCode is warmed on it. A task whose prepared-state key (repository, base
   * commit, setup commands) is the current state's gets a pooled sandbox, and so does one of the same
   * repository and setup commands on another commit when no setup input changed in between (it brings
   * in what changed); any other opens its own.
   * Each new state the schedule prepares (the base branch moved, the state aged out, another setup)
   * retires the idle sandboxes of the old one and refills from the new. Until the first state is
   * ready the pool holds nothing. A state made once (`prepareRepository`'s result) serves the same way
   * until {@link SandboxPool.usePreparedState} names another.
   */
  prepared?: KeptPrepared | PoolPreparedState;
  /** False: start `size` sandboxes once and replace none that is taken, dies or expires (for a one-shot run). Default true. */
  refill?: boolean;
  /** Told what the pool does, for logs. Exceptions thrown here are ignored. */
  onEvent?: (event: SandboxPoolEvent) => void;
}

/**
 * The prepared state a pool starts its sandboxes from (a `prepareRepository` result). With its lineage
 * and commit, a task of the same lineage on a later commit also takes a pooled sandbox, and brings in
 * what changed since (unless a setup input did).
 */
export type PoolPreparedState = Pick<PreparedRepository, "key" | "reused"> & Partial<Pick<PreparedRepository, "lineage" | "commit">>;

/** What the pool did. */
export type SandboxPoolEvent =
  | {
      /** A sandbox is ready: its OpenCode server started and warmed. */
      type: "ready";
      /** The sandbox. */
      sandboxId: string;
      /** From asking the provider to ready, in ms. */
      startMs: number;
    }
  | {
      /** A task took a sandbox. */
      type: "taken";
      /** The sandbox. */
      sandboxId: string;
      /** The task that took it. */
      taskId: string;
    }
  | {
      /** Opening or warming a sandbox failed; the pool pauses, then starts again. */
      type: "start-failed";
      /** The error's message. */
      message: string;
      /** The error's code. */
      code: string;
    }
  | {
      /** An idle sandbox died or failed a check and was replaced. */
      type: "replaced";
      /** The sandbox that went. */
      sandboxId: string;
      /** What was wrong with it. */
      reason: string;
    }
  | {
      /** An idle sandbox reached its idle limit and was destroyed. */
      type: "expired";
      /** The sandbox that went. */
      sandboxId: string;
    }
  | {
      /** The pool's prepared state changed: an idle sandbox of the old state was destroyed (told once it is gone). */
      type: "retired";
      /** The sandbox that went. */
      sandboxId: string;
      /** The key of the state it held (absent for an empty workspace's). */
      preparedStateKey?: string;
    };

/** Counts of a pool's sandboxes. */
export interface SandboxPoolStats {
  /** Ready and not taken. */
  idle: number;
  /** Being opened or warmed. */
  starting: number;
  /** Tasks waiting for a sandbox that is starting. */
  waiting: number;
  /** Taken sandboxes whose replacement waits until their task's agent is under way. */
  heldBack: number;
  /** Given to tasks since the pool opened. */
  taken: number;
  /** Pooled sandboxes that died or failed a check while idle, and were replaced. */
  replaced: number;
  /** Idle sandboxes destroyed at their idle limit. */
  expired: number;
  /** Opens or warm-ups that failed. */
  startFailures: number;
  /** Idle sandboxes destroyed because the pool's prepared state changed. */
  retired: number;
}

/** What a task asks the pool for: the agent config its OpenCode server must have been started with. */
export interface PooledSandboxRequest {
  /** The task asking. */
  taskId: string;
  /** Its model, key and limits: they must equal the pool's. */
  model: ResolvedModel;
  /** Whether the task keeps the key behind a model proxy: it must equal the pool's. */
  modelProxy: boolean;
  /** A task that reads the repository's agent config cannot take a pooled server (started before the repository). */
  allowRepoAgentConfig: boolean;
  /** The task's resources: they must equal the pool's. */
  resources?: SandboxResources;
  /** The task's network policy: it must equal the pool's. */
  network?: SandboxNetworkPolicy;
  /** The task's prepared-state key (it has setup commands): a pool of prepared sandboxes serves only its current state's. */
  preparedStateKey?: string;
  /** Stops the wait for a starting sandbox. */
  signal?: AbortSignal;
}

/** A pooled sandbox handed to a task: it owns all three from now on (teardown destroys and closes them). */
export interface PooledSandboxLease {
  /** The sandbox. */
  session: SandboxSession;
  /** Its OpenCode server, started and warmed. */
  server: OpencodeServer;
  /** The host-side model proxy it was started with, when the pool uses one. */
  modelProxy?: ModelProxy;
  /** The sandbox's egress proxy, where the provider enforces the policy through one. */
  egressProxy?: EgressProxy;
  /** The prepared state the sandbox's workdir holds (clone and setup done), for a pool of prepared sandboxes. */
  preparedStateKey?: string;
  /**
   * Starts this sandbox's replacement. The pool holds it back until the task says its agent is under
   * way (`runAgentTask` calls this when the model first answers, and at teardown), so that on a small
   * machine the replacement's OpenCode start does not take the CPU from the task's clone and first
   * request. Another task that finds no ready sandbox starts it at once. Idempotent.
   */
  startReplacement(): void;
}

/**
 * A sandbox provider that holds sandboxes opened ahead of time, each with its OpenCode server started
 * and warmed on an empty workspace. Pass it as `sandbox:`; a task whose agent config matches the pool's
 * takes a ready sandbox (never one another task had), gets its repository, and runs; every other task
 * gets a new sandbox from the wrapped provider. Taken sandboxes are replaced in the background.
 */
export interface SandboxPool extends SandboxProvider, AsyncDisposable {
  /** How many ready sandboxes the pool aims to hold. */
  readonly size: number;
  /** Counts of the pool's sandboxes now. */
  stats(): SandboxPoolStats;
  /** Resolves once `count` (default: size) sandboxes are ready, or the pool is closed. */
  whenReady(count?: number): Promise<void>;
  /**
   * The key of the prepared state the pooled sandboxes start from, undefined for a pool of empty
   * workspaces (or one that waits for its first state).
   */
  readonly preparedStateKey: string | undefined;
  /**
   * Starts the pooled sandboxes from this prepared state from now on (a result of `prepareRepository`
   * or of a `keepPrepared` schedule, with the provider the pool wraps). Another key, or a state the
   * setup made again (`reused: false`), retires every idle sandbox of the old state and refills from
   * the new one; a sandbox still starting from the old state is stopped, and a task waiting for one
   * opens its own. The same state again (`reused: true`) changes nothing.
   */
  usePreparedState(prepared: PoolPreparedState): void;
  /**
   * Takes a ready sandbox for the task, or waits for one that is starting and not promised to another
   * task. `{ miss }` says why none fits (the task then opens its own). Rejects with ABORTED when the
   * request's signal aborts while it waits; the sandbox it waited for stays in the pool.
   */
  take(request: PooledSandboxRequest): Promise<
    | {
        /** The sandbox, now the task's. */
        lease: PooledSandboxLease;
      }
    | {
        /** Why no pooled sandbox fits this task. */
        miss: string;
      }
  >;
  /** Stops refilling and destroys every sandbox the pool holds or is starting. Leased sandboxes belong to their tasks. */
  close(): Promise<void>;
}

/**
 * Wraps `provider` in a pool of warm sandboxes. Synchronous: the model is resolved now (a bad one
 * throws INVALID_MODEL here) and the first sandboxes start in the background at once.
 *
 * @example
 * ```ts
 * await using pool = createSandboxPool(createLocalSandbox(), { size: 2, model: "google/gemini-2.5-pro" });
 * const result = await runAgentTask({ repo, task, sandbox: pool, model: "google/gemini-2.5-pro" });
 * ```
 */
export function createSandboxPool(provider: SandboxProvider, options: SandboxPoolOptions = {}): SandboxPool {
  return new WarmSandboxPool(provider, options);
}

/** True for a pool made by {@link createSandboxPool} (also across duplicate copies of the package). */
export function isSandboxPool(provider: unknown): provider is SandboxPool {
  return typeof provider === "object" && provider !== null && (provider as Record<symbol, unknown>)[POOL_MARKER] === true;
}

const POOL_MARKER = Symbol.for("running-agent.sandbox-pool");
const DEFAULT_IDLE_TIMEOUT_MS = 10 * 60_000;
const HEALTH_TIMEOUT_MS = 5_000;
const MAX_BACKOFF_MS = 30_000;

interface PooledSandbox {
  readonly session: SandboxSession;
  readonly server: OpencodeServer;
  readonly access: SandboxAccess;
  /** The prepared state in its workdir, and which of the pool's states it is (a state made again under the same key is another). */
  readonly prepared: PreparedStateInUse | undefined;
  state: "idle" | "leased" | "gone";
  idleTimer?: NodeJS.Timeout;
}

interface PreparedStateInUse {
  readonly key: string;
  readonly generation: number;
  /** Known for a state from prepareRepository or keepPrepared: then tasks of the lineage on other commits take it too. */
  readonly lineage?: string;
  readonly commit?: string;
}

const PREPARED_KEY = /^[a-f0-9]{16,128}$/;

interface Waiter {
  deliver(entry: PooledSandbox | undefined): void;
}

class WarmSandboxPool implements SandboxPool {
  readonly [POOL_MARKER] = true;
  readonly specificationVersion: SandboxProvider["specificationVersion"];
  readonly providerId: string;
  readonly size: number;
  private readonly idleTimeoutMs: number;
  private readonly model: ResolvedModel;
  private readonly network: SandboxNetworkPolicy;
  private readonly keyOnHost: boolean;
  private readonly admission: StartAdmission;
  private readonly poolId = randomBytes(4).toString("hex");
  private readonly closing = new AbortController();
  private readonly idle: PooledSandbox[] = [];
  private readonly waiters: Waiter[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private readonly readyListeners = new Set<() => void>();
  private starting = 0;
  /** Sandboxes taken (or being checked for a take) whose replacement waits for their task's word. */
  private readonly heldBack = new Set<PooledSandbox>();
  private consecutiveFailures = 0;
  private backoffTimer: NodeJS.Timeout | undefined;
  private started = 0;
  private counts = { taken: 0, replaced: 0, expired: 0, startFailures: 0, retired: 0 };
  /** `waiting`: a pool of prepared sandboxes before its first state; undefined: empty workspaces. */
  private prepared: PreparedStateInUse | "waiting" | undefined;
  /** Set when the provider no longer keeps the current state (aged out, evicted): nothing starts until a new one. */
  private stateLost = false;
  /** Aborted when the prepared state changes: stops the starts from the old one. */
  private stateChange = new AbortController();
  private unsubscribe: (() => void) | undefined;
  /** Set first thing in close(), so that everything close() wakes sees the pool closed. */
  private closed = false;
  private shutdown: Promise<void> | undefined;

  constructor(
    private readonly provider: SandboxProvider,
    private readonly options: SandboxPoolOptions,
  ) {
    if (typeof provider !== "object" || provider === null || typeof provider.create !== "function") {
      throw agentError(ErrorCode.INVALID_SANDBOX_PROVIDER, "createSandboxPool needs a sandbox provider, e.g. createLocalSandbox().");
    }
    this.specificationVersion = provider.specificationVersion;
    this.providerId = provider.providerId;
    this.size = options.size ?? 1;
    if (!Number.isInteger(this.size) || this.size < 1) throw agentError(ErrorCode.INVALID_OPTIONS, `The pool's size must be a positive integer, not ${String(options.size)}.`);
    this.idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    if (!(Number.isFinite(this.idleTimeoutMs) && this.idleTimeoutMs > 0)) {
      throw agentError(ErrorCode.INVALID_OPTIONS, `idleTimeoutMs must be a positive number of milliseconds, not ${String(options.idleTimeoutMs)}.`);
    }
    if (options.sandboxTimeoutMs !== undefined && !(Number.isFinite(options.sandboxTimeoutMs) && options.sandboxTimeoutMs > this.idleTimeoutMs)) {
      throw agentError(ErrorCode.INVALID_OPTIONS, `sandboxTimeoutMs must be longer than idleTimeoutMs (${this.idleTimeoutMs} ms), not ${String(options.sandboxTimeoutMs)}.`);
    }
    this.model = resolveModel(options.model);
    // The same defaults as a task's, so that a task with none of its own matches the pool.
    this.network = options.network === undefined ? defaultNetworkPolicy(provider, this.model) : normalizeNetworkPolicy(options.network);
    const egressProxy = provider.egressProxy === true && this.network !== "open";
    this.keyOnHost = options.modelProxy ?? egressProxy;
    if (this.keyOnHost && !egressProxy && !provider.reachesHostLoopback) {
      throw agentError(ErrorCode.CAPABILITY_UNSUPPORTED, `modelProxy needs a sandbox that reaches the host's 127.0.0.1; the "${provider.providerId}" sandbox as configured does not.`);
    }
    this.admission = options.admission ?? providerStartAdmission(provider);
    const kept = options.prepared;
    if (kept !== undefined) {
      this.prepared = "waiting";
      if (typeof (kept as KeptPrepared | null)?.subscribe === "function") {
        const schedule = kept as KeptPrepared;
        this.unsubscribe = schedule.subscribe((prepared) => this.usePreparedState(prepared));
        if (schedule.last) this.usePreparedState(schedule.last);
      } else {
        this.usePreparedState(kept as PreparedRepository);
      }
    }
    this.fill();
  }

  get opencodeBinary(): string | undefined {
    return this.provider.opencodeBinary;
  }
  get listenHostname(): string | undefined {
    return this.provider.listenHostname;
  }
  get reachesHostLoopback(): boolean | undefined {
    return this.provider.reachesHostLoopback;
  }
  get egressProxy(): boolean | undefined {
    return this.provider.egressProxy;
  }
  get maxConcurrentAgentStarts(): number | undefined {
    return this.provider.maxConcurrentAgentStarts;
  }
  get snapshots() {
    return this.provider.snapshots;
  }
  /** So that a task the pool does not serve still starts from a kept state of the provider's. */
  get startsFromPreparedStates(): boolean | undefined {
    return this.provider.startsFromPreparedStates;
  }
  get quickCreate(): boolean | undefined {
    return this.provider.quickCreate;
  }
  get preparedStateKey(): string | undefined {
    return typeof this.prepared === "object" ? this.prepared.key : undefined;
  }

  usePreparedState(prepared: PoolPreparedState): void {
    if (typeof prepared?.key !== "string" || !PREPARED_KEY.test(prepared.key)) {
      throw agentError(ErrorCode.INVALID_OPTIONS, `A pool's prepared state is prepareRepository's result (or a keepPrepared schedule), not ${JSON.stringify(prepared)}.`);
    }
    if (this.closed) return;
    const current = this.prepared;
    if (typeof current === "object" && current.key === prepared.key && prepared.reused === true) return;
    const origin = typeof prepared.lineage === "string" && typeof prepared.commit === "string" ? { lineage: prepared.lineage, commit: prepared.commit } : {};
    this.prepared = { key: prepared.key, generation: (typeof current === "object" ? current.generation : 0) + 1, ...origin };
    this.stateLost = false;
    // Nothing of the old state is handed out from here on: starts stop, waiters open their own, idle ones go.
    this.stateChange.abort();
    this.stateChange = new AbortController();
    for (const waiter of this.waiters.splice(0)) waiter.deliver(undefined);
    for (const entry of this.idle.splice(0)) {
      this.counts.retired += 1;
      // Told once the sandbox is gone, so that a listener never sees it still running.
      this.track(this.discard(entry).then(() => this.emit({ type: "retired", sandboxId: entry.session.id, ...(entry.prepared ? { preparedStateKey: entry.prepared.key } : {}) })));
    }
    // A start that failed on the old state (one no longer kept) is no reason to wait before the new one.
    clearTimeout(this.backoffTimer);
    this.backoffTimer = undefined;
    this.consecutiveFailures = 0;
    this.fill();
  }

  /**
   * The pool's current state when it is of this lineage (a task on a moved base then takes a pooled
   * sandbox and brings in what changed), else what the provider keeps.
   */
  async findPreparedState(query: { lineage: string; key?: string; signal?: AbortSignal }): Promise<FoundPreparedState | undefined> {
    const current = typeof this.prepared === "object" && !this.stateLost ? this.prepared : undefined;
    if (current?.lineage === query.lineage && current.commit !== undefined) return { key: current.key, commit: current.commit };
    return this.provider.findPreparedState?.(query);
  }

  /** A task that got no pooled sandbox opens its own, as without a pool. */
  create(options: SandboxCreateOptions): Promise<SandboxSession> {
    return this.provider.create(options);
  }

  validate(options?: { signal?: AbortSignal; network?: SandboxNetworkPolicy }): Promise<void> {
    return this.provider.validate?.(options) ?? Promise.resolve();
  }

  reapOrphans(options?: { olderThanMs?: number }): Promise<number> {
    return this.provider.reapOrphans?.(options) ?? Promise.resolve(0);
  }

  stats(): SandboxPoolStats {
    return { idle: this.idle.length, starting: this.starting, waiting: this.waiters.length, heldBack: this.heldBack.size, ...this.counts };
  }

  whenReady(count = this.size): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (this.closed || this.idle.length >= count) {
          this.readyListeners.delete(check);
          resolve();
        }
      };
      this.readyListeners.add(check);
      check();
    });
  }

  async take(request: PooledSandboxRequest): Promise<{ lease: PooledSandboxLease } | { miss: string }> {
    if (request.signal?.aborted) throw abortedError(request.signal, "sandbox");
    if (this.closed) return { miss: "the pool is closed" };
    const mismatch = this.mismatch(request);
    if (mismatch) return { miss: mismatch };
    try {
      while (this.idle.length > 0) {
        const entry = this.idle.shift()!;
        clearTimeout(entry.idleTimer);
        if (this.isStale(entry)) {
          // usePreparedState retires these at once; this only guards the hand-over.
          this.track(this.discard(entry));
          continue;
        }
        // Claimed before the check, so no other task can take it meanwhile; its replacement waits for the task.
        entry.state = "leased";
        this.heldBack.add(entry);
        const healthy = await this.isHealthy(entry);
        if (this.isStale(entry)) {
          // The state changed while the sandbox was checked: it holds the old one, which goes with it.
          this.heldBack.delete(entry);
          this.track(this.discard(entry));
          return { miss: "the pool's prepared state changed" };
        }
        if (healthy) return { lease: this.lease(entry, request.taskId) };
        this.heldBack.delete(entry);
        this.counts.replaced += 1;
        this.emit({ type: "replaced", sandboxId: entry.session.id, reason: "it failed the check before a task took it" });
        await this.discard(entry);
      }
      // Demand that finds nothing ready: held-back replacements start now.
      this.heldBack.clear();
      this.fill();
      if (this.starting > this.waiters.length) {
        const entry = await this.waitForStart(request.signal);
        if (entry) return { lease: this.lease(entry, request.taskId) };
      }
      return { miss: this.starting > 0 ? "every starting sandbox is promised to another task" : "no sandbox is ready" };
    } finally {
      this.fill();
    }
  }

  close(): Promise<void> {
    this.closed = true;
    this.unsubscribe?.();
    this.shutdown ??= (async () => {
      this.closing.abort(agentError(ErrorCode.SANDBOX_DESTROYED, "The sandbox pool was closed."));
      clearTimeout(this.backoffTimer);
      for (const waiter of this.waiters.splice(0)) waiter.deliver(undefined);
      for (const listener of [...this.readyListeners]) listener();
      this.heldBack.clear();
      const idle = this.idle.splice(0);
      await Promise.all([...idle.map((entry) => this.discard(entry)), ...[...this.inFlight].map((start) => start.catch(() => undefined))]);
    })();
    return this.shutdown;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Why the task's agent config differs from the one the pooled servers were started with, or undefined. */
  private mismatch(request: PooledSandboxRequest): string | undefined {
    if (this.prepared === "waiting") return "the pool's first prepared state is not ready yet";
    if (this.stateLost) return "the provider no longer keeps the pool's prepared state (aged out or evicted); the pool waits for a new one";
    if (this.prepared !== undefined && request.preparedStateKey !== this.prepared.key) {
      return request.preparedStateKey === undefined
        ? "the pool's sandboxes hold a prepared state and this task has no setup commands"
        : `the pool's sandboxes hold the prepared state ${this.prepared.key.slice(0, 12)}, this task's is ${request.preparedStateKey.slice(0, 12)} (another base commit or setup commands)`;
    }
    if (request.allowRepoAgentConfig) return "allowRepoAgentConfig needs the repository's own config when OpenCode starts";
    if (request.modelProxy !== this.keyOnHost) return `the pool runs with modelProxy ${this.keyOnHost ? "on" : "off"}`;
    const { apiKey: poolKey, apiKeySource: _poolSource, ...poolModel } = this.model;
    const { apiKey: taskKey, apiKeySource: _taskSource, ...taskModel } = request.model;
    if (!isDeepStrictEqual(poolModel, taskModel)) return `the pool's servers run ${this.model.label}${this.model.baseURL ? ` at ${this.model.baseURL}` : ""}`;
    if (poolKey !== taskKey) return "the pool's servers hold another API key";
    if (!isDeepStrictEqual(request.resources, this.options.resources)) return "the pool's sandboxes have other resource limits";
    if (!isDeepStrictEqual(request.network ?? defaultNetworkPolicy(this.provider, request.model), this.network)) return "the pool's sandboxes have another network policy";
    return undefined;
  }

  /** Hands `entry` to a task (a sandbox that was starting for a waiting task has its replacement started already). */
  private lease(entry: PooledSandbox, taskId: string): PooledSandboxLease {
    entry.state = "leased";
    this.counts.taken += 1;
    this.emit({ type: "taken", sandboxId: entry.session.id, taskId });
    const { modelProxy, egressProxy } = entry.access;
    const startReplacement = () => {
      if (this.heldBack.delete(entry)) this.fill();
    };
    return {
      session: entry.session,
      server: entry.server,
      ...(modelProxy ? { modelProxy } : {}),
      ...(egressProxy ? { egressProxy } : {}),
      ...(entry.prepared ? { preparedStateKey: entry.prepared.key } : {}),
      startReplacement,
    };
  }

  private waitForStart(signal: AbortSignal | undefined): Promise<PooledSandbox | undefined> {
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const index = this.waiters.indexOf(waiter);
        if (index >= 0) this.waiters.splice(index, 1);
        reject(abortedError(signal, "sandbox"));
      };
      const waiter: Waiter = {
        deliver: (entry) => {
          signal?.removeEventListener("abort", onAbort);
          resolve(entry);
        },
      };
      this.waiters.push(waiter);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  private async isHealthy(entry: PooledSandbox): Promise<boolean> {
    if (entry.server.exited) return false;
    try {
      const response = await fetch(`${entry.server.url}/global/health`, { headers: entry.server.headers, signal: AbortSignal.timeout(HEALTH_TIMEOUT_MS) });
      await response.body?.cancel();
      return response.ok && !entry.server.exited;
    } catch {
      return false;
    }
  }

  /** Starts sandboxes until ready plus starting reaches the size (after a failure, with a growing pause). */
  private fill(): void {
    if (this.closed || this.backoffTimer || this.prepared === "waiting" || this.stateLost) return;
    while (this.idle.length + this.starting + this.heldBack.size < this.size && (this.options.refill !== false || this.started < this.size)) {
      const start = this.startOne();
      this.inFlight.add(start);
      void start.finally(() => this.inFlight.delete(start));
    }
  }

  private async startOne(): Promise<void> {
    this.starting += 1;
    const prepared = typeof this.prepared === "object" ? this.prepared : undefined;
    const stateChange = this.stateChange.signal;
    const signal = AbortSignal.any([this.closing.signal, stateChange]);
    const number = ++this.started;
    const startedAt = Date.now();
    let session: SandboxSession | undefined;
    let server: OpencodeServer | undefined;
    let access: SandboxAccess | undefined;
    let entry: PooledSandbox | undefined;
    try {
      access = await openSandboxAccess({ provider: this.provider, network: this.network, model: this.model, keyOnHost: this.keyOnHost });
      const key = access.sandboxKey;
      session = await this.provider.create({
        taskId: `pool-${this.poolId}-${number}`,
        ...(key ? { secrets: { [MODEL_API_KEY_ENV]: key } } : {}),
        ...(this.options.resources ? { resources: this.options.resources } : {}),
        ...access.createOptions,
        labels: { "running-agent.pool": this.poolId },
        ...(this.options.sandboxTimeoutMs ? { timeoutMs: this.options.sandboxTimeoutMs } : {}),
        ...(prepared && this.provider.startsFromPreparedStates === true ? { preparedStateKey: prepared.key } : {}),
        signal,
      });
      // OpenCode takes the git root as the project's worktree (which bounds external_directory): warm it
      // on a repository at the workdir, as the task's will be (a prepared state's workdir holds the task's
      // repository already), and remove an empty one's .git before the task's arrives.
      if (prepared && !(await this.putPreparedState(session, prepared.key))) {
        // No start can succeed before a new state: the pool stops trying (rather than failing every 30 s).
        if (!stateChange.aborted) this.stateLost = true;
        throw agentError(ErrorCode.SANDBOX_CREATE_FAILED, `The prepared state ${prepared.key.slice(0, 12)} is no longer kept (aged out or removed); the pool starts again once a new state is prepared.`);
      }
      else await this.check(session, ["git", "init", "-q"], signal);
      const startLimitMs = this.options.startTimeoutMs ?? defaultStartTimeoutMs();
      server = await startOpencodeServer({
        session,
        opencodeBinary: this.provider.opencodeBinary ?? "opencode",
        ...(this.provider.listenHostname ? { listenHostname: this.provider.listenHostname } : {}),
        model: access.sandboxModel,
        apiKeyEnv: MODEL_API_KEY_ENV,
        allowRepoAgentConfig: false,
        warmUp: true,
        admission: this.admission,
        startTimeoutMs: startLimitMs,
        signal,
      });
      await warmUpOpencodeServer(server, session.workdir, { timeoutMs: startLimitMs, signal });
      if (!prepared) await this.check(session, ["rm", "-rf", "--", `${session.workdir}/.git`], signal);
      entry = { session, server, access, prepared, state: "idle" };
    } catch (error) {
      this.starting -= 1;
      await server?.process.kill().catch(() => undefined);
      await session?.destroy().catch(() => undefined);
      await access?.close().catch(() => undefined);
      if (this.closing.signal.aborted) return;
      // Stopped because the state changed: the new state's start is due now.
      if (stateChange.aborted) return this.fill();
      this.counts.startFailures += 1;
      this.consecutiveFailures += 1;
      const failure = error instanceof Error ? error : new Error(String(error));
      this.emit({ type: "start-failed", message: failure.message, code: (failure as { code?: string }).code ?? ErrorCode.SANDBOX_CREATE_FAILED });
      // A waiter that can no longer be served by a start goes to open its own sandbox.
      while (this.waiters.length > (this.stateLost ? 0 : this.starting)) this.waiters.pop()!.deliver(undefined);
      this.pauseAfterFailure();
      return;
    }
    this.starting -= 1;
    this.consecutiveFailures = 0;
    if (this.closed || this.isStale(entry)) {
      await this.discard(entry);
      this.fill();
      return;
    }
    this.emit({ type: "ready", sandboxId: session.id, startMs: Date.now() - startedAt });
    this.watch(entry);
    const waiter = this.waiters.shift();
    if (waiter) {
      entry.state = "leased";
      waiter.deliver(entry);
      this.fill();
      return;
    }
    this.park(entry);
  }

  /** Puts the prepared state in a new sandbox (a provider that starts from states did at create; another restores it now); false when it is no longer kept. */
  private async putPreparedState(session: SandboxSession, key: string): Promise<boolean> {
    const states = session.preparedStates;
    if (!states) throw agentError(ErrorCode.CAPABILITY_UNSUPPORTED, `The ${this.provider.providerId} sandbox keeps no prepared states: give it the prepared-state cache the pool's state was prepared with.`);
    return this.provider.startsFromPreparedStates === true ? states.startedFrom === key : await states.restore(key);
  }

  /** True for a sandbox of a prepared state the pool no longer serves. */
  private isStale(entry: PooledSandbox): boolean {
    const current = typeof this.prepared === "object" ? this.prepared : undefined;
    return entry.prepared?.generation !== current?.generation;
  }

  /** Close waits for what is tracked (destroying retired sandboxes). */
  private track(work: Promise<void>): void {
    const tracked = work.catch(() => undefined);
    this.inFlight.add(tracked);
    void tracked.finally(() => this.inFlight.delete(tracked));
  }

  private async check(session: SandboxSession, command: string[], signal: AbortSignal): Promise<void> {
    const result = await session.exec(command, { signal, timeoutMs: 60_000 });
    if (result.exitCode !== 0) throw agentError(ErrorCode.SANDBOX_EXEC_FAILED, `${command.join(" ")} failed in the pooled sandbox: ${result.stderr.trim()}`);
  }

  private park(entry: PooledSandbox): void {
    entry.state = "idle";
    this.idle.push(entry);
    entry.idleTimer = setTimeout(() => {
      if (entry.state !== "idle") return;
      this.idle.splice(this.idle.indexOf(entry), 1);
      this.counts.expired += 1;
      this.emit({ type: "expired", sandboxId: entry.session.id });
      void this.discard(entry);
    }, this.idleTimeoutMs);
    entry.idleTimer.unref();
    for (const listener of [...this.readyListeners]) listener();
  }

  /** A server that dies while its sandbox is idle takes the sandbox out of the pool, and a new one starts. */
  private watch(entry: PooledSandbox): void {
    void entry.server.process.exited.then(
      () => {
        if (entry.state !== "idle") return;
        const index = this.idle.indexOf(entry);
        if (index >= 0) this.idle.splice(index, 1);
        clearTimeout(entry.idleTimer);
        this.counts.replaced += 1;
        this.emit({ type: "replaced", sandboxId: entry.session.id, reason: "its OpenCode server exited while idle" });
        void this.discard(entry).then(() => this.fill());
      },
      () => undefined,
    );
  }

  private async discard(entry: PooledSandbox): Promise<void> {
    entry.state = "gone";
    clearTimeout(entry.idleTimer);
    await entry.server.process.kill().catch(() => undefined);
    await entry.session.destroy().catch(() => undefined);
    await entry.access.close().catch(() => undefined);
  }

  private pauseAfterFailure(): void {
    if (this.closed || this.backoffTimer) return;
    const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** (this.consecutiveFailures - 1));
    this.backoffTimer = setTimeout(() => {
      this.backoffTimer = undefined;
      this.fill();
    }, delay);
    this.backoffTimer.unref();
  }

  private emit(event: SandboxPoolEvent): void {
    try {
      this.options.onEvent?.(event);
    } catch {
      // A listener's bug must not break the pool.
    }
  }
}
