import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { createLocalSandbox, runAgentTask, type ResolvedRepository } from "@running-agent/core";
import { expectRunningAgentError } from "@running-agent/core/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createGitLab } from "./index.js";
import { startGitLabServer, type GitLabServer } from "./testing/index.js";

const execFileAsync = promisify(execFile);
let server: GitLabServer;
let developer: string;

beforeAll(async () => {
  server = await startGitLabServer();
  await server.createProject({ path: "acme/app", members: { dev: "developer", reporter: "reporter", guest: "guest" } });
  await server.createProject({ path: "acme/platform/services/api", members: { dev: "developer" } });
  developer = server.createPersonalAccessToken("dev");
});

afterAll(async () => {
  await server?.close();
});

const apiRequests = () => server.requests.filter((record) => record.kind === "api").length;

describe("createGitLab: bad input is refused at construction, without I/O", () => {
  it.each([
    ["a line break", "glpat-abc\ndef"],
    ["a space", "glpat-abc def"],
    ["a non-ASCII letter", "glpat-abcé"],
    ["a NUL byte", "glpat-abc\u0000"],
  ])("a token with %s is INVALID_OPTIONS, and the message does not quote it", (_what, token) => {
    const error = (() => {
      try {
        createGitLab({ token, baseUrl: server.url });
      } catch (caught) {
        return caught as Error & { code?: string };
      }
      return undefined;
    })();
    expect(error?.code).toBe("INVALID_OPTIONS");
    expect(error?.message).not.toContain("abc");
  });

  it.each([["not a URL"], ["ftp://gitlab.example.test"], ["https://user:secret@gitlab.example.test"], ["https://gitlab.example.test/?x=1"]])("baseUrl %j is INVALID_OPTIONS", (baseUrl) => {
    expect(() => createGitLab({ token: developer, baseUrl })).toThrow(expect.objectContaining({ code: "INVALID_OPTIONS" }));
  });

  it("refuses a negative maxRateLimitWaitSeconds and a dispatcher that is not an object", () => {
    expect(() => createGitLab({ token: developer, maxRateLimitWaitSeconds: -1 })).toThrow(expect.objectContaining({ code: "INVALID_OPTIONS" }));
    expect(() => createGitLab({ token: developer, dispatcher: "agent" as never })).toThrow(expect.objectContaining({ code: "INVALID_OPTIONS" }));
  });

  it("normalizes ssh forms of its own host to the https URL the core parses, and leaves the rest", () => {
    const gitlabCom = createGitLab({ token: developer });
    expect(gitlabCom.normalizeRepo("git@gitlab.com:group/sub/project.git")).toBe("https://gitlab.com/group/sub/project.git");
    expect(gitlabCom.normalizeRepo("ssh://git@gitlab.com/group/project")).toBe("https://gitlab.com/group/project.git");
    expect(gitlabCom.normalizeRepo("https://gitlab.com/group/project")).toBeUndefined();
    expect(gitlabCom.normalizeRepo("git@github.com:octo/app.git")).toBeUndefined();
    expect(() => gitlabCom.normalizeRepo("git@gitlab.com:group/../project.git")).toThrow(expect.objectContaining({ code: "INVALID_REPO" }));
  });

  it("defaults to gitlab.com, takes a baseUrl ending in /api/v4, and serves only its own host", () => {
    const gitlabCom = createGitLab({ token: developer });
    expect(gitlabCom.endpoints).toMatchObject({ webUrl: "https://gitlab.com", apiUrl: "https://gitlab.com/api/v4", gitUrl: "https://gitlab.com" });
    expect(gitlabCom.supports("https://gitlab.com/group/sub/project.git")).toBe(true);
    expect(gitlabCom.supports("git@gitlab.com:group/project.git")).toBe(true);
    expect(gitlabCom.supports("https://github.com/group/project.git")).toBe(false);
    const selfManaged = createGitLab({ token: developer, baseUrl: "https://example.test/gitlab/api/v4" });
    expect(selfManaged.endpoints).toMatchObject({ webUrl: "https://example.test/gitlab", apiUrl: "https://example.test/gitlab/api/v4" });
    expect(selfManaged.supports("https://example.test/gitlab/group/project")).toBe(true);
    expect(selfManaged.supports("https://gitlab.com/group/project")).toBe(false);
  });
});

describe("resolveRepository: checks before anything is created", () => {
  const host = () => createGitLab({ token: developer, baseUrl: server.url });

  it("resolves a project in a subgroup, with the token's access and no credential in the remote", async () => {
    const repository = await host().resolveRepository(`${server.url}/acme/platform/services/api.git`);
    expect(repository).toEqual({ id: "acme/platform/services/api", remote: `${server.url}/acme/platform/services/api.git`, defaultBranch: "main", canPush: true, webUrl: `${server.url}/acme/platform/services/api` });
  });

  it("refuses a URL of another host with UNSUPPORTED_REPO, without a request", async () => {
    const before = apiRequests();
    await expectRunningAgentError(host().resolveRepository("https://gitlab.com/acme/app.git"), "UNSUPPORTED_REPO");
    expect(apiRequests()).toBe(before);
  });

  it.each(["acme/../app", "acme/./app", "acme//app", "acme/%2e%2e/app", "app", "acme/app/-/tree/main", "acme/-app", "acme/app?ref=main"])(
    "refuses the project path %j with INVALID_REPO, without a request",
    async (path) => {
      const before = apiRequests();
      const error = await expectRunningAgentError(host().resolveRepository(`${server.url}/${path}`), "INVALID_REPO");
      expect(error.message).not.toContain(developer);
      expect(apiRequests()).toBe(before);
    },
  );

  it("drops credentials embedded in the URL from every message", async () => {
    const error = await expectRunningAgentError(host().resolveRepository(`http://oauth2:glpat-embedded@127.0.0.1:${new URL(server.url).port}/acme/../x`), "INVALID_REPO");
    expect(error.message).not.toContain("glpat-embedded");
  });

  it("REPO_NOT_FOUND for a missing project and for a private one the token is not a member of", async () => {
    await server.createProject({ path: "secret/vault" });
    await expectRunningAgentError(host().resolveRepository(`${server.url}/acme/missing`), "REPO_NOT_FOUND");
    await expectRunningAgentError(host().resolveRepository(`${server.url}/secret/vault`), "REPO_NOT_FOUND");
  });

  it("PERMISSION_DENIED below the Developer role, with the access level in the details", async () => {
    for (const [username, level] of [["reporter", 20], ["guest", 10]] as const) {
      const token = server.createPersonalAccessToken(username);
      const error = await expectRunningAgentError(createGitLab({ token, baseUrl: server.url }).resolveRepository(`${server.url}/acme/app`), "PERMISSION_DENIED");
      expect(error.details).toMatchObject({ accessLevel: level });
    }
  });

  it("REPO_ARCHIVED for an archived project", async () => {
    await server.createProject({ path: "acme/old", archived: true, members: { dev: "maintainer" } });
    await expectRunningAgentError(host().resolveRepository(`${server.url}/acme/old`), "REPO_ARCHIVED");
  });

  it("AUTH_FAILED for a revoked or expired token, and for no token at all", async () => {
    const revoked = server.createPersonalAccessToken("dev");
    server.revokeToken(revoked);
    await expectRunningAgentError(createGitLab({ token: revoked, baseUrl: server.url }).resolveRepository(`${server.url}/acme/app`), "AUTH_FAILED");
    const expired = server.createPersonalAccessToken("dev", { expiresInSeconds: 0 });
    await expectRunningAgentError(createGitLab({ token: expired, baseUrl: server.url }).resolveRepository(`${server.url}/acme/app`), "AUTH_FAILED");
    const saved = process.env.GITLAB_TOKEN;
    delete process.env.GITLAB_TOKEN;
    try {
      await expectRunningAgentError(createGitLab({ baseUrl: server.url }).resolveRepository(`${server.url}/acme/app`), "AUTH_FAILED");
    } finally {
      if (saved !== undefined) process.env.GITLAB_TOKEN = saved;
    }
  });

  it("takes a project access token (a bot member of the project) and hands git oauth2:<token>", async () => {
    const token = server.createProjectAccessToken("acme/app", { role: "developer", scopes: ["api", "write_repository"] });
    const gitLab = createGitLab({ token, baseUrl: server.url });
    const repository = await gitLab.resolveRepository(`${server.url}/acme/app`);
    expect(repository.canPush).toBe(true);
    expect(await gitLab.getCredentials(repository, "write")).toEqual({ username: "oauth2", password: token });
    expect(gitLab.secrets()).toEqual([token]);
    expect((await gitLab.commitIdentity()).name).toBe("app bot");
  });

  it("a per-task token with bytes a header cannot carry is INVALID_OPTIONS", async () => {
    await expectRunningAgentError(createGitLab({ token: developer, baseUrl: server.url }).resolveRepository(`${server.url}/acme/app`, { token: "bad\r\ntoken" }), "INVALID_OPTIONS");
  });
});

describe("GitLab's errors and rate limits", () => {
  const repo = () => `${server.url}/acme/app`;

  it("retries a 429 after the Retry-After GitLab names, and succeeds", async () => {
    server.rateLimit({ retryAfterSeconds: 0, times: 2, path: "/projects/:id" });
    const before = server.requests.length;
    await expect(createGitLab({ token: developer, baseUrl: server.url }).resolveRepository(repo())).resolves.toMatchObject({ id: "acme/app" });
    expect(server.requests.slice(before).map((record) => record.status)).toEqual([429, 429, 200]);
  });

  it("RATE_LIMITED with retryAfterSeconds when Retry-After is longer than maxRateLimitWaitSeconds, without waiting", async () => {
    server.rateLimit({ retryAfterSeconds: 3600, path: "/projects/:id" });
    const error = await expectRunningAgentError(createGitLab({ token: developer, baseUrl: server.url }).resolveRepository(repo()), "RATE_LIMITED");
    expect(error.details).toMatchObject({ status: 429, retryAfterSeconds: 3600 });
  });

  it("reads RateLimit-Reset when there is no Retry-After", async () => {
    server.rateLimit({ retryAfterSeconds: 900, retryAfter: false, path: "/projects/:id" });
    const error = await expectRunningAgentError(createGitLab({ token: developer, baseUrl: server.url }).resolveRepository(repo()), "RATE_LIMITED");
    const wait = (error.details as { retryAfterSeconds: number }).retryAfterSeconds;
    expect(wait).toBeGreaterThan(800);
    expect(wait).toBeLessThanOrEqual(900);
  });

  it("retries a 502 and 503, and gives GIT_HOST_ERROR when they go on", async () => {
    server.injectFailure({ status: 502, path: "/projects/:id" });
    await expect(createGitLab({ token: developer, baseUrl: server.url, maxRetries: 1 }).resolveRepository(repo())).resolves.toMatchObject({ id: "acme/app" });
    server.injectFailure({ status: 503, path: "/projects/:id", times: 2 });
    const error = await expectRunningAgentError(createGitLab({ token: developer, baseUrl: server.url, maxRetries: 1 }).resolveRepository(repo()), "GIT_HOST_ERROR");
    expect(error.message).toContain("503");
  });

  it("PERMISSION_DENIED for a 403, naming the missing scope of a read_api token", async () => {
    const readOnly = server.createPersonalAccessToken("dev", { scopes: ["read_api"] });
    const gitLab = createGitLab({ token: readOnly, baseUrl: server.url });
    const repository = await gitLab.resolveRepository(repo());
    const error = await expectRunningAgentError(gitLab.openChangeRequest(repository, { head: "x", base: "main", title: "t", body: "" }), "PERMISSION_DENIED");
    expect(error.message).toContain("scope");
  });

  it("GIT_HOST_ERROR when GitLab cannot be reached", async () => {
    const gone = await startGitLabServer();
    const url = gone.url;
    await gone.close();
    await expectRunningAgentError(createGitLab({ token: developer, baseUrl: url }).resolveRepository(`${url}/acme/app`), "GIT_HOST_ERROR");
  });
});

describe("merge requests", () => {
  let repository: ResolvedRepository;
  const gitLab = () => createGitLab({ token: developer, baseUrl: server.url });

  beforeAll(async () => {
    repository = await gitLab().resolveRepository(`${server.url}/acme/app`);
  });

  it("refuses an unknown reviewer before any merge request exists", async () => {
    await expectRunningAgentError(gitLab().openChangeRequest(repository, { head: "main", base: "main", title: "t", body: "", reviewers: ["nobody-here"] }), "PULL_REQUEST_FAILED");
    expect(server.mergeRequests("acme/app")).toEqual([]);
  });

  it("updates the merge request another run opened between the look-up and the create (GitLab's 409)", async () => {
    await server.createBranch("acme/app", "agent/race");
    const first = await gitLab().openChangeRequest(repository, { head: "agent/race", base: "main", title: "First", body: "One" });
    // The next look-up misses it, as if the other run's create had not landed yet.
    server.injectFailure({ method: "GET", path: "/projects/:id/merge_requests", status: 200, body: [] });
    const before = server.requests.length;
    const second = await gitLab().openChangeRequest(repository, { head: "agent/race", base: "main", title: "Second", body: "Two" });
    expect(second).toMatchObject({ number: first.number, created: false, title: "Second", body: "Two" });
    expect(server.requests.slice(before).map((record) => `${record.method} ${record.route} ${record.status}`)).toContain("POST /projects/:id/merge_requests 409");
    expect(server.mergeRequests("acme/app").filter((mergeRequest) => mergeRequest.sourceBranch === "agent/race")).toHaveLength(1);
  });

  it("refuses a label with a comma (GitLab's list separator)", async () => {
    await expectRunningAgentError(gitLab().openChangeRequest(repository, { head: "x", base: "main", title: "t", body: "", labels: ["a,b"] }), "INVALID_OPTIONS");
  });
});

describe("runAgentTask validate with createGitLab: typed errors before any sandbox exists", () => {
  const noSandbox = () => {
    const counter = { created: 0 };
    return {
      counter,
      sandbox: {
        specificationVersion: "sandbox-v1" as const,
        providerId: "counting",
        create: async () => {
          counter.created++;
          throw new Error("no sandbox may be opened");
        },
      },
    };
  };
  const run = (options: { branch?: string; baseBranch?: string; token?: string; repo?: string; gitToken?: string }, sandbox: ReturnType<typeof noSandbox>["sandbox"]) =>
    runAgentTask({
      repo: options.repo ?? `${server.url}/acme/app.git`,
      task: "Add a multiply function",
      model: { provider: "openai-compatible", model: "scripted", baseURL: "http://127.0.0.1:9/v1", apiKey: "test-key" },
      sandbox,
      gitHost: createGitLab({ token: options.token ?? developer, baseUrl: server.url }),
      ...(options.branch ? { branch: options.branch } : {}),
      ...(options.baseBranch ? { baseBranch: options.baseBranch } : {}),
      ...(options.gitToken ? { gitToken: options.gitToken } : {}),
    }).catch((caught: unknown) => caught);

  it.each([
    ["a URL of another host", { repo: "https://gitlab.example.test/acme/app.git" }, "UNSUPPORTED_REPO"],
    ["a project path with ..", { repo: `${"SERVER"}/acme/../app.git` }, "INVALID_REPO"],
    ["a project path with an empty segment", { repo: `${"SERVER"}/acme//app.git` }, "INVALID_REPO"],
    ["a per-task token with a line break", { gitToken: "glpat-abc\r\nX-Injected: 1" }, "INVALID_OPTIONS"],
  ] as const)("%s is %s in validate, without a request to GitLab", async (_what, options, code) => {
    const { counter, sandbox } = noSandbox();
    const before = apiRequests();
    const repo = "repo" in options ? options.repo.replace("SERVER", server.url) : undefined;
    const error = (await run({ ...options, ...(repo ? { repo } : {}) }, sandbox)) as Error & { code?: string; phase?: string };
    expect(error).toMatchObject({ code, phase: "validate" });
    expect(error.message).not.toContain("X-Injected");
    expect(counter.created).toBe(0);
    expect(apiRequests()).toBe(before);
  });

  it("BASE_BRANCH_NOT_FOUND for an unknown base branch", async () => {
    const { counter, sandbox } = noSandbox();
    expect(await run({ baseBranch: "no-such-branch" }, sandbox)).toMatchObject({ code: "BASE_BRANCH_NOT_FOUND", phase: "validate" });
    expect(counter.created).toBe(0);
  });

  it("INVALID_BRANCH for a protected branch the token may not push as the task's own branch", async () => {
    await server.createBranch("acme/app", "release/1.0");
    server.protectBranch("acme/app", "release/1.0");
    const { counter, sandbox } = noSandbox();
    expect(await run({ branch: "release/1.0" }, sandbox)).toMatchObject({ code: "INVALID_BRANCH", phase: "validate" });
    expect(counter.created).toBe(0);
    // A maintainer may push there (GitLab's default for a protected branch), so the same branch is fine for one.
    server.addProjectMember("acme/app", "lead", "maintainer");
    const lead = server.createPersonalAccessToken("lead");
    const host = createGitLab({ token: lead, baseUrl: server.url });
    const repository = await host.resolveRepository(`${server.url}/acme/app`);
    await expect(host.checkPushBranch(repository, "release/1.0")).resolves.toBeUndefined();
  });

  it("INVALID_BRANCH for a new branch a wildcard rule (frozen/*) covers, when the token may read the rules", async () => {
    server.addProjectMember("acme/app", "lead", "maintainer");
    const lead = server.createPersonalAccessToken("lead");
    server.protectBranch("acme/app", "frozen/*", "no one");
    const { counter, sandbox } = noSandbox();
    expect(await run({ branch: "frozen/2.0", token: lead }, sandbox)).toMatchObject({ code: "INVALID_BRANCH", phase: "validate", details: { branch: "frozen/2.0" } });
    expect(counter.created).toBe(0);
    expect(await server.branchSha("acme/app", "frozen/2.0")).toBeUndefined();
    const host = createGitLab({ token: lead, baseUrl: server.url });
    const repository = await host.resolveRepository(`${server.url}/acme/app`);
    // The wildcard covers the whole rest of the name, slashes too.
    await expectRunningAgentError(host.checkPushBranch(repository, "frozen/a/b"), "INVALID_BRANCH");
    // Not covered: a branch that only starts like the rule.
    await expect(host.checkPushBranch(repository, "frozen-2")).resolves.toBeUndefined();
    // Where several rules cover a branch, the most permissive decides, as in GitLab.
    server.protectBranch("acme/app", "frozen/open-*", "maintainer");
    await expect(host.checkPushBranch(repository, "frozen/open-1")).resolves.toBeUndefined();
    // Rules pushable at Maintainer level refuse a new branch to a Maintainer, not before.
    server.protectBranch("acme/app", "admins/*", 60);
    await expectRunningAgentError(host.checkPushBranch(repository, "admins/x"), "INVALID_BRANCH");
  });

  it("a Developer's token cannot read the rules (GitLab's 403), so a wildcard rule is met at the push, which git refuses", async () => {
    server.protectBranch("acme/app", "locked/*");
    const host = createGitLab({ token: developer, baseUrl: server.url });
    const repository = await host.resolveRepository(`${server.url}/acme/app`);
    const before = server.requests.length;
    await expect(host.checkPushBranch(repository, "locked/1")).resolves.toBeUndefined();
    expect(server.requests.slice(before).map((record) => `${record.method} ${record.route} ${record.status}`)).toContain("GET /projects/:id/protected_branches 403");
  });

  it("git itself refuses a developer's push to a protected branch, as GitLab's pre-receive check does", async () => {
    server.protectBranch("acme/app", "main");
    server.protectBranch("acme/app", "locked/*");
    const before = await server.branchSha("acme/app", "main");
    const dir = await mkdtemp(join(tmpdir(), "gitlab-protected-"));
    try {
      const url = new URL(`${server.url}/acme/app.git`);
      url.username = "oauth2";
      url.password = developer;
      const env = { ...process.env, GIT_TERMINAL_PROMPT: "0", GIT_CONFIG_NOSYSTEM: "1", GIT_CONFIG_GLOBAL: "/dev/null" };
      const git = (...args: string[]) => execFileAsync("git", ["-c", "user.name=Dev", "-c", "user.email=dev@example.test", ...args], { cwd: dir, env });
      await git("clone", "--quiet", url.href, ".");
      await writeFile(join(dir, "CHANGE.md"), "change\n");
      await git("add", "CHANGE.md");
      await git("commit", "--quiet", "-m", "Change");
      const failure = (await git("push", "origin", "HEAD:refs/heads/main").catch((error: unknown) => error)) as { stderr?: string };
      expect(failure.stderr).toContain("You are not allowed to push code to protected branches on this project.");
      expect(await server.branchSha("acme/app", "main")).toBe(before);
      // A new branch that a wildcard rule covers is refused too.
      const wildcard = (await git("push", "origin", "HEAD:refs/heads/locked/new").catch((error: unknown) => error)) as { stderr?: string };
      expect(wildcard.stderr).toContain("You are not allowed to push code to protected branches on this project.");
      expect(await server.branchSha("acme/app", "locked/new")).toBeUndefined();
      // An unprotected branch takes the same push.
      await git("push", "--quiet", "origin", "HEAD:refs/heads/feature/change");
      expect(await server.readFile("acme/app", "feature/change", "CHANGE.md")).toBe("change\n");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
