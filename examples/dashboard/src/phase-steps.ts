import type { StoredAgentEvent } from "@running-agent/example-http-api/job-views";

/** Where one phase of the loop stands. */
export interface PhaseStep {
  phase: string;
  state: "pending" | "running" | "completed" | "skipped" | "failed";
  /** Set once the phase ended. */
  durationMs: number | undefined;
  /** Set when it failed. */
  error: string | undefined;
}

/** One check's outcome in one round (round 0 follows the agent's first pass, round N its Nth fix). */
export interface CheckOutcome {
  round: number;
  name: string;
  passed: boolean;
  timedOut: boolean;
  exitCode: number | null;
  durationMs: number;
}

/**
 * Every phase in the loop's order with its state, from the job's events. A phase the job
 * reached again (a rerun after a lost worker) shows its latest state.
 */
export function phaseStepsOf(phases: readonly string[], events: readonly StoredAgentEvent[]): PhaseStep[] {
  const steps = new Map<string, PhaseStep>(phases.map((phase) => [phase, { phase, state: "pending", durationMs: undefined, error: undefined }]));
  for (const event of events) {
    if (event.type !== "phase") continue;
    const step = steps.get(event.phase);
    if (!step) continue;
    step.state = event.status === "started" ? "running" : event.status;
    step.durationMs = event.durationMs;
    step.error = event.error ? `${event.error.code}: ${event.error.message}` : undefined;
  }
  return [...steps.values()];
}

/** The checks run so far and the fix rounds the agent was asked for. */
export function checksOf(events: readonly StoredAgentEvent[]): { checks: CheckOutcome[]; fixRounds: number; maxFixRounds: number | undefined } {
  const checks: CheckOutcome[] = [];
  let fixRounds = 0;
  let maxFixRounds: number | undefined;
  for (const event of events) {
    if (event.type === "check.completed") checks.push({ round: event.round, name: event.name, passed: event.passed, timedOut: event.timedOut, exitCode: event.exitCode, durationMs: event.durationMs });
    if (event.type === "fix-round") {
      fixRounds = Math.max(fixRounds, event.round);
      maxFixRounds = event.maxFixRounds;
    }
  }
  return { checks, fixRounds, maxFixRounds };
}

/** `1.2 s`, `850 ms`, `2 min 5 s`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}
