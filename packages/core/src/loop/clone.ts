import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cloneRepository } from "../git/clone.js";
import { placeRepository } from "../git/place.js";
import { runGit } from "../git/git-command.js";
import { hostOptions } from "./host-options.js";
import type { TaskContext } from "./task-context.js";
import { chooseChecks } from "./choose-checks.js";
import { bringToBase, choosePreparedState } from "./moved-base.js";
import { preparedStateKey } from "./setup.js";

/**
 * Phase 3: clones on the host (credentials stay here; no working tree: the index holds HEAD) and
 * streams HEAD's files and the `.git` without hooks into the sandbox, recording what was placed.
 * A session that started from the prepared state of this commit already holds them: nothing is placed.
 */
export async function cloneIntoSandbox(context: TaskContext): Promise<void> {
  const options = context.options!;
  await (context.hostClone?.done ?? cloneOnHost(context));
  const dir = context.cloneDir!;
  // `checks: "auto"` reads the repository as it was before the agent touched it: its top-level files,
  // checked out on the host for that (the host clone has no working tree otherwise).
  if (options.checks === "auto") await checkOutTopLevelFiles(dir, context.signal);
  if (options.checks !== undefined) await chooseChecks(context);
  const startedFrom = context.startedFromPreparedState;
  if (startedFrom !== undefined && startedFrom === context.preparedStateKey) {
    // A state of an older commit of this lineage: what changed since goes in now.
    if (context.movedBase?.fromKey === startedFrom) await bringToBase(context);
    return;
  }
  // A session that restores states into itself (the local sandbox) gets the kept state now, instead of
  // the files being placed only to be replaced by it in the setup phase.
  const states = context.session!.preparedStates;
  if (states && startedFrom === undefined && options.setupCommands.length > 0 && context.prepare?.refresh !== true) {
    // (A provider that starts sessions from states restores none into an open one: no older state to look for.)
    const key = context.preparedStateKey ?? (options.sandbox.startsFromPreparedStates === true ? preparedStateKey(context) : await choosePreparedState(context, options.sandbox));
    if (await states.restore(key)) {
      context.preparedStateKey = key;
      context.startedFromPreparedState = key;
      if (context.movedBase?.fromKey === key) await bringToBase(context);
      return;
    }
  }
  context.placedListing = await placeRepository({ session: context.session!, dir, signal: context.signal });
}

/**
 * Starts the host side of the clone while the sandbox is made (it needs no sandbox, and a container's
 * start is mostly the Engine's own waiting); the clone phase awaits it.
 */
export function startHostClone(context: TaskContext): void {
  if (context.cloneDir !== undefined || context.hostClone) return;
  const stop = new AbortController();
  const done = cloneOnHost(context, AbortSignal.any([context.signal, stop.signal]));
  // Its failure is the clone phase's to report; a task that fails earlier stops it in teardown.
  done.catch(() => undefined);
  context.hostClone = { done, stop: () => stop.abort() };
}

/** The host side of the clone; done once (the sandbox phase does it first for providers that start from a prepared state). */
export async function cloneOnHost(context: TaskContext, signal: AbortSignal = context.signal): Promise<void> {
  if (context.cloneDir !== undefined) return;
  const options = context.options!;
  const repository = context.repository!;
  const dir = await mkdtemp(join(tmpdir(), "running-agent-clone-"));
  context.hostFolders.push(dir);
  context.cloneDir = dir;
  const credentials = await options.gitHost.getCredentials(repository, "read", hostOptions(context));
  const { commit } = await cloneRepository({
    repository,
    branch: context.startBranch!,
    depth: options.cloneDepth,
    ...(credentials ? { credentials } : {}),
    dir,
    checkout: false,
    signal,
    stallTimeoutMs: options.gitStallTimeoutMs,
  });
  context.baseCommit = commit;
  context.emit({ type: "log", level: "info", message: `Cloned ${repository.id} at ${context.startBranch} (${commit.slice(0, 12)}).` });
}

async function checkOutTopLevelFiles(dir: string, signal: AbortSignal): Promise<void> {
  const { stdout } = await runGit(["ls-tree", "-z", "HEAD"], { cwd: dir, signal, phase: "clone" });
  const files = stdout
    .toString("utf8")
    .split("\0")
    .filter((record) => /^100(644|755) blob /.test(record))
    .map((record) => record.slice(record.indexOf("\t") + 1));
  if (files.length > 0) await runGit(["checkout-index", "--force", "-z", "--stdin"], { cwd: dir, input: `${files.join("\0")}\0`, signal, phase: "clone" });
}
