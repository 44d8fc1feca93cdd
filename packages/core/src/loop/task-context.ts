import type { BlockedConnection, EgressProxy } from "../network/egress-proxy.js";
import type { SandboxNetworkPolicy } from "../spec/sandbox-spec.js";
import type { AgentTaskEvent, AgentTaskEventInput, TokenUsage } from "../events.js";
import type { Phase } from "../phases.js";
import type { Redactor } from "../redactor.js";
import type { AgentTaskOptions, GitIdentity } from "../run-options.js";
import type { SandboxProvider, SandboxSession } from "../spec/sandbox-spec.js";
import type { ChangeRequest, GitHost, ResolvedRepository } from "../spec/git-host-spec.js";
import type { ChangedFile } from "../changes.js";
import type { ResolvedModel } from "../agent/model-resolution.js";
import type { ModelProxy } from "../agent/model-proxy.js";
import type { ChangeLimits } from "../git/change-checks.js";
import type { WorkspaceListing } from "../git/workspace-listing.js";
import type { CheckSpec, ChecksFailedPolicy, Verification } from "../verify/check-types.js";
import type { AgentRound } from "../run-options.js";
import type { FollowUps } from "./follow-ups.js";
import type { MovedBase } from "./moved-base.js";
import type { OpencodeServer } from "../agent/opencode-server.js";
import type { StartAdmission } from "../agent/start-admission.js";

/** Options after validation: every default filled in. */
export interface ValidatedOptions {
  repo: string;
  task: string;
  sandbox: SandboxProvider;
  gitHost: GitHost;
  model: ResolvedModel;
  baseBranch: string | undefined;
  branch: string | undefined;
  branchPrefix: string;
  setupCommands: string[];
  /** The caller's setup inputs (git pathspecs), beside the default manifests and lockfiles. */
  setupInputs: string[];
  cloneDepth: number | "full";
  author: GitIdentity;
  committer: GitIdentity;
  coAuthors: GitIdentity[];
  pullRequest: NonNullable<AgentTaskOptions["pullRequest"]>;
  timeoutMs: number;
  agentTimeoutMs: number | undefined;
  gitStallTimeoutMs: number;
  allowRepoAgentConfig: boolean;
  gitToken: string | undefined;
  modelProxy: boolean;
  changeLimits: Required<ChangeLimits>;
  /** The sandbox's network policy and the setup commands' (normalized; the default filled in). */
  network: SandboxNetworkPolicy;
  setupNetwork: SandboxNetworkPolicy;
  /** True when the provider enforces `network` through the host's egress proxy, which the task then starts. */
  egressProxy: boolean;
  /** Extra strings to redact (the caller's `secrets`). */
  secrets: string[];
  /** The caller's checks, `"auto"`, or none. */
  checks: CheckSpec[] | "auto" | undefined;
  maxFixRounds: number;
  onChecksFailed: ChecksFailedPolicy;
  agentStart: { timeoutMs: number | undefined; admission: StartAdmission };
}

/** The state one task carries from phase to phase. */
export interface TaskContext {
  readonly taskId: string;
  readonly startedAt: number;
  readonly raw: AgentTaskOptions;
  /** Aborts on the caller's signal, on cancel, and on the task timeout. */
  readonly signal: AbortSignal;
  readonly redactor: Redactor;
  readonly timings: Partial<Record<Phase | "total", number>>;
  emit(event: AgentTaskEventInput): void;
  /** The caller's follow-up instructions (`handle.say`). */
  readonly followUps: FollowUps;
  options?: ValidatedOptions;
  repository?: ResolvedRepository;
  baseBranch?: string;
  /** The branch the task pushes, decided in validate: `branch`, or a generated name. */
  taskBranch?: string;
  /** The branch the clone starts from: the existing task branch when re-running, else the base. */
  startBranch?: string;
  branch?: string;
  session?: SandboxSession;
  /** Host folders to remove at teardown. */
  hostFolders: string[];
  /** The host's clone of the repository. */
  cloneDir?: string;
  /** The host clone started while the sandbox is made: the clone phase awaits it, teardown stops and awaits it. */
  hostClone?: { done: Promise<void>; stop(): void };
  baseCommit?: string;
  /** The key the session was asked to start from (providers that start from prepared states), or was restored into it. */
  preparedStateKey?: string;
  /** The prepared state the session's workdir held when the task got it (created from it, or a pooled sandbox the pool put it in). */
  startedFromPreparedState?: string;
  /** What was placed in the sandbox, listed before anything ran there (absent: collect brings back every file). */
  placedListing?: WorkspaceListing;
  summary: string;
  usage: TokenUsage;
  changes: ChangedFile[];
  commit?: string;
  pullRequest?: ChangeRequest;
  /** When the sandbox was asked for (performance.now()), and its whole lifetime once destroyed. */
  sandboxRequestedAt?: number;
  sandboxMs?: number;
  /** The sandbox's release (agent server stopped, session destroyed), started once it is needed no more; teardown awaits it. */
  sandboxReleased?: Promise<string | undefined>;
  /** OpenCode's session, continued by fix rounds. */
  agentSessionId?: string;
  /** Each agent round's own usage: the first pass, then each fix round. */
  agentRounds: AgentRound[];
  /** The checks the verify phase runs (decided after the clone for `"auto"`), and where they came from. */
  checks?: CheckSpec[];
  checksSource?: "options" | "auto";
  verification?: Verification;
  /**
   * The OpenCode server of the agent phase when it was started before that phase: one that came ready
   * with a pooled sandbox, or one started while the repository is cloned. `cancel` stops a start in flight.
   */
  agentServer?: { ready: Promise<OpencodeServer>; pooled: boolean; cancel(): void };
  /** A pooled sandbox's replacement, held back until this task's agent is under way (its first answer) or the task ends. */
  startPoolReplacement?: () => void;
  /** The host-side model proxy, when `modelProxy` is on and the network is not enforced by the egress proxy. */
  modelProxy?: ModelProxy;
  /** The host-side egress proxy (and model route) of the sandbox, when the provider takes one. */
  egressProxy?: EgressProxy;
  /** Connections the egress proxy refused during this task, in order. */
  networkBlocked?: BlockedConnection[];
  /** Set by prepareRepository: the loop stops after setup, starts no agent, and `refresh` runs the setup even when a state is kept. */
  prepare?: { refresh: boolean };
  /** Set when the session starts from a prepared state of an older commit of this lineage (see moved-base.ts). */
  movedBase?: MovedBase;
  /** True when setup started from a kept prepared state instead of running the commands. */
  preparedStateReused?: boolean;
}

export type { AgentTaskEvent };
