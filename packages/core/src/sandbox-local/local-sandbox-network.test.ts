import { readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEgressProxy, type BlockedConnection } from "../network/egress-proxy.js";
import { findExecutable } from "./bubblewrap.js";
import { createLocalSandbox } from "./local-sandbox.js";
import { startLoopbackService, type LoopbackService } from "../testing/network-probe.js";
import { usePrivateTmpdir } from "../testing/private-tmpdir.js";

const MARKER = "host-loopback-service-reached";
const ready = findExecutable("bwrap") !== undefined && findExecutable("socat") !== undefined && findExecutable("curl") !== undefined;

/** curl inside the sandbox: its exit code and output (`-w` appends the HTTP status). */
const curl = (...args: string[]) => ["curl", "-sS", "--max-time", "20", "-w", "\n%{http_code}", ...args];

describe.skipIf(!ready)("local sandbox network policy (bubblewrap, own network namespace, host egress proxy)", () => {
  let service: LoopbackService;
  let servicePort: number;
  // A private temp folder: other test runs on this machine make and remove session folders too.
  usePrivateTmpdir("running-agent-net-tmp-");
  beforeAll(async () => {
    service = await startLoopbackService({ marker: MARKER });
    servicePort = service.port;
  });
  afterAll(() => service.close());

  it("the host's loopback is unreachable directly and through the proxy; each refusal is reported", async () => {
    const blocked: BlockedConnection[] = [];
    const proxy = await startEgressProxy({ policy: { allow: ["localhost"] }, onBlocked: (entry) => blocked.push(entry) });
    try {
      await using session = await createLocalSandbox().create({ taskId: "net-blocked", network: { allow: ["localhost"] }, egressProxy: { socketPath: proxy.socketPath } });
      // Directly: the sandbox's loopback is its own, nothing listens on the service's port there.
      const direct = await session.exec(curl(`http://127.0.0.1:${servicePort}/`));
      expect(direct.exitCode).not.toBe(0);
      expect(direct.stdout).not.toContain(MARKER);
      // Through the proxy, by address, by an allowed name resolving to loopback (rebinding), a private literal, an unknown name.
      const viaProxy = ["--proxy", "http://127.0.0.1:3128", "--noproxy", ""];
      const byAddress = await session.exec(curl(...viaProxy, `http://127.0.0.1:${servicePort}/`));
      const byName = await session.exec(curl(...viaProxy, `http://localhost:${servicePort}/`));
      const privateLiteral = await session.exec(curl(...viaProxy, "https://10.1.2.3/"));
      const unknownName = await session.exec(curl(...viaProxy, "https://not-allowed.invalid/"));
      for (const result of [byAddress, byName]) {
        expect(result.stdout).not.toContain(MARKER);
        expect(result.stdout).toMatch(/403$/);
      }
      expect(privateLiteral.exitCode).not.toBe(0);
      expect(unknownName.exitCode).not.toBe(0);
      expect(blocked.map((entry) => `${entry.host}:${entry.port}`)).toEqual([`127.0.0.1:${servicePort}`, `localhost:${servicePort}`, "10.1.2.3:443", "not-allowed.invalid:443"]);
      expect(blocked[1]!.reason).toMatch(/resolves to .*loopback/);
      expect(proxy.blocked).toEqual(blocked);
    } finally {
      await proxy.close();
    }
  });

  it("an allowed destination is reachable through the proxy, with the proxy variables set inside", async () => {
    const proxy = await startEgressProxy({ policy: { allow: ["127.0.0.1/32"] } });
    try {
      await using session = await createLocalSandbox().create({ taskId: "net-allowed", network: { allow: ["127.0.0.1/32"] }, egressProxy: { socketPath: proxy.socketPath } });
      const env = await session.exec(["/bin/sh", "-c", 'echo "$HTTPS_PROXY"']);
      expect(env.stdout.trim()).toBe("http://127.0.0.1:3128");
      const reached = await session.exec(curl("--proxy", "http://127.0.0.1:3128", "--noproxy", "", `http://127.0.0.1:${servicePort}/`));
      expect(reached.stdout).toBe(`${MARKER}\n200`);
      expect(proxy.blocked).toEqual([]);
    } finally {
      await proxy.close();
    }
  });

  it("without a proxy from the caller, an allow-list gets a proxy of the session's own, gone with the session", async () => {
    const before = (await readdir(tmpdir())).filter((name) => name.startsWith("running-agent-"));
    const session = await createLocalSandbox().create({ taskId: "net-own-proxy", network: { allow: ["127.0.0.1"] } });
    const viaProxy = ["--proxy", "http://127.0.0.1:3128", "--noproxy", ""];
    expect((await session.exec(curl(...viaProxy, `http://127.0.0.1:${servicePort}/`))).stdout).toBe(`${MARKER}\n200`);
    expect((await session.exec(curl(...viaProxy, "http://not-allowed.invalid/"))).stdout).toMatch(/403$/);
    expect((await readdir(tmpdir())).filter((name) => name.startsWith("running-agent-egress-")).length).toBeGreaterThan(0);
    await session.destroy();
    expect((await readdir(tmpdir())).filter((name) => name.startsWith("running-agent-"))).toEqual(before);
  });

  it('"none" leaves no route out, yet an exposed port is served to the host through its socket; nothing is left', async () => {
    const before = (await readdir(tmpdir())).filter((name) => name.startsWith("running-agent-"));
    const session = await createLocalSandbox().create({ taskId: "net-none", network: "none" });
    const direct = await session.exec(curl(`http://127.0.0.1:${servicePort}/`));
    expect(direct.exitCode).not.toBe(0);
    const exposed = await session.exposePort(8123);
    await session.writeFile("hello.txt", "served from inside");
    // The host connects once the server says it listens (its relay was up before it started).
    let output = "";
    let onListening!: () => void;
    const listening = new Promise<void>((resolve) => (onListening = resolve));
    const server = await session.spawn(["python3", "-u", "-m", "http.server", "--bind", "127.0.0.1", "8123"], {
      cwd: session.workdir,
      onStdout: (chunk) => {
        output += Buffer.from(chunk).toString("utf8");
        if (output.includes("Serving HTTP")) onListening();
      },
    });
    await Promise.race([listening, server.exited.then((code) => Promise.reject(new Error(`the server exited with ${code}: ${output}`)))]);
    const body = await fetch(`${exposed.url}/hello.txt`).then((response) => response.text());
    expect(body).toBe("served from inside");
    await server.kill();
    await session.destroy();
    await expect(fetch(`${exposed.url}/hello.txt`)).rejects.toThrow();
    expect((await readdir(tmpdir())).filter((name) => name.startsWith("running-agent-"))).toEqual(before);
  });
});
