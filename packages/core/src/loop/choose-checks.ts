import { detectChecks } from "../verify/detect-checks.js";
import type { TaskContext } from "./task-context.js";

/** Decides the checks the verify phase runs: the caller's, or for `"auto"` the repository's usual ones (read from the host clone). */
export async function chooseChecks(context: TaskContext): Promise<void> {
  const requested = context.options!.checks;
  if (requested === undefined) return;
  if (requested === "auto") {
    const detected = await detectChecks(context.cloneDir!);
    context.checks = detected.checks;
    context.checksSource = "auto";
    const reasons = detected.checks.length > 0 ? detected.reasons : ["nothing detected: no package.json test, lint or typecheck script, pytest config, go.mod, Cargo.toml or Makefile test target"];
    context.emit({ type: "checks.chosen", source: "auto", checks: detected.checks, reasons });
    return;
  }
  context.checks = requested;
  context.checksSource = "options";
  context.emit({ type: "checks.chosen", source: "options", checks: requested, reasons: [] });
}
