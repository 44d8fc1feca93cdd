import { mkdtemp, rm, symlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/** A Unix socket's path is at most 107 bytes (sun_path, with its NUL); a margin for safety. */
const MAX_SOCKET_PATH_BYTES = 100;
/** Where the short link is made: a fixed, short folder, whatever TMPDIR says. */
const SHORT_BASE = "/tmp";

/** A path to listen on or connect to for a socket, and what to remove once done with it. */
export interface SocketPathHandle {
  path: string;
  release(): Promise<void>;
}

/**
 * A path that reaches `socketPath` within the kernel's limit for socket addresses. A long one (a
 * deep TMPDIR, such as a worker's own work folder) is reached through a short symlink to its
 * folder: the limit applies to the path given to bind/connect, not to where it resolves.
 */
export async function shortSocketPath(socketPath: string): Promise<SocketPathHandle> {
  if (Buffer.byteLength(socketPath) <= MAX_SOCKET_PATH_BYTES) return { path: socketPath, release: async () => {} };
  const folder = await mkdtemp(join(SHORT_BASE, "ra-sock-"));
  await symlink(dirname(socketPath), join(folder, "d"));
  return { path: join(folder, "d", basename(socketPath)), release: () => rm(folder, { recursive: true, force: true }) };
}
