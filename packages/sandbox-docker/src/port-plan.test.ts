import { createServer } from "node:net";
import { ErrorCode } from "@running-agent/core";
import type Dockerode from "dockerode";
import { describe, expect, it } from "vitest";
import { hostNetworkPorts, publishedPorts } from "./port-plan.js";

// Tests run with the Engine's default bridge switched off, so the bridge plan is checked here at
// the level of the container settings it asks for, and with an inspect answer shaped like the
// Engine's (the only part that is not the real engine).
describe("publishedPorts (bridge networking)", () => {
  it("reserves the container ports at create, published on the host's loopback at ports the Engine picks", () => {
    const plan = publishedPorts([4096, 4097], "127.0.0.1", "127.0.0.1");
    expect(plan.containerSettings).toEqual({
      ExposedPorts: { "4096/tcp": {}, "4097/tcp": {} },
      PortBindings: { "4096/tcp": [{ HostIp: "127.0.0.1", HostPort: "" }], "4097/tcp": [{ HostIp: "127.0.0.1", HostPort: "" }] },
    });
  });

  it("hands out reserved ports, maps them to the published host port, and refuses the rest", async () => {
    const plan = publishedPorts([4096], "127.0.0.1", "127.0.0.1");
    expect(await plan.allocate()).toBe(4096);
    await expect(plan.allocate()).rejects.toMatchObject({ code: ErrorCode.SANDBOX_PORT_UNAVAILABLE });
    const container = { inspect: async () => ({ NetworkSettings: { Ports: { "4096/tcp": [{ HostIp: "127.0.0.1", HostPort: "49153" }] } } }) } as unknown as Dockerode.Container;
    expect(await plan.expose(4096, container)).toEqual({ url: "http://127.0.0.1:49153" });
    await expect(plan.expose(5000, container)).rejects.toMatchObject({ code: ErrorCode.SANDBOX_PORT_UNAVAILABLE });
    await expect(plan.expose(0, container)).rejects.toMatchObject({ code: ErrorCode.INVALID_OPTIONS });
    plan.release();
    expect(await plan.allocate()).toBe(4096);
  });
});

describe("hostNetworkPorts (host networking)", () => {
  it("allocates ports free on this machine, never the same one twice while in use, and gives loopback URLs", async () => {
    const first = hostNetworkPorts("127.0.0.1");
    const second = hostNetworkPorts("127.0.0.1");
    const ports = [await first.allocate(), await first.allocate(), await second.allocate()];
    expect(new Set(ports).size).toBe(3);
    // Each is free: we can listen on it.
    for (const port of ports) {
      await new Promise<void>((resolve, reject) => {
        const server = createServer().once("error", reject).listen(port, "127.0.0.1", () => server.close(() => resolve()));
      });
    }
    expect(await first.expose(ports[0]!, {} as Dockerode.Container)).toEqual({ url: `http://127.0.0.1:${ports[0]}` });
    expect(await hostNetworkPorts("::1").expose(8080, {} as Dockerode.Container)).toEqual({ url: "http://[::1]:8080" });
    first.release();
    second.release();
  });
});
