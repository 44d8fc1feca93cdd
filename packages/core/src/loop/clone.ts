import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cloneRepository } from "../git/clone.js";
import { packDirectory } from "../archive.js";
import { hostOptions } from "./host-options.js";
import type { TaskContext } from "./task-context.js";
import { chooseChecks } from "./choose-checks.js";

/** Phase 3: clones on the host (credentials stay here) and places the files in the sandbox. */
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
    signal: context.signal,
    stallTimeoutMs: options.gitStallTimeoutMs,
  });
  context.baseCommit = commit;
  context.emit({ type: "log", level: "info", message: `Cloned ${repository.id} at ${context.startBranch} (${commit.slice(0, 12)}).` });
  // `checks: "auto"` reads the repository as it was before the agent touched it.
  if (options.checks !== undefined) await chooseChecks(context);
  const archive = await packDirectory(dir);
  await context.session!.putArchive(context.session!.workdir, archive);
}
