import { ErrorCode, RunningAgentError, type AgentTaskResult } from "@running-agent/core";
import { cliErrorMessage } from "./cli-error-message.js";
import { ExitCode } from "./exit-codes.js";
import type { DisplayStream } from "./progress-display.js";

/** Prints a finished task's result (stdout) and returns the exit code: 0 with a pull request, 2 without changes. */
export function reportResult(result: AgentTaskResult, stdout: DisplayStream, json: boolean): ExitCode {
  if (json) {
    stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } else if (result.status === "completed") {
    const lines = [
      result.pullRequest ? `Pull request: ${result.pullRequest.url}` : undefined,
      result.branch ? `Branch: ${result.branch}${result.commit ? ` (${result.commit.slice(0, 7)})` : ""} into ${result.baseBranch}` : undefined,
      `Changes: ${result.changes.length} file${result.changes.length === 1 ? "" : "s"}`,
    ];
    stdout.write(`${lines.filter((line) => line !== undefined).join("\n")}\n`);
  } else {
    stdout.write("No changes: the agent finished without changing any file, so nothing was pushed.\n");
  }
  if (!json && result.summary.trim() !== "") stdout.write(`Summary: ${result.summary.trim()}\n`);
  return result.status === "completed" ? ExitCode.SUCCESS : ExitCode.NO_CHANGES;
}

/**
 * Prints a failure: the error's code and message on stderr (a JSON line with `--json`, plus the
 * error as the JSON result on stdout). This is the one place a failure's message is printed: the
 * progress lines name the failed phase and the code only. Cancellation exits with `cancelExitCode`.
 */
export function reportFailure(error: unknown, io: { stdout: DisplayStream; stderr: DisplayStream }, json: boolean, cancelExitCode: ExitCode): ExitCode {
  const failure = RunningAgentError.isInstance(error)
    ? error
    : new RunningAgentError({ code: ErrorCode.INTERNAL, message: `Unexpected error: ${error instanceof Error ? error.message : String(error)}`, cause: error });
  const cancelled = failure.code === ErrorCode.ABORTED;
  if (json) {
    const body = { status: cancelled ? "cancelled" : "failed", error: failure.toJSON() };
    io.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
    io.stderr.write(`${JSON.stringify({ type: "error", error: failure.toJSON() })}\n`);
  } else {
    const where = failure.phase ? ` (${failure.phase})` : "";
    io.stderr.write(`${cancelled ? "Cancelled" : "Error"}: ${failure.code}${where}: ${cliErrorMessage(failure)}\n`);
  }
  return cancelled ? cancelExitCode : ExitCode.FAILURE;
}
