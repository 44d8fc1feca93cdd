import { createServer } from "node:net";
import { agentError, ErrorCode, type ExposedPort } from "@running-agent/core";
import type Dockerode from "dockerode";

/** How a session's ports reach the host; chosen at create because Docker fixes port bindings then. */
export interface PortPlan {
  /** Container settings this plan needs (exposed ports and bindings). */
  readonly containerSettings: {
    /** Docker's `ExposedPorts`: `"<port>/tcp"` to `{}` for each reserved port. */
    ExposedPorts?: Record<string, object>;
    /** Docker's `PortBindings`: each reserved port bound on the host. */
    PortBindings?: Record<
      string,
      Array<{
        /** The host address the port is published on. */
        HostIp: string;
        /** The host port; empty for one Docker picks. */
        HostPort: string;
      }>
    >;
  };
  /** Hands out a port for a server in the sandbox; `SANDBOX_PORT_UNAVAILABLE` when none is left. */
  allocate(): Promise<number>;
  /** The URL the host reaches `port` of the container at; `SANDBOX_PORT_UNAVAILABLE` for a port the plan cannot reach. */
  expose(port: number, container: Dockerode.Container): Promise<ExposedPort>;
  /** Forgets ports handed out by this plan. */
  release(): void;
}

/** Ports handed out to host-network sessions of this process that are still alive, so that two sessions never get the same one. */
const hostPortsInUse = new Set<number>();

/**
 * Host networking: the container shares the engine host's network, so a process inside listens
 * directly on a host port. `allocate` picks a port that is free on this machine.
 */
export function hostNetworkPorts(hostname: string): PortPlan {
  const mine = new Set<number>();
  return {
    containerSettings: {},
    async allocate() {
      for (let attempt = 0; attempt < 20; attempt++) {
        const port = await freeLoopbackPort();
        if (hostPortsInUse.has(port)) continue;
        hostPortsInUse.add(port);
        mine.add(port);
        return port;
      }
      throw agentError(ErrorCode.SANDBOX_PORT_UNAVAILABLE, "Could not find a free port on the host for the sandbox.");
    },
    async expose(port) {
      checkPort(port);
      return { url: `http://${urlHost(hostname)}:${port}` };
    },
    release() {
      for (const port of mine) hostPortsInUse.delete(port);
      mine.clear();
    },
  };
}

/**
 * Bridge (or a named) network: Docker publishes container ports only as decided at create, so the
 * plan reserves container ports up front, each published on the host's loopback at a port the
 * Engine picks. `allocate` hands out the reserved ports; `expose` looks up the host side.
 */
export function publishedPorts(reserved: number[], bindAddress: string, hostname: string): PortPlan {
  const handedOut = new Set<number>();
  const key = (port: number) => `${port}/tcp`;
  return {
    containerSettings: {
      ExposedPorts: Object.fromEntries(reserved.map((port) => [key(port), {}])),
      PortBindings: Object.fromEntries(reserved.map((port) => [key(port), [{ HostIp: bindAddress, HostPort: "" }]])),
    },
    async allocate() {
      const port = reserved.find((candidate) => !handedOut.has(candidate));
      if (port === undefined) {
        throw agentError(
          ErrorCode.SANDBOX_PORT_UNAVAILABLE,
          `All ${reserved.length} reserved container ports are in use; reserve more with the publishedPorts setting of createDockerSandbox.`,
        );
      }
      handedOut.add(port);
      return port;
    },
    async expose(port, container) {
      checkPort(port);
      if (!reserved.includes(port)) {
        throw agentError(
          ErrorCode.SANDBOX_PORT_UNAVAILABLE,
          `Port ${port} was not reserved when the container was created; use allocatePort(), or list it in the publishedPorts setting (reserved: ${reserved.join(", ")}).`,
        );
      }
      const info = await container.inspect();
      const binding = info.NetworkSettings.Ports?.[key(port)]?.[0];
      if (!binding?.HostPort) {
        throw agentError(ErrorCode.SANDBOX_PORT_UNAVAILABLE, `The Engine did not publish container port ${port}.`);
      }
      return { url: `http://${urlHost(hostname)}:${binding.HostPort}` };
    },
    release() {
      handedOut.clear();
    },
  };
}

/** No network: nothing inside can be reached from the host. */
export function noPorts(): PortPlan {
  const unavailable = () =>
    agentError(
      ErrorCode.SANDBOX_PORT_UNAVAILABLE,
      'This sandbox has no network (network "none"), so no port inside it can be reached from the host. Use "host" or a bridge network for tasks that run the agent server.',
    );
  return {
    containerSettings: {},
    async allocate() {
      throw unavailable();
    },
    async expose() {
      throw unavailable();
    },
    release() {},
  };
}

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw agentError(ErrorCode.INVALID_OPTIONS, `A port is an integer from 1 to 65535, got ${String(port)}.`);
  }
}

function urlHost(hostname: string): string {
  return hostname.includes(":") ? `[${hostname}]` : hostname;
}

function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
