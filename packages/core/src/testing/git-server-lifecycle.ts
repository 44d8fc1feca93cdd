import type { ChildProcess } from "node:child_process";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";

/** An HTTP or HTTPS server of a local Git host. */
/** What {@link listenOnLoopback} and {@link stopGitServer} need of a server: node:http's `Server` has it. */
export type LocalServer = Pick<Server, "listen" | "once" | "address" | "close" | "closeAllConnections">;

/** Listens on 127.0.0.1 and a free port, as every local server of the tests does; rejects on a listen error. Resolves with the port. */
export async function listenOnLoopback(server: LocalServer): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

/**
 * Stops a local Git server: kills the `git http-backend` processes still running (the `children`
 * given to `serveGitHttpBackend`), closes the server and drops its open connections, so that a
 * client stuck mid-transfer does not hold the close.
 */
export function stopGitServer(server: LocalServer, children: ReadonlySet<ChildProcess>): Promise<void> {
  return new Promise<void>((resolve) => {
    for (const child of children) child.kill("SIGKILL");
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
