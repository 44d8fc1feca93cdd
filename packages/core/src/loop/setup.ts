import { createHash } from "node:crypto";
import { ErrorCode, agentError } from "../errors.js";
import type { TaskContext } from "./task-context.js";
import type { ResolvedRepository } from "../spec/git-host-spec.js";
import { listPlacedWorkspace } from "../git/workspace-listing.js";

const OUTPUT_TAIL = 2_000;

/**
 * Phase 4: the caller's setup commands (trusted input, so they run through `sh -c`). A sandbox with
 * prepared states starts from the state kept for this repository, commit and commands when there is
 * one, and keeps its state after the commands otherwise.
 */
export async function runSetup(context: TaskContext): Promise<void> {
  const session = context.session!;
  const states = session.preparedStates;
  const key = states ? preparedStateKey(context) : undefined;
  if (context.prepare && !states) {
    throw agentError(ErrorCode.CAPABILITY_UNSUPPORTED, `The ${context.options!.sandbox.providerId} sandbox keeps no prepared states: give it a prepared-state cache (createLocalSandbox({ preparedStates }), createDockerSandbox({ preparedStates }), createModalSandbox({ preparedStates })).`);
  }
  // A workdir that holds this key's state from the start (a pooled sandbox the pool restored it into) is not copied again.
  const movedBase = context.movedBase?.applied === true ? context.movedBase : undefined;
  if (states && key && context.prepare?.refresh !== true && (movedBase || context.startedFromPreparedState === key || (await states.restore(key)))) {
    context.preparedStateReused = true;
    if (movedBase) {
      // Listed by the clone phase once the delta was in (the base the agent's change is measured from).
      const { delta } = movedBase;
      context.emit({ type: "log", level: "info", message: `Started from the prepared state of ${context.repository!.id} at ${delta.from.slice(0, 12)} and brought it to ${delta.to.slice(0, 12)}: ${count(delta.changed.length, "file")} brought in, ${delta.removed.length} removed; the setup commands did not run again.` });
      return;
    }
    // The restored files are other files than those placed: listed again, before the agent runs.
    context.placedListing = await listPlacedWorkspace(session, context.signal);
    context.emit({ type: "log", level: "info", message: `Started from the prepared state of ${context.repository!.id} at ${context.baseCommit!.slice(0, 12)}; the setup commands did not run again.` });
    return;
  }
  // Setup commands may have their own policy (package registries, say); the agent's applies again after them.
  const egress = context.egressProxy;
  egress?.setPolicy(context.options!.setupNetwork);
  try {
    await runCommands(context);
  } finally {
    egress?.setPolicy(context.options!.network);
  }
  if (states && key) {
    try {
      await states.save(key, { lineage: preparedStateLineage(context), commit: context.baseCommit! });
      context.emit({ type: "log", level: "info", message: "Kept the workspace after setup as a prepared state for later tasks on this commit." });
    } catch (error) {
      // Keeping the state is the whole point of preparing: there it fails the call.
      if (context.prepare) throw error;
      context.emit({ type: "warning", code: "PREPARED_STATE_NOT_SAVED", message: `The prepared state was not kept: ${error instanceof Error ? error.message : String(error)}` });
    }
  }
}

/** The repository, the commit and the commands in order: any change to one is another state. */
export function preparedStateKey(context: TaskContext): string {
  const input = JSON.stringify({ version: 1, repository: context.repository!.id, remote: context.repository!.remote, commit: context.baseCommit, setupCommands: context.options!.setupCommands });
  return createHash("sha256").update(input).digest("hex");
}

/** The repository and the commands without the commit: states of one lineage serve a moved base (see choosePreparedState). */
export function preparedStateLineage(context: TaskContext): string {
  return lineageOf(context.repository!, context.options!.setupCommands);
}

/** {@link preparedStateLineage} from its parts. */
export function lineageOf(repository: Pick<ResolvedRepository, "id" | "remote">, setupCommands: readonly string[]): string {
  const input = JSON.stringify({ version: 1, lineage: true, repository: repository.id, remote: repository.remote, setupCommands });
  return createHash("sha256").update(input).digest("hex");
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

async function runCommands(context: TaskContext): Promise<void> {
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
