import type { AgentTaskEvent, TokenUsage } from "./events.js";
import type { ChangedFile } from "./changes.js";
import type { ModelConfig } from "./model.js";
import type { Phase } from "./phases.js";
import type { SandboxNetworkPolicy, SandboxProvider, SandboxResources } from "./spec/sandbox-spec.js";
import type { LegacyNetworkPolicy } from "./network/network-policy.js";
import type { ChangeRequest, GitHost } from "./spec/git-host-spec.js";
import type { CheckSpec, ChecksFailedPolicy, Verification } from "./verify/check-types.js";
import type { StartAdmission } from "./agent/start-admission.js";
import type { ChangeLimits } from "./git/change-checks.js";

export type { ChangeLimits };

/** A commit identity. */
export interface GitIdentity {
  /** The name on the commit. */
  name: string;
  /** The e-mail address on the commit. */
  email: string;
}

/** Everything `runAgentTask` takes. Only `repo` and `task` are required. */
export interface AgentTaskOptions {
  /** A repository: an `https://` URL for a Git host, or a local path or `file://` URL. Embedded credentials are stripped. */
  repo: string;
  /** What the agent should do, in plain words. */
  task: string;
  /** The branch to start from and to open the change request into. Defaults to the repo's default branch. */
  baseBranch?: string;
  /** The new branch's name. Defaults to `<branchPrefix><slug of the task>-<short id>`. */
  branch?: string;
  /** Prefix for generated branch names. Default `running-agent/`. */
  branchPrefix?: string;
  /** Where the agent runs. Default: the local sandbox. */
  sandbox?: SandboxProvider;
  /** Where the repo lives. Default: the local Git host (for paths and file:// URLs). */
  gitHost?: GitHost;
  /** A token for this task only, passed to the Git host (the seed's per-request `github_token`). */
  gitToken?: string;
  /** The model, as an object or `provider/model`. Default: Gemini 2.5 Pro with GEMINI_API_KEY. */
  model?: ModelConfig | string;
  /** Commands run in the sandbox after the clone and before the agent (trusted; run with `sh -c`). */
  setupCommands?: string[];
  /**
   * More setup inputs, as git pathspecs relative to the repository's root (`scripts/install.sh`,
   * `:(glob)tools/**\/*.lock`, `vendor`): a task whose base moved since the provider's prepared state
   * starts from that state and brings in only what changed, unless a setup input changed in between
   * (dependency manifests and lockfiles at any depth always count, see DEFAULT_SETUP_INPUT_NAMES);
   * then the setup commands run again. Magic: top, literal, glob, icase, exclude (`:!`).
   */
  setupInputs?: string[];
  /**
   * Checks run in the sandbox after the agent (trusted like setup commands; `sh -c`). A failure goes
   * back to the agent, at most `maxFixRounds` times. `"auto"` detects the repository's usual commands
   * (package.json test/lint/typecheck scripts, pytest, go test, cargo test, make test). Default: none.
   */
  checks?: CheckSpec[] | "auto";
  /** How many times failed checks go back to the agent: 0 to 10. Default 2. */
  maxFixRounds?: number;
  /** Checks that still fail after the last round: `"draft"` (default) opens a draft PR that says so, `"fail"` pushes nothing (CHECKS_FAILED), `"open"` opens it as configured. */
  onChecksFailed?: ChecksFailedPolicy;
  /** Clone depth. Default 1 (shallow); `"full"` for the whole history. */
  cloneDepth?: number | "full";
  /** The commit's author. Default: `Running Agent <agent@running-agent.invalid>`. */
  author?: GitIdentity;
  /** The commit's committer. Default: the author. */
  committer?: GitIdentity;
  /** Added as `Co-authored-by` trailers. */
  coAuthors?: GitIdentity[];
  /** Change request details. */
  pullRequest?: {
    /** The title. Default: made from the task. */
    title?: string;
    /** Extra text placed above the generated body. */
    body?: string;
    /** Open as a draft. Unset: a new change request is ready for review; one that already exists for the branch keeps its state. */
    draft?: boolean;
    /** Labels to add. */
    labels?: string[];
    /** Users to ask for a review. */
    reviewers?: string[];
    /** Users to assign. */
    assignees?: string[];
    /** Adds `Closes #N`. */
    closesIssue?: number;
  };
  /** Resource limits for the sandbox. */
  resources?: SandboxResources;
  /**
   * Where the sandbox's processes may connect: `"none"`, `{ allow: [domains, addresses, CIDRs] }` or
   * `"open"` (see the README's network table). Default: the model only, that is `{ allow: [] }` where
   * the provider enforces the policy through the host's egress proxy (the local sandbox with
   * bubblewrap: the model is the proxy's own route, the key stays on the host), else
   * `{ allow: [the model's API host] }` (never a loopback or private one). Refused connections are
   * `network.blocked` events and listed in the PR body. The older `{ mode: ... }` forms are still accepted.
   */
  network?: SandboxNetworkPolicy | LegacyNetworkPolicy;
  /** The policy while the setup commands run (they may install packages). Default: `network`. Only where the egress proxy enforces it. */
  setupNetwork?: SandboxNetworkPolicy | LegacyNetworkPolicy;
  /** The longest the whole task may take. Default 30 minutes. */
  timeoutMs?: number;
  /** The longest the agent phase may take. Default: what is left of `timeoutMs`. */
  agentTimeoutMs?: number;
  /**
   * The longest a Git remote may send and take nothing during a clone, fetch or push (a stall, not
   * a total limit: a big transfer that keeps moving is never cut). Then the task fails with
   * GIT_REMOTE_STALLED naming the remote. Default 60 000 (one minute); at most 2^31-1. The push
   * (the git CLI) counts in whole seconds, rounded up, over curl's few-second speed window.
   */
  gitStallTimeoutMs?: number;
  /**
   * Keep the model's API key on the host: the sandbox gets a per-run token and talks to a proxy on
   * the host that adds the key (the egress proxy's model route where the network is enforced through
   * it; else a proxy on 127.0.0.1, which needs a sandbox that reaches the host's loopback, such as
   * Docker with host networking). Default: on where the egress proxy enforces the network, else off
   * (the key goes in as a secret variable).
   */
  modelProxy?: boolean;
  /**
   * How the OpenCode server's start is bounded. `timeoutMs`: how long it may take once admitted (default
   * 60 s, stretched by the machine's load per core). `admission`: how many servers start at once, shared
   * across tasks (`createStartAdmission({ maxConcurrentStarts })`); default: the provider's
   * `maxConcurrentAgentStarts`, else one admission per process (CPU cores, at least 2).
   */
  agentStart?: {
    /** How long the start may take once admitted, in ms. */
    timeoutMs?: number;
    /** How many servers start at once, shared across tasks. */
    admission?: StartAdmission;
  };
  /** Let the repository's own OpenCode config (opencode.json, .opencode/, AGENTS.md) apply. Default false: an untrusted repo cannot configure the agent. */
  allowRepoAgentConfig?: boolean;
  /**
   * Bounds on the agent's changes, checked as they are collected: a change past one fails the task
   * with CHANGES_TOO_LARGE and nothing is pushed. Defaults: 100 MiB per file, 256 MiB in all, 10,000 files.
   */
  changeLimits?: ChangeLimits;
  /** Extra strings to redact from everything that leaves the loop (and that must not be in a changed file). */
  secrets?: string[];
  /** Cancels the task; everything started is torn down. */
  signal?: AbortSignal;
  /** Called with every event, in order. Exceptions thrown here are ignored. */
  onEvent?: (event: AgentTaskEvent) => void;
  /** A task id; generated when absent. */
  taskId?: string;
}

/** What a finished task returns. */
export interface AgentTaskResult {
  /** The task's id (the option, or one made at the start). */
  taskId: string;
  /** `completed`: branch pushed and change request open. `no_changes`: the agent changed nothing; no branch. */
  status: "completed" | "no_changes";
  /** The repository as the Git host resolved it. */
  repository: {
    /** A display id, e.g. `owner/name` or a local path. */
    id: string;
    /** The repository's web page, when the host has one. */
    webUrl?: string;
  };
  /** The branch the work started from and the change request merges into. */
  baseBranch: string;
  /** The pushed branch (absent for no_changes). */
  branch?: string;
  /** The pushed commit's sha. */
  commit?: string;
  /** Every changed file, as committed (empty for no_changes). */
  changes: ChangedFile[];
  /** The opened or updated change request (absent for no_changes). */
  pullRequest?: ChangeRequest;
  /** The agent's final summary. */
  summary: string;
  /** `provider/model`. */
  model: string;
  /** Tokens and cost of every agent round together. */
  usage: TokenUsage;
  /** Milliseconds per phase, and `total`. */
  timings: Partial<Record<Phase | "total", number>>;
  /** The checks' outcome per round, when checks ran. */
  verification?: Verification;
  /** Usage and time per agent round; `usage` is their sum. */
  agentRounds: AgentRound[];
  /** How long the sandbox lived, from the request to open it to its destruction, in ms (what a provider bills by). */
  sandboxMs?: number;
}

/** One agent round: the first pass on the task (round 0), then each fix round. */
export interface AgentRound {
  /** 0 for the first pass, N for fix round N. */
  round: number;
  /** What this round alone used (OpenCode's session totals, less the rounds before). */
  usage: TokenUsage;
  /** How long the round ran, in ms. */
  durationMs: number;
}

/** The handle form: start now, iterate events, cancel, await the result. */
export interface AgentTaskHandle extends AsyncIterable<AgentTaskEvent> {
  /** The task's id, known at once. */
  readonly taskId: string;
  /** Resolves with the result or rejects with a RunningAgentError. */
  readonly result: Promise<AgentTaskResult>;
  /** Every event so far. */
  readonly events: readonly AgentTaskEvent[];
  /** Cancels the task; resolves when everything is torn down. */
  cancel(reason?: string): Promise<void>;
  /**
   * Sends the running agent another instruction. It goes to the same OpenCode session when the
   * agent's current round ends (messages sent before the agent starts follow the task); resolves
   * once handed over. Rejects with AGENT_FINISHED once the agent is done for good (its changes are
   * being checked or committed): continue the branch with a new task instead.
   */
  say(text: string): Promise<void>;
}
