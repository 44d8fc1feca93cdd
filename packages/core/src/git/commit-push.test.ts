import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { ResolvedRepository } from "../spec/git-host-spec.js";
import { expectRunningAgentError } from "../testing/expect-running-agent-error.js";
import { startGitHttpServer, type GitHttpServer } from "../testing/git-http-server.js";
import { cloneRepository } from "./clone.js";
import { commitChanges } from "./commit.js";
import { pushBranch } from "./push.js";
import { createGitFixture, gitIn, temporaryFolders, writeFixtureFiles, type GitFixture } from "./git-fixture.js";
import { startStallingGitRelay } from "./stalling-git-relay.js";

const TOKEN = "tok_push_5ecret_value";
const USERNAME = "x-access-token";
const credentials = { username: USERNAME, password: TOKEN };
const author = { name: "Agent Author", email: "agent@example.test" };
const committer = { name: "Agent Committer", email: "committer@example.test" };

let fixture: GitFixture;
let server: GitHttpServer;
const folders = temporaryFolders("running-agent-push-test-");
const emptyFolder = folders.create;

beforeAll(async () => {
  fixture = await createGitFixture({ files: { "README.md": "# Fixture\n", "bin/run.sh": { content: "#!/bin/sh\n", executable: true } }, bare: true, earlierCommits: 1 });
  server = await startGitHttpServer({ root: fixture.root, token: TOKEN, username: USERNAME });
});

afterAll(async () => {
  await server?.close();
  await fixture?.cleanup();
});

afterEach(() => folders.removeAll());

const httpRepository = (): ResolvedRepository => ({ id: "test/repo", remote: `${server.url}/repo.git`, defaultBranch: "main", canPush: true });
const localRepository = (): ResolvedRepository => ({ id: fixture.barePath, remote: fixture.barePath, defaultBranch: "main", canPush: true });

async function cloneFrom(repository: ResolvedRepository): Promise<string> {
  const dir = await emptyFolder();
  await cloneRepository({ repository, branch: "main", depth: 1, dir, ...(repository.remote.startsWith("http") ? { credentials } : {}) });
  return dir;
}

const bare = (args: string[]) => gitIn(fixture.barePath, args);

describe("commitChanges", () => {
  it("commits the working tree on a new branch with exactly the given identities", async () => {
    const dir = await cloneFrom(localRepository());
    await writeFixtureFiles(dir, { "src/new.ts": "export {};\n", "bin/run.sh": "#!/bin/sh\n" });
    await rm(join(dir, "README.md"));
    const message = "Add new.ts\n\n#1 is a line that must survive\n\nRunning-Agent-Task: t1\n";
    const { commit } = await commitChanges({ dir, branch: "agent/one", message, author, committer });

    expect((await gitIn(dir, ["rev-parse", "HEAD"])).trim()).toBe(commit);
    expect((await gitIn(dir, ["branch", "--show-current"])).trim()).toBe("agent/one");
    expect((await gitIn(dir, ["log", "-1", "--format=%an <%ae>|%cn <%ce>"])).trim()).toBe("Agent Author <agent@example.test>|Agent Committer <committer@example.test>");
    expect(await gitIn(dir, ["log", "-1", "--format=%B"])).toBe(`${message}\n`);
    expect((await gitIn(dir, ["rev-parse", "HEAD^"])).trim()).toBe(fixture.commit);
    expect(await gitIn(dir, ["diff", "--name-status", "HEAD^", "HEAD"])).toBe("D\tREADME.md\nM\tbin/run.sh\nA\tsrc/new.ts\n");
    expect(await gitIn(dir, ["ls-tree", "HEAD", "bin/run.sh"])).toMatch(/^100644 /);
    expect(await gitIn(dir, ["status", "--porcelain"])).toBe("");
  });

  it("does not depend on the machine's git config, HOME or inherited GIT_* variables", async () => {
    const dir = await cloneFrom(localRepository());
    await writeFixtureFiles(dir, { "a.txt": "a\n" });
    const home = await emptyFolder();
    await writeFile(join(home, ".gitconfig"), "[user]\n\tname = Wrong Person\n\temail = wrong@example.test\n[commit]\n\tgpgSign = true\n");
    const previous = { HOME: process.env.HOME, GIT_DIR: process.env.GIT_DIR, GIT_AUTHOR_NAME: process.env.GIT_AUTHOR_NAME };
    // As if called from inside a git hook of another repository.
    Object.assign(process.env, { HOME: home, GIT_DIR: join(home, "elsewhere.git"), GIT_AUTHOR_NAME: "Hook Author" });
    try {
      await commitChanges({ dir, branch: "agent/home", message: "Home test", author });
    } finally {
      for (const [key, value] of Object.entries(previous)) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
    }
    expect((await gitIn(dir, ["log", "-1", "--format=%an|%cn"])).trim()).toBe("Agent Author|Agent Author");
  });

  it("fails with COMMIT_FAILED when nothing changed, and rejects bad input", async () => {
    const dir = await cloneFrom(localRepository());
    expect((await expectRunningAgentError(commitChanges({ dir, branch: "agent/empty", message: "Nothing", author }))).code).toBe("COMMIT_FAILED");
    expect((await expectRunningAgentError(commitChanges({ dir, branch: "bad..name", message: "x", author }))).code).toBe("INVALID_BRANCH");
    expect((await expectRunningAgentError(commitChanges({ dir, branch: "agent/x", message: "x", author: { name: "Evil <x@y>", email: "e@x.test" } }))).code).toBe("INVALID_OPTIONS");
    const error = await expectRunningAgentError(commitChanges({ dir, branch: "agent/x", message: "   ", author }));
    expect(error.code).toBe("COMMIT_FAILED");
    expect(error.phase).toBe("commit");
  });

  it("with stageWorkingTree false, commits the index only (a clone without working tree), and an index equal to HEAD is COMMIT_FAILED", async () => {
    const dir = await emptyFolder();
    await cloneRepository({ repository: localRepository(), branch: "main", depth: 1, dir, checkout: false });
    const empty = await expectRunningAgentError(commitChanges({ dir, branch: "agent/index-empty", message: "Nothing", author, stageWorkingTree: false }));
    expect(empty.message).toContain("nothing to commit");
    // HEAD went to the new branch while the trees were read; it is back, and no branch was made.
    expect((await gitIn(dir, ["symbolic-ref", "HEAD"])).trim()).toBe("refs/heads/main");
    expect(await gitIn(dir, ["for-each-ref", "--format=%(refname)", "refs/heads/"])).toBe("refs/heads/main\n");
    await gitIn(dir, ["update-index", "--add", "--cacheinfo", `100644,${(await gitIn(dir, ["hash-object", "-w", "--stdin"], "added\n")).trim()},added.txt`]);
    const { commit } = await commitChanges({ dir, branch: "agent/index-only", message: "Add one file  \n\n\n\nBody line   \n\n", author, stageWorkingTree: false });
    // Only that path changed: HEAD's files, absent from the empty working tree, are not deleted.
    expect((await gitIn(dir, ["diff", "--name-status", "HEAD~1", commit])).trim()).toBe("A\tadded.txt");
    expect((await gitIn(dir, ["log", "-1", "--format=%B%an <%ae>", commit])).trimEnd()).toBe("Add one file\n\nBody line\nAgent Author <agent@example.test>");
    expect((await gitIn(dir, ["symbolic-ref", "HEAD"])).trim()).toBe("refs/heads/agent/index-only");
    // Again on the same branch: it moves forward.
    await gitIn(dir, ["update-index", "--add", "--cacheinfo", `100644,${(await gitIn(dir, ["hash-object", "-w", "--stdin"], "second\n")).trim()},second.txt`]);
    const second = await commitChanges({ dir, branch: "agent/index-only", message: "Second", author, stageWorkingTree: false });
    expect((await gitIn(dir, ["rev-parse", "agent/index-only~1"])).trim()).toBe(commit);
    expect((await gitIn(dir, ["rev-parse", "agent/index-only"])).trim()).toBe(second.commit);
    // A branch that exists elsewhere is never moved.
    await gitIn(dir, ["update-ref", "refs/heads/taken", commit]);
    await gitIn(dir, ["update-index", "--add", "--cacheinfo", `100644,${(await gitIn(dir, ["hash-object", "-w", "--stdin"], "third\n")).trim()},third.txt`]);
    const taken = await expectRunningAgentError(commitChanges({ dir, branch: "taken", message: "Third", author, stageWorkingTree: false }));
    expect(taken.code).toBe("COMMIT_FAILED");
    expect((await gitIn(dir, ["rev-parse", "taken"])).trim()).toBe(commit);
    // HEAD is back on the branch it was on.
    expect((await gitIn(dir, ["symbolic-ref", "HEAD"])).trim()).toBe("refs/heads/agent/index-only");
  });

  it("with stageWorkingTree false on a detached HEAD, commits on a new branch from HEAD's commit and leaves HEAD on it", async () => {
    const dir = await emptyFolder();
    await cloneRepository({ repository: localRepository(), branch: "main", depth: 1, dir, checkout: false });
    await gitIn(dir, ["update-ref", "--no-deref", "HEAD", fixture.commit]);
    await gitIn(dir, ["update-index", "--add", "--cacheinfo", `100644,${(await gitIn(dir, ["hash-object", "-w", "--stdin"], "detached\n")).trim()},detached.txt`]);
    const { commit } = await commitChanges({ dir, branch: "agent/detached", message: "From a detached HEAD", author, stageWorkingTree: false });
    expect((await gitIn(dir, ["rev-parse", `${commit}~1`])).trim()).toBe(fixture.commit);
    expect((await gitIn(dir, ["symbolic-ref", "HEAD"])).trim()).toBe("refs/heads/agent/detached");
    expect((await gitIn(dir, ["rev-parse", "main"])).trim()).toBe(fixture.commit);
    // A branch that exists elsewhere: detached HEAD stays where it was.
    await gitIn(dir, ["update-ref", "--no-deref", "HEAD", fixture.commit]);
    const taken = await expectRunningAgentError(commitChanges({ dir, branch: "agent/detached", message: "Again", author, stageWorkingTree: false }));
    expect(taken.code).toBe("COMMIT_FAILED");
    expect((await gitIn(dir, ["rev-parse", "--symbolic-full-name", "HEAD"])).trim()).toBe("HEAD");
    expect((await gitIn(dir, ["rev-parse", "agent/detached"])).trim()).toBe(commit);
  });
});

describe("pushBranch over http (the git CLI against git http-backend)", () => {
  it("pushes a new branch with the token only in the push's environment (never on the command line or in the clone's config)", async () => {
    const dir = await cloneFrom(httpRepository());
    await writeFixtureFiles(dir, { "pushed.txt": "over http\n" });
    const { commit } = await commitChanges({ dir, branch: "agent/http", message: "Over http", author });
    const before = server.requests.length;
    await pushBranch({ dir, repository: httpRepository(), branch: "agent/http", credentials });

    expect((await bare(["rev-parse", "refs/heads/agent/http"])).trim()).toBe(commit);
    expect(await bare(["show", "refs/heads/agent/http:pushed.txt"])).toBe("over http\n");
    expect((await bare(["log", "-1", "--format=%an <%ae>", "agent/http"])).trim()).toBe("Agent Author <agent@example.test>");
    const pushes = server.requests.slice(before).filter((request) => request.path.includes("receive-pack"));
    expect(pushes.some((request) => request.method === "POST" && request.authorized && request.username === USERNAME)).toBe(true);
    expect(await readFile(join(dir, ".git/config"), "utf8")).not.toContain(TOKEN);
  });

  it("sends only the objects the remote lacks", async () => {
    // 300 files of incompressible content (about 600 KB): a push that resent the tree would show.
    const { randomBytes } = await import("node:crypto");
    const files: Record<string, string> = {};
    for (let index = 0; index < 300; index++) files[`data/file-${index}.txt`] = randomBytes(1500).toString("base64");
    await using big = await createGitFixture({ files, bare: true });
    await using bigServer = await startGitHttpServer({ root: big.root });
    const repository = { id: "big", remote: `${bigServer.url}/repo.git`, defaultBranch: "main", canPush: true };
    const dir = await emptyFolder();
    await cloneRepository({ repository, branch: "main", depth: 1, dir });
    await writeFixtureFiles(dir, { "data/file-7.txt": "small change\n" });
    await commitChanges({ dir, branch: "agent/small", message: "Small", author });
    await pushBranch({ dir, repository, branch: "agent/small" });
    const pack = bigServer.requests.find((request) => request.method === "POST" && request.path.endsWith("git-receive-pack"));
    expect(pack).toBeDefined();
    expect(pack!.requestBytes).toBeLessThan(20_000);
    expect(await gitIn(big.barePath, ["show", "agent/small:data/file-7.txt"])).toBe("small change\n");
  });

  it("fast-forwards an existing branch it has, never forcing", async () => {
    const dir = await cloneFrom(httpRepository());
    await writeFixtureFiles(dir, { "one.txt": "1\n" });
    await commitChanges({ dir, branch: "agent/ff", message: "One", author });
    await pushBranch({ dir, repository: httpRepository(), branch: "agent/ff", credentials });
    await writeFixtureFiles(dir, { "two.txt": "2\n" });
    const { commit } = await commitChanges({ dir, branch: "agent/ff", message: "Two", author });
    await pushBranch({ dir, repository: httpRepository(), branch: "agent/ff", credentials });
    expect((await bare(["rev-parse", "refs/heads/agent/ff"])).trim()).toBe(commit);
  });

  it("fails with PUSH_REJECTED when the remote branch has other commits, and leaves it alone", async () => {
    const first = await cloneFrom(httpRepository());
    await writeFixtureFiles(first, { "theirs.txt": "theirs\n" });
    const { commit: theirs } = await commitChanges({ dir: first, branch: "agent/taken", message: "Theirs", author });
    await pushBranch({ dir: first, repository: httpRepository(), branch: "agent/taken", credentials });

    const second = await cloneFrom(httpRepository());
    await writeFixtureFiles(second, { "ours.txt": "ours\n" });
    await commitChanges({ dir: second, branch: "agent/taken", message: "Ours", author });
    const error = await expectRunningAgentError(pushBranch({ dir: second, repository: httpRepository(), branch: "agent/taken", credentials }));
    expect(error.code).toBe("PUSH_REJECTED");
    expect(error.phase).toBe("push");
    expect((await bare(["rev-parse", "refs/heads/agent/taken"])).trim()).toBe(theirs);

    // The loop's recovery: the same commit under a fresh name goes through.
    await pushBranch({ dir: second, repository: httpRepository(), branch: "agent/taken-2", credentials });
    expect((await bare(["show", "refs/heads/agent/taken-2:ours.txt"]))).toBe("ours\n");
  });

  it("fails with AUTH_FAILED for a wrong or missing token, without echoing it", async () => {
    const dir = await cloneFrom(httpRepository());
    await writeFixtureFiles(dir, { "x.txt": "x\n" });
    await commitChanges({ dir, branch: "agent/auth", message: "Auth", author });
    const wrong = "tok_wrong_push_value";
    const error = await expectRunningAgentError(pushBranch({ dir, repository: httpRepository(), branch: "agent/auth", credentials: { username: USERNAME, password: wrong } }));
    expect(error.code).toBe("AUTH_FAILED");
    expect(`${error.message} ${JSON.stringify(error)} ${error.stack}`).not.toContain(wrong);
    expect((await expectRunningAgentError(pushBranch({ dir, repository: httpRepository(), branch: "agent/auth" }))).code).toBe("AUTH_FAILED");
    await expect(bare(["rev-parse", "--verify", "--quiet", "refs/heads/agent/auth"])).rejects.toThrow();
  });
});

describe("pushBranch cancellation", () => {
  it("stops with ABORTED when the signal fires while the remote holds the pack, and the branch is not created", async () => {
    const controller = new AbortController();
    // The remote takes the pack and does not answer; the caller gives up meanwhile.
    await using relay = await startStallingGitRelay(server.url, (method, path) => {
      if (method !== "POST" || !path.includes("receive-pack")) return { kind: "pass" };
      setImmediate(() => controller.abort());
      return { kind: "silent" };
    });
    const repository = { ...httpRepository(), remote: `${relay.url}/repo.git` };
    const dir = await cloneFrom(httpRepository());
    await writeFixtureFiles(dir, { "aborted.txt": "x\n" });
    await commitChanges({ dir, branch: "agent/aborted", message: "Aborted", author });
    const error = await expectRunningAgentError(pushBranch({ dir, repository, branch: "agent/aborted", credentials, signal: controller.signal }));
    expect(error.code).toBe("ABORTED");
    expect(error.phase).toBe("push");
    await expect(bare(["rev-parse", "--verify", "--quiet", "refs/heads/agent/aborted"])).rejects.toThrow();
  });
});

describe("pushBranch to a remote that stops answering", () => {
  it("fails with GIT_REMOTE_STALLED, naming the remote, when the pack is taken and never answered; the branch is not created", { timeout: 60_000 }, async () => {
    await using relay = await startStallingGitRelay(server.url, (method, path) => (method === "POST" && path.includes("receive-pack") ? { kind: "silent" } : { kind: "pass" }));
    const repository = { ...httpRepository(), remote: `${relay.url}/repo.git` };
    const dir = await cloneFrom(httpRepository());
    await writeFixtureFiles(dir, { "stalled.txt": "x\n" });
    await commitChanges({ dir, branch: "agent/stalled", message: "Stalled", author });
    const error = await expectRunningAgentError(pushBranch({ dir, repository, branch: "agent/stalled", credentials, stallTimeoutMs: 1500 }));
    expect(error.code).toBe("GIT_REMOTE_STALLED");
    expect(error.phase).toBe("push");
    expect(error.message).toContain(repository.remote);
    expect(relay.held).toEqual([expect.objectContaining({ method: "POST", behaviour: "silent" })]);
    await expect(bare(["rev-parse", "--verify", "--quiet", "refs/heads/agent/stalled"])).rejects.toThrow();
  });

  it("does not cut a big push the remote takes slowly but steadily, though it lasts longer than the stall limit", async () => {
    const { randomBytes } = await import("node:crypto");
    const dir = await cloneFrom(httpRepository());
    // Incompressible, and far more than the loopback socket buffers hold: the sender really waits on the reader.
    await writeFixtureFiles(dir, { "slow.bin": randomBytes(16 * 1024 * 1024) });
    const { commit } = await commitChanges({ dir, branch: "agent/slow-push", message: "Slow", author });
    await using relay = await startStallingGitRelay(server.url, (method, path) =>
      method === "POST" && path.includes("receive-pack") ? { kind: "read-slowly", bytes: 512 * 1024, gapMs: 400 } : { kind: "pass" },
    );
    // Above the server's own silence while it indexes the pack after the upload (about 1 s here, more on a loaded machine).
    const stallTimeoutMs = 8000;
    const started = Date.now();
    await pushBranch({ dir, repository: { ...httpRepository(), remote: `${relay.url}/repo.git` }, branch: "agent/slow-push", credentials, stallTimeoutMs });
    // The premise: the upload as a whole outlasted the limit.
    expect(Date.now() - started).toBeGreaterThan(stallTimeoutMs);
    // git may probe with an empty request before it streams a large pack: every POST was read slowly.
    expect(relay.held.length).toBeGreaterThan(0);
    expect(relay.held.every((held) => held.behaviour === "read-slowly")).toBe(true);
    expect((await bare(["rev-parse", "refs/heads/agent/slow-push"])).trim()).toBe(commit);
  });

  it("streams a pack over 1 MiB (chunked, kept moving under the stall limit) and it arrives whole", async () => {
    const { randomBytes } = await import("node:crypto");
    const dir = await cloneFrom(httpRepository());
    const content = randomBytes(3 * 1024 * 1024);
    await writeFixtureFiles(dir, { "large.bin": content });
    const { commit } = await commitChanges({ dir, branch: "agent/large", message: "Large", author });
    const before = server.requests.length;
    await pushBranch({ dir, repository: httpRepository(), branch: "agent/large", credentials, stallTimeoutMs: 5000 });
    expect((await bare(["rev-parse", "refs/heads/agent/large"])).trim()).toBe(commit);
    // The largest POST is the pack (git may send a small probe first).
    const packBytes = Math.max(...server.requests.slice(before).filter((request) => request.method === "POST" && request.path.endsWith("git-receive-pack")).map((request) => request.requestBytes));
    expect(packBytes).toBeGreaterThan(content.byteLength);
    expect((await gitIn(fixture.barePath, ["cat-file", "-s", "agent/large:large.bin"])).trim()).toBe(String(content.byteLength));
  });
});

describe("pushBranch to a local repository (git CLI)", () => {
  it("pushes a new branch to a bare repository", async () => {
    const dir = await cloneFrom(localRepository());
    await writeFixtureFiles(dir, { "local.txt": "local\n" });
    const { commit } = await commitChanges({ dir, branch: "agent/local", message: "Local", author });
    await pushBranch({ dir, repository: localRepository(), branch: "agent/local" });
    expect((await bare(["rev-parse", "refs/heads/agent/local"])).trim()).toBe(commit);
  });

  it("pushes to a repository with a working tree without touching its checkout", async () => {
    const work: ResolvedRepository = { id: fixture.workPath, remote: fixture.workPath, defaultBranch: "main", canPush: true };
    const dir = await cloneFrom(work);
    await writeFixtureFiles(dir, { "README.md": "changed\n" });
    const { commit } = await commitChanges({ dir, branch: "agent/work", message: "Work", author });
    await pushBranch({ dir, repository: work, branch: "agent/work" });
    expect((await gitIn(fixture.workPath, ["rev-parse", "refs/heads/agent/work"])).trim()).toBe(commit);
    expect(await readFile(join(fixture.workPath, "README.md"), "utf8")).toBe("# Fixture\n");
    expect(await gitIn(fixture.workPath, ["status", "--porcelain"])).toBe("");
  });

  it("fails with PUSH_REJECTED on a diverged branch", async () => {
    const first = await cloneFrom(localRepository());
    await writeFixtureFiles(first, { "a.txt": "a\n" });
    const { commit: theirs } = await commitChanges({ dir: first, branch: "agent/local-taken", message: "A", author });
    await pushBranch({ dir: first, repository: localRepository(), branch: "agent/local-taken" });
    const second = await cloneFrom(localRepository());
    await writeFixtureFiles(second, { "b.txt": "b\n" });
    await commitChanges({ dir: second, branch: "agent/local-taken", message: "B", author });
    const error = await expectRunningAgentError(pushBranch({ dir: second, repository: localRepository(), branch: "agent/local-taken" }));
    expect(error.code).toBe("PUSH_REJECTED");
    expect((await bare(["rev-parse", "refs/heads/agent/local-taken"])).trim()).toBe(theirs);
  });
});
