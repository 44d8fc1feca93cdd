import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { createLocalSandbox } from "@running-agent/core";

const PREFIX = "running-agent-worker-";
const OWNER_FILE = "owner.json";

/** Who a work folder belongs to. */
interface WorkFolderOwner {
  workerId: string;
  hostname: string;
  pid: number;
  startedAt: number;
}

/** A worker's own folder for sandboxes and host clones. */
export interface ClaimedWorkFolder {
  /** Point `TMPDIR` (core's clone folders, the local sandbox's sessions) here. */
  path: string;
  /** Work folders of dead predecessors that were removed. */
  removed: string[];
}

/**
 * Makes the worker's folder under `parent` (default the temp folder) with an owner record, and
 * removes the folders (with their sandbox sessions and any process still running in one) that
 * workers on this host left when they died. A folder whose owner process is alive is never
 * touched, even when that worker is stalled or unknown to the store; one from another host
 * (a shared folder) is left to that host.
 */
export async function claimWorkFolder(options: { workerId: string; parent?: string }): Promise<ClaimedWorkFolder> {
  const parent = options.parent ?? tmpdir();
  const removed: string[] = [];
  for (const name of await readdir(parent).catch(() => [] as string[])) {
    if (!name.startsWith(PREFIX)) continue;
    const folder = join(parent, name);
    const owner = await readFile(join(folder, OWNER_FILE), "utf8")
      .then((text) => JSON.parse(text) as Partial<WorkFolderOwner>)
      .catch(() => undefined);
    // Only folders a worker made carry an owner record; anything else with the prefix is left alone.
    if (!owner || typeof owner.pid !== "number" || owner.hostname !== hostname() || owner.workerId === options.workerId) continue;
    if (isAlive(owner.pid)) continue;
    // Processes of unisolated sessions may outlive their worker; bubblewrap's die with it.
    await createLocalSandbox({ tempDirectory: folder, isolation: "none" })
      .reapOrphans?.({ olderThanMs: 0 })
      .catch(() => 0);
    await rm(folder, { recursive: true, force: true });
    removed.push(folder);
  }
  const path = join(parent, `${PREFIX}${options.workerId.replace(/[^A-Za-z0-9_.-]/g, "-")}`);
  await mkdir(path, { recursive: true, mode: 0o700 });
  const owner: WorkFolderOwner = { workerId: options.workerId, hostname: hostname(), pid: process.pid, startedAt: Date.now() };
  await writeFile(join(path, OWNER_FILE), `${JSON.stringify(owner)}\n`);
  return { path, removed };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: alive, owned by someone else.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
