import { expect } from "vitest";
import { RunningAgentError } from "../errors.js";

/**
 * Awaits a promise that must reject with a {@link RunningAgentError} (with `code`, when given)
 * and returns that error for further checks.
 */
export async function expectRunningAgentError(promise: Promise<unknown>, code?: string): Promise<RunningAgentError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(RunningAgentError.isInstance(error), `expected a RunningAgentError${code === undefined ? "" : ` with ${code}`}, got ${String(error)}`).toBe(true);
  if (code !== undefined) expect((error as RunningAgentError).code).toBe(code);
  return error as RunningAgentError;
}
