import { collectChanges as collectFromSandbox } from "../git/collect.js";
import type { TaskContext } from "./task-context.js";

/** Phase 6: brings the sandbox's working tree back into the host clone and lists what changed. */
export async function collectChanges(context: TaskContext): Promise<void> {
  context.changes = await collectFromSandbox({ session: context.session!, dir: context.cloneDir!, signal: context.signal });
  context.emit({ type: "changes", files: context.changes });
}
