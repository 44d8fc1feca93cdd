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
  /** Always `"phase"`: switch on it. */
  type: "phase";
  /** The phase. */
  phase: Phase;
  /** What happened to it. */
  status: "started" | "completed" | "skipped" | "failed";
  /** Set on completed and failed. */
  durationMs?: number;
  /** Set on failed. */
  error?: {
    /** The error's code. */
    code: string;
    /** Its message, redacted. */
    message: string;
  };
}

/** Something worth a human's attention that does not stop the task (e.g. running unisolated). */
export interface WarningEvent extends EventBase {
  /** Always `"warning"`: switch on it. */
  type: "warning";
  /** A stable code for the warning, e.g. `SANDBOX_NOT_ISOLATED`. */
  code: string;
  /** What it means, in plain words. */
  message: string;
}

/** A line of progress in plain words. */
export interface LogEvent extends EventBase {
  /** Always `"log"`: switch on it. */
  type: "log";
  /** How much it matters. */
  level: "debug" | "info" | "warn" | "error";
  /** The line. */
  message: string;
}

/** The sandbox is open. */
export interface SandboxEvent extends EventBase {
  /** Always `"sandbox"`: switch on it. */
  type: "sandbox";
  /** The provider id, e.g. `local`, `docker`, `modal`. */
  provider: string;
  /** The sandbox's id. */
  sandboxId: string;
  /** False when the agent runs unisolated (the local sandbox without bubblewrap). */
  isolated: boolean;
  /** True when the sandbox came ready from a sandbox pool, its OpenCode server already started. */
  pooled?: boolean;
}

/** The sandbox is gone (teardown): how long it lived, from the request to open it to its destruction. */
export interface SandboxDestroyedEvent extends EventBase {
  /** Always `"sandbox.destroyed"`: switch on it. */
  type: "sandbox.destroyed";
  /** The sandbox's id. */
  sandboxId: string;
  /** How long it lived, in ms. */
  lifetimeMs: number;
}

/**
 * The sandbox's egress proxy refused a connection (the network policy does not admit it). The
 * process is not known: every process inside reaches the proxy through the same relay.
 */
export interface NetworkBlockedEvent extends EventBase {
  /** Always `"network.blocked"`: switch on it. */
  type: "network.blocked";
  /** The host name or address asked for. */
  host: string;
  /** The port asked for. */
  port: number;
  /** `CONNECT` for a tunnel (HTTPS and other TCP), else the plain HTTP request's method. */
  method: string;
  /** Why it was refused, in a sentence. */
  reason: string;
}

/** Output of a setup command. */
export interface CommandOutputEvent extends EventBase {
  /** Always `"command.output"`: switch on it. */
  type: "command.output";
  /** The setup command. */
  command: string;
  /** Which stream the text came on. */
  stream: "stdout" | "stderr";
  /** A chunk of output, redacted. */
  text: string;
}

/** Text from the agent. `delta` is the new text; `text` the part's text so far. */
export interface AgentTextEvent extends EventBase {
  /** Always `"agent.text"`: switch on it. */
  type: "agent.text";
  /** The message part the text belongs to. */
  partId: string;
  /** The text added since the last event of this part. */
  delta: string;
  /** The part's whole text so far. */
  text: string;
}

/** A tool call by the agent and its status. */
export interface AgentToolEvent extends EventBase {
  /** Always `"agent.tool"`: switch on it. */
  type: "agent.tool";
  /** The call's id: later events of the same call carry it. */
  callId: string;
  /** The tool, e.g. `bash`, `edit`, `write`, `read`. */
  tool: string;
  /** Where the call is. */
  status: "pending" | "running" | "completed" | "error";
  /** A short human title (e.g. the file or command). */
  title?: string;
  /** The call's arguments, redacted. */
  input?: Record<string, unknown>;
  /** Output or error text (cut to a few KiB). */
  output?: string;
}

/** The agent edited a file. */
export interface AgentFileEditedEvent extends EventBase {
  /** Always `"agent.file"`: switch on it. */
  type: "agent.file";
  /** The file, relative to the workspace. */
  path: string;
}

/** The model call failed and OpenCode is retrying. */
export interface AgentRetryEvent extends EventBase {
  /** Always `"agent.retry"`: switch on it. */
  type: "agent.retry";
  /** The attempt number, as OpenCode counts it. */
  attempt: number;
  /** Why the last call failed, redacted. */
  message: string;
  /** When the next attempt is due (ms since epoch). */
  nextAt?: number;
}

/** Token usage so far. */
export interface AgentUsageEvent extends EventBase {
  /** Always `"agent.usage"`: switch on it. */
  type: "agent.usage";
  /** Tokens and cost so far. */
  usage: TokenUsage;
}

/** A follow-up instruction from the caller (`handle.say`) handed to the agent. */
export interface AgentMessageEvent extends EventBase {
  /** Always `"agent.message"`: switch on it. */
  type: "agent.message";
  /** The instruction, redacted. */
  text: string;
}

/** The changes collected from the sandbox. */
export interface ChangesEvent extends EventBase {
  /** Always `"changes"`: switch on it. */
  type: "changes";
  /** Every changed file. */
  files: ChangedFile[];
}

/** The branch is pushed. */
export interface BranchPushedEvent extends EventBase {
  /** Always `"branch.pushed"`: switch on it. */
  type: "branch.pushed";
  /** The branch pushed. */
  branch: string;
  /** The commit it points at. */
  commit: string;
}

/** The change request is open. */
export interface ChangeRequestEvent extends EventBase {
  /** Always `"change-request"`: switch on it. */
  type: "change-request";
  /** Its web URL (`local://…` for the local host). */
  url: string;
  /** Its number on the host. */
  number: number;
  /** True when opened now, false when an open one was updated. */
  created: boolean;
}

/** The checks the verify phase runs, and how they were chosen. */
export interface ChecksChosenEvent extends EventBase {
  /** Always `"checks.chosen"`: switch on it. */
  type: "checks.chosen";
  /** Given by the caller (`options`) or detected (`auto`). */
  source: "options" | "auto";
  /** The checks, in the order they run. */
  checks: CheckSpec[];
  /** For `auto`: one line per detected check, or why nothing was detected. */
  reasons: string[];
}

/** A check started in a round (round 0 follows the agent's first pass, round N its Nth fix). */
export interface CheckStartedEvent extends EventBase {
  /** Always `"check.started"`: switch on it. */
  type: "check.started";
  /** 0 after the agent's first pass, N after fix round N. */
  round: number;
  /** The check's name. */
  name: string;
  /** The command it runs. */
  command: string;
}

/** Output of a running check. */
export interface CheckOutputEvent extends EventBase {
  /** Always `"check.output"`: switch on it. */
  type: "check.output";
  /** The round. */
  round: number;
  /** The check's name. */
  name: string;
  /** Which stream the text came on. */
  stream: "stdout" | "stderr";
  /** A chunk of output, redacted. */
  text: string;
}

/** A check ended. */
export interface CheckCompletedEvent extends EventBase {
  /** Always `"check.completed"`: switch on it. */
  type: "check.completed";
  /** The round. */
  round: number;
  /** The check's name. */
  name: string;
  /** True when it exited 0 within its time. */
  passed: boolean;
  /** Null when the check was stopped by its time limit. */
  exitCode: number | null;
  /** True when it ran out of time. */
  timedOut: boolean;
  /** How long it ran, in ms. */
  durationMs: number;
}

/** Checks failed and the agent is asked to fix them: fix round `round` of `maxFixRounds`. */
export interface FixRoundEvent extends EventBase {
  /** Always `"fix-round"`: switch on it. */
  type: "fix-round";
  /** This fix round, from 1. */
  round: number;
  /** The most fix rounds the task allows. */
  maxFixRounds: number;
  /** The names of the failing checks. */
  failing: string[];
}

/** Token usage and cost. */
export interface TokenUsage {
  /** Input (prompt) tokens. */
  inputTokens: number;
  /** Output tokens. */
  outputTokens: number;
  /** Reasoning tokens, where the model reports them. */
  reasoningTokens: number;
  /** Input tokens read from the provider's cache. */
  cacheReadTokens: number;
  /** Input tokens written to the provider's cache. */
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
