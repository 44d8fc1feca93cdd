import { readBaseDelta, writeDeltaTree, type BaseDelta } from "../git/base-delta.js";
import { placeRepository } from "../git/place.js";
import { ErrorCode, agentError } from "../errors.js";
import type { SandboxProvider } from "../spec/sandbox-spec.js";
import { hostOptions } from "./host-options.js";
import { DEFAULT_SETUP_INPUTS } from "./setup-inputs.js";
import { preparedStateKey, preparedStateLineage } from "./setup.js";
import type { TaskContext } from "./task-context.js";

/** A task's start from a prepared state of an older commit of its lineage. */
export interface MovedBase {
  /** The key of the state it starts from. */
  fromKey: string;
  /** What changed from the state's commit to the task's base. */
  delta: BaseDelta;
  /** Set once the delta is in the sandbox (then the setup commands do not run). */
  applied?: boolean;
}

/**
 * The prepared state a task with setup commands starts from, once the host clone holds its base: its
 * own key's when the provider keeps it (or knows nothing of lineages), else the provider's newest state
 * of the same repository and setup commands, when what changed since that state's commit touches no
 * setup input (then `context.movedBase` says what to bring in). A preparation always wants its own key.
 */
export async function choosePreparedState(context: TaskContext, provider: SandboxProvider): Promise<string> {
  const key = preparedStateKey(context);
  if (context.prepare || typeof provider.findPreparedState !== "function") return key;
  try {
    return await chooseFromLineage(context, provider, key);
  } catch (error) {
    if (context.signal.aborted) throw error;
    // Only a shortcut: when the look-up or the comparison fails, the task goes the usual way.
    context.emit({ type: "log", level: "warn", message: `Could not look for a prepared state of an older commit (${error instanceof Error ? error.message : String(error)}); going on without one.` });
    return key;
  }
}

async function chooseFromLineage(context: TaskContext, provider: SandboxProvider, key: string): Promise<string> {
  const found = await provider.findPreparedState!({ lineage: preparedStateLineage(context), key, signal: context.signal });
  if (!found || found.key === key || found.commit === context.baseCommit) return key;
  const options = context.options!;
  const repository = context.repository!;
  const credentials = await options.gitHost.getCredentials(repository, "read", hostOptions(context));
  const delta = await readBaseDelta({
    dir: context.cloneDir!,
    repository,
    ...(credentials ? { credentials } : {}),
    from: found.commit,
    setupInputs: [...DEFAULT_SETUP_INPUTS, ...options.setupInputs],
    stallTimeoutMs: options.gitStallTimeoutMs,
    signal: context.signal,
  });
  const from = found.commit.slice(0, 12);
  if ("unavailable" in delta) {
    context.emit({ type: "log", level: "info", message: `Not starting from the prepared state at ${from}: ${delta.unavailable}; the setup commands run.` });
    return key;
  }
  if (delta.setupInputs.length > 0) {
    const named = delta.setupInputs.slice(0, 5).join(", ") + (delta.setupInputs.length > 5 ? `, and ${delta.setupInputs.length - 5} more` : "");
    context.emit({ type: "log", level: "info", message: `Not starting from the prepared state at ${from}: setup inputs changed since (${named}); the setup commands run.` });
    return key;
  }
  context.movedBase = { fromKey: found.key, delta };
  return found.key;
}

/**
 * Brings a sandbox that holds the prepared state of an older commit to the task's base: removes what
 * is gone and what changed (the state's `.git` with it, unread), then places the host clone's `.git`
 * and the changed files in one archive as placement does, and lists the workspace after that, so that
 * the agent's change is measured from the new base.
 */
export async function bringToBase(context: TaskContext): Promise<void> {
  const movedBase = context.movedBase!;
  const { delta } = movedBase;
  const session = context.session!;
  const signal = context.signal;
  const paths = [...delta.removed, ...delta.changed.map((entry) => entry.path)];
  // Paths come from the host's git, never from the sandbox; whatever links the state holds resolve inside it.
  const removal = await session.exec(["sh", "-c", 'cd -- "$0" && rm -rf -- ./.git && xargs -0 -r rm -rf --', session.workdir], { stdin: paths.map((path) => `${path}\0`).join(""), signal, timeoutMs: 600_000 });
  if (removal.exitCode !== 0) {
    throw agentError(ErrorCode.CLONE_FAILED, `Bringing the prepared state to ${delta.to.slice(0, 12)} failed: removing the old files exited with ${removal.exitCode}: ${removal.stderr.trim().slice(-500)}`, { phase: "clone" });
  }
  const emptied = emptiedFolders(delta.removed);
  if (emptied.length > 0) {
    // Folders the removals may have emptied, deepest first; one that still holds files stays (rmdir refuses it).
    await session.exec(["sh", "-c", 'cd -- "$0" && xargs -0 -r rmdir -- 2>/dev/null; true', session.workdir], { stdin: emptied.map((path) => `${path}\0`).join(""), signal, timeoutMs: 600_000 });
  }
  const tree = await writeDeltaTree(context.cloneDir!, delta, signal);
  context.placedListing = await placeRepository({ session, dir: context.cloneDir!, tree, signal });
  movedBase.applied = true;
}

/** The parent folders of removed paths, deepest first. */
function emptiedFolders(removed: readonly string[]): string[] {
  const folders = new Set<string>();
  for (const path of removed) {
    for (let end = path.lastIndexOf("/"); end > 0; end = path.lastIndexOf("/", end - 1)) folders.add(path.slice(0, end));
  }
  return [...folders].sort((left, right) => right.split("/").length - left.split("/").length);
}
