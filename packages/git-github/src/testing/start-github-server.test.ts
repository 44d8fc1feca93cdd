import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Octokit } from "@octokit/rest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRestRoutes } from "./github-rest-api.js";
import { OpenApiResponseValidator } from "./openapi-response-validator.js";
import { startGitHubServer, type GitHubServer } from "./start-github-server.js";

const run = promisify(execFile);

/** The error a request failed with; fails the test when it succeeded. */
async function failureOf(promise: Promise<unknown>): Promise<{ status: number; response: { headers: Record<string, string> } }> {
  try {
    await promise;
  } catch (error) {
    return error as { status: number; response: { headers: Record<string, string> } };
  }
  throw new Error("The request succeeded; a failure was expected.");
}
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

describe("startGitHubServer", () => {
  let server: GitHubServer;
  let validator: OpenApiResponseValidator;
  let writer: string;
  let reader: string;
  const client = (token?: string) => new Octokit({ baseUrl: server.apiUrl, ...(token ? { auth: token } : {}), log: quiet, request: { retries: 0 } });

  beforeAll(async () => {
    server = await startGitHubServer();
    validator = new OpenApiResponseValidator();
    await server.createRepository({ owner: "octo", name: "widgets", files: { "README.md": "# Widgets\n", "src/index.js": "export {};\n" }, collaborators: ["reviewer-1"] });
    writer = server.grantToken({ login: "bot", permission: "push" });
    reader = server.grantToken({ login: "visitor", permission: "pull" });
  });

  afterAll(async () => {
    const root = server ? (await server.createRepository({ owner: "octo", name: "probe" })).gitDir : undefined;
    await server?.close();
    // The temporary folder with every repository is gone.
    if (root) expect(existsSync(root)).toBe(false);
  });

  it("serves a repository, its branches, pull requests, labels, reviewers, assignees and comments as GitHub describes them", async () => {
    const octokit = client(writer);
    const repo = await octokit.rest.repos.get({ owner: "octo", repo: "widgets" });
    expect(repo.data).toMatchObject({ full_name: "octo/widgets", default_branch: "main", private: true, archived: false, permissions: { push: true, pull: true } });
    expect(repo.headers["x-ratelimit-limit"]).toBe("5000");

    const main = await octokit.rest.repos.getBranch({ owner: "octo", repo: "widgets", branch: "main" });
    expect(main.data.commit.sha).toBe(await server.branchSha("octo/widgets", "main"));
    await server.commit("octo/widgets", { branch: "feature/one", files: { "src/one.js": "export const one = 1;\n" }, message: "Add one" });
    await server.commit("octo/widgets", { branch: "main", files: {} });
    const branches = await octokit.rest.repos.listBranches({ owner: "octo", repo: "widgets" });
    expect(branches.data.map((branch) => branch.name).sort()).toEqual(["feature/one", "main"]);
    const slashed = await octokit.rest.repos.getBranch({ owner: "octo", repo: "widgets", branch: "feature/one" });
    expect(slashed.data.commit.commit.message).toBe("Add one");
    const commit = await octokit.rest.repos.getCommit({ owner: "octo", repo: "widgets", ref: slashed.data.commit.sha });
    expect(commit.data).toMatchObject({ sha: slashed.data.commit.sha, commit: { message: "Add one" }, parents: [{ sha: main.data.commit.sha }] });
    expect((await octokit.rest.repos.getCommit({ owner: "octo", repo: "widgets", ref: "feature/one" })).data.sha).toBe(slashed.data.commit.sha);
    await expect(octokit.rest.repos.getCommit({ owner: "octo", repo: "widgets", ref: "f".repeat(40) })).rejects.toMatchObject({ status: 422 });

    const created = await octokit.rest.pulls.create({ owner: "octo", repo: "widgets", head: "feature/one", base: "main", title: "Add one", body: "Body", draft: true });
    expect(created.status).toBe(201);
    expect(created.data).toMatchObject({ number: 1, state: "open", draft: true, title: "Add one", body: "Body", head: { ref: "feature/one" }, base: { ref: "main" }, user: { login: "bot" }, commits: 1, additions: 1, changed_files: 1 });
    expect(created.data.html_url).toBe(`${server.url}/octo/widgets/pull/1`);

    const listed = await octokit.rest.pulls.list({ owner: "octo", repo: "widgets", head: "octo:feature/one", state: "open" });
    expect(listed.data.map((pull) => pull.number)).toEqual([1]);
    const none = await octokit.rest.pulls.list({ owner: "octo", repo: "widgets", head: "octo:other" });
    expect(none.data).toEqual([]);

    const updated = await octokit.rest.pulls.update({ owner: "octo", repo: "widgets", pull_number: 1, title: "Add one (v2)", body: "New body" });
    expect(updated.data).toMatchObject({ title: "Add one (v2)", body: "New body" });
    const labels = await octokit.rest.issues.addLabels({ owner: "octo", repo: "widgets", issue_number: 1, labels: ["agent", "Agent", "needs-review"] });
    expect(labels.data.map((label) => label.name)).toEqual(["agent", "needs-review"]);
    const reviewers = await octokit.rest.pulls.requestReviewers({ owner: "octo", repo: "widgets", pull_number: 1, reviewers: ["reviewer-1"], team_reviewers: ["core"] });
    expect(reviewers.data.requested_reviewers?.map((user) => user.login)).toEqual(["reviewer-1"]);
    expect(reviewers.data.requested_teams?.map((team) => team.slug)).toEqual(["core"]);
    const assigned = await octokit.rest.issues.addAssignees({ owner: "octo", repo: "widgets", issue_number: 1, assignees: ["reviewer-1", "stranger"] });
    // GitHub drops people who cannot be assigned.
    expect(assigned.data.assignees?.map((user) => user.login)).toEqual(["reviewer-1"]);
    const read = await octokit.rest.pulls.get({ owner: "octo", repo: "widgets", pull_number: 1 });
    expect(read.data).toMatchObject({ title: "Add one (v2)", draft: true, labels: [{ name: "agent" }, { name: "needs-review" }], assignees: [{ login: "reviewer-1" }] });
    expect((await octokit.rest.issues.get({ owner: "octo", repo: "widgets", issue_number: 1 })).data.pull_request?.url).toContain("/pulls/1");
    expect((await octokit.rest.issues.listLabelsOnIssue({ owner: "octo", repo: "widgets", issue_number: 1 })).data.map((label) => label.name)).toEqual(["agent", "needs-review"]);

    const comment = await octokit.rest.issues.createComment({ owner: "octo", repo: "widgets", issue_number: 1, body: "Working on it" });
    await octokit.rest.issues.updateComment({ owner: "octo", repo: "widgets", comment_id: comment.data.id, body: "Done" });
    const comments = await octokit.rest.issues.listComments({ owner: "octo", repo: "widgets", issue_number: 1 });
    expect(comments.data.map((entry) => entry.body)).toEqual(["Done"]);
    expect((await octokit.rest.issues.getComment({ owner: "octo", repo: "widgets", comment_id: comment.data.id })).data.user?.login).toBe("bot");
    expect(server.comments("octo/widgets", 1)).toEqual([{ id: comment.data.id, issueNumber: 1, body: "Done", user: "bot" }]);

    const headSha = slashed.data.commit.sha;
    await octokit.rest.repos.createCommitStatus({ owner: "octo", repo: "widgets", sha: headSha, state: "failure", context: "ci/test", description: "1 failing" });
    await octokit.rest.repos.createCommitStatus({ owner: "octo", repo: "widgets", sha: headSha, state: "success", context: "ci/test" });
    const statuses = await octokit.rest.repos.listCommitStatusesForRef({ owner: "octo", repo: "widgets", ref: "feature/one" });
    // Newest first, as GitHub lists them.
    expect(statuses.data.map((status) => [status.context, status.state, status.creator?.login])).toEqual([
      ["ci/test", "success", "bot"],
      ["ci/test", "failure", "bot"],
    ]);
    await expect(octokit.rest.repos.createCommitStatus({ owner: "octo", repo: "widgets", sha: headSha, state: "bogus" as never })).rejects.toMatchObject({ status: 422 });
    await expect(octokit.rest.repos.createCommitStatus({ owner: "octo", repo: "widgets", sha: "0".repeat(40), state: "success" })).rejects.toMatchObject({ status: 422 });
    expect(server.pullRequests("octo/widgets")).toEqual([
      { number: 1, title: "Add one (v2)", body: "New body", state: "open", head: "feature/one", base: "main", draft: true, user: "bot", labels: ["agent", "needs-review"], assignees: ["reviewer-1"], requestedReviewers: ["reviewer-1"], requestedTeams: ["core"] },
    ]);
  });

  it("answers with GitHub's status codes and error bodies", async () => {
    const expectStatus = async (promise: Promise<unknown>, status: number, message: RegExp) => {
      const error = (await promise.then(() => undefined, (caught: unknown) => caught)) as { status?: number; response?: { data?: { message?: string; errors?: Array<{ message?: string }> } } };
      expect(error?.status).toBe(status);
      const data = error.response?.data;
      expect(`${data?.message} ${(data?.errors ?? []).map((entry) => entry.message).join(" ")}`).toMatch(message);
    };
    await expectStatus(client("ghp_unknown").rest.repos.get({ owner: "octo", repo: "widgets" }), 401, /Bad credentials/);
    await expectStatus(client().rest.repos.get({ owner: "octo", repo: "widgets" }), 404, /Not Found/);
    await expectStatus(client(writer).rest.repos.get({ owner: "octo", repo: "missing" }), 404, /Not Found/);
    await expectStatus(client(writer).rest.repos.getBranch({ owner: "octo", repo: "widgets", branch: "nope" }), 404, /Branch not found/);
    await expectStatus(client(reader).rest.issues.addLabels({ owner: "octo", repo: "widgets", issue_number: 1, labels: ["x"] }), 403, /not accessible/);
    await expectStatus(client(writer).rest.pulls.create({ owner: "octo", repo: "widgets", head: "feature/one", base: "main", title: "Again" }), 422, /A pull request already exists for octo:feature\/one\./);
    await expectStatus(client(writer).rest.pulls.create({ owner: "octo", repo: "widgets", head: "main", base: "main", title: "Nothing" }), 422, /No commits between main and main/);
    await expectStatus(client(writer).rest.pulls.create({ owner: "octo", repo: "widgets", head: "ghost", base: "main", title: "Ghost" }), 422, /Validation Failed/);
    await expectStatus(client(writer).rest.pulls.requestReviewers({ owner: "octo", repo: "widgets", pull_number: 1, reviewers: ["bot"] }), 422, /cannot be requested from pull request author/);
    await expectStatus(client(writer).rest.pulls.requestReviewers({ owner: "octo", repo: "widgets", pull_number: 1, reviewers: ["stranger"] }), 422, /only be requested from collaborators/);

    const pullNodeId = (await client(writer).rest.pulls.get({ owner: "octo", repo: "widgets", pull_number: 1 })).data.node_id;
    const ready = "mutation($id: ID!) { markPullRequestReadyForReview(input: { pullRequestId: $id }) { pullRequest { isDraft } } }";
    await expect(client(writer).graphql(ready, { id: "bm9wZQ" })).rejects.toMatchObject({ errors: [{ type: "NOT_FOUND" }] });
    await expect(client(reader).graphql(ready, { id: pullNodeId })).rejects.toMatchObject({ errors: [{ type: "FORBIDDEN" }] });
    expect(await client(writer).graphql(ready, { id: pullNodeId })).toEqual({ markPullRequestReadyForReview: { pullRequest: { isDraft: false } } });
    expect(server.pullRequests("octo/widgets")[0]?.draft).toBe(false);

    server.rateLimit({ kind: "primary", retryAfterSeconds: 600, path: "/repos/{owner}/{repo}" });
    const limited = await failureOf(client(writer).rest.repos.get({ owner: "octo", repo: "widgets" }));
    expect(limited.status).toBe(403);
    expect(limited.response.headers["x-ratelimit-remaining"]).toBe("0");
    expect(Number(limited.response.headers["x-ratelimit-reset"])).toBeGreaterThan(Date.now() / 1000);
    server.rateLimit({ kind: "too-many-requests", retryAfterSeconds: 30 });
    const tooMany = await failureOf(client(writer).rest.repos.get({ owner: "octo", repo: "widgets" }));
    expect(tooMany.status).toBe(429);
    expect(tooMany.response.headers["retry-after"]).toBe("30");
    server.injectFailure({ method: "GET", path: "/repos/{owner}/{repo}", status: 502 });
    await expectStatus(client(writer).rest.repos.get({ owner: "octo", repo: "widgets" }), 502, /Server Error/);
    // Injected failures are used up: the next call succeeds.
    expect((await client(writer).rest.repos.get({ owner: "octo", repo: "widgets" })).status).toBe(200);

    const revoked = server.grantToken({ login: "gone" });
    expect((await client(revoked).rest.repos.get({ owner: "octo", repo: "widgets" })).status).toBe(200);
    server.revokeToken(revoked);
    await expectStatus(client(revoked).rest.repos.get({ owner: "octo", repo: "widgets" }), 401, /Bad credentials/);

    server.setArchived("octo/widgets", true);
    expect((await client(writer).rest.repos.get({ owner: "octo", repo: "widgets" })).data.archived).toBe(true);
    await expectStatus(client(writer).rest.issues.addLabels({ owner: "octo", repo: "widgets", issue_number: 1, labels: ["x"] }), 403, /archived/);
    server.setArchived("octo/widgets", false);
  });

  it("serves git over smart HTTP with token auth: clone with read, push only with push access", async () => {
    const work = await mkdtemp(join(tmpdir(), "github-server-test-"));
    const env = { ...process.env, GIT_TERMINAL_PROMPT: "0", GIT_CONFIG_NOSYSTEM: "1", GIT_CONFIG_GLOBAL: "/dev/null", GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@t.invalid", GIT_COMMITTER_NAME: "t", GIT_COMMITTER_EMAIL: "t@t.invalid" };
    // The token goes in through an http.extraHeader in the environment, never in a URL or argument.
    const withToken = (token: string) => ({ ...env, GIT_CONFIG_COUNT: "1", GIT_CONFIG_KEY_0: "http.extraHeader", GIT_CONFIG_VALUE_0: `Authorization: Basic ${Buffer.from(`x-access-token:${token}`).toString("base64")}` });
    const git = (args: string[], cwd: string, environment: NodeJS.ProcessEnv) => run("git", args, { cwd, env: environment });
    try {
      const cloneUrl = `${server.gitUrl}/octo/widgets.git`;
      await expect(git(["clone", "--quiet", cloneUrl, "anonymous"], work, env)).rejects.toThrow(/Authentication|could not read Username/);
      await git(["clone", "--quiet", cloneUrl, "reader"], work, withToken(reader));
      expect(await readFile(join(work, "reader", "README.md"), "utf8")).toBe("# Widgets\n");
      await writeFile(join(work, "reader", "new.txt"), "new\n");
      await git(["add", "new.txt"], join(work, "reader"), env);
      await git(["commit", "--quiet", "-m", "new"], join(work, "reader"), env);
      await expect(git(["push", "--quiet", "origin", "HEAD:refs/heads/from-reader"], join(work, "reader"), withToken(reader))).rejects.toThrow(/denied to visitor/);
      await git(["push", "--quiet", "origin", "HEAD:refs/heads/from-writer"], join(work, "reader"), withToken(writer));
      expect(await server.readFile("octo/widgets", "from-writer", "new.txt")).toBe("new\n");
      server.setArchived("octo/widgets", true);
      await expect(git(["push", "--quiet", "origin", "HEAD:refs/heads/archived"], join(work, "reader"), withToken(writer))).rejects.toThrow(/archived/);
      server.setArchived("octo/widgets", false);
      const gitRecords = server.requests.filter((record) => record.kind === "git");
      expect(gitRecords.some((record) => record.status === 200 && record.login === "bot" && record.path.endsWith("git-receive-pack"))).toBe(true);
      expect(JSON.stringify(server.requests)).not.toContain(writer);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });

  it("mints App installation tokens only for a JWT signed with the App's key", async () => {
    const app = server.createApp({ account: "octo" });
    const { createAppAuth } = await import("@octokit/auth-app");
    const auth = createAppAuth({ appId: app.appId, privateKey: app.privateKey, installationId: app.installationId, request: client().request });
    const installation = await auth({ type: "installation" });
    expect(installation.token).toMatch(/^ghs_/);
    expect(app.mintedTokens).toEqual([installation.token]);
    const repo = await client(installation.token).rest.repos.get({ owner: "octo", repo: "widgets" });
    // GitHub leaves `permissions` out for installation tokens.
    expect(repo.data.permissions).toBeUndefined();
    // The App reads itself with its JWT; its bot account is public; installation tokens have no user of their own.
    const jwt = (await auth({ type: "app" })).token;
    expect((await client(jwt).rest.apps.getAuthenticated()).data).toMatchObject({ id: app.appId, slug: "running-agent-test", owner: { login: "octo" } });
    expect((await client(writer).rest.users.getByUsername({ username: "running-agent-test[bot]" })).data).toMatchObject({ login: "running-agent-test[bot]", type: "Bot" });
    await expect(client(installation.token).rest.users.getAuthenticated()).rejects.toMatchObject({ status: 403 });
    expect((await client(writer).rest.users.getAuthenticated()).data).toMatchObject({ login: "bot", user_view_type: "private" });
    await expect(client(writer).rest.users.getByUsername({ username: "nobody-here" })).rejects.toMatchObject({ status: 404 });
    const other = server.createApp({ account: "octo" });
    const forged = createAppAuth({ appId: app.appId, privateKey: other.privateKey, installationId: app.installationId, request: client().request });
    await expect(forged({ type: "installation" })).rejects.toMatchObject({ status: 401 });
  });

  it("serves what a bot on pull requests needs: reactions, review comments and replies, reviews, permissions, and check runs only for a GitHub App", async () => {
    await server.createRepository({ owner: "octo", name: "reviews", files: { "README.md": "# Reviews\n\nLine three.\n" } });
    const author = client(writer);
    const reviewerToken = server.grantToken({ login: "reviewer-2", permission: "push", repositories: ["octo/reviews"] });
    const reviewer = client(reviewerToken);
    const sha = await server.commit("octo/reviews", { branch: "change", files: { "README.md": "# Reviews\n\nLine three, changed.\n" } });
    const { data: pull } = await author.rest.pulls.create({ owner: "octo", repo: "reviews", head: "change", base: "main", title: "Change" });
    const where = { owner: "octo", repo: "reviews" } as const;

    // Reactions: 201 for a new one, 200 for the same one again, 422 for an unknown content.
    const issueReaction = await author.rest.reactions.createForIssue({ ...where, issue_number: pull.number, content: "eyes" });
    expect(issueReaction.status).toBe(201);
    expect((await author.rest.reactions.createForIssue({ ...where, issue_number: pull.number, content: "eyes" })).status).toBe(200);
    await expect(author.rest.reactions.createForIssue({ ...where, issue_number: pull.number, content: "tada" as never })).rejects.toMatchObject({ status: 422 });
    expect((await author.rest.reactions.listForIssue({ ...where, issue_number: pull.number })).data.map((reaction) => [reaction.content, reaction.user?.login])).toEqual([["eyes", "bot"]]);
    const issueComment = await reviewer.rest.issues.createComment({ ...where, issue_number: pull.number, body: "Please look" });
    await author.rest.reactions.createForIssueComment({ ...where, comment_id: issueComment.data.id, content: "+1" });
    expect((await author.rest.reactions.listForIssueComment({ ...where, comment_id: issueComment.data.id })).data.map((reaction) => reaction.content)).toEqual(["+1"]);

    // A review comment on a line of the head, a reply in its thread, and a review with one more comment.
    const comment = await reviewer.rest.pulls.createReviewComment({ ...where, pull_number: pull.number, commit_id: sha, path: "README.md", line: 3, side: "RIGHT", body: "Say why." });
    expect(comment.status).toBe(201);
    expect(comment.data).toMatchObject({ path: "README.md", line: 3, commit_id: sha, user: { login: "reviewer-2" }, author_association: "COLLABORATOR" });
    expect(comment.data.diff_hunk).toContain("Line three, changed.");
    await expect(reviewer.rest.pulls.createReviewComment({ ...where, pull_number: pull.number, commit_id: sha, path: "README.md", line: 9, body: "Out of range" })).rejects.toMatchObject({ status: 422 });
    const reply = await author.rest.pulls.createReplyForReviewComment({ ...where, pull_number: pull.number, comment_id: comment.data.id, body: "Done." });
    expect(reply.data).toMatchObject({ in_reply_to_id: comment.data.id, path: "README.md", line: 3, user: { login: "bot" } });
    await expect(author.rest.pulls.createReplyForReviewComment({ ...where, pull_number: pull.number, comment_id: 999_999, body: "Lost" })).rejects.toMatchObject({ status: 404 });
    await author.rest.reactions.createForPullRequestReviewComment({ ...where, comment_id: comment.data.id, content: "eyes" });
    expect((await author.rest.reactions.listForPullRequestReviewComment({ ...where, comment_id: comment.data.id })).data.map((reaction) => reaction.content)).toEqual(["eyes"]);
    const review = await reviewer.rest.pulls.createReview({ ...where, pull_number: pull.number, event: "REQUEST_CHANGES", body: "Two things.", comments: [{ path: "README.md", line: 1, body: "A better title." }] });
    expect(review.status).toBe(200);
    expect(review.data).toMatchObject({ state: "CHANGES_REQUESTED", body: "Two things.", commit_id: sha, user: { login: "reviewer-2" } });
    await expect(author.rest.pulls.createReview({ ...where, pull_number: pull.number, event: "APPROVE" })).rejects.toMatchObject({ status: 422 });
    expect((await author.rest.pulls.getReview({ ...where, pull_number: pull.number, review_id: review.data.id })).data).toMatchObject({ id: review.data.id, state: "CHANGES_REQUESTED", body: "Two things." });
    await expect(author.rest.pulls.getReview({ ...where, pull_number: pull.number, review_id: 999_999 })).rejects.toMatchObject({ status: 404 });
    // A review takes a reaction only through GraphQL.
    const eyes = "mutation($id: ID!) { addReaction(input: { subjectId: $id, content: EYES }) { reaction { content } } }";
    expect(await author.graphql(eyes, { id: review.data.node_id })).toEqual({ addReaction: { reaction: { content: "EYES" }, subject: { id: review.data.node_id } } });
    await expect(author.graphql(eyes, { id: "bm9wZQ" })).rejects.toMatchObject({ errors: [{ type: "NOT_FOUND" }] });
    expect(server.reactions("octo/reviews").map((reaction) => [reaction.subject.kind, reaction.content, reaction.user])).toEqual([
      ["issue", "eyes", "bot"],
      ["issue-comment", "+1", "bot"],
      ["review-comment", "eyes", "bot"],
      ["review", "eyes", "bot"],
    ]);
    const inReview = await author.rest.pulls.listCommentsForReview({ ...where, pull_number: pull.number, review_id: review.data.id });
    expect(inReview.data.map((entry) => [entry.body, entry.line])).toEqual([["A better title.", 1]]);
    await expect(author.rest.pulls.listCommentsForReview({ ...where, pull_number: pull.number, review_id: 999_999 })).rejects.toMatchObject({ status: 404 });
    expect((await author.rest.pulls.listReviews({ ...where, pull_number: pull.number })).data.map((entry) => entry.state)).toEqual(["COMMENTED", "COMMENTED", "CHANGES_REQUESTED"]);
    expect((await author.rest.pulls.listReviewComments({ ...where, pull_number: pull.number })).data.map((entry) => entry.body)).toEqual(["Say why.", "Done.", "A better title."]);

    // Permissions, as a bot checks a requester's: write for collaborators, read for a read token, none for a collaborator of another repository.
    expect((await author.rest.repos.getCollaboratorPermissionLevel({ ...where, username: "reviewer-2" })).data).toMatchObject({ permission: "write", user: { login: "reviewer-2" } });
    expect((await author.rest.repos.getCollaboratorPermissionLevel({ ...where, username: "octo" })).data.permission).toBe("admin");
    expect((await author.rest.repos.getCollaboratorPermissionLevel({ ...where, username: "visitor" })).data.permission).toBe("read");
    expect((await author.rest.repos.getCollaboratorPermissionLevel({ ...where, username: "reviewer-1" })).data.permission).toBe("none");
    await expect(author.rest.repos.getCollaboratorPermissionLevel({ ...where, username: "nobody-at-all" })).rejects.toMatchObject({ status: 404 });
    await expect(client(reader).rest.repos.getCollaboratorPermissionLevel({ owner: "octo", repo: "widgets", username: "bot" })).rejects.toMatchObject({ status: 403 });

    // Check runs: a token cannot make one; an App with checks: write can, and updates only its own.
    await expect(author.rest.checks.create({ ...where, name: "agent", head_sha: sha })).rejects.toMatchObject({ status: 403 });
    const { createAppAuth } = await import("@octokit/auth-app");
    const appClient = async (permissions: Record<string, "read" | "write">, slug: string) => {
      const app = server.createApp({ account: "octo", slug, permissions });
      const { token } = await createAppAuth({ appId: app.appId, privateKey: app.privateKey, installationId: app.installationId, request: client().request })({ type: "installation" });
      return client(token);
    };
    const checker = await appClient({ contents: "read", checks: "write", metadata: "read" }, "checker");
    const queued = await checker.rest.checks.create({ ...where, name: "agent", head_sha: sha, status: "queued" });
    expect(queued.status).toBe(201);
    expect(queued.data).toMatchObject({ status: "queued", conclusion: null, started_at: null, app: { slug: "checker" }, pull_requests: [{ number: pull.number, head: { sha } }] });
    await checker.rest.checks.update({ ...where, check_run_id: queued.data.id, status: "in_progress" });
    await expect(checker.rest.checks.update({ ...where, check_run_id: queued.data.id, status: "completed" })).rejects.toMatchObject({ status: 422 });
    const done = await checker.rest.checks.update({ ...where, check_run_id: queued.data.id, conclusion: "success", output: { title: "Pushed", summary: "One commit." } });
    expect(done.data).toMatchObject({ status: "completed", conclusion: "success", output: { title: "Pushed", summary: "One commit." } });
    expect(done.data.started_at).not.toBeNull();
    expect(done.data.completed_at).not.toBeNull();
    await expect(checker.rest.checks.create({ ...where, name: "agent", head_sha: "0".repeat(40) })).rejects.toMatchObject({ status: 422 });
    const other = await appClient({ contents: "read", checks: "write", metadata: "read" }, "other-checker");
    await expect(other.rest.checks.update({ ...where, check_run_id: queued.data.id, conclusion: "failure" })).rejects.toMatchObject({ status: 403 });
    const withoutChecks = await appClient({ contents: "write", metadata: "read" }, "no-checks");
    await expect(withoutChecks.rest.checks.create({ ...where, name: "agent", head_sha: sha })).rejects.toMatchObject({ status: 403 });
    expect((await author.rest.checks.get({ ...where, check_run_id: queued.data.id })).data.conclusion).toBe("success");
    await expect(author.rest.checks.get({ ...where, check_run_id: 999_999 })).rejects.toMatchObject({ status: 404 });
    const listed = await author.rest.checks.listForRef({ ...where, ref: "change" });
    expect(listed.data.total_count).toBe(1);
    expect(listed.data.check_runs.map((run) => [run.name, run.status, run.conclusion])).toEqual([["agent", "completed", "success"]]);
    expect((await author.rest.checks.listForRef({ ...where, ref: sha, check_name: "other" })).data.total_count).toBe(0);
  });

  it("sends REST responses that match GitHub's published OpenAPI description", () => {
    const served = server.requests.filter((record) => record.kind === "api" && record.route);
    const verdicts = served.map((record) => ({ record: `${record.method} ${record.route} ${record.status}`, ...validator.validate(record) }));
    const failures = verdicts.filter((verdict) => verdict.errors.length > 0);
    expect(failures).toEqual([]);
    const operations = new Set(verdicts.map((verdict) => verdict.operationId));
    console.log(`validated ${verdicts.length} responses of ${operations.size} operations: ${[...operations].sort().join(", ")}`);
    // Every route the server has was exercised and validated, with success and error statuses.
    const routes = createRestRoutes({ urls: { web: "", api: "" }, repositories: new Map(), tokens: new Map(), apps: new Map(), nextId: () => 0, now: () => "", startedAt: "" });
    const validatedRoutes = new Set(served.map((record) => `${record.method} ${record.route}`));
    expect(routes.map((route) => `${route.method} ${route.template}`).filter((route) => !validatedRoutes.has(route))).toEqual([]);
    expect(new Set(served.map((record) => record.status))).toEqual(new Set([200, 201, 401, 403, 404, 422, 429, 502]));
  });
});
