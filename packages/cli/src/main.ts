import { readFileSync } from "node:fs";
import { parseCliArguments, type CliCommand } from "./cli-arguments.js";
import { ExitCode } from "./exit-codes.js";
import { MAIN_HELP, RUN_HELP } from "./help-text.js";
import { runCommand, type CliIo } from "./run-command.js";
import { UsageError } from "./usage-error.js";

/**
 * The whole CLI: parses `argv` (without `node` and the script), runs the command and resolves
 * with the exit code. Usage errors print what is wrong and exit with 64.
 */
export async function main(argv: readonly string[], io: CliIo = { stdout: process.stdout, stderr: process.stderr, env: process.env }): Promise<ExitCode> {
  let command: CliCommand;
  try {
    command = parseCliArguments(argv, io.env);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    const topic = argv[0] === "run" ? "running-agent run --help" : "running-agent --help";
    io.stderr.write(`running-agent: ${error.message}\nRun \`${topic}\` for the options.\n`);
    return ExitCode.USAGE;
  }
  switch (command.command) {
    case "help":
      io.stdout.write(command.topic === "run" ? RUN_HELP : MAIN_HELP);
      return ExitCode.SUCCESS;
    case "version":
      io.stdout.write(`${cliVersion()}\n`);
      return ExitCode.SUCCESS;
    case "run":
      return runCommand(command.options, io);
  }
}

/** The package's version; src/ and dist/ both sit one level below package.json. */
function cliVersion(): string {
  const packageJson = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
  return packageJson.version;
}
