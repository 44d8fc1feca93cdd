import type { StoredAgentEvent } from "@running-agent/example-http-api/job-views";
import { checksOf, formatDuration, phaseStepsOf } from "./phase-steps.js";

const STATE_LABELS = { pending: "not run", running: "running", completed: "done", skipped: "skipped", failed: "failed" } as const;

/** The loop's phases with each one's state and duration, then the checks per round and the fix rounds. */
export function PhaseStepper({ phases, events, finished }: { phases: readonly string[]; events: readonly StoredAgentEvent[]; finished: boolean }) {
  const steps = phaseStepsOf(phases, events);
  const { checks, fixRounds, maxFixRounds } = checksOf(events);
  return (
    <section className="phases" aria-label="Phases">
      <ol className="stepper">
        {steps.map((step) => (
          <li key={step.phase} className={`step step-${step.state}`} data-phase={step.phase} data-state={step.state} aria-current={step.state === "running" ? "step" : undefined} title={step.error}>
            <span className="step-name">{step.phase}</span>
            <span className="step-state">
              {step.state === "pending" && !finished ? "waiting" : STATE_LABELS[step.state]}
              {step.durationMs !== undefined ? ` · ${formatDuration(step.durationMs)}` : ""}
            </span>
          </li>
        ))}
      </ol>
      {checks.length > 0 && (
        <table className="checks">
          <caption>
            Checks{fixRounds > 0 ? ` · ${fixRounds} fix round${fixRounds > 1 ? "s" : ""}${maxFixRounds !== undefined ? ` of ${maxFixRounds}` : ""}` : ""}
          </caption>
          <thead>
            <tr>
              <th scope="col">Round</th>
              <th scope="col">Check</th>
              <th scope="col">Result</th>
              <th scope="col">Time</th>
            </tr>
          </thead>
          <tbody>
            {checks.map((check) => (
              <tr key={`${check.round}-${check.name}`} className={check.passed ? "check-passed" : "check-failed"}>
                <td>{check.round}</td>
                <td>{check.name}</td>
                <td>{check.passed ? "passed" : check.timedOut ? "timed out" : `failed (exit ${check.exitCode})`}</td>
                <td>{formatDuration(check.durationMs)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
