import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cloneRepository } from "../git/clone.js";
import { placeRepository } from "../git/place.js";
import { hostOptions } from "./host-options.js";
import type { TaskContext } from "./task-context.js";

/**
 * Phase 3: clones on the host (credentials stay here; no working tree: the index holds HEAD) and
 * streams HEAD's files and the `.git` without hooks into the sandbox, recording what was placed.
 */
export async function cloneIntoSandbox(context: TaskContext): Promise<void> {
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
    signal: context.signal,
  });
  context.baseCommit = commit;
  context.emit({ type: "log", level: "info", message: `Cloned ${repository.id} at ${context.startBranch} (${commit.slice(0, 12)}).` });
  context.placedListing = await placeRepository({ session: context.session!, dir, signal: context.signal });
}
