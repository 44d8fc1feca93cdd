import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { lstat, readdir, readFile, readlink } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { ResolvedRepository } from "../spec/git-host-spec.js";
import { expectRunningAgentError } from "../testing/expect-running-agent-error.js";
import { startGitHttpServer, type GitHttpServer } from "../testing/git-http-server.js";
import { cloneRepository } from "./clone.js";
import { createGitFixture, gitIn, temporaryFolders, type GitFixture } from "./git-fixture.js";
import { startStallingGitRelay, type RelayBehaviour } from "./stalling-git-relay.js";

const TOKEN = "tok_clone_5ecret_value";
const USERNAME = "x-access-token";

const files = {
  "README.md": "# Fixture\n",
  "src/index.ts": "export const answer = 42;\n",
  "bin/run.sh": { content: "#!/bin/sh\necho hi\n", executable: true as const },
  "link-to-readme": { symlink: "README.md" },
  "image.bin": new Uint8Array([0, 1, 2, 3, 255, 0, 7]),
};

let fixture: GitFixture;
let server: GitHttpServer;
const folders = temporaryFolders("running-agent-clone-test-");
const emptyFolder = folders.create;

function httpRepository(name = "repo.git"): ResolvedRepository {
  return { id: `test/${name}`, remote: `${server.url}/${name}`, defaultBranch: "main", canPush: true };
}

// Every file under a folder, read as bytes, so that a secret cannot hide anywhere.
async function allBytes(dir: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) chunks.push(await readFile(join(entry.parentPath, entry.name)));
  }
  return Buffer.concat(chunks);
}

/** Every process's command line, arguments joined by spaces (from /proc). */
function commandLines(): string[] {
  const lines: string[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      lines.push(readFileSync(`/proc/${name}/cmdline`, "utf8").split("\0").join(" "));
    } catch {
      // Gone meanwhile.
    }
  }
  return lines;
}

/** Live git processes (zombies have no command line) that name the remote or work in the clone. */
function gitProcessesOf(remote: string, dir: string): string[] {
  const found: string[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const line = readFileSync(`/proc/${name}/cmdline`, "utf8").split("\0").join(" ");
      if (!/^\S*git/.test(line)) continue;
      let cwd = "";
      try {
        cwd = readlinkSync(`/proc/${name}/cwd`);
      } catch {
        // Exiting.
      }
      if (line.includes(remote) || line.includes(dir) || cwd.startsWith(dir)) found.push(`${name}: ${line}`);
    } catch {
      // Gone meanwhile.
    }
  }
  return found;
}

beforeAll(async () => {
  fixture = await createGitFixture({ files, bare: true, earlierCommits: 2 });
  await gitIn(fixture.workPath, ["branch", "feature"]);
  await gitIn(fixture.workPath, ["push", "--quiet", fixture.barePath, "feature"]);
  server = await startGitHttpServer({ root: fixture.root, token: TOKEN, username: USERNAME });
});

afterAll(async () => {
  await server?.close();
  await fixture?.cleanup();
});

afterEach(() => folders.removeAll());

async function expectFixtureTree(dir: string): Promise<void> {
  expect(await readFile(join(dir, "src/index.ts"), "utf8")).toBe("export const answer = 42;\n");
  expect((await lstat(join(dir, "bin/run.sh"))).mode & 0o777).toBe(0o755);
  expect((await lstat(join(dir, "README.md"))).mode & 0o111).toBe(0);
  expect((await lstat(join(dir, "link-to-readme"))).isSymbolicLink()).toBe(true);
  expect(await readlink(join(dir, "link-to-readme"))).toBe("README.md");
  expect([...(await readFile(join(dir, "image.bin")))]).toEqual([0, 1, 2, 3, 255, 0, 7]);
}

describe("cloneRepository over http (the git CLI against git http-backend)", () => {
  it("clones one branch shallowly with the token only in git's environment: never on a command line, never in .git", async () => {
    const dir = await emptyFolder();
    const before = server.requests.length;
    const basic = Buffer.from(`${USERNAME}:${TOKEN}`).toString("base64");
    // Read while git runs (each request holds its processes): no process shows the secret in its arguments.
    const leakingCommandLines: string[] = [];
    await using watchedServer = await startGitHttpServer({
      root: fixture.root,
      token: TOKEN,
      username: USERNAME,
      onRequest: () => leakingCommandLines.push(...commandLines().filter((line) => line.includes(TOKEN) || line.includes(basic))),
    });
    const repository = { ...httpRepository(), remote: `${watchedServer.url}/repo.git` };
    const { commit } = await cloneRepository({ repository, branch: "main", depth: 1, credentials: { username: USERNAME, password: TOKEN }, dir });

    expect(commit).toBe(fixture.commit);
    await expectFixtureTree(dir);
    // Shallow: one commit of three, and the git CLI agrees on the tree.
    expect((await readFile(join(dir, ".git/shallow"), "utf8")).trim()).toBe(fixture.commit);
    expect((await gitIn(dir, ["rev-list", "--count", "HEAD"])).trim()).toBe("1");
    expect(await gitIn(dir, ["status", "--porcelain"])).toBe("");
    expect((await gitIn(dir, ["branch", "--show-current"])).trim()).toBe("main");

    // The header goes with every request (no 401 round trip), with the right user.
    const requests = watchedServer.requests;
    expect(requests.length).toBeGreaterThan(1);
    for (const request of requests) expect(request).toMatchObject({ authorizationPresent: true, authorized: true, username: USERNAME });
    for (const request of requests) expect(request.path).not.toContain(TOKEN);
    expect(server.requests.length).toBe(before);
    expect(leakingCommandLines).toEqual([]);
    // Neither the token nor its Basic form is anywhere in the clone: not in .git/config, a ref, a log or an object.
    const everything = await allBytes(dir);
    expect(everything.includes(TOKEN)).toBe(false);
    expect(everything.includes(basic)).toBe(false);
    const config = await readFile(join(dir, ".git/config"), "utf8");
    expect(config).toContain(`${watchedServer.url}/repo.git`);
    expect(config).not.toMatch(/extraheader|authorization/i);
    // No template: no hook samples to copy into the sandbox.
    await expect(lstat(join(dir, ".git/hooks"))).rejects.toThrow();
  });

  it("without checkout: no working tree, the index holds HEAD, and still no credential in .git", async () => {
    const dir = await emptyFolder();
    const { commit } = await cloneRepository({ repository: httpRepository(), branch: "feature", depth: "full", credentials: { username: USERNAME, password: TOKEN }, dir, checkout: false });
    expect(commit).toBe(fixture.commit);
    expect(await readdir(dir)).toEqual([".git"]);
    expect((await gitIn(dir, ["branch", "--show-current"])).trim()).toBe("feature");
    expect((await gitIn(dir, ["rev-list", "--count", "HEAD"])).trim()).toBe("3");
    // Index equal to HEAD: nothing staged, and every file of HEAD is in it.
    expect(await gitIn(dir, ["diff", "--cached", "--name-only", "HEAD"])).toBe("");
    const indexed = (await gitIn(dir, ["ls-files"])).trim().split("\n");
    expect(indexed).toEqual(expect.arrayContaining(Object.keys(files)));
    expect(indexed).toEqual((await gitIn(dir, ["ls-tree", "-r", "--name-only", "HEAD"])).trim().split("\n"));
    const everything = await allBytes(dir);
    expect(everything.includes(TOKEN)).toBe(false);
    expect(everything.includes(Buffer.from(`${USERNAME}:${TOKEN}`).toString("base64"))).toBe(false);
  });

  it("clones the full history with depth full", async () => {
    const dir = await emptyFolder();
    await cloneRepository({ repository: httpRepository(), branch: "main", depth: "full", credentials: { username: USERNAME, password: TOKEN }, dir });
    expect((await gitIn(dir, ["rev-list", "--count", "HEAD"])).trim()).toBe("3");
  });

  it("fails with AUTH_FAILED for a wrong token and does not echo it", async () => {
    const wrong = "tok_wrong_value_123";
    const error = await expectRunningAgentError(cloneRepository({ repository: httpRepository(), branch: "main", depth: 1, credentials: { username: USERNAME, password: wrong }, dir: await emptyFolder() }));
    expect(error.code).toBe("AUTH_FAILED");
    expect(error.phase).toBe("clone");
    const everything = `${error.message} ${JSON.stringify(error)} ${String((error.cause as Error | undefined)?.message)} ${error.stack}`;
    expect(everything).not.toContain(wrong);
    expect(everything).not.toContain(TOKEN);
  });

  it("fails with AUTH_FAILED without credentials", async () => {
    const error = await expectRunningAgentError(cloneRepository({ repository: httpRepository(), branch: "main", depth: 1, dir: await emptyFolder() }));
    expect(error.code).toBe("AUTH_FAILED");
  });

  it("fails with BASE_BRANCH_NOT_FOUND for a missing branch", async () => {
    const error = await expectRunningAgentError(cloneRepository({ repository: httpRepository(), branch: "no-such-branch", depth: 1, credentials: { username: USERNAME, password: TOKEN }, dir: await emptyFolder() }));
    expect(error.code).toBe("BASE_BRANCH_NOT_FOUND");
    expect(error.message).toContain("no-such-branch");
  });

  it("fails with REPO_NOT_FOUND for a missing repository", async () => {
    const error = await expectRunningAgentError(cloneRepository({ repository: httpRepository("missing.git"), branch: "main", depth: 1, credentials: { username: USERNAME, password: TOKEN }, dir: await emptyFolder() }));
    expect(error.code).toBe("REPO_NOT_FOUND");
  });

  it("stops with ABORTED when the signal fires while the remote holds the pack, and leaves no git process", async () => {
    const controller = new AbortController();
    const dir = await emptyFolder();
    let posts = 0;
    let runningAtAbort: string[] = [];
    // The second POST asks for the pack (the first lists the refs): held silent, and the caller gives up meanwhile.
    await using relay = await startStallingGitRelay(server.url, (method) => {
      if (method !== "POST" || ++posts < 2) return { kind: "pass" };
      runningAtAbort = gitProcessesOf(relay.url, dir);
      setImmediate(() => controller.abort());
      return { kind: "silent" };
    });
    const repository = { ...httpRepository(), remote: `${relay.url}/repo.git` };
    const error = await expectRunningAgentError(cloneRepository({ repository, branch: "main", depth: 1, credentials: { username: USERNAME, password: TOKEN }, dir, signal: controller.signal }));
    expect(error.code).toBe("ABORTED");
    expect(error.phase).toBe("clone");
    // The premise: git's clone and its remote helper were running when the signal fired.
    expect(runningAtAbort.length).toBeGreaterThan(1);
    expect(relay.held).toEqual([expect.objectContaining({ method: "POST", behaviour: "silent" })]);
    expect(gitProcessesOf(relay.url, dir)).toEqual([]);
  });

  it.each([
    [403, "PERMISSION_DENIED"],
    [429, "RATE_LIMITED"],
    [500, "CLONE_FAILED"],
  ] as const)("maps a remote's HTTP %i to %s", async (status, code) => {
    const remote = createServer((request, response) => {
      request.resume();
      response.writeHead(status, { "content-type": "text/plain" });
      response.end("no\n");
    });
    await new Promise<void>((resolve) => remote.listen(0, "127.0.0.1", resolve));
    try {
      const url = `http://127.0.0.1:${(remote.address() as AddressInfo).port}/repo.git`;
      const error = await expectRunningAgentError(cloneRepository({ repository: { ...httpRepository(), remote: url }, branch: "main", depth: 1, credentials: { username: USERNAME, password: TOKEN }, dir: await emptyFolder() }));
      expect(error.code).toBe(code);
      expect(error.phase).toBe("clone");
      expect(`${error.message} ${JSON.stringify(error)} ${String((error.cause as Error | undefined)?.message)}`).not.toContain(TOKEN);
    } finally {
      remote.closeAllConnections();
      await new Promise((resolve) => remote.close(resolve));
    }
  });

  it("rejects a bad depth or branch before any request", async () => {
    const before = server.requests.length;
    expect((await expectRunningAgentError(cloneRepository({ repository: httpRepository(), branch: "main", depth: 0, dir: await emptyFolder() }))).code).toBe("INVALID_OPTIONS");
    expect((await expectRunningAgentError(cloneRepository({ repository: httpRepository(), branch: "--upload-pack=touch /tmp/x", depth: 1, dir: await emptyFolder() }))).code).toBe("INVALID_BRANCH");
    expect(server.requests.length).toBe(before);
  });
});

describe("cloneRepository from a remote that stops answering", () => {
  const STALL_MS = 1500;
  const cloneThrough = async (decide: (method: string, path: string) => RelayBehaviour, stallTimeoutMs = STALL_MS) => {
    const relay = await startStallingGitRelay(server.url, decide);
    const repository = { ...httpRepository(), remote: `${relay.url}/repo.git` };
    const dir = await emptyFolder();
    const clone = cloneRepository({ repository, branch: "main", depth: 1, credentials: { username: USERNAME, password: TOKEN }, dir, stallTimeoutMs });
    return { relay, repository, dir, clone };
  };

  // Without a stall limit these hang until fetch's own 5-minute header timeout, past the test's limit.
  it("fails with GIT_REMOTE_STALLED, naming the remote, when the server accepts and never answers", { timeout: 60_000 }, async () => {
    const { relay, repository, dir, clone } = await cloneThrough(() => ({ kind: "silent" }));
    await using _relay = relay;
    const error = await expectRunningAgentError(clone);
    expect(error.code).toBe("GIT_REMOTE_STALLED");
    expect(error.phase).toBe("clone");
    expect(error.message).toContain(repository.remote);
    expect(error.details).toMatchObject({ remote: repository.remote, stallTimeoutMs: STALL_MS });
    expect(relay.connections()).toBeGreaterThan(0);
    expect(relay.held[0]).toMatchObject({ method: "GET", behaviour: "silent" });
    expect(`${error.message} ${JSON.stringify(error)}`).not.toContain(TOKEN);
    expect(await readdir(dir)).toEqual([]);
  });

  it("fails with GIT_REMOTE_STALLED when the pack's headers and first bytes come and the rest never does", { timeout: 60_000 }, async () => {
    // Protocol v2: the first POST lists the refs, the second carries the pack.
    let posts = 0;
    const { relay, clone } = await cloneThrough((method) => (method === "POST" && ++posts === 2 ? { kind: "stall-after", bytes: 200 } : { kind: "pass" }));
    await using _relay = relay;
    const error = await expectRunningAgentError(clone);
    expect(error.code).toBe("GIT_REMOTE_STALLED");
    expect(error.phase).toBe("clone");
    expect(relay.held).toEqual([expect.objectContaining({ method: "POST", behaviour: "stall-after", bytesSent: 200 })]);
  });

  it("fails with GIT_REMOTE_STALLED when the ref listing stops mid-body", { timeout: 60_000 }, async () => {
    // Protocol v2: the first POST (ls-refs) carries the refs.
    let posts = 0;
    const { relay, clone } = await cloneThrough((method) => (method === "POST" && ++posts === 1 ? { kind: "stall-after", bytes: 40 } : { kind: "pass" }));
    await using _relay = relay;
    const error = await expectRunningAgentError(clone);
    expect(error.code).toBe("GIT_REMOTE_STALLED");
    expect(relay.held).toEqual([expect.objectContaining({ method: "POST", behaviour: "stall-after", bytesSent: 40 })]);
  });

  it("does not cut a slow transfer that keeps moving, though it takes longer than the stall limit", async () => {
    const stallTimeoutMs = 3000;
    const started = Date.now();
    let posts = 0;
    const { relay, dir, clone } = await cloneThrough((method) => (method === "POST" && ++posts === 2 ? { kind: "drip", pieces: 40, gapMs: 100 } : { kind: "pass" }), stallTimeoutMs);
    await using _relay = relay;
    const { commit } = await clone;
    expect(commit).toBe(fixture.commit);
    await expectFixtureTree(dir);
    // The premise: the transfer as a whole outlasted the limit (a loaded machine only makes it longer).
    expect(Date.now() - started).toBeGreaterThan(stallTimeoutMs);
    expect(relay.held).toEqual([expect.objectContaining({ behaviour: "drip" })]);
  });
});

describe("cloneRepository from local paths (git CLI)", () => {
  const local = (path: string): ResolvedRepository => ({ id: path, remote: path, defaultBranch: "main", canPush: true });

  it.each(["bare", "work"] as const)("clones the %s repository shallowly", async (kind) => {
    const dir = await emptyFolder();
    const source = kind === "bare" ? fixture.barePath : fixture.workPath;
    const { commit } = await cloneRepository({ repository: local(source), branch: "main", depth: 1, dir });
    expect(commit).toBe(fixture.commit);
    await expectFixtureTree(dir);
    expect((await gitIn(dir, ["rev-list", "--count", "HEAD"])).trim()).toBe("1");
  });

  it("clones the whole history and another branch", async () => {
    const dir = await emptyFolder();
    await cloneRepository({ repository: local(fixture.barePath), branch: "feature", depth: "full", dir });
    expect((await gitIn(dir, ["rev-list", "--count", "HEAD"])).trim()).toBe("3");
    expect((await gitIn(dir, ["branch", "--show-current"])).trim()).toBe("feature");
  });

  it("fails with BASE_BRANCH_NOT_FOUND for a missing branch", async () => {
    const error = await expectRunningAgentError(cloneRepository({ repository: local(fixture.barePath), branch: "nope", depth: 1, dir: await emptyFolder() }));
    expect(error.code).toBe("BASE_BRANCH_NOT_FOUND");
  });

  it("fails with REPO_NOT_FOUND for a folder that is not a repository", async () => {
    const error = await expectRunningAgentError(cloneRepository({ repository: local(await emptyFolder()), branch: "main", depth: 1, dir: await emptyFolder() }));
    expect(error.code).toBe("REPO_NOT_FOUND");
  });
});
