import { agentError, ErrorCode } from "../errors.js";
import { runChecks } from "../verify/run-checks.js";
import { fixPrompt } from "../verify/fix-prompt.js";
import type { CheckRound } from "../verify/check-types.js";
import { continueAgent } from "./agent.js";
import { collectChanges } from "./collect.js";
import type { TaskContext } from "./task-context.js";

/**
 * Phase 6b: runs the checks on the agent's work. A failure goes back to the same OpenCode
 * session as a new message; the agent works again, the changes are collected again, and every
 * check runs again, at most `maxFixRounds` times. Checks still failing at the end follow
 * `onChecksFailed`: `fail` throws CHECKS_FAILED (nothing is pushed), `draft` and `open` go on
 * (the change request says which checks fail).
 */
export async function verifyChanges(context: TaskContext): Promise<void> {
  const options = context.options!;
  const checks = context.checks!;
  const rounds: CheckRound[] = [];
  const run = (round: number) =>
    runChecks({ session: context.session!, checks, round, signal: context.signal, redact: (text) => context.redactor.redactText(text), emit: context.emit });
  for (let round = 0; ; round++) {
    const result = await run(round);
    rounds.push(result);
    if (result.passed || round >= options.maxFixRounds) break;
    const fixRound = round + 1;
    context.emit({ type: "fix-round", round: fixRound, maxFixRounds: options.maxFixRounds, failing: result.checks.filter((check) => !check.passed).map((check) => check.name) });
    await continueAgent(context, fixPrompt(result, fixRound, options.maxFixRounds));
    await collectChanges(context);
    // An agent that undid every change leaves nothing to check or push.
    if (context.changes.length === 0) break;
  }
  const last = rounds[rounds.length - 1]!;
  context.verification = { rounds, passed: last.passed, onChecksFailed: options.onChecksFailed, source: context.checksSource! };
  if (!last.passed && context.changes.length > 0 && options.onChecksFailed === "fail") {
    const failing = last.checks.filter((check) => !check.passed).map((check) => check.name);
    throw agentError(
      ErrorCode.CHECKS_FAILED,
      `The checks ${failing.map((name) => `"${name}"`).join(", ")} still fail after ${rounds.length - 1} fix round${rounds.length === 2 ? "" : "s"}; nothing was pushed (onChecksFailed: "fail").`,
      { phase: "verify", details: { rounds: context.verification.rounds } },
    );
  }
}
