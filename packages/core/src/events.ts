import type { Phase } from "./phases.js";
import type { ChangedFile } from "./changes.js";
import type { CheckSpec } from "./verify/check-types.js";

/** Base fields on every event. */
interface EventBase {
  /** The task this event belongs to. */
  taskId: string;
  /** Milliseconds since the epoch. */
  at: number;
}

/** A phase started, completed, was skipped, or failed. Phases always arrive in {@link PHASES} order. */
export interface PhaseEvent extends EventBase {
  type: "phase";
  phase: Phase;
  status: "started" | "completed" | "skipped" | "failed";
  /** Set on completed and failed. */
  durationMs?: number;
  /** Set on failed. */
  error?: { code: string; message: string };
}

/** Something worth a human's attention that does not stop the task (e.g. running unisolated). */
export interface WarningEvent extends EventBase {
  type: "warning";
  code: string;
  message: string;
}

/** A line of progress in plain words. */
export interface LogEvent extends EventBase {
  type: "log";
  level: "debug" | "info" | "warn" | "error";
  message: string;
}

/** The sandbox is open. */
export interface SandboxEvent extends EventBase {
  type: "sandbox";
  provider: string;
  sandboxId: string;
  isolated: boolean;
  /** True when the sandbox came ready from a sandbox pool, its OpenCode server already started. */
  pooled?: boolean;
}

/** The sandbox is gone (teardown): how long it lived, from the request to open it to its destruction. */
export interface SandboxDestroyedEvent extends EventBase {
  type: "sandbox.destroyed";
  sandboxId: string;
  lifetimeMs: number;
}

/**
 * The sandbox's egress proxy refused a connection (the network policy does not admit it). The
 * process is not known: every process inside reaches the proxy through the same relay.
 */
export interface NetworkBlockedEvent extends EventBase {
  type: "network.blocked";
  host: string;
  port: number;
  /** `CONNECT` for a tunnel (HTTPS and other TCP), else the plain HTTP request's method. */
  method: string;
  reason: string;
}

/** Output of a setup command. */
export interface CommandOutputEvent extends EventBase {
  type: "command.output";
  command: string;
  stream: "stdout" | "stderr";
  text: string;
}

/** Text from the agent. `delta` is the new text; `text` the part's text so far. */
export interface AgentTextEvent extends EventBase {
  type: "agent.text";
  partId: string;
  delta: string;
  text: string;
}

/** A tool call by the agent and its status. */
export interface AgentToolEvent extends EventBase {
  type: "agent.tool";
  callId: string;
  tool: string;
  status: "pending" | "running" | "completed" | "error";
  /** A short human title (e.g. the file or command). */
  title?: string;
  input?: Record<string, unknown>;
  /** Output or error text (cut to a few KiB). */
  output?: string;
}

/** The agent edited a file. */
export interface AgentFileEditedEvent extends EventBase {
  type: "agent.file";
  path: string;
}

/** The model call failed and OpenCode is retrying. */
export interface AgentRetryEvent extends EventBase {
  type: "agent.retry";
  attempt: number;
  message: string;
  /** When the next attempt is due (ms since epoch). */
  nextAt?: number;
}

/** Token usage so far. */
export interface AgentUsageEvent extends EventBase {
  type: "agent.usage";
  usage: TokenUsage;
}

/** A follow-up instruction from the caller (`handle.say`) handed to the agent. */
export interface AgentMessageEvent extends EventBase {
  type: "agent.message";
  text: string;
}

/** The changes collected from the sandbox. */
export interface ChangesEvent extends EventBase {
  type: "changes";
  files: ChangedFile[];
}

/** The branch is pushed. */
export interface BranchPushedEvent extends EventBase {
  type: "branch.pushed";
  branch: string;
  commit: string;
}

/** The change request is open. */
export interface ChangeRequestEvent extends EventBase {
  type: "change-request";
  url: string;
  number: number;
  created: boolean;
}

/** The checks the verify phase runs, and how they were chosen. */
export interface ChecksChosenEvent extends EventBase {
  type: "checks.chosen";
  source: "options" | "auto";
  checks: CheckSpec[];
  /** For `auto`: one line per detected check, or why nothing was detected. */
  reasons: string[];
}

/** A check started in a round (round 0 follows the agent's first pass, round N its Nth fix). */
export interface CheckStartedEvent extends EventBase {
  type: "check.started";
  round: number;
  name: string;
  command: string;
}

/** Output of a running check. */
export interface CheckOutputEvent extends EventBase {
  type: "check.output";
  round: number;
  name: string;
  stream: "stdout" | "stderr";
  text: string;
}

/** A check ended. */
export interface CheckCompletedEvent extends EventBase {
  type: "check.completed";
  round: number;
  name: string;
  passed: boolean;
  /** Null when the check was stopped by its time limit. */
  exitCode: number | null;
  timedOut: boolean;
  durationMs: number;
}

/** Checks failed and the agent is asked to fix them: fix round `round` of `maxFixRounds`. */
export interface FixRoundEvent extends EventBase {
  type: "fix-round";
  round: number;
  maxFixRounds: number;
  failing: string[];
}

/** Token usage and cost. */
export interface TokenUsage {
  inputTokens: number;
  outputTokens: number;
  reasoningTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  /** The cost in the model's currency (USD for the built-in providers); 0 when {@link costSource} is `unknown`. */
  cost: number;
  /** Where the cost comes from: OpenCode's catalogue, the caller's `model.prices`, or nowhere (then say "unknown", not 0). */
  costSource: "opencode" | "prices" | "unknown";
}

/** Every event `runAgentTask` emits. Switch on `type`. */
export type AgentTaskEvent =
  | PhaseEvent
  | WarningEvent
  | LogEvent
  | SandboxEvent
  | SandboxDestroyedEvent
  | NetworkBlockedEvent
  | CommandOutputEvent
  | AgentTextEvent
  | AgentToolEvent
  | AgentFileEditedEvent
  | AgentRetryEvent
  | AgentUsageEvent
  | AgentMessageEvent
  | ChangesEvent
  | ChecksChosenEvent
  | CheckStartedEvent
  | CheckOutputEvent
  | CheckCompletedEvent
  | FixRoundEvent
  | BranchPushedEvent
  | ChangeRequestEvent;

/** An event without the fields the loop fills in. */
export type AgentTaskEventInput = AgentTaskEvent extends infer E ? (E extends AgentTaskEvent ? Omit<E, "taskId" | "at"> : never) : never;
