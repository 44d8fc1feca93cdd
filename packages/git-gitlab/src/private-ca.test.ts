import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { expectRunningAgentError } from "@running-agent/core/testing";
import { Agent } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createGitLab } from "./index.js";
import { startGitLabServer, type GitLabServer } from "./testing/index.js";

const execFileAsync = promisify(execFile);

describe("a self-managed GitLab behind a certificate of a private CA", () => {
  let folder: string;
  let ca: string;
  let server: GitLabServer;
  let token: string;

  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), "gitlab-private-ca-"));
    const file = (name: string) => join(folder, name);
    // A CA, and a server certificate for 127.0.0.1 signed by it.
    await execFileAsync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", file("ca.key"), "-out", file("ca.pem"), "-days", "1", "-subj", "/CN=Running Agent test CA"]);
    await execFileAsync("openssl", ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", file("server.key"), "-out", file("server.csr"), "-subj", "/CN=127.0.0.1"]);
    await writeFile(file("ext.cnf"), "subjectAltName=IP:127.0.0.1\n");
    await execFileAsync("openssl", ["x509", "-req", "-in", file("server.csr"), "-CA", file("ca.pem"), "-CAkey", file("ca.key"), "-CAcreateserial", "-out", file("server.pem"), "-days", "1", "-extfile", file("ext.cnf")]);
    ca = await readFile(file("ca.pem"), "utf8");
    server = await startGitLabServer({ tls: { key: await readFile(file("server.key"), "utf8"), cert: await readFile(file("server.pem"), "utf8") } });
    await server.createProject({ path: "acme/app", members: { dev: "developer" } });
    token = server.createPersonalAccessToken("dev");
  });

  afterAll(async () => {
    await server?.close();
    if (folder) await rm(folder, { recursive: true, force: true });
  });

  it("is reached through the caller's undici dispatcher that trusts the CA, and refused without it", async () => {
    expect(server.url.startsWith("https://127.0.0.1:")).toBe(true);
    const dispatcher = new Agent({ connect: { ca } });
    try {
      const repository = await createGitLab({ token, baseUrl: server.url, dispatcher }).resolveRepository(`${server.url}/acme/app`);
      expect(repository).toMatchObject({ id: "acme/app", canPush: true });
    } finally {
      await dispatcher.close();
    }
    const error = await expectRunningAgentError(createGitLab({ token, baseUrl: server.url }).resolveRepository(`${server.url}/acme/app`), "GIT_HOST_ERROR");
    expect(error.message).toMatch(/could not be reached.*(certificate|self.signed|issuer)/i);
    expect(error.message).not.toContain(token);
  });
});
