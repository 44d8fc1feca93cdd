import { lstat, readdir, readFile, readlink } from "node:fs/promises";
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

describe("cloneRepository over http (isomorphic-git against git http-backend)", () => {
  it("clones one branch shallowly with the token passed only through onAuth", async () => {
    const dir = await emptyFolder();
    const before = server.requests.length;
    const { commit } = await cloneRepository({ repository: httpRepository(), branch: "main", depth: 1, credentials: { username: USERNAME, password: TOKEN }, dir });

    expect(commit).toBe(fixture.commit);
    await expectFixtureTree(dir);
    // Shallow: one commit of three, and the git CLI agrees on the tree.
    expect((await readFile(join(dir, ".git/shallow"), "utf8")).trim()).toBe(fixture.commit);
    expect((await gitIn(dir, ["rev-list", "--count", "HEAD"])).trim()).toBe("1");
    expect(await gitIn(dir, ["status", "--porcelain"])).toBe("");
    expect((await gitIn(dir, ["branch", "--show-current"])).trim()).toBe("main");

    // The server saw Basic auth with the right user on every request after the challenge.
    const requests = server.requests.slice(before);
    expect(requests[0]).toMatchObject({ authorizationPresent: false, status: 401 });
    expect(requests.length).toBeGreaterThan(1);
    for (const request of requests.slice(1)) expect(request).toMatchObject({ authorizationPresent: true, authorized: true, username: USERNAME });
    for (const request of requests) expect(request.path).not.toContain(TOKEN);
    // The token is nowhere in the clone: not in .git/config, not in any ref or log.
    expect(await readFile(join(dir, ".git/config"), "utf8")).not.toContain(TOKEN);
    expect((await allBytes(dir)).includes(TOKEN)).toBe(false);
    expect(await readFile(join(dir, ".git/config"), "utf8")).toContain(`${server.url}/repo.git`);
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

  it("stops with ABORTED when the signal fires during the transfer", async () => {
    const controller = new AbortController();
    await using abortingServer = await startGitHttpServer({
      root: fixture.root,
      // Abort as soon as the pack is asked for: the clone is mid-way.
      onRequest: (request) => {
        if (request.method === "POST") controller.abort();
      },
    });
    const repository = { ...httpRepository(), remote: `${abortingServer.url}/repo.git` };
    const error = await expectRunningAgentError(cloneRepository({ repository, branch: "main", depth: 1, dir: await emptyFolder(), signal: controller.signal }));
    expect(error.code).toBe("ABORTED");
    expect(error.phase).toBe("clone");
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
    const { relay, clone } = await cloneThrough((method) => (method === "POST" ? { kind: "stall-after", bytes: 200 } : { kind: "pass" }));
    await using _relay = relay;
    const error = await expectRunningAgentError(clone);
    expect(error.code).toBe("GIT_REMOTE_STALLED");
    expect(error.phase).toBe("clone");
    expect(relay.held).toEqual([expect.objectContaining({ method: "POST", behaviour: "stall-after", bytesSent: 200 })]);
  });

  it("fails with GIT_REMOTE_STALLED when the ref advertisement stops mid-body", { timeout: 60_000 }, async () => {
    // The first GET is the 401 challenge; the second, with credentials, carries the refs.
    let gets = 0;
    const { relay, clone } = await cloneThrough((method) => (method === "GET" && ++gets === 2 ? { kind: "stall-after", bytes: 40 } : { kind: "pass" }));
    await using _relay = relay;
    const error = await expectRunningAgentError(clone);
    expect(error.code).toBe("GIT_REMOTE_STALLED");
    expect(relay.held[0]).toMatchObject({ method: "GET", behaviour: "stall-after", bytesSent: 40 });
  });

  it("does not cut a slow transfer that keeps moving, though it takes longer than the stall limit", async () => {
    const stallTimeoutMs = 3000;
    const started = Date.now();
    const { relay, dir, clone } = await cloneThrough((method) => (method === "POST" ? { kind: "drip", pieces: 40, gapMs: 100 } : { kind: "pass" }), stallTimeoutMs);
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
