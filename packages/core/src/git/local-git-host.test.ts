import { mkdir, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RunningAgentError } from "../errors.js";
import { testGitHost } from "../testing/git-host-conformance.js";
import { createLocalGitHost } from "./local-git-host.js";
import { createGitFixture, gitIn, type GitFixture } from "./git-fixture.js";

const fixtures: GitFixture[] = [];
async function fixture(branch = "main"): Promise<GitFixture> {
  const created = await createGitFixture({ bare: true, branch });
  fixtures.push(created);
  return created;
}

afterAll(async () => {
  for (const created of fixtures.splice(0)) await created.cleanup();
});

testGitHost({
  name: "local, bare repository as a path",
  createHost: () => createLocalGitHost(),
  createRepository: async () => {
    const created = await createGitFixture({ bare: true, branch: "trunk" });
    return { repo: created.barePath, defaultBranch: "trunk", cleanup: created.cleanup };
  },
  missingRepository: () => join(tmpdir(), `running-agent-missing-${process.pid}`, "repo.git"),
  unsupportedRepository: "https://git.example.test/owner/repo.git",
  readChangeRequest: (host, repository, number) => createLocalGitHost().getChangeRequest(repository, number),
});

testGitHost({
  name: "local, repository with a working tree as a file:// URL",
  createHost: () => createLocalGitHost(),
  createRepository: async () => {
    const created = await createGitFixture({ branch: "main" });
    return { repo: pathToFileURL(created.workPath).href, defaultBranch: "main", cleanup: created.cleanup };
  },
  missingRepository: () => pathToFileURL(join(tmpdir(), `running-agent-missing-${process.pid}`)).href,
  readChangeRequest: (host, repository, number) => createLocalGitHost().getChangeRequest(repository, number),
});

describe("createLocalGitHost specifics", () => {
  const host = createLocalGitHost();
  let repo: GitFixture;

  beforeAll(async () => {
    repo = await fixture();
  });

  it("is not fooled by a folder inside another repository", async () => {
    expect((await host.resolveRepository(repo.workPath)).defaultBranch).toBe("main");
    await mkdir(join(repo.workPath, "sub"), { recursive: true });
    const inner = await host.resolveRepository(join(repo.workPath, "sub")).catch((caught: unknown) => caught);
    expect(RunningAgentError.isInstance(inner) && inner.code).toBe("REPO_NOT_FOUND");
  });

  it("branchExists answers false for a missing branch, and REPO_NOT_FOUND for a path that is no repository (not its parent's)", async () => {
    const repository = await host.resolveRepository(repo.barePath);
    expect(await host.branchExists(repository, "main")).toBe(true);
    expect(await host.branchExists(repository, "no-such-branch")).toBe(false);
    await mkdir(join(repo.workPath, "inner"), { recursive: true });
    const inner = await host.branchExists({ ...repository, remote: join(repo.workPath, "inner") }, "main").catch((caught: unknown) => caught);
    expect(RunningAgentError.isInstance(inner) && inner.code).toBe("REPO_NOT_FOUND");
    const gone = await host.branchExists({ ...repository, remote: join(repo.workPath, "gone") }, "main").catch((caught: unknown) => caught);
    expect(RunningAgentError.isInstance(gone) && gone.code).toBe("REPO_NOT_FOUND");
  });

  it("reports canPush false when read-only", async () => {
    const repository = await createLocalGitHost({ readOnly: true }).resolveRepository(repo.barePath);
    expect(repository.canPush).toBe(false);
    expect((await host.resolveRepository(repo.barePath)).canPush).toBe(true);
    expect(await host.getCredentials(repository, "write")).toBeUndefined();
  });

  it("rejects http URLs with UNSUPPORTED_REPO and invalid branch names with INVALID_BRANCH", async () => {
    const error = await host.resolveRepository("https://git.example.test/owner/repo.git").catch((caught: unknown) => caught);
    expect(RunningAgentError.isInstance(error) && error.code).toBe("UNSUPPORTED_REPO");
    const repository = await host.resolveRepository(repo.barePath);
    await expect(host.branchExists(repository, "bad..name")).rejects.toMatchObject({ code: "INVALID_BRANCH" });
  });

  it("records every field in <gitdir>/running-agent/change-requests.json and lists them", async () => {
    const repository = await host.resolveRepository(repo.barePath);
    await gitIn(repo.workPath, ["push", "--quiet", repo.barePath, "main:refs/heads/agent/fields"]);
    const opened = await host.openChangeRequest(repository, {
      head: "agent/fields",
      base: "main",
      title: "Fields",
      body: "Body",
      draft: true,
      labels: ["a", "b"],
      reviewers: ["rev"],
      assignees: ["ass"],
    });
    expect(opened.url).toBe(`local://${repository.id}/change-requests/${opened.number}`);
    const stored = JSON.parse(await readFile(join(repo.barePath, "running-agent", "change-requests.json"), "utf8"));
    expect(stored.version).toBe(1);
    const record = await host.getChangeRequest(repo.barePath, opened.number);
    expect(record).toMatchObject({
      number: opened.number,
      state: "open",
      head: "agent/fields",
      base: "main",
      headCommit: repo.commit,
      title: "Fields",
      body: "Body",
      draft: true,
      labels: ["a", "b"],
      reviewers: ["rev"],
      assignees: ["ass"],
    });
    expect(Date.parse(record!.createdAt)).not.toBeNaN();
    expect(await host.listChangeRequests(repository)).toContainEqual(record);
    expect(await host.getChangeRequest(repository, 9999)).toBeUndefined();
    // No temp or lock file is left next to it.
    expect((await readdir(join(repo.barePath, "running-agent"))).sort()).toEqual(["change-requests.json"]);
    // A clone of the repository does not carry the records.
    const clone = await mkdtemp(join(tmpdir(), "running-agent-local-host-test-"));
    try {
      await gitIn(clone, ["clone", "--quiet", "--mirror", repo.barePath, "mirror.git"]);
      await expect(readdir(join(clone, "mirror.git", "running-agent"))).rejects.toThrow(/ENOENT/);
    } finally {
      await rm(clone, { recursive: true, force: true });
    }
  });

  it("keeps numbers unique when change requests are opened at the same time", async () => {
    const repository = await host.resolveRepository(repo.barePath);
    const heads = Array.from({ length: 6 }, (_, index) => `agent/parallel-${index}`);
    for (const head of heads) await gitIn(repo.workPath, ["push", "--quiet", repo.barePath, `main:refs/heads/${head}`]);
    const opened = await Promise.all(heads.map((head) => createLocalGitHost().openChangeRequest(repository, { head, base: "main", title: head, body: "" })));
    expect(new Set(opened.map((request) => request.number)).size).toBe(heads.length);
    const listed = await host.listChangeRequests(repository);
    for (const head of heads) expect(listed.filter((request) => request.head === head)).toHaveLength(1);
  });

  it("refuses a change request whose head was never pushed", async () => {
    const repository = await host.resolveRepository(repo.barePath);
    await expect(host.openChangeRequest(repository, { head: "agent/never-pushed", base: "main", title: "x", body: "" })).rejects.toMatchObject({
      code: "PULL_REQUEST_FAILED",
    });
  });
});
