import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createGitFixture, gitIn, type GitFixture } from "../git/git-fixture.js";
import { gitEnvironment } from "../git/git-command.js";
import { startGitHttpServer } from "./git-http-server.js";

const TOKEN = "tok_server_5ecret";
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;

let fixture: GitFixture;
beforeAll(async () => {
  fixture = await createGitFixture({ files: { "README.md": "# Served\n" }, bare: true });
});
afterAll(async () => {
  await fixture?.cleanup();
});

describe("startGitHttpServer", () => {
  it("challenges with 401 and WWW-Authenticate, and serves the ref advertisement with the token", async () => {
    await using server = await startGitHttpServer({ root: fixture.root, token: TOKEN, username: "bot" });
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const url = `${server.url}/repo.git/info/refs?service=git-upload-pack`;

    const missing = await fetch(url);
    expect(missing.status).toBe(401);
    expect(missing.headers.get("www-authenticate")).toMatch(/^Basic /);
    expect((await fetch(url, { headers: { authorization: basic("bot", "wrong") } })).status).toBe(401);
    expect((await fetch(url, { headers: { authorization: basic("someone-else", TOKEN) } })).status).toBe(401);

    const ok = await fetch(url, { headers: { authorization: basic("bot", TOKEN) } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("content-type")).toBe("application/x-git-upload-pack-advertisement");
    expect(await ok.text()).toContain(fixture.commit);

    expect(server.requests.map((request) => [request.status, request.authorizationPresent, request.authorized])).toEqual([
      [401, false, false],
      [401, true, false],
      [401, true, false],
      [200, true, true],
    ]);
    expect(JSON.stringify(server.requests)).not.toContain(TOKEN);
    expect(JSON.stringify(server.requests)).not.toContain(Buffer.from(`bot:${TOKEN}`).toString("base64"));
  });

  it("answers 404 for a repository that is not there", async () => {
    await using server = await startGitHttpServer({ root: fixture.root });
    expect((await fetch(`${server.url}/missing.git/info/refs?service=git-upload-pack`)).status).toBe(404);
  });

  it("works with the git CLI for clone and push (protocol v2)", async () => {
    await using server = await startGitHttpServer({ root: fixture.root });
    const dir = await mkdtemp(join(tmpdir(), "running-agent-server-test-"));
    try {
      const run = promisify(execFile);
      // The server runs in this process: the client must be asynchronous.
      await run("git", ["-c", "protocol.version=2", "clone", "--quiet", `${server.url}/repo.git`, join(dir, "clone")], { env: gitEnvironment() });
      await gitIn(join(dir, "clone"), ["commit", "--quiet", "--allow-empty", "-m", "From the CLI"]);
      await run("git", ["push", "--quiet", "origin", "HEAD:refs/heads/from-cli"], { cwd: join(dir, "clone"), env: gitEnvironment() });
      expect((await gitIn(fixture.barePath, ["log", "-1", "--format=%s", "from-cli"])).trim()).toBe("From the CLI");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("closes idempotently and frees its port", async () => {
    const server = await startGitHttpServer({ root: fixture.root });
    await server.close();
    await server.close();
    await expect(fetch(`${server.url}/repo.git/info/refs`)).rejects.toThrow();
  });
});
