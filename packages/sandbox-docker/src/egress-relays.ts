import { linkSync, lstatSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { agentError, ErrorCode, forwardLoopbackToSocket, SANDBOX_EGRESS_PROXY_URL, type ExposedPort, type RunningAgentError, type SocketForwarder } from "@running-agent/core";
import type Dockerode from "dockerode";
import { startContainerProcess } from "./container-process.js";
import { engineMessage } from "./engine-error.js";
import type { PortPlan } from "./port-plan.js";

const EGRESS_PORT = Number(new URL(SANDBOX_EGRESS_PROXY_URL).port);
/** The prefix of each enforced container's socket folder in the temp folder. */
const FOLDER_PREFIX = "running-agent-docker-net-";
/** The first port `allocate` hands out: the one OpenCode's server listens on. */
const FIRST_PORT = 4096;
/** Where the host's folder of port sockets is bound inside the container. */
const PORT_SOCKETS = "/run/running-agent-ports";
/** Where the egress proxy's socket is bound inside the container. */
const EGRESS_SOCKET = "/run/running-agent-egress.sock";
/** A file the host writes into the folder: the container sees it only if the Engine shares this machine's filesystem. */
const SHARED_MARKER = ".shared-with-host";

/** What programs in the container read to find the egress proxy; their own loopback stays direct. */
export function egressProxyEnvironment(): Record<string, string> {
  const noProxy = "localhost,127.0.0.1,::1";
  return { HTTP_PROXY: SANDBOX_EGRESS_PROXY_URL, HTTPS_PROXY: SANDBOX_EGRESS_PROXY_URL, http_proxy: SANDBOX_EGRESS_PROXY_URL, https_proxy: SANDBOX_EGRESS_PROXY_URL, NO_PROXY: noProxy, no_proxy: noProxy };
}

/** The relay plan of an enforced container: binds to add at create, and the relays started once it runs. */
export type SocketRelayPorts = PortPlan & {
  readonly binds: string[];
  /**
   * Shell lines that start the relays as the container's root, for the create's own root exec to run
   * (one exec fewer): the egress relay, and the relay of the first port `allocate` hands out (OpenCode's),
   * so that exposing it is only host work. They exit 73 to 75 when a relay cannot start.
   */
  relayLines(): string[];
  /** Reads the end of an exec that ran {@link relayLines}: throws the typed error of a relay that did not start. */
  relaysStarted(exitCode: number | null, output: string): void;
  /** Runs {@link relayLines} in an exec of their own (when the create's exec does not run as root). */
  startRelays(container: Dockerode.Container): Promise<void>;
};

/** Exit codes of {@link SocketRelayPorts.relayLines}. */
export const RELAY_EXIT_CODES: readonly number[] = [73, 74, 75];

/**
 * A container with `none` networking whose only ways out and in are Unix sockets on this machine,
 * bound into it, with socat relays inside (the image needs socat; no root or nsenter here):
 * 127.0.0.1:3128 inside leads to the egress proxy's socket (when `egressSocket` is given: `"none"`
 * has no way out), and each exposed port is served on `<port>.sock` in a host folder, to which a
 * host loopback port forwards. The relays run as the container's root; the port sockets are made
 * mode 666 so that the host user reaches them whatever uid made them (the folder itself is 0700,
 * so no other host user does). The host connects through a hard link of its own to each socket,
 * made once the relay listens: the container can replace the names in the bound folder, never
 * that link. Needs an Engine that shares this machine's filesystem.
 */
export function socketRelayPorts(egressSocket: string | undefined): SocketRelayPorts {
  const root = mkdtempSync(join(tmpdir(), FOLDER_PREFIX));
  const folder = join(root, "ports");
  mkdirSync(folder, { mode: 0o700 });
  writeFileSync(join(folder, SHARED_MARKER), "");
  // Not bound into the container: the host's own names for the sockets.
  const hostLinks = join(root, "host");
  mkdirSync(hostLinks, { mode: 0o700 });
  const forwarders = new Map<number, SocketForwarder>();
  let nextPort = FIRST_PORT;
  let released = false;
  /** Ports whose relay already runs. */
  const preStarted = new Set<number>();

  /** The typed error of a relay script's exit (73: no socat, 74: the folder is not shared, other: the relay died). */
  function relayFailure(exitCode: number | null, output: string): RunningAgentError {
    if (exitCode === 73) {
      return agentError(
        ErrorCode.SANDBOX_IMAGE_INVALID,
        'The image has no socat, which relays the container\'s traffic to the host\'s egress proxy. Rebuild the default image (buildDefaultImage({ force: true })), add socat to your image, or run with network "open".',
        { details: { missing: "socat" } },
      );
    }
    if (exitCode === 74) {
      return agentError(
        ErrorCode.CAPABILITY_UNSUPPORTED,
        'The Docker Engine does not share this machine\'s filesystem (a bound folder is empty inside the container), so the egress proxy cannot be reached from the container. Use a local Engine, network "open", or egress "network" with a network whose egress you filter.',
      );
    }
    return agentError(ErrorCode.SANDBOX_PORT_UNAVAILABLE, `The network relay in the container did not start (exit ${String(exitCode)}): ${output.trim().slice(0, 300)}`);
  }

  /** Runs one relay script as root in the container; it starts socat in the background and exits once it listens. */
  async function relay(container: Dockerode.Container, script: string, name: string): Promise<void> {
    if (released) throw agentError(ErrorCode.SANDBOX_DESTROYED, "The sandbox was destroyed.");
    let outcome: { exitCode: number | null; output: string };
    try {
      const running = await startContainerProcess(container, { command: ["/bin/sh", "-c", script], cwd: "/", env: {}, name, pidFile: `/tmp/.running-agent-${name}.pid`, user: "0" });
      const ended = await running.outcome;
      outcome = { exitCode: ended.exitCode, output: ended.stdout.toString("utf8") + ended.stderr.toString("utf8") };
    } catch (error) {
      throw agentError(ErrorCode.SANDBOX_CREATE_FAILED, `Could not start the network relay in the container: ${engineMessage(error)}`, { cause: error });
    }
    if (outcome.exitCode !== 0) throw relayFailure(outcome.exitCode, outcome.output);
  }

  /** Lines that start the relay of `port` on `<port>.sock` (its pid in `$variable`), and lines that wait until it listens. */
  function portRelay(port: number, variable: string): { start: string[]; wait: string } {
    const socket = `${PORT_SOCKETS}/${port}.sock`;
    return {
      start: [`rm -f ${socket}`, `socat UNIX-LISTEN:${socket},fork,mode=666 TCP:127.0.0.1:${port} </dev/null >/dev/null 2>&1 &`, `${variable}=$!`],
      wait: `while [ ! -S ${socket} ]; do kill -0 $${variable} 2>/dev/null || exit 75; sleep 0.01; done`,
    };
  }

  const hexPort = EGRESS_PORT.toString(16).toUpperCase().padStart(4, "0");
  return {
    containerSettings: {},
    binds: [`${folder}:${PORT_SOCKETS}`, ...(egressSocket ? [`${egressSocket}:${EGRESS_SOCKET}`] : [])],
    relayLines() {
      const lines = ["command -v socat >/dev/null 2>&1 || exit 73", `[ -f ${PORT_SOCKETS}/${SHARED_MARKER} ] || exit 74`];
      const waits: string[] = [];
      if (egressSocket) {
        lines.push(`socat TCP-LISTEN:${EGRESS_PORT},bind=127.0.0.1,fork,reuseaddr UNIX-CONNECT:${EGRESS_SOCKET} </dev/null >/dev/null 2>&1 &`, "egress_relay=$!");
        // socat listens within milliseconds; /proc is all a minimal image is sure to have.
        waits.push(`while ! grep -q '0100007F:${hexPort} 00000000:0000 0A' /proc/net/tcp; do kill -0 $egress_relay 2>/dev/null || exit 75; sleep 0.01; done`);
      }
      const first = portRelay(FIRST_PORT, "port_relay");
      lines.push(...first.start);
      waits.push(first.wait);
      return [...lines, ...waits];
    },
    relaysStarted(exitCode, output) {
      if (exitCode !== 0) throw relayFailure(exitCode, output);
      preStarted.add(FIRST_PORT);
    },
    async startRelays(container) {
      const lines = this.relayLines();
      await relay(container, lines.join("\n"), "egress-relay");
      preStarted.add(FIRST_PORT);
    },
    async allocate() {
      return nextPort++;
    },
    async expose(port, container): Promise<ExposedPort> {
      if (!Number.isInteger(port) || port < 1 || port > 65535) throw agentError(ErrorCode.INVALID_OPTIONS, `A port is an integer from 1 to 65535, got ${String(port)}.`);
      const known = forwarders.get(port);
      if (known) return { url: known.url };
      // The first port's relay was started with the egress relay, at create.
      if (!preStarted.has(port)) {
        const started = portRelay(port, "port_relay");
        await relay(container, [...started.start, started.wait].join("\n"), `port-relay-${port}`);
      } else if (released) {
        throw agentError(ErrorCode.SANDBOX_DESTROYED, "The sandbox was destroyed.");
      }
      // link() does not follow a symlink: what the link names is checked where the container cannot change it.
      const hostLink = join(hostLinks, `${port}.sock`);
      rmSync(hostLink, { force: true });
      try {
        linkSync(join(folder, `${port}.sock`), hostLink);
      } catch (error) {
        throw agentError(ErrorCode.SANDBOX_PORT_UNAVAILABLE, `The relay's socket for port ${port} cannot be linked on the host: ${(error as Error).message}`, { cause: error });
      }
      if (!lstatSync(hostLink).isSocket()) throw agentError(ErrorCode.SANDBOX_PORT_UNAVAILABLE, `What the container put at the socket of port ${port} is not a socket.`);
      const forwarder = await forwardLoopbackToSocket(hostLink);
      forwarders.set(port, forwarder);
      return { url: forwarder.url };
    },
    release() {
      released = true;
      for (const forwarder of forwarders.values()) void forwarder.close();
      forwarders.clear();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/**
 * Removes the socket folders (in this process's temp folder) that a crashed process left: older
 * than `cutoff` (ms since the epoch) and bound into no container of ours that is still there.
 */
export async function reapSocketFolders(docker: Dockerode, cutoff: number): Promise<void> {
  const parent = tmpdir();
  const names = (await readdir(parent).catch(() => [] as string[])).filter((name) => name.startsWith(FOLDER_PREFIX));
  if (names.length === 0) return;
  const containers = await docker.listContainers({ all: true, filters: { label: ["running-agent.managed=true"] } });
  const bound = new Set(containers.flatMap((info) => (info.Mounts ?? []).map((mount) => mount.Source)));
  for (const name of names) {
    const folder = join(parent, name);
    const made = await stat(folder).then((info) => info.mtimeMs, () => Number.POSITIVE_INFINITY);
    if (made > cutoff || bound.has(join(folder, "ports"))) continue;
    await rm(folder, { recursive: true, force: true });
  }
}
