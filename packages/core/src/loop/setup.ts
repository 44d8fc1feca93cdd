import { ErrorCode, agentError } from "../errors.js";
import type { TaskContext } from "./task-context.js";

const OUTPUT_TAIL = 2_000;

/** Phase 4: the caller's setup commands (trusted input, so they run through `sh -c`). */
export async function runSetup(context: TaskContext): Promise<void> {
  const options = context.options!;
  const session = context.session!;
  const decoder = new TextDecoder();
  for (const command of options.setupCommands) {
    const forward = (stream: "stdout" | "stderr") => (chunk: Uint8Array) =>
      context.emit({ type: "command.output", command, stream, text: decoder.decode(chunk) });
    const result = await session.exec(["sh", "-c", command], {
      cwd: session.workdir,
      signal: context.signal,
      timeoutMs: Math.max(1, options.timeoutMs - (Date.now() - context.startedAt)),
      onStdout: forward("stdout"),
      onStderr: forward("stderr"),
    });
    if (result.exitCode !== 0) {
      throw agentError(
        ErrorCode.SETUP_FAILED,
        `The setup command "${command}" exited with code ${result.exitCode}: ${result.stderr.slice(-OUTPUT_TAIL).trim() || result.stdout.slice(-OUTPUT_TAIL).trim()}`,
        { details: { command, exitCode: result.exitCode } },
      );
    }
  }
}
