import { lstatSync } from "node:fs";
import { connect, createServer, type Socket } from "node:net";
import { agentError, ErrorCode } from "../errors.js";
import { shortSocketPath } from "./short-socket-path.js";

/** A loopback TCP listener on the host that forwards each connection to a Unix socket. */
export interface SocketForwarder {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** Stops listening and ends open connections. */
  close(): Promise<void>;
}

/**
 * Listens on 127.0.0.1 (a free port) and pipes each connection to `socketPath`: how the host reaches
 * a port inside a sandbox with its own network, whose relay serves the port on that socket.
 */
export async function forwardLoopbackToSocket(socketPath: string): Promise<SocketForwarder> {
  const connections = new Set<Socket>();
  const target = await shortSocketPath(socketPath);
  const server = createServer((client) => {
    // The sandbox can write the socket's folder: a symlink put in its place would lead this host
    // process to any socket it may reach (a Docker Engine's), so only a socket itself is connected to.
    // (The check and the connect are two steps; it narrows that, it cannot close it.)
    let upstream: Socket;
    try {
      if (!lstatSync(target.path).isSocket()) throw new Error("not a socket");
      upstream = connect(target.path);
    } catch {
      client.destroy();
      return;
    }
    for (const socket of [client, upstream]) {
      connections.add(socket);
      socket.once("close", () => connections.delete(socket));
      socket.on("error", () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
    // A relay that cannot reach the port (nothing listens yet) closes at once: so does the client, for it to retry.
    upstream.once("close", () => client.destroySoon());
    client.once("close", () => upstream.destroy());
  });
  const url = await new Promise<string>((resolve, reject) => {
    server.once("error", (cause) => {
      void target.release();
      reject(agentError(ErrorCode.SANDBOX_PORT_UNAVAILABLE, "Cannot listen on a loopback port for the exposed port.", { cause }));
    });
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      resolve(`http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`);
    });
  });
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of connections) socket.destroy();
        server.close(() => void target.release().then(resolve, resolve));
      }),
  };
}
