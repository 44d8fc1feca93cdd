import { randomBytes } from "node:crypto";
import { createServer, request, type Agent, type IncomingMessage } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { afterAll, beforeAll, bench, describe } from "vitest";
import { startEgressProxy, type EgressProxy } from "./egress-proxy.js";

// The egress proxy's added cost next to a direct connection, in the same run:
// `pnpm vitest bench --run src/network/egress-proxy.bench.ts`. Host side only: the socat relay
// inside a sandbox adds one more loopback hop, not measured here.
const oneMiB = randomBytes(1024 * 1024);
const server = createServer((incoming, outgoing) => {
  if (incoming.url?.endsWith("/mib")) outgoing.end(oneMiB);
  else outgoing.end("ok");
});
let port = 0;
let proxy: EgressProxy;
beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
  proxy = await startEgressProxy({ policy: { allow: ["127.0.0.1"] } });
});
afterAll(async () => {
  await proxy.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

/** One GET, body drained; a fresh connection each time (agent: false), as a tool's request would be. */
function get(options: { path: string; socketPath?: string; createConnection?: () => Socket; agent?: Agent | false }): Promise<number> {
  return new Promise((resolve, reject) => {
    const outgoing = request({ host: "127.0.0.1", port, agent: false, ...options }, (response: IncomingMessage) => {
      let bytes = 0;
      response.on("data", (chunk: Buffer) => (bytes += chunk.length));
      response.on("end", () => resolve(bytes));
    });
    outgoing.on("error", reject);
    outgoing.end();
  });
}

/** A CONNECT tunnel through the proxy's socket, then a GET inside it. */
function getThroughTunnel(path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const connect = request({ socketPath: proxy.socketPath, method: "CONNECT", path: `127.0.0.1:${port}` });
    connect.on("connect", (_response, socket: Socket) => {
      get({ path, createConnection: () => socket }).then((bytes) => {
        socket.destroy();
        resolve(bytes);
      }, reject);
    });
    connect.on("error", reject);
    connect.end();
  });
}

const options = { iterations: 200, warmupIterations: 20, time: 0 };
const mibOptions = { iterations: 50, warmupIterations: 5, time: 0 };

describe("one small request", () => {
  bench("direct", async () => void (await get({ path: "/small" })), options);
  bench("egress proxy, plain HTTP", async () => void (await get({ path: `http://127.0.0.1:${port}/small`, socketPath: proxy.socketPath })), options);
  bench("egress proxy, CONNECT tunnel", async () => void (await getThroughTunnel("/small")), options);
});

describe("1 MiB response", () => {
  bench("direct", async () => void (await get({ path: "/mib" })), mibOptions);
  bench("egress proxy, plain HTTP", async () => void (await get({ path: `http://127.0.0.1:${port}/mib`, socketPath: proxy.socketPath })), mibOptions);
  bench("egress proxy, CONNECT tunnel", async () => void (await getThroughTunnel("/mib")), mibOptions);
});
