import { collectChanges as collectFromSandbox } from "../git/collect.js";
import type { TaskContext } from "./task-context.js";

/** Phase 6: brings the sandbox's working tree back into the host clone and lists what changed. */
export async function collectChanges(context: TaskContext): Promise<void> {
  context.changes = await collectFromSandbox({
    session: context.session!,
    dir: context.cloneDir!,
    ...(context.placedListing ? { placed: context.placedListing } : {}),
    // What the last collect (before a fix round) staged is what it listed: git need not be asked.
    staged: context.changes.flatMap((change) => (change.previousPath === undefined ? [change.path] : [change.path, change.previousPath])),
    limits: context.options!.changeLimits,
    // Every secret the run knows, also those minted or made during it (tokens, the server password).
    secrets: context.redactor.secrets(),
    signal: context.signal,
  });
  context.emit({ type: "changes", files: context.changes });
}
