import { mkdtemp, rm, symlink } from "node:fs/promises";
import { connect, createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { forwardLoopbackToSocket } from "./socket-forwarder.js";

/** Connects to the forwarder's loopback port and resolves with what came back before the close. */
function exchange(url: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port) });
    let text = "";
    socket.on("data", (chunk) => (text += chunk.toString()));
    socket.on("close", () => resolve(text));
    socket.on("error", () => undefined);
  });
}

function listen(path: string, answer: string): Promise<{ server: Server; connections: () => number }> {
  let connections = 0;
  const server = createServer((socket) => {
    connections += 1;
    socket.end(answer);
  });
  return new Promise((resolve) => server.listen(path, () => resolve({ server, connections: () => connections })));
}

describe("forwardLoopbackToSocket", () => {
  it("forwards to the socket, and not through a symlink put in its place (the sandbox can write that folder)", async () => {
    const folder = await mkdtemp(join(tmpdir(), "running-agent-forwarder-"));
    try {
      // Some other socket of this machine, and a link to it where the relay's socket belongs.
      const other = await listen(join(folder, "other.sock"), "other-socket-reached");
      await symlink(join(folder, "other.sock"), join(folder, "4096.sock"));
      const forwarder = await forwardLoopbackToSocket(join(folder, "4096.sock"));
      expect(await exchange(forwarder.url)).toBe("");
      expect(other.connections()).toBe(0);

      await rm(join(folder, "4096.sock"));
      const relay = await listen(join(folder, "4096.sock"), "relay-reached");
      expect(await exchange(forwarder.url)).toBe("relay-reached");
      await forwarder.close();
      for (const { server } of [other, relay]) await new Promise<void>((resolve) => server.close(() => resolve()));
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });
});
