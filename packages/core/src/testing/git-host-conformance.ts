import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GIT_HOST_SPEC_VERSION, type GitHost, type ResolvedRepository } from "../spec/git-host-spec.js";
import { cloneRepository } from "../git/clone.js";
import { commitChanges } from "../git/commit.js";
import { pushBranch } from "../git/push.js";
import { expectRunningAgentError } from "./expect-running-agent-error.js";

/** A repository made for the suite. */
export interface ConformanceRepository {
  /** The reference a user would pass as `repo` (URL or path). */
  repo: string;
  /** The branch the host must report as default. */
  defaultBranch: string;
  /** Removes the repository. */
  cleanup: () => Promise<void>;
}

/** What a change request reads back as, for hosts that can show it. */
export interface ConformanceChangeRequest {
  /** Its title. */
  title: string;
  /** Its description. */
  body: string;
  /** The branch it merges from. */
  head: string;
  /** The branch it merges into. */
  base: string;
  /** Whether it is a draft. */
  draft: boolean;
}

/** Options for {@link testGitHost}. */
export interface GitHostConformanceOptions {
  /** Shown in the suite's name. */
  name: string;
  /** Makes the Git host under test. */
  createHost: () => GitHost | Promise<GitHost>;
  /** Makes a fresh repository with at least one commit on its default branch, which the host can push to. */
  createRepository: () => Promise<ConformanceRepository>;
  /** A reference the host serves but that names no repository. */
  missingRepository: () => string | Promise<string>;
  /** References that are malformed for every host. Default: empty, ssh://, scp-like, ftp://, a bare word. */
  malformedRepositories?: string[];
  /** A well-formed reference this host does not serve, for `supports()`. */
  unsupportedRepository?: string;
  /**
   * Makes a branch on the remote with one extra commit on top of the default branch. Default:
   * clones with the host's read credentials, commits a file and pushes with its write credentials,
   * using the core's own clone, commit and push.
   */
  createBranch?: (host: GitHost, repository: ResolvedRepository, branch: string) => Promise<void>;
  /** Reads a change request back from the host's side, when the host can (e.g. the local host's getChangeRequest). */
  readChangeRequest?: (host: GitHost, repository: ResolvedRepository, number: number) => Promise<ConformanceChangeRequest | undefined>;
}

const DEFAULT_MALFORMED = ["", "   ", "ssh://git@git.example.test/owner/repo.git", "git@git.example.test:owner/repo.git", "ftp://git.example.test/repo.git", "just-a-word"];

async function pushBranchWithCore(host: GitHost, repository: ResolvedRepository, branch: string): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "running-agent-conformance-"));
  try {
    const read = await host.getCredentials(repository, "read");
    await cloneRepository({ repository, branch: repository.defaultBranch, depth: 1, dir, ...(read ? { credentials: read } : {}) });
    await writeFile(join(dir, `conformance-${randomBytes(4).toString("hex")}.txt`), `${branch}\n`);
    await commitChanges({ dir, branch, message: `Conformance commit for ${branch}`, author: { name: "Conformance", email: "conformance@example.test" } });
    const write = await host.getCredentials(repository, "write");
    await pushBranch({ dir, repository, branch, ...(write ? { credentials: write } : {}) });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The tests every Git host must pass (`git-host-v1`), as a vitest suite. Call it at the top
 * level of a test file:
 *
 * ```ts
 * testGitHost({ name: "local", createHost: () => createLocalGitHost(), createRepository, missingRepository });
 * ```
 */
export function testGitHost(options: GitHostConformanceOptions): void {
  describe(`Git host conformance: ${options.name}`, () => {
    let host: GitHost;
    let fixture: ConformanceRepository;
    let repository: ResolvedRepository;
    const createBranch = options.createBranch ?? pushBranchWithCore;

    beforeAll(async () => {
      host = await options.createHost();
      fixture = await options.createRepository();
      repository = await host.resolveRepository(fixture.repo);
    });

    afterAll(async () => {
      await fixture?.cleanup();
    });

    it("declares the spec version and an id, and does no I/O to be made", () => {
      expect(host.specificationVersion).toBe(GIT_HOST_SPEC_VERSION);
      expect(typeof host.hostId).toBe("string");
      expect(host.hostId).not.toBe("");
    });

    it("supports() its repositories and not malformed ones", () => {
      expect(host.supports(fixture.repo)).toBe(true);
      for (const repo of options.malformedRepositories ?? DEFAULT_MALFORMED) expect(host.supports(repo), repo).toBe(false);
      if (options.unsupportedRepository !== undefined) expect(host.supports(options.unsupportedRepository)).toBe(false);
    });

    it("resolves a repository: id, remote, default branch, canPush", () => {
      expect(repository.id).not.toBe("");
      expect(repository.remote).not.toBe("");
      expect(repository.remote).not.toMatch(/\/\/[^/]*@/);
      expect(repository.defaultBranch).toBe(fixture.defaultBranch);
      expect(repository.canPush).toBe(true);
    });

    it("rejects a missing repository with REPO_NOT_FOUND", async () => {
      await expectRunningAgentError(host.resolveRepository(await options.missingRepository()), "REPO_NOT_FOUND");
    });

    it("rejects malformed references with INVALID_REPO", async () => {
      for (const repo of options.malformedRepositories ?? DEFAULT_MALFORMED) await expectRunningAgentError(host.resolveRepository(repo), "INVALID_REPO");
    });

    it("tells whether a branch exists", async () => {
      expect(await host.branchExists(repository, repository.defaultBranch)).toBe(true);
      expect(await host.branchExists(repository, `no-such-branch-${randomBytes(4).toString("hex")}`)).toBe(false);
    });

    it("opens a change request, then updates the same one for the same head", async () => {
      const head = `conformance/change-${randomBytes(4).toString("hex")}`;
      await createBranch(host, repository, head);
      expect(await host.branchExists(repository, head)).toBe(true);

      const input = {
        head,
        base: repository.defaultBranch,
        title: "Conformance: first title",
        body: "First body\n\nwith **Markdown**",
        draft: false,
        labels: ["conformance"],
        reviewers: [],
        assignees: [],
      };
      const opened = await host.openChangeRequest(repository, input);
      expect(opened).toMatchObject({ head, base: repository.defaultBranch, title: input.title, body: input.body, draft: false, created: true });
      expect(Number.isInteger(opened.number) && opened.number > 0).toBe(true);
      expect(opened.url).not.toBe("");
      if (options.readChangeRequest) {
        expect(await options.readChangeRequest(host, repository, opened.number)).toMatchObject({ head, base: input.base, title: input.title, body: input.body, draft: false });
      }

      const updated = await host.openChangeRequest(repository, { ...input, title: "Conformance: second title", body: "Second body" });
      expect(updated).toMatchObject({ number: opened.number, url: opened.url, created: false, title: "Conformance: second title", body: "Second body" });
      if (options.readChangeRequest) {
        expect(await options.readChangeRequest(host, repository, opened.number)).toMatchObject({ title: "Conformance: second title", body: "Second body" });
      }

      // Another head is another change request.
      const otherHead = `conformance/other-${randomBytes(4).toString("hex")}`;
      await createBranch(host, repository, otherHead);
      const other = await host.openChangeRequest(repository, { ...input, head: otherHead });
      expect(other.created).toBe(true);
      expect(other.number).not.toBe(opened.number);
    });

    it("opens a draft, keeps it a draft on an update that does not say, and marks it ready when asked", async () => {
      const head = `conformance/draft-${randomBytes(4).toString("hex")}`;
      await createBranch(host, repository, head);
      const input = { head, base: repository.defaultBranch, title: "Conformance: a draft", body: "Draft body" };
      expect(await host.openChangeRequest(repository, { ...input, draft: true })).toMatchObject({ created: true, draft: true });
      const kept = await host.openChangeRequest(repository, { ...input, body: "Second body" });
      expect(kept).toMatchObject({ created: false, draft: true, body: "Second body" });
      const ready = await host.openChangeRequest(repository, { ...input, draft: false });
      expect(ready).toMatchObject({ number: kept.number, created: false, draft: false });
      if (options.readChangeRequest) {
        expect(await options.readChangeRequest(host, repository, kept.number)).toMatchObject({ draft: false });
      }
    });

    it("rejects a change request into a base branch that does not exist", async () => {
      const head = `conformance/no-base-${randomBytes(4).toString("hex")}`;
      await createBranch(host, repository, head);
      await expectRunningAgentError(
        host.openChangeRequest(repository, { head, base: `no-such-base-${randomBytes(4).toString("hex")}`, title: "No base", body: "" }),
        "BASE_BRANCH_NOT_FOUND",
      );
    });
  });
}
