import { generateKeyPairSync } from "node:crypto";
import { createServer, type Socket } from "node:net";
import { inspect } from "node:util";
import { Octokit } from "@octokit/rest";
import { ErrorCode, RunningAgentError } from "@running-agent/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createGitHub, type GitHubSettings } from "./index.js";
import { startGitHubServer, type GitHubServer } from "./testing/index.js";
import { OpenApiResponseValidator } from "./testing/openapi-response-validator.js";

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

/** The typed error a promise rejects with; fails when it resolves. */
async function rejection(promise: Promise<unknown>): Promise<RunningAgentError> {
  try {
    await promise;
  } catch (error) {
    expect(RunningAgentError.isInstance(error)).toBe(true);
    return error as RunningAgentError;
  }
  throw new Error("Expected a rejection.");
}

describe("createGitHub", () => {
  let server: GitHubServer;
  let writer: string;
  let reader: string;
  const repo = "https://github.com/octo/widgets.git";
  const host = (settings: GitHubSettings = {}) => createGitHub({ token: writer, baseUrl: server.apiUrl, gitUrl: server.gitUrl, webUrl: "https://github.com", ...settings });
  const octokit = () => new Octokit({ baseUrl: server.apiUrl, auth: writer, log: quiet });

  beforeAll(async () => {
    server = await startGitHubServer();
    await server.createRepository({ owner: "octo", name: "widgets", defaultBranch: "trunk", files: { "README.md": "# Widgets\n" }, collaborators: ["alice", "bob"] });
    await server.createRepository({ owner: "octo", name: "attic", files: { "README.md": "old\n" }, archived: true });
    writer = server.grantToken({ login: "agent-bot", permission: "push" });
    reader = server.grantToken({ login: "visitor", permission: "pull" });
  });

  afterAll(async () => {
    await server?.close();
  });

  it("is a git-host-v1 built without I/O, and rejects bad settings with INVALID_OPTIONS", () => {
    const before = server.requests.length;
    const gitHub = createGitHub({ token: "ghp_x" });
    expect(gitHub.specificationVersion).toBe("git-host-v1");
    expect(gitHub.hostId).toBe("github");
    expect(gitHub.endpoints).toMatchObject({ apiUrl: "https://api.github.com", webUrl: "https://github.com", gitUrl: "https://github.com" });
    expect(createGitHub({ baseUrl: "https://ghe.example.test/api/v3/" }).endpoints).toMatchObject({ apiUrl: "https://ghe.example.test/api/v3", webUrl: "https://ghe.example.test" });
    expect(server.requests.length).toBe(before);
    for (const settings of [{ baseUrl: "not a url" }, { baseUrl: "ftp://x.test" }, { baseUrl: "https://user:pw@ghe.test/api/v3" }, { token: "" }, { app: { appId: 1, privateKey: "nope", installationId: 1 } }, { app: { appId: 1, privateKey: "-----BEGIN RSA PRIVATE KEY-----", installationId: 0 } }, { maxRateLimitWaitSeconds: -1 }, { tokenRefreshMarginSeconds: Number.NaN }]) {
      expect(() => createGitHub(settings as GitHubSettings)).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_OPTIONS }));
    }
  });

  it("refuses at construction a token a header cannot carry and a private key that is not an RSA PEM, never echoing them", async () => {
    const before = server.requests.length;
    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs1", format: "pem" }).toString();
    const ec = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    const badTokens = ["ghp_abc\r\nX-Injected: yes", "ghp_abc\n", "ghp_\u0000abc", "ghp_abc def", "ghp_äbc", "ghp_\u2028abc"];
    const badKeys = ["-----BEGIN RSA PRIVATE KEY-----\nbm90IGEga2V5\n-----END RSA PRIVATE KEY-----\n", `${rsa.slice(0, 200)}\n-----END RSA PRIVATE KEY-----\n`, ec];
    const cases: GitHubSettings[] = [...badTokens.map((token) => ({ token })), ...badKeys.map((privateKey) => ({ app: { appId: 1, privateKey, installationId: 1 } }))];
    for (const settings of cases) {
      let error: unknown;
      try {
        createGitHub({ ...settings, baseUrl: server.apiUrl });
      } catch (caught) {
        error = caught;
      }
      expect(error, JSON.stringify(settings)).toMatchObject({ code: ErrorCode.INVALID_OPTIONS });
      const secret = settings.token ?? settings.app!.privateKey;
      expect(inspect(error, { depth: 10 })).not.toContain(secret.slice(0, 12) === "-----BEGIN R" ? secret.slice(32, 60) : secret);
    }
    // The same token from the environment, and as a task's own token.
    const saved = process.env.GITHUB_TOKEN;
    process.env.GITHUB_TOKEN = "ghp_env\r\nX-Injected: yes";
    try {
      expect(() => createGitHub({ baseUrl: server.apiUrl })).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_OPTIONS }));
    } finally {
      if (saved === undefined) delete process.env.GITHUB_TOKEN;
      else process.env.GITHUB_TOKEN = saved;
    }
    const perTask = await rejection(host().resolveRepository(repo, { token: "ghp_task\nX-Injected: yes" }));
    expect(perTask.code).toBe(ErrorCode.INVALID_OPTIONS);
    expect(perTask.message).toContain("gitToken");
    // A good RSA key is accepted, and nothing above reached the server.
    expect(() => createGitHub({ app: { appId: 1, privateKey: rsa, installationId: 1 } })).not.toThrow();
    expect(server.requests.length).toBe(before);
  });

  it("fails a REST call that gets no answer after requestTimeoutMs with GIT_HOST_ERROR, once, without retrying", { timeout: 60_000 }, async () => {
    const sockets = new Set<Socket>();
    const requestLines: string[] = [];
    const silent = createServer((socket) => {
      sockets.add(socket);
      socket.once("data", (data: Buffer) => requestLines.push(data.toString("latin1").split("\r\n")[0]!));
      socket.on("error", () => {});
    });
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    try {
      const apiUrl = `http://127.0.0.1:${(silent.address() as { port: number }).port}/api/v3`;
      const error = await rejection(createGitHub({ token: writer, baseUrl: apiUrl, requestTimeoutMs: 1000 }).resolveRepository("http://127.0.0.1:" + (silent.address() as { port: number }).port + "/octo/widgets"));
      expect(error.code).toBe(ErrorCode.GIT_HOST_ERROR);
      expect(error.message).toMatch(/did not answer within 1 s/);
      expect(error.details).toMatchObject({ requestTimeoutMs: 1000 });
      expect(requestLines).toEqual(["GET /api/v3/repos/octo/widgets HTTP/1.1"]);
      expect(() => createGitHub({ requestTimeoutMs: 0 })).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_OPTIONS }));
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it("maps ssh and scp-like URLs of a served host to the https URL the core clones over, and leaves others alone", () => {
    const gitHub = createGitHub({ token: "ghp_x" });
    for (const url of ["git@github.com:o/r.git", "git@github.com:o/r", "ssh://git@github.com/o/r.git", "ssh://git@github.com/o/r", "  git@GitHub.com:o/r.git "]) {
      expect(gitHub.normalizeRepo(url), url).toBe("https://github.com/o/r.git");
    }
    for (const url of ["https://github.com/o/r.git", "git@gitlab.com:o/r.git", "ssh://git@gitlab.com/o/r", "/tmp/repo", "o/r"]) {
      expect(gitHub.normalizeRepo(url), url).toBeUndefined();
    }
    expect(() => gitHub.normalizeRepo("git@github.com:only-owner")).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_REPO }));
    expect(createGitHub({ token: "ghp_x", baseUrl: "https://ghe.example.test/api/v3" }).normalizeRepo("git@ghe.example.test:o/r.git")).toBe("https://ghe.example.test/o/r.git");
  });

  it("supports github.com URLs in https, ssh and scp forms, and the configured Enterprise host, but nothing else", () => {
    const gitHub = createGitHub({ token: "ghp_x" });
    for (const url of ["https://github.com/o/r", "https://github.com/o/r.git", "https://www.github.com/o/r/", "https://x-access-token:secret@github.com/o/r.git", "git@github.com:o/r.git", "ssh://git@github.com/o/r.git"]) {
      expect(gitHub.supports(url), url).toBe(true);
    }
    for (const url of ["https://gitlab.com/o/r.git", "http://github.com/o/r.git", "/tmp/repo", "file:///tmp/repo", "o/r", "", "https://ghe.example.test/o/r"]) {
      expect(gitHub.supports(url), url).toBe(false);
    }
    const enterprise = createGitHub({ token: "ghp_x", baseUrl: "https://ghe.example.test/api/v3" });
    expect(enterprise.supports("https://ghe.example.test/o/r.git")).toBe(true);
    expect(enterprise.supports("https://github.com/o/r.git")).toBe(false);
    expect(createGitHub({ baseUrl: server.apiUrl }).supports(`${server.url}/octo/widgets.git`)).toBe(true);
  });

  it("resolves a repository: default branch, push permission, and a git remote on the configured git URL", async () => {
    const resolved = await host().resolveRepository(repo);
    expect(resolved).toEqual({ id: "octo/widgets", remote: `${server.gitUrl}/octo/widgets.git`, defaultBranch: "trunk", canPush: true, webUrl: `${server.url}/octo/widgets` });
    // Without gitUrl the remote follows the Enterprise layout of the API URL.
    const enterpriseLayout = await createGitHub({ token: writer, baseUrl: server.apiUrl }).resolveRepository(`${server.url}/octo/widgets`);
    expect(enterpriseLayout.remote).toBe(`${server.url}/octo/widgets.git`);
  });

  it("rejects bad repositories and credentials with typed errors that never show a secret", async () => {
    const secret = "ghp_embedded_secret_value";
    const notFound = await rejection(host().resolveRepository(`https://someone:${secret}@github.com/octo/missing.git`));
    expect(notFound.code).toBe(ErrorCode.REPO_NOT_FOUND);
    expect(inspect(notFound, { depth: 10 })).not.toContain(secret);

    expect((await rejection(host().resolveRepository("https://gitlab.com/octo/widgets.git"))).code).toBe(ErrorCode.UNSUPPORTED_REPO);
    const malformed = await rejection(host().resolveRepository(`https://u:${secret}@github.com/octo`));
    expect(malformed.code).toBe(ErrorCode.INVALID_REPO);
    expect(malformed.message).not.toContain(secret);
    expect((await rejection(host().resolveRepository("https://github.com/octo/widgets/tree/main"))).code).toBe(ErrorCode.INVALID_REPO);

    const badToken = "ghp_not_a_real_token_1234";
    const unauthorized = await rejection(host({ token: badToken }).resolveRepository(repo));
    expect(unauthorized.code).toBe(ErrorCode.AUTH_FAILED);
    expect(inspect(unauthorized, { depth: 10 })).not.toContain(badToken);

    const revoked = server.grantToken({ login: "leaver" });
    expect((await host({ token: revoked }).resolveRepository(repo)).canPush).toBe(true);
    server.revokeToken(revoked);
    expect((await rejection(host({ token: revoked }).resolveRepository(repo))).code).toBe(ErrorCode.AUTH_FAILED);

    const previous = process.env.GITHUB_TOKEN;
    delete process.env.GITHUB_TOKEN;
    try {
      const missing = await rejection(createGitHub({ baseUrl: server.apiUrl }).resolveRepository(`${server.url}/octo/widgets`));
      expect(missing.code).toBe(ErrorCode.AUTH_FAILED);
      expect(missing.message).toMatch(/GITHUB_TOKEN/);
      process.env.GITHUB_TOKEN = writer;
      expect((await createGitHub({ baseUrl: server.apiUrl }).resolveRepository(`${server.url}/octo/widgets`)).id).toBe("octo/widgets");
    } finally {
      if (previous === undefined) delete process.env.GITHUB_TOKEN;
      else process.env.GITHUB_TOKEN = previous;
    }

    const readOnly = await rejection(host({ token: reader }).resolveRepository(repo));
    expect(readOnly.code).toBe(ErrorCode.PERMISSION_DENIED);
    expect(readOnly.message).toMatch(/cannot push/);

    const archived = await rejection(host().resolveRepository("https://github.com/octo/attic"));
    expect(archived.code).toBe(ErrorCode.REPO_ARCHIVED);
  });

  it("takes a per-task token instead of its own, for every call", async () => {
    const gitHub = host({ token: reader });
    const resolved = await gitHub.resolveRepository(repo, { token: writer });
    expect(resolved.canPush).toBe(true);
    expect(await gitHub.getCredentials(resolved, "write", { token: writer })).toEqual({ username: "x-access-token", password: writer });
    expect(await gitHub.getCredentials(resolved, "read")).toEqual({ username: "x-access-token", password: reader });
    expect(gitHub.secrets()).toEqual([reader]);
  });

  it("says GitHub could not be reached when nothing answers", async () => {
    const closed = await startGitHubServer();
    const apiUrl = closed.apiUrl;
    await closed.close();
    const unreachable = await rejection(createGitHub({ token: writer, baseUrl: apiUrl, octokit: { retry: { retries: 1, retryAfterBaseValue: 10 } } }).resolveRepository(`${closed.url}/octo/widgets`));
    expect(unreachable.code).toBe(ErrorCode.GIT_HOST_ERROR);
    expect(unreachable.message).toMatch(/could not be reached/);
  });

  it("stops with ABORTED when the task's signal fires", async () => {
    const gitHub = host();
    const resolved = await gitHub.resolveRepository(repo);
    const controller = new AbortController();
    controller.abort();
    expect((await rejection(gitHub.resolveRepository(repo, { signal: controller.signal }))).code).toBe(ErrorCode.ABORTED);
    expect((await rejection(gitHub.branchExists(resolved, "trunk", { signal: controller.signal }))).code).toBe(ErrorCode.ABORTED);
    expect((await rejection(gitHub.openChangeRequest(resolved, { head: "x", base: "trunk", title: "t", body: "" }, { signal: controller.signal }))).code).toBe(ErrorCode.ABORTED);
  });

  it("gives the commit identity of the token's user, with GitHub's noreply address", async () => {
    const { data: me } = await octokit().rest.users.getAuthenticated();
    expect(await host().commitIdentity()).toEqual({ name: "agent-bot", email: `${me.id}+agent-bot@users.noreply.github.com` });
    const requester = server.grantToken({ login: "requester" });
    const { data: them } = await new Octokit({ baseUrl: server.apiUrl, auth: requester, log: quiet }).rest.users.getAuthenticated();
    expect(await host().commitIdentity({ token: requester })).toEqual({ name: "requester", email: `${them.id}+requester@users.noreply.github.com` });
    expect((await rejection(host({ token: "ghp_wrong" }).commitIdentity())).code).toBe(ErrorCode.AUTH_FAILED);
  });

  it("tells whether a branch exists, also with slashes in its name", async () => {
    const gitHub = host();
    const resolved = await gitHub.resolveRepository(repo);
    await server.commit("octo/widgets", { branch: "feature/slash", files: { "a.txt": "a\n" } });
    expect(await gitHub.branchExists(resolved, "trunk")).toBe(true);
    expect(await gitHub.branchExists(resolved, "feature/slash")).toBe(true);
    expect(await gitHub.branchExists(resolved, "nope")).toBe(false);
    expect((await rejection(gitHub.branchExists(resolved, ""))).code).toBe(ErrorCode.INVALID_BRANCH);
  });

  it("waits out a short rate limit and retries a 5xx, and fails with RATE_LIMITED or GIT_HOST_ERROR when that does not help", async () => {
    const gitHub = host();
    const count = () => server.requests.filter((record) => record.route === "/repos/{owner}/{repo}").length;

    let before = count();
    server.rateLimit({ kind: "secondary", retryAfterSeconds: 1, path: "/repos/{owner}/{repo}" });
    expect((await gitHub.resolveRepository(repo)).id).toBe("octo/widgets");
    expect(count() - before).toBe(2);

    before = count();
    server.injectFailure({ path: "/repos/{owner}/{repo}", status: 502 });
    expect((await gitHub.resolveRepository(repo)).id).toBe("octo/widgets");
    expect(count() - before).toBe(2);

    server.rateLimit({ kind: "primary", retryAfterSeconds: 3600, path: "/repos/{owner}/{repo}" });
    const primary = await rejection(gitHub.resolveRepository(repo));
    expect(primary.code).toBe(ErrorCode.RATE_LIMITED);
    expect(primary.details?.retryAfterSeconds).toBeGreaterThan(3000);

    server.rateLimit({ kind: "too-many-requests", retryAfterSeconds: 900, path: "/repos/{owner}/{repo}" });
    const tooMany = await rejection(gitHub.resolveRepository(repo));
    expect(tooMany.code).toBe(ErrorCode.RATE_LIMITED);
    expect(tooMany.details?.retryAfterSeconds).toBe(900);

    before = count();
    // Exactly as many failures as attempts (one try and two retries), so none is left over.
    server.injectFailure({ path: "/repos/{owner}/{repo}", status: 503, times: 3 });
    const unavailable = await rejection(host({ octokit: { retry: { retries: 2, retryAfterBaseValue: 10 } } }).resolveRepository(repo));
    expect(unavailable.code).toBe(ErrorCode.GIT_HOST_ERROR);
    expect(unavailable.message).toMatch(/503/);
    expect(count() - before).toBe(3);
    expect((await gitHub.resolveRepository(repo)).id).toBe("octo/widgets");
  });

  it("opens a pull request with labels, reviewers and assignees, and updates the same one when run again", async () => {
    const gitHub = host();
    const resolved = await gitHub.resolveRepository(repo);
    await server.commit("octo/widgets", { branch: "running-agent/add-tests-1", files: { "test.js": "test()\n" }, from: "trunk" });
    const first = await gitHub.openChangeRequest(resolved, {
      head: "running-agent/add-tests-1",
      base: "trunk",
      title: "Add tests",
      body: "First body\n\nCloses #3",
      draft: true,
      labels: ["agent", "tests"],
      reviewers: ["alice", "octo/core"],
      assignees: ["bob"],
    });
    expect(first).toEqual({ number: 1, url: `${server.url}/octo/widgets/pull/1`, head: "running-agent/add-tests-1", base: "trunk", title: "Add tests", body: "First body\n\nCloses #3", draft: true, created: true });

    const second = await gitHub.openChangeRequest(resolved, { head: "running-agent/add-tests-1", base: "trunk", title: "Add tests (again)", body: "Second body", draft: true, labels: ["agent", "retry"] });
    expect(second).toMatchObject({ number: 1, title: "Add tests (again)", body: "Second body", created: false });
    expect(server.pullRequests("octo/widgets").filter((pull) => pull.head === "running-agent/add-tests-1")).toHaveLength(1);

    const { data } = await octokit().rest.pulls.get({ owner: "octo", repo: "widgets", pull_number: 1 });
    expect(data).toMatchObject({ title: "Add tests (again)", body: "Second body", draft: true, state: "open", head: { ref: "running-agent/add-tests-1" }, base: { ref: "trunk" }, user: { login: "agent-bot" } });
    expect(data.labels.map((label) => label.name)).toEqual(["agent", "tests", "retry"]);
    expect(data.requested_reviewers?.map((user) => user.login)).toEqual(["alice"]);
    expect(data.requested_teams?.map((team) => team.slug)).toEqual(["core"]);
    expect(data.assignees?.map((user) => user.login)).toEqual(["bob"]);

    // The draft state follows the input on updates too (through GitHub's GraphQL API).
    const ready = await gitHub.openChangeRequest(resolved, { head: "running-agent/add-tests-1", base: "trunk", title: "Add tests (again)", body: "Second body", draft: false });
    expect(ready).toMatchObject({ number: 1, draft: false, created: false });
    expect((await octokit().rest.pulls.get({ owner: "octo", repo: "widgets", pull_number: 1 })).data.draft).toBe(false);
    const draftAgain = await gitHub.openChangeRequest(resolved, { head: "running-agent/add-tests-1", base: "trunk", title: "Add tests (again)", body: "Second body", draft: true });
    expect(draftAgain.draft).toBe(true);
    expect(server.pullRequests("octo/widgets").find((pull) => pull.number === 1)?.draft).toBe(true);
    const readOnlyUpdate = await rejection(host({ token: reader }).openChangeRequest(resolved, { head: "running-agent/add-tests-1", base: "trunk", title: "Add tests (again)", body: "Second body", draft: false }));
    expect(readOnlyUpdate.code).toBe(ErrorCode.PERMISSION_DENIED);
  });

  it("updates the open pull request when another run opened it between the look-up and the create", async () => {
    const gitHub = host();
    const resolved = await gitHub.resolveRepository(repo);
    await server.commit("octo/widgets", { branch: "race", files: { "race.txt": "1\n" }, from: "trunk" });
    const opened = await octokit().rest.pulls.create({ owner: "octo", repo: "widgets", head: "race", base: "trunk", title: "Opened elsewhere" });
    // The first look-up sees no pull request yet.
    server.injectFailure({ method: "GET", path: "/repos/{owner}/{repo}/pulls", status: 200, body: [] });
    const result = await gitHub.openChangeRequest(resolved, { head: "race", base: "trunk", title: "Ours", body: "Ours" });
    expect(result).toMatchObject({ number: opened.data.number, title: "Ours", created: false });
    const creates = server.requests.filter((record) => record.method === "POST" && record.route === "/repos/{owner}/{repo}/pulls");
    expect(creates.at(-1)?.status).toBe(422);
  });

  it("says which part of a pull request failed", async () => {
    const gitHub = host();
    const resolved = await gitHub.resolveRepository(repo);
    await server.commit("octo/widgets", { branch: "lonely", files: { "l.txt": "l\n" }, from: "trunk" });
    expect((await rejection(gitHub.openChangeRequest(resolved, { head: "lonely", base: "gone", title: "t", body: "b" }))).code).toBe(ErrorCode.BASE_BRANCH_NOT_FOUND);
    const noHead = await rejection(gitHub.openChangeRequest(resolved, { head: "never-pushed", base: "trunk", title: "t", body: "b" }));
    expect(noHead.code).toBe(ErrorCode.PULL_REQUEST_FAILED);
    expect(noHead.message).toMatch(/never-pushed/);
    const badReviewer = await rejection(gitHub.openChangeRequest(resolved, { head: "lonely", base: "trunk", title: "t", body: "b", reviewers: ["stranger"] }));
    expect(badReviewer.code).toBe(ErrorCode.PULL_REQUEST_FAILED);
    expect(badReviewer.message).toMatch(/collaborators/);
    expect(badReviewer.details?.pullRequest).toMatchObject({ url: expect.stringContaining("/octo/widgets/pull/") });
    expect((await rejection(gitHub.openChangeRequest(resolved, { head: "lonely", base: "trunk", title: " ", body: "b" }))).code).toBe(ErrorCode.INVALID_OPTIONS);
    expect((await rejection(gitHub.openChangeRequest({ ...resolved, id: "nonsense" }, { head: "lonely", base: "trunk", title: "t", body: "b" }))).code).toBe(ErrorCode.INVALID_REPO);
  });

  it("authenticates as a GitHub App installation and mints a new token before the old one expires", async () => {
    const app = server.createApp({ account: "octo", slug: "agent-app", tokenLifetimeSeconds: 3600 });
    const gitHub = host({ token: undefined, app: { appId: app.appId, privateKey: app.privateKey, installationId: app.installationId } });
    const resolved = await gitHub.resolveRepository(repo);
    expect(resolved.canPush).toBe(true);
    const credentials = await gitHub.getCredentials(resolved, "write");
    expect(credentials?.password).toBe(app.mintedTokens[0]);
    await gitHub.branchExists(resolved, "trunk");
    // An hour-long token is reused.
    expect(app.mintedTokens).toHaveLength(1);
    expect(gitHub.secrets()).toEqual(expect.arrayContaining([app.privateKey, app.mintedTokens[0]]));

    const shortLived = server.createApp({ account: "octo", slug: "short-app", tokenLifetimeSeconds: 120 });
    const refreshing = host({ token: undefined, app: { appId: shortLived.appId, privateKey: shortLived.privateKey, installationId: shortLived.installationId } });
    const first = await refreshing.getCredentials(resolved, "read");
    const second = await refreshing.getCredentials(resolved, "write");
    // Within the refresh margin (300 s) of expiry: a new token each time, never the one about to lapse.
    expect(first?.password).not.toBe(second?.password);
    expect(shortLived.mintedTokens.length).toBeGreaterThanOrEqual(2);
    expect(shortLived.mintedTokens).toContain(second?.password);

    const readOnlyApp = server.createApp({ account: "octo", slug: "reader-app", permissions: { contents: "read", metadata: "read" } });
    const denied = await rejection(host({ token: undefined, app: { appId: readOnlyApp.appId, privateKey: readOnlyApp.privateKey, installationId: readOnlyApp.installationId } }).resolveRepository(repo));
    expect(denied.code).toBe(ErrorCode.PERMISSION_DENIED);

    const botUser = await octokit().rest.users.getByUsername({ username: "agent-app[bot]" });
    expect(botUser.data.type).toBe("Bot");
    expect(await gitHub.commitIdentity()).toEqual({ name: "agent-app[bot]", email: `${botUser.data.id}+agent-app[bot]@users.noreply.github.com` });

    const wrongInstallation = await rejection(host({ token: undefined, app: { appId: app.appId, privateKey: app.privateKey, installationId: 999_999 } }).resolveRepository(repo));
    expect(wrongInstallation.code).toBe(ErrorCode.AUTH_FAILED);
    expect(inspect(wrongInstallation, { depth: 10 })).not.toContain("PRIVATE KEY");
  });

  it("saw only responses that match GitHub's published OpenAPI description", () => {
    const validator = new OpenApiResponseValidator();
    const served = server.requests.filter((record) => record.kind === "api" && record.route);
    expect(served.length).toBeGreaterThan(50);
    expect(served.map((record) => ({ request: `${record.method} ${record.route} ${record.status}`, errors: validator.validate(record).errors })).filter((verdict) => verdict.errors.length > 0)).toEqual([]);
  });
});
