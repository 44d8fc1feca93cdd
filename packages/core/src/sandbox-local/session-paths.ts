import { lstat, mkdir, readlink } from "node:fs/promises";
import { posix } from "node:path";
import { agentError, ErrorCode } from "../errors.js";

/** A sandbox folder and the host folder that backs it. */
export interface PathMount {
  sandboxPath: string;
  hostPath: string;
}

/** How {@link SessionPaths.resolve} treats the path's last component. */
export interface ResolveOptions {
  /** Follow a symlink in the last component (still only to a place inside the mounts). */
  followFinal: boolean;
  /** Create missing parent folders. */
  createParents?: boolean;
}

// Same bound as the kernel's, so that a link loop ends with an error.
const maxSymlinkHops = 40;

/**
 * Maps sandbox paths to host paths for the session's writable folders (workspace and scratch).
 * Symlinks are resolved component by component the way the sandbox would see them (an absolute
 * link target is a sandbox path), and any path that leaves the mounts is refused with UNSAFE_PATH.
 */
export class SessionPaths {
  constructor(
    readonly workdir: string,
    private readonly mounts: PathMount[],
  ) {}

  /** Resolves a sandbox path (absolute, or relative to the workdir) to a host path that is safe to open. */
  async resolve(path: string, options: ResolveOptions): Promise<string> {
    if (typeof path !== "string" || path === "" || path.includes("\0")) {
      throw agentError(ErrorCode.UNSAFE_PATH, `Invalid sandbox path ${JSON.stringify(path)}.`);
    }
    let queue = components(posix.isAbsolute(path) ? path : posix.join(this.workdir, path));
    let current: string[] = [];
    let hops = 0;
    while (queue.length > 0) {
      const component = queue.shift()!;
      if (component === "..") {
        current.pop();
        continue;
      }
      const candidate = [...current, component];
      const sandboxPath = `/${candidate.join("/")}`;
      const mapped = this.toHost(sandboxPath);
      if (mapped === undefined) {
        if (this.isAboveMount(sandboxPath)) {
          current = candidate;
          continue;
        }
        throw outside(path);
      }
      const isLast = queue.length === 0;
      const stats = await lstat(mapped).catch((error: NodeJS.ErrnoException) => {
        if (error.code === "ENOENT") return undefined;
        throw fileError(path, error);
      });
      if (stats === undefined) {
        if (!isLast) {
          if (!options.createParents) throw agentError(ErrorCode.SANDBOX_FILE_ERROR, `${path}: no such file or folder in the sandbox.`, { details: { path } });
          await mkdir(mapped).catch((error: NodeJS.ErrnoException) => {
            throw fileError(path, error);
          });
        }
        current = candidate;
        continue;
      }
      if (stats.isSymbolicLink() && (!isLast || options.followFinal)) {
        if (++hops > maxSymlinkHops) throw agentError(ErrorCode.UNSAFE_PATH, `${path}: too many levels of symlinks.`, { details: { path } });
        const target = await readlink(mapped);
        if (posix.isAbsolute(target)) current = [];
        queue = [...components(target), ...queue];
        continue;
      }
      if (!isLast && !stats.isDirectory()) throw agentError(ErrorCode.SANDBOX_FILE_ERROR, `${path}: a part of the path is not a folder.`, { details: { path } });
      current = candidate;
    }
    const resolved = this.toHost(`/${current.join("/")}`);
    if (resolved === undefined) throw outside(path);
    return resolved;
  }

  /** The host path for a sandbox path inside a mount (lexically), or undefined. */
  toHost(sandboxPath: string): string | undefined {
    for (const mount of this.mounts) {
      if (sandboxPath === mount.sandboxPath) return mount.hostPath;
      if (sandboxPath.startsWith(`${mount.sandboxPath}/`)) return mount.hostPath + sandboxPath.slice(mount.sandboxPath.length);
    }
    return undefined;
  }

  /** The sandbox path for a host path inside a mount (the inverse of {@link toHost}). */
  toSandbox(hostPath: string): string {
    for (const mount of this.mounts) {
      if (hostPath === mount.hostPath) return mount.sandboxPath;
      if (hostPath.startsWith(`${mount.hostPath}/`)) return mount.sandboxPath + hostPath.slice(mount.hostPath.length);
    }
    throw agentError(ErrorCode.UNSAFE_PATH, `${hostPath} is not inside the session's folders.`);
  }

  private isAboveMount(sandboxPath: string): boolean {
    return this.mounts.some((mount) => mount.sandboxPath.startsWith(`${sandboxPath}/`));
  }
}

function components(path: string): string[] {
  return path.split("/").filter((component) => component !== "" && component !== ".");
}

function outside(path: string) {
  return agentError(
    ErrorCode.UNSAFE_PATH,
    `${JSON.stringify(path)} leads outside the sandbox's workspace and scratch folders; only those can be read and written from the host.`,
    { details: { path } },
  );
}

/** Wraps a file system error as SANDBOX_FILE_ERROR with the sandbox path in the message. */
export function fileError(path: string, error: NodeJS.ErrnoException) {
  const reasons: Record<string, string> = {
    ENOENT: "no such file or folder in the sandbox",
    EISDIR: "it is a folder",
    ENOTDIR: "a part of the path is not a folder",
    ELOOP: "it is a symlink",
    EACCES: "permission denied",
  };
  const reason = (error.code && reasons[error.code]) ?? error.message;
  return agentError(ErrorCode.SANDBOX_FILE_ERROR, `${path}: ${reason}.`, { cause: error, details: { path, errno: error.code } });
}
