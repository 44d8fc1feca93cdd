export { main } from "./main.js";
export { parseCliArguments, parseDuration, SANDBOX_KINDS, type CliCommand, type RunCommandOptions, type SandboxKind } from "./cli-arguments.js";
export { ExitCode } from "./exit-codes.js";
export { UsageError } from "./usage-error.js";
export type { CliIo } from "./run-command.js";
export type { DisplayStream } from "./progress-display.js";
