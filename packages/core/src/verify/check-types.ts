import type { CheckOutcome } from "../spec/git-host-spec.js";

/** One check: a trusted command run in the sandbox (`sh -c`) after the agent, like a setup command. */
export interface CheckSpec {
  /** A short unique name, e.g. `test` or `lint`. */
  name: string;
  /** The command, run with `sh -c` in the workspace. */
  command: string;
  /** Ends the check (and its whole process tree) after this long; it then counts as failed. Default 10 minutes. */
  timeoutMs?: number;
}

/** What to do when checks still fail after the last fix round. */
export type ChecksFailedPolicy = "draft" | "fail" | "open";

/** How one check ended in one round. */
export interface CheckResult extends CheckOutcome {
  /** The last lines of its output (stdout and stderr as they came), redacted and bounded. */
  outputTail: string;
}

/** One round of checks: round 0 runs after the agent's first pass, round N after fix round N. */
export interface CheckRound {
  /** 0 after the agent's first pass, N after fix round N. */
  round: number;
  /** Each check's result, in order. */
  checks: CheckResult[];
  /** True when every check passed. */
  passed: boolean;
}

/** The verify phase's outcome, in the result. */
export interface Verification {
  /** Every round, in order; the last one decides. */
  rounds: CheckRound[];
  /** True when the last round passed. */
  passed: boolean;
  /** The policy that applied to a last failure. */
  onChecksFailed: ChecksFailedPolicy;
  /** How the checks were chosen: given by the caller, or detected (`auto`). */
  source: "options" | "auto";
}
