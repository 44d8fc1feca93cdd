import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { agentError, ErrorCode, forwardLoopbackToSocket, SANDBOX_EGRESS_PROXY_URL, type ExposedPort, type SocketForwarder } from "@running-agent/core";
import type Dockerode from "dockerode";
import type { PortPlan } from "./port-plan.js";

const EGRESS_PORT = Number(new URL(SANDBOX_EGRESS_PROXY_URL).port);

/** What programs in the container read to find the egress proxy; their own loopback stays direct. */
export function egressProxyEnvironment(): Record<string, string> {
  const noProxy = "localhost,127.0.0.1,::1";
  return { HTTP_PROXY: SANDBOX_EGRESS_PROXY_URL, HTTPS_PROXY: SANDBOX_EGRESS_PROXY_URL, http_proxy: SANDBOX_EGRESS_PROXY_URL, https_proxy: SANDBOX_EGRESS_PROXY_URL, NO_PROXY: noProxy, no_proxy: noProxy };
}

/**
 * A container with `none` networking whose only ways in and out are host-side socat relays entered
 * into its network namespace (nsenter): 127.0.0.1:3128 inside to the egress proxy's socket, and
 * each exposed port to a socket the host forwards a loopback port to. The relays are host
 * processes (the image needs nothing); they need a local Engine and root. `release` ends them.
 */
export function egressRelayPorts(egressSocket: string): PortPlan & { startEgressRelay(container: Dockerode.Container): Promise<void> } {
  const folder = mkdtempSync(join(tmpdir(), "running-agent-docker-relay-"));
  const relays = new Set<ChildProcess>();
  const forwarders = new Map<number, SocketForwarder>();
  let nextPort = 4096;
  let released = false;

  async function containerPid(container: Dockerode.Container): Promise<number> {
    const info = await container.inspect();
    if (!info.State?.Pid) throw agentError(ErrorCode.SANDBOX_EXEC_FAILED, "The container has no running process to relay its network for.");
    return info.State.Pid;
  }

  /** Starts `socat` in the container's network namespace and resolves once `ready()` says it listens. */
  async function relay(pid: number, socatArguments: string[], ready: () => Promise<boolean>): Promise<void> {
    if (released) throw agentError(ErrorCode.SANDBOX_DESTROYED, "The sandbox was destroyed.");
    const child = spawn("nsenter", ["--target", String(pid), "--net", "--", "socat", ...socatArguments], { stdio: ["ignore", "ignore", "pipe"] });
    relays.add(child);
    let stderr = "";
    child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    let exited = false;
    child.once("exit", () => {
      exited = true;
      relays.delete(child);
    });
    child.once("error", () => (exited = true));
    // socat listens within milliseconds: look again until it does, or until it gave up.
    while (!(await ready())) {
      if (exited) throw agentError(ErrorCode.SANDBOX_PORT_UNAVAILABLE, `The network relay could not start: ${stderr.trim() || "socat exited"}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  return {
    containerSettings: {},
    async startEgressRelay(container) {
      const pid = await containerPid(container);
      const listening = `0100007F:${EGRESS_PORT.toString(16).toUpperCase().padStart(4, "0")} 00000000:0000 0A`;
      await relay(pid, [`TCP-LISTEN:${EGRESS_PORT},bind=127.0.0.1,fork,reuseaddr`, `UNIX-CONNECT:${egressSocket}`], async () =>
        (await readFile(`/proc/${pid}/net/tcp`, "utf8").catch(() => "")).includes(listening),
      );
    },
    async allocate() {
      return nextPort++;
    },
    async expose(port, container): Promise<ExposedPort> {
      if (!Number.isInteger(port) || port < 1 || port > 65535) throw agentError(ErrorCode.INVALID_OPTIONS, `A port is an integer from 1 to 65535, got ${String(port)}.`);
      const known = forwarders.get(port);
      if (known) return { url: known.url };
      const socketPath = join(folder, `${port}.sock`);
      await relay(await containerPid(container), [`UNIX-LISTEN:${socketPath},fork,mode=600`, `TCP:127.0.0.1:${port}`], () => stat(socketPath).then(() => true, () => false));
      const forwarder = await forwardLoopbackToSocket(socketPath);
      forwarders.set(port, forwarder);
      return { url: forwarder.url };
    },
    release() {
      released = true;
      for (const child of relays) child.kill("SIGKILL");
      relays.clear();
      for (const forwarder of forwarders.values()) void forwarder.close();
      forwarders.clear();
      rmSync(folder, { recursive: true, force: true });
    },
  };
}
