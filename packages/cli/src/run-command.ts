import { isSandboxPool, startAgentTask, type AgentTaskHandle, type AgentTaskOptions } from "@running-agent/core";
import { buildTaskOptions } from "./build-task-options.js";
import type { RunCommandOptions } from "./cli-arguments.js";
import { ExitCode } from "./exit-codes.js";
import { chooseDisplayMode, createProgressDisplay, type DisplayStream } from "./progress-display.js";
import { reportFailure, reportResult } from "./result-report.js";

/** The process the CLI runs in: its streams, environment and signals. */
export interface CliIo {
  /** Where the result goes (the pull request's URL, or JSON with `--json`): `process.stdout` in the CLI. */
  stdout: DisplayStream;
  /** Where progress and errors go: `process.stderr` in the CLI. */
  stderr: DisplayStream;
  /** The environment `GITHUB_TOKEN`, `GITLAB_TOKEN`, `TERM` and `NO_COLOR` are read from: `process.env` in the CLI. */
  env: NodeJS.ProcessEnv;
}

/**
 * `running-agent run`: starts the task, shows its progress, and turns the outcome into an exit
 * code. SIGINT and SIGTERM cancel the task through its handle and wait for the teardown; a
 * second signal exits at once.
 */
export async function runCommand(options: RunCommandOptions, io: CliIo): Promise<ExitCode> {
  let handle: AgentTaskHandle;
  let taskOptions: AgentTaskOptions | undefined;
  try {
    taskOptions = await buildTaskOptions(options);
    handle = startAgentTask(taskOptions);
  } catch (error) {
    await closePool(taskOptions);
    return reportFailure(error, io, options.json, ExitCode.CANCELLED);
  }
  const display = createProgressDisplay(chooseDisplayMode(io.stderr, options.json, io.env), io.stderr, io.env);
  let cancelExitCode: ExitCode = ExitCode.CANCELLED;
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    const exitCode = signal === "SIGTERM" ? ExitCode.TERMINATED : ExitCode.CANCELLED;
    if (signals === 1) {
      cancelExitCode = exitCode;
      display.note(`${signal}: cancelling, tearing the sandbox down (press Ctrl+C again to quit without cleanup)`);
      void handle.cancel(`interrupted by ${signal}`);
      return;
    }
    display.stop();
    io.stderr.write(`${signal} again: quitting without waiting for cleanup.\n`);
    process.exit(exitCode);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    for await (const event of handle) display.event(event);
    const result = await handle.result;
    display.stop();
    return reportResult(result, io.stdout, options.json);
  } catch (error) {
    display.stop();
    return reportFailure(error, io, options.json, cancelExitCode);
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await closePool(taskOptions);
  }
}

/** A `--pool` pool holds the replacement it started after the task took its sandbox: nothing of it may outlive the run. */
async function closePool(taskOptions: AgentTaskOptions | undefined): Promise<void> {
  if (isSandboxPool(taskOptions?.sandbox)) await taskOptions.sandbox.close();
}
