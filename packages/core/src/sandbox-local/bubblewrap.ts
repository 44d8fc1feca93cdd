import { spawn } from "node:child_process";
import { constants as fsConstants, accessSync, lstatSync, readlinkSync } from "node:fs";
import { delimiter, join } from "node:path";

/** Fixed paths inside a bubblewrap sandbox. */
export const SANDBOX_WORKDIR = "/workspace";
/** The scratch folder inside: the agent user's home and tool state, outside the workdir. */
export const SANDBOX_SCRATCH = "/scratch";
/** Where the OpenCode binary is bound inside. */
export const SANDBOX_OPENCODE_BINARY = "/opt/opencode/bin/opencode";
/** The unprivileged user commands run as inside; the host sees their files as owned by the caller. */
export const SANDBOX_UID = 1000;
export const SANDBOX_GID = 1000;

// Top-level system folders that are read-only bound (or recreated as the same symlink, on merged-/usr systems).
const systemRoots = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];

// Only what programs need from /etc. Everything else there (shadow, ssh host keys, TLS private keys,
// sudoers, Docker and package-manager credentials) stays invisible. passwd and group are generated.
const etcAllowList = [
  "alternatives",
  "bash.bashrc",
  "ca-certificates",
  "ca-certificates.conf",
  "crypto-policies",
  "debian_version",
  "gai.conf",
  "gitconfig",
  "host.conf",
  "hosts",
  "inputrc",
  "ld.so.cache",
  "ld.so.conf",
  "ld.so.conf.d",
  "locale.alias",
  "localtime",
  "lsb-release",
  "mime.types",
  "nsswitch.conf",
  "os-release",
  "pki/tls/certs",
  "pki/ca-trust",
  "profile",
  "protocols",
  "resolv.conf",
  "services",
  "ssl/certs",
  "ssl/openssl.cnf",
  "terminfo",
  "timezone",
];

/** How the host's system folders look, read once per provider. */
export interface SystemLayout {
  /** `[target, path]` for top-level folders that are symlinks (merged /usr). */
  symlinks: Array<[string, string]>;
  /** Top-level system folders that are real folders. */
  folders: string[];
}

/** Reads which system roots exist and which are symlinks. */
export function readSystemLayout(): SystemLayout {
  const layout: SystemLayout = { symlinks: [], folders: [] };
  for (const path of systemRoots) {
    try {
      const stats = lstatSync(path);
      if (stats.isSymbolicLink()) layout.symlinks.push([readlinkSync(path), path]);
      else if (stats.isDirectory()) layout.folders.push(path);
    } catch {
      // Absent on this system: nothing to bind.
    }
  }
  return layout;
}

/** What one sandboxed command needs bound. */
export interface BubblewrapMounts {
  /** The host's system folders to bind read-only (from {@link readSystemLayout}). */
  system: SystemLayout;
  /** Host folder bound read-write at {@link SANDBOX_WORKDIR}. */
  hostWorkspace: string;
  /** Host folder bound read-write at {@link SANDBOX_SCRATCH}. */
  hostScratch: string;
  /** Host files bound read-only over /etc/passwd and /etc/group. */
  hostPasswd: string;
  /** The one bound over /etc/group. */
  hostGroup: string;
  /** Host path of the OpenCode binary, bound read-only at {@link SANDBOX_OPENCODE_BINARY}. */
  hostOpencodeBinary?: string;
  /** Working directory inside the sandbox. */
  cwd: string;
  /** Forbid new user namespaces inside (needs bwrap 0.8+). */
  disableUserns: boolean;
  /**
   * Absent: the host's network is shared. Present: the command gets its own network namespace (only
   * loopback); the host's egress proxy socket, when given, is bound at
   * `/run/running-agent/egress.sock`, and the host folder for exposed ports' sockets at
   * `/run/running-agent/ports`.
   */
  ownNetwork?: {
    /** The host's egress proxy socket. */
    hostEgressSocket?: string;
    /** The host folder where exposed ports' relays make their sockets. */
    hostPortSockets: string;
  };
}

/** What the session's own file transfers (tar in and out of its folders) need bound. */
export interface FileTransferMounts {
  /** The host's system folders to bind read-only (from {@link readSystemLayout}). */
  system: SystemLayout;
  /** Host folder bound at {@link SANDBOX_WORKDIR}. */
  hostWorkspace: string;
  /** Host folder bound at {@link SANDBOX_SCRATCH}. */
  hostScratch: string;
  /** True binds both read-write (an extraction), false read-only (a packing). */
  writable: boolean;
  /** Working directory inside the sandbox. */
  cwd: string;
  /** Forbid new user namespaces inside (needs bwrap 0.8+). */
  disableUserns: boolean;
}

/**
 * The bwrap arguments for the session's own tar runs (archives put into and taken out of its folders):
 * the session's two folders as commands see them, the system folders, and nothing else: no /etc, /proc,
 * /dev or network, no OpenCode binary, read-only unless the transfer writes. Tar needs none of it, and
 * every bind costs bubblewrap time on each transfer (the /etc allow-list alone about half of its start).
 */
export function fileTransferArguments(mounts: FileTransferMounts): string[] {
  const bind = mounts.writable ? "--bind" : "--ro-bind";
  const args = ["--unshare-all", "--unshare-user", ...(mounts.disableUserns ? ["--disable-userns"] : []), "--uid", String(SANDBOX_UID), "--gid", String(SANDBOX_GID), "--cap-drop", "ALL", "--die-with-parent", "--new-session"];
  for (const folder of mounts.system.folders) args.push("--ro-bind", folder, folder);
  for (const [target, path] of mounts.system.symlinks) args.push("--symlink", target, path);
  args.push(bind, mounts.hostWorkspace, SANDBOX_WORKDIR, bind, mounts.hostScratch, SANDBOX_SCRATCH);
  args.push("--remount-ro", "/", "--chdir", mounts.cwd);
  return args;
}

/** Where the host's egress proxy socket is bound inside a sandbox with its own network. */
export const SANDBOX_EGRESS_SOCKET = "/run/running-agent/egress.sock";
/** Where relays of exposed ports make their sockets (`<port>.sock`), bound from the host. */
export const SANDBOX_PORT_SOCKETS = "/run/running-agent/ports";

/**
 * The bwrap arguments (before `--` and the command). Environment variables are deliberately not
 * set here: the caller passes them as bwrap's own environment, so that secrets never appear in argv.
 */
export function bubblewrapArguments(mounts: BubblewrapMounts): string[] {
  const args = [
    // New user, mount, PID, IPC, UTS, cgroup and (unless shared on request) network namespaces.
    "--unshare-all",
    ...(mounts.ownNetwork ? [] : ["--share-net"]),
    "--unshare-user",
    // No nested user namespaces: they are the entry point of many kernel exploits.
    ...(mounts.disableUserns ? ["--disable-userns"] : []),
    "--uid",
    String(SANDBOX_UID),
    "--gid",
    String(SANDBOX_GID),
    "--cap-drop",
    "ALL",
    "--hostname",
    "running-agent",
    // The sandbox dies with its caller, and a new session keeps it off the caller's terminal.
    "--die-with-parent",
    "--new-session",
  ];
  for (const folder of mounts.system.folders) args.push("--ro-bind", folder, folder);
  for (const [target, path] of mounts.system.symlinks) args.push("--symlink", target, path);
  for (const entry of etcAllowList) args.push("--ro-bind-try", `/etc/${entry}`, `/etc/${entry}`);
  args.push("--ro-bind", mounts.hostPasswd, "/etc/passwd", "--ro-bind", mounts.hostGroup, "/etc/group");
  args.push("--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--dir", "/var", "--tmpfs", "/var/tmp");
  args.push("--bind", mounts.hostWorkspace, SANDBOX_WORKDIR, "--bind", mounts.hostScratch, SANDBOX_SCRATCH);
  if (mounts.hostOpencodeBinary) args.push("--ro-bind", mounts.hostOpencodeBinary, SANDBOX_OPENCODE_BINARY);
  if (mounts.ownNetwork) {
    args.push("--bind", mounts.ownNetwork.hostPortSockets, SANDBOX_PORT_SOCKETS);
    if (mounts.ownNetwork.hostEgressSocket) args.push("--bind", mounts.ownNetwork.hostEgressSocket, SANDBOX_EGRESS_SOCKET);
  }
  // The root itself is a tmpfs made by bwrap: read-only, so nothing can be written outside the binds above.
  args.push("--remount-ro", "/", "--chdir", mounts.cwd);
  return args;
}

/**
 * The command vector that runs `command` inside a sandbox with its own network: socat relays first
 * (127.0.0.1:3128 to the host's egress proxy; each exposed port's socket to the port on loopback),
 * then, once they listen, the command itself in their place (same PID, stdin, exit code). The relays
 * die with the sandbox's PID namespace.
 */
export function withNetworkRelays(command: string[], relays: { egress: boolean; ports: number[]; egressPort: number }): string[] {
  const lines: string[] = [];
  if (relays.egress) {
    lines.push(`socat TCP-LISTEN:${relays.egressPort},bind=127.0.0.1,fork,reuseaddr UNIX-CONNECT:${SANDBOX_EGRESS_SOCKET} </dev/null >/dev/null 2>&1 &`);
  }
  for (const port of relays.ports) {
    const socket = `${SANDBOX_PORT_SOCKETS}/${port}.sock`;
    lines.push(`rm -f ${socket}`, `socat UNIX-LISTEN:${socket},fork,mode=600 TCP:127.0.0.1:${port} </dev/null >/dev/null 2>&1 &`);
  }
  // Wait until each relay listens (it starts in milliseconds), so the command never races it.
  const hexPort = relays.egressPort.toString(16).toUpperCase().padStart(4, "0");
  if (relays.egress) lines.push(`while ! grep -q '0100007F:${hexPort} 00000000:0000 0A' /proc/net/tcp; do sleep 0.01; done`);
  for (const port of relays.ports) lines.push(`while [ ! -S ${SANDBOX_PORT_SOCKETS}/${port}.sock ]; do sleep 0.01; done`);
  if (lines.length === 0) return command;
  lines.push('exec "$@"');
  return ["/bin/sh", "-c", lines.join("\n"), "running-agent-relay", ...command];
}

/** The /etc/passwd and /etc/group contents for the sandbox user. */
export function sandboxAccounts(): {
  /** The /etc/passwd text: root, the agent user and nobody. */
  passwd: string;
  /** The /etc/group text. */
  group: string;
} {
  return {
    passwd: `root:x:0:0:root:/root:/usr/sbin/nologin\nagent:x:${SANDBOX_UID}:${SANDBOX_GID}:Running Agent:${SANDBOX_SCRATCH}:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n`,
    group: `root:x:0:\nagent:x:${SANDBOX_GID}:\nnogroup:x:65534:\n`,
  };
}

/** Finds an executable on PATH, or undefined. */
export function findExecutable(name: string, path = process.env.PATH ?? ""): string | undefined {
  if (name.includes("/")) return isExecutable(name) ? name : undefined;
  for (const folder of path.split(delimiter)) {
    if (folder === "") continue;
    const candidate = join(folder, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** What {@link probeBubblewrap} found out. */
export interface BubblewrapProbe {
  /** Why bubblewrap cannot be used, when it cannot. */
  failure?: string;
  /** Whether this bwrap knows `--disable-userns` (0.8 and later). */
  disableUserns: boolean;
}

const probes = new Map<string, Promise<BubblewrapProbe>>();

/**
 * Checks once per bwrap path that bubblewrap can really make the namespaces we ask for (it can be
 * installed yet unusable, e.g. when unprivileged user namespaces are disabled), and whether it
 * supports `--disable-userns` (older releases, like Ubuntu 22.04's 0.6, do not).
 */
export function probeBubblewrap(bubblewrapPath: string): Promise<BubblewrapProbe> {
  let probe = probes.get(bubblewrapPath);
  if (!probe) {
    probe = (async () => {
      const withDisable = await runProbe(bubblewrapPath, true);
      if (withDisable === undefined) return { disableUserns: true };
      if (!/unknown option/i.test(withDisable)) return { failure: withDisable, disableUserns: true };
      const failure = await runProbe(bubblewrapPath, false);
      return failure === undefined ? { disableUserns: false } : { failure, disableUserns: false };
    })();
    probes.set(bubblewrapPath, probe);
  }
  return probe;
}

function runProbe(bubblewrapPath: string, disableUserns: boolean): Promise<string | undefined> {
  const args = ["--unshare-all", "--share-net", "--unshare-user", ...(disableUserns ? ["--disable-userns"] : []), "--cap-drop", "ALL", "--die-with-parent", "--ro-bind", "/", "/", "--", "true"];
  return new Promise((resolve) => {
    const child = spawn(bubblewrapPath, args, { stdio: ["ignore", "ignore", "pipe"], env: {} });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    child.on("error", (error) => resolve(error.message));
    child.on("close", (code) => resolve(code === 0 ? undefined : stderr.trim() || `bwrap exited with code ${code}`));
  });
}
