import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer as createTlsServer } from "node:tls";
import { promisify } from "node:util";
import { ErrorCode, type SandboxNetworkPolicy } from "@running-agent/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDockerSandbox, type DockerSandboxSettings } from "./create-docker-sandbox.js";
import { expectNoContainers, TEST_RUN_LABEL } from "./test-engine.js";
import { randomUUID } from "node:crypto";

const run = promisify(execFile);

// The same real engine, reached over TCP and over TCP with mutual TLS: a relay on 127.0.0.1
// forwards each connection to the engine's Unix socket byte for byte (half-closes included, which
// exec's stdin needs), so the client side is exactly what a remote engine sees.
const ENGINE_SOCKET = "/var/run/docker.sock";

/** Open relay connections, destroyed when the test ends (clients keep connections alive). */
const openSockets = new Set<Socket>();

function relay(client: Socket): void {
  const engine = connect({ path: ENGINE_SOCKET, allowHalfOpen: true });
  for (const socket of [client, engine]) {
    openSockets.add(socket);
    socket.on("close", () => openSockets.delete(socket));
  }
  client.pipe(engine);
  engine.pipe(client);
  const close = () => {
    client.destroy();
    engine.destroy();
  };
  client.on("error", close);
  engine.on("error", close);
  client.on("close", () => engine.end());
}

function listen(server: Server): Promise<number> {
  // Raw connections (for TLS: before and whatever the handshake), so that closing can end them all.
  server.on("connection", (socket: Socket) => {
    openSockets.add(socket);
    socket.on("close", () => openSockets.delete(socket));
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as { port: number }).port)));
}

async function closeServer(server: Server | undefined): Promise<void> {
  if (!server?.listening) return;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  for (const socket of openSockets) socket.destroy();
  await closed;
}

/** A CA, a server certificate for 127.0.0.1 and a client certificate, made with the openssl CLI. */
async function makeCertificates(folder: string): Promise<Record<"ca" | "serverKey" | "serverCert" | "clientKey" | "clientCert", string>> {
  const openssl = (...args: string[]) => run("openssl", args, { cwd: folder });
  await openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=running-agent test CA");
  for (const [name, extension] of [
    ["server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"],
    ["client", "extendedKeyUsage=clientAuth\n"],
  ] as const) {
    await openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${name}`);
    await run("sh", ["-c", `printf '${extension}' > ${name}.ext`], { cwd: folder });
    await openssl("x509", "-req", "-in", `${name}.csr`, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", `${name}.pem`, "-days", "1", "-extfile", `${name}.ext`);
  }
  const read = (file: string) => readFile(join(folder, file), "utf8");
  return { ca: await read("ca.pem"), serverKey: await read("server.key"), serverCert: await read("server.pem"), clientKey: await read("client.key"), clientCert: await read("client.pem") };
}

describe("reaching the engine over TCP, TCP with TLS, and DOCKER_HOST", () => {
  const label = randomUUID();
  const labels = { [TEST_RUN_LABEL]: label };
  let folder: string;
  let tcpServer: Server | undefined;
  let tlsServer: Server | undefined;
  let tcpPort: number;
  let tlsPort: number;
  let certificates: Awaited<ReturnType<typeof makeCertificates>>;

  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), "running-agent-docker-tls-"));
    certificates = await makeCertificates(folder);
    tcpServer = createServer({ allowHalfOpen: true }, relay);
    tcpPort = await listen(tcpServer);
    tlsServer = createTlsServer(
      { key: certificates.serverKey, cert: certificates.serverCert, ca: certificates.ca, requestCert: true, rejectUnauthorized: true, allowHalfOpen: true },
      relay,
    );
    tlsPort = await listen(tlsServer);
  });
  afterAll(async () => {
    await closeServer(tcpServer);
    await closeServer(tlsServer);
    if (folder) await rm(folder, { recursive: true, force: true });
    await expectNoContainers(label);
  });

  /** Opens a sandbox through the given connection and uses exec (with stdin), files and archives. */
  async function useSandbox(settings: DockerSandboxSettings): Promise<void> {
    const provider = createDockerSandbox({ network: "none", labels, ...settings });
    await provider.validate();
    await using session = await provider.create({ taskId: "remote-engine" });
    expect((await session.exec(["cat"], { stdin: "through the relay" })).stdout).toBe("through the relay");
    await session.writeFile("file.txt", "written remotely");
    expect(Buffer.from(await session.readFile("file.txt")).toString()).toBe("written remotely");
    expect((await session.getArchive(".")).byteLength).toBeGreaterThan(0);
  }

  it("works over plain TCP; a policy other than open fails in validate, since the egress proxy cannot be bound into a remote Engine's containers", async () => {
    const docker = { host: "127.0.0.1", port: tcpPort, protocol: "http" } as const;
    await useSandbox({ docker });
    const remote = createDockerSandbox({ docker, labels });
    expect(remote.egressProxy).toBe(false);
    for (const network of ["none", { allow: ["example.com"] }] satisfies SandboxNetworkPolicy[]) {
      const error = await remote.validate({ network }).catch((caught: unknown) => caught);
      expect(error).toMatchObject({ code: ErrorCode.CAPABILITY_UNSUPPORTED });
      expect((error as Error).message).toContain(`http://127.0.0.1:${tcpPort}`);
      expect(await remote.create({ taskId: "remote-policy", network }).catch((caught: unknown) => caught)).toMatchObject({ code: ErrorCode.CAPABILITY_UNSUPPORTED });
    }
    await remote.validate({ network: "open" });
  });

  it("works over TCP with mutual TLS, and refuses to go on without the client certificate or with an unknown CA", async () => {
    await useSandbox({
      docker: { host: "127.0.0.1", port: tlsPort, protocol: "https", ca: certificates.ca, cert: certificates.clientCert, key: certificates.clientKey },
    });
    const withoutClientCertificate = createDockerSandbox({ docker: { host: "127.0.0.1", port: tlsPort, protocol: "https", ca: certificates.ca } });
    await expect(withoutClientCertificate.validate()).rejects.toMatchObject({ code: ErrorCode.SANDBOX_UNAVAILABLE });
    const unknownCa = createDockerSandbox({ docker: { host: "127.0.0.1", port: tlsPort, protocol: "https", cert: certificates.clientCert, key: certificates.clientKey } });
    await expect(unknownCa.validate()).rejects.toMatchObject({ code: ErrorCode.SANDBOX_UNAVAILABLE });
  });

  it("honours DOCKER_HOST when no connection is given", async () => {
    const original = process.env.DOCKER_HOST;
    try {
      process.env.DOCKER_HOST = `tcp://127.0.0.1:${tcpPort}`;
      await useSandbox({});
      process.env.DOCKER_HOST = "unix:///nonexistent/engine.sock";
      const error = await createDockerSandbox({ labels }).validate().catch((caught: unknown) => caught);
      expect(error).toMatchObject({ code: ErrorCode.SANDBOX_UNAVAILABLE });
      expect((error as Error).message).toContain("unix:///nonexistent/engine.sock");
    } finally {
      if (original === undefined) delete process.env.DOCKER_HOST;
      else process.env.DOCKER_HOST = original;
    }
  });
});
