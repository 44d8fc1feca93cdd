import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { packFolderThen } from "../archive.js";
import { agentError, ErrorCode, throwIfAborted } from "../errors.js";
import type { SandboxSession } from "../spec/sandbox-spec.js";
import { streamGit } from "./git-command.js";
import { abortFailure, wrapFailure } from "./remote-errors.js";
import { listPlacedWorkspace, type WorkspaceListing } from "./workspace-listing.js";

/** What {@link placeRepository} needs. */
export interface PlaceRepositoryInput {
  /** The sandbox whose workdir receives the repository. */
  session: SandboxSession;
  /** The host clone (its working tree may be empty: the files come from HEAD's tree). */
  dir: string;
  /** Aborts the step; it rejects with ABORTED. */
  signal?: AbortSignal;
  /** The tree whose files are placed. Default HEAD's; a moved base's delta places a tree of only what changed. */
  tree?: string;
}

/**
 * Puts the repository into the sandbox's workdir in one archive (one extraction): the clone's `.git`
 * without its hooks, then HEAD's files straight from the object store (`git archive`, streamed: no
 * archive in memory, no second working tree on the host). Returns the listing of what was placed, taken before anything
 * else runs in the sandbox, for {@link collectChanges}; undefined when the sandbox cannot list
 * (then every file is collected).
 */
export async function placeRepository(input: PlaceRepositoryInput): Promise<WorkspaceListing | undefined> {
  const { session, dir, signal } = input;
  const tree = input.tree ?? "HEAD^{tree}";
  try {
    // Files as a checkout would write them: export-subst and export-ignore are archive-only rewrites.
    await mkdir(join(dir, ".git", "info"), { recursive: true });
    await writeFile(join(dir, ".git", "info", "attributes"), "* -export-subst -export-ignore\n");
    // A tree (not a commit) carries no pax header with the commit id; 022 gives checkout's 0644/0755.
    const archive = streamGit(["-c", "tar.umask=022", "archive", "--format=tar", tree], { cwd: dir, signal, phase: "clone" });
    // One archive, one extraction in the sandbox: the clone's `.git` (HEAD's tree never holds one) without
    // its hooks (nothing of the host's setup runs there, and nothing there is run here), then HEAD's files.
    const combined = packFolderThen(dir, ".git", { exclude: (path) => path === "hooks" }, archive.stdout);
    const placed = await Promise.allSettled([
      putStream(session, session.workdir, combined, signal).catch((error: unknown) => {
        combined.destroy();
        archive.kill();
        throw error;
      }),
      archive.exited,
    ]);
    const failed = placed.find((result) => result.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
    throwIfAborted(signal, "clone");
    return await listPlacedWorkspace(session, signal);
  } catch (error) {
    const aborted = abortFailure(error, signal, "clone");
    if (aborted) throw aborted;
    throw wrapFailure(error, ErrorCode.CLONE_FAILED, `Placing the repository in the sandbox failed: ${(error as Error).message}`, "clone");
  }
}

// Streams when the provider can; older providers get the archive whole.
async function putStream(session: SandboxSession, directory: string, archive: Readable, signal: AbortSignal | undefined): Promise<void> {
  if (session.putArchiveStream) return session.putArchiveStream(directory, archive, signal ? { signal } : {});
  const chunks: Buffer[] = [];
  for await (const chunk of archive) chunks.push(chunk as Buffer);
  const whole = Buffer.concat(chunks);
  if (whole.byteLength === 0) throw agentError(ErrorCode.CLONE_FAILED, "git archive produced no archive.", { phase: "clone" });
  await session.putArchive(directory, new Uint8Array(whole.buffer, whole.byteOffset, whole.byteLength));
}
