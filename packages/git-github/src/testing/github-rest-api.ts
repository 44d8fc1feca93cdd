import { createPublicKey, randomBytes, verify } from "node:crypto";
import { compareBranches, listBranches, readCommit, revParse } from "./git-plumbing.js";
import { badCredentials, basicError, GitHubHttpError, notFound, requiresAuthentication, validationFailed } from "./github-http-error.js";
import {
  branchJson,
  commentJson,
  commitJson,
  commitStatusJson,
  integrationJson,
  issueJson,
  labelJson,
  pullRequestJson,
  repositoryJson,
  shortBranchJson,
  userJson,
  type JsonUrls,
  type PullRequestGitFacts,
  type RepositoryPermissionsJson,
} from "./github-json.js";
import { addCheckRunRoutes } from "./github-check-run-routes.js";
import { addConversationRoutes } from "./github-conversation-routes.js";
import type { RepositoryPermission, ServerApp, ServerIssue, ServerRepository, ServerToken } from "./github-server-model.js";

/** Who is calling: nobody, a token, or a GitHub App signing with its JWT. */
export type Caller = { kind: "anonymous" } | { kind: "token"; record: ServerToken } | { kind: "app"; app: ServerApp };

/** What a route handler gets. */
export interface RouteRequest {
  caller: Caller;
  params: Record<string, string>;
  query: URLSearchParams;
  body: Record<string, unknown>;
}

/** What a route handler returns. */
export interface RouteResponse {
  status: number;
  body: unknown;
}

/** One REST operation: method, GitHub's path template, handler. */
export interface Route {
  method: string;
  template: string;
  pattern: RegExp;
  names: string[];
  handle: (request: RouteRequest) => Promise<RouteResponse>;
}

/** The in-memory state the REST API reads and changes. */
export interface GitHubState {
  urls: JsonUrls;
  repositories: Map<string, ServerRepository>;
  tokens: Map<string, ServerToken>;
  apps: Map<number, ServerApp>;
  nextId: () => number;
  now: () => string;
  /** When the server started: the creation time of every account. */
  startedAt: string;
}

const ACCESS_ORDER: Array<RepositoryPermission | "none"> = ["none", "pull", "push", "admin"];

/** The caller's access to a repository, as GitHub would decide it for these token kinds. */
export function accessTo(caller: Caller, repository: ServerRepository): RepositoryPermission | "none" {
  const publicAccess = repository.private ? "none" : "pull";
  if (caller.kind !== "token") return publicAccess;
  const record = caller.record;
  const key = `${repository.owner}/${repository.name}`.toLowerCase();
  const reaches = record.repositories === "all" || record.repositories.has(key);
  if (!reaches) return publicAccess;
  const granted = record.kind === "installation" ? (record.installationPermissions?.contents === "write" ? "push" : "pull") : record.permission;
  return ACCESS_ORDER.indexOf(granted) > ACCESS_ORDER.indexOf(publicAccess) ? granted : publicAccess;
}

/** True when an access level is at least the one needed. */
export function atLeast(access: RepositoryPermission | "none", needed: RepositoryPermission): boolean {
  return ACCESS_ORDER.indexOf(access) >= ACCESS_ORDER.indexOf(needed);
}

/** Finds a token record for an Authorization header value; throws 401 for unknown, revoked or expired ones. */
export function callerFor(state: GitHubState, authorization: string | undefined): Caller {
  if (!authorization) return { kind: "anonymous" };
  const match = /^(token|bearer)\s+(\S+)$/i.exec(authorization.trim());
  if (!match) throw badCredentials();
  const credential = match[2]!;
  // Three dot-separated parts: an App's JWT.
  if (credential.split(".").length === 3) return { kind: "app", app: verifyAppJwt(state, credential) };
  const record = state.tokens.get(credential);
  if (!record || record.revoked || (record.expiresAt !== undefined && record.expiresAt <= Date.now())) throw badCredentials();
  return { kind: "token", record };
}

function verifyAppJwt(state: GitHubState, jwt: string): ServerApp {
  const [header, payload, signature] = jwt.split(".") as [string, string, string];
  let claims: { iss?: unknown; exp?: unknown; iat?: unknown };
  let algorithm: unknown;
  try {
    algorithm = (JSON.parse(Buffer.from(header, "base64url").toString("utf8")) as { alg?: unknown }).alg;
    claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as typeof claims;
  } catch {
    throw basicError(401, "A JSON web token could not be decoded");
  }
  const app = state.apps.get(Number(claims.iss));
  if (algorithm !== "RS256" || !app) throw basicError(401, "A JSON web token could not be decoded");
  const signed = verify("RSA-SHA256", Buffer.from(`${header}.${payload}`), createPublicKey(app.publicKeyPem), Buffer.from(signature, "base64url"));
  if (!signed) throw basicError(401, "A JSON web token could not be decoded");
  const now = Math.floor(Date.now() / 1000);
  if (typeof claims.exp !== "number" || claims.exp <= now) throw basicError(401, "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires");
  if (typeof claims.iat !== "number" || claims.iat > now + 60) throw basicError(401, "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued");
  if (claims.exp - claims.iat > 600) throw basicError(401, "'Expiration time' claim ('exp') is too far in the future");
  return app;
}

/** What route files other than this one build their routes with. */
export interface RouteKit {
  state: GitHubState;
  add: (method: string, template: string, handle: Route["handle"]) => void;
  /** The repository of the request's `owner`/`repo`, checked for the access needed (404 hidden, 403 too little). */
  repositoryFor: (request: RouteRequest, needed?: RepositoryPermission) => ServerRepository;
  /** The issue (or, with `pullOnly`, the pull request) numbered so; 404 otherwise. */
  issueFor: (repository: ServerRepository, number: string | undefined, pullOnly: boolean) => ServerIssue;
  /** The caller's login; 401 for anonymous callers. */
  callerLogin: (request: RouteRequest) => string;
}

/** Builds GitHub's REST routes over the state. */
export function createRestRoutes(state: GitHubState): Route[] {
  const routes: Route[] = [];
  const add = (method: string, template: string, handle: Route["handle"]) => {
    const names: string[] = [];
    const pattern = new RegExp(
      `^${template.replace(/\{(\w+)\}/g, (_match, name: string) => {
        names.push(name);
        return "([^/]+)";
      })}$`,
    );
    routes.push({ method, template, pattern, names, handle });
  };

  const repositoryFor = (request: RouteRequest, needed: RepositoryPermission = "pull"): ServerRepository => {
    const repository = state.repositories.get(`${request.params.owner}/${request.params.repo}`.toLowerCase());
    if (!repository) throw notFound();
    const access = accessTo(request.caller, repository);
    // GitHub hides private repositories from callers without access behind a 404.
    if (access === "none") throw notFound();
    if (!atLeast(access, needed)) {
      throw basicError(403, request.caller.kind === "token" && request.caller.record.kind === "installation" ? "Resource not accessible by integration" : "Resource not accessible by personal access token");
    }
    if (needed !== "pull" && repository.archived) throw basicError(403, "Repository was archived so is read-only.");
    return repository;
  };
  const callerLogin = (request: RouteRequest): string => {
    if (request.caller.kind !== "token") throw requiresAuthentication();
    return request.caller.record.login;
  };
  const permissionsJson = (request: RouteRequest, repository: ServerRepository): RepositoryPermissionsJson => {
    // GitHub leaves `permissions` out for anonymous callers and App installation tokens.
    if (request.caller.kind !== "token" || request.caller.record.kind === "installation") return undefined;
    const access = accessTo(request.caller, repository);
    return { admin: access === "admin", maintain: access === "admin", push: atLeast(access, "push"), triage: atLeast(access, "push"), pull: atLeast(access, "pull") };
  };
  const pushedAt = async (repository: ServerRepository): Promise<string | null> => {
    const tip = await revParse(repository.gitDir, `refs/heads/${repository.defaultBranch}`);
    return tip ? (await readCommit(repository.gitDir, tip)).committer.date : null;
  };
  const pullFacts = async (repository: ServerRepository, issue: ServerIssue): Promise<PullRequestGitFacts> => {
    const pull = issue.pull!;
    const headSha = (await revParse(repository.gitDir, `refs/heads/${pull.head}`)) ?? "0".repeat(40);
    const baseSha = (await revParse(repository.gitDir, `refs/heads/${pull.base}`)) ?? "0".repeat(40);
    const compared = headSha.startsWith("0000") || baseSha.startsWith("0000") ? { commits: 0, additions: 0, deletions: 0, changedFiles: 0 } : await compareBranches(repository.gitDir, baseSha, headSha);
    return { headSha, baseSha, ...compared, pushedAt: await pushedAt(repository) };
  };
  const pullJson = async (request: RouteRequest, repository: ServerRepository, issue: ServerIssue, full: boolean) =>
    pullRequestJson(state.urls, repository, issue, await pullFacts(repository, issue), permissionsJson(request, repository), full);
  const issueFor = (repository: ServerRepository, number: string | undefined, pullOnly: boolean): ServerIssue => {
    const issue = repository.issues.get(Number(number));
    if (!issue || (pullOnly && !issue.pull)) throw notFound();
    return issue;
  };
  const stringList = (value: unknown, field: string): string[] => {
    if (value === undefined) return [];
    if (!Array.isArray(value) || value.some((entry) => typeof entry !== "string")) {
      throw validationFailed([{ resource: "Issue", field, code: "invalid" }]);
    }
    return value as string[];
  };
  const isCollaborator = (repository: ServerRepository, login: string) =>
    login.toLowerCase() === repository.owner.toLowerCase() || repository.collaborators.has(login.toLowerCase());

  add("GET", "/repos/{owner}/{repo}", async (request) => {
    const repository = repositoryFor(request);
    return { status: 200, body: repositoryJson(state.urls, repository, permissionsJson(request, repository), await pushedAt(repository)) };
  });

  add("GET", "/repos/{owner}/{repo}/branches", async (request) => {
    const repository = repositoryFor(request);
    const branches = await listBranches(repository.gitDir);
    return { status: 200, body: page(request.query, branches).map((branch) => shortBranchJson(state.urls, repository, branch.name, branch.sha)) };
  });

  add("GET", "/repos/{owner}/{repo}/branches/{branch}", async (request) => {
    const repository = repositoryFor(request);
    const sha = await revParse(repository.gitDir, `refs/heads/${request.params.branch}`);
    if (!sha || !isSafeRef(request.params.branch!)) throw basicError(404, "Branch not found");
    return { status: 200, body: branchJson(state.urls, repository, request.params.branch!, await readCommit(repository.gitDir, sha)) };
  });

  add("GET", "/repos/{owner}/{repo}/pulls", async (request) => {
    const repository = repositoryFor(request);
    const wanted = request.query.get("state") ?? "open";
    const head = request.query.get("head");
    const base = request.query.get("base");
    const pulls = [...repository.issues.values()]
      .filter((issue) => issue.pull && (wanted === "all" || issue.state === wanted))
      .filter((issue) => !head || `${repository.owner}:${issue.pull!.head}`.toLowerCase() === (head.includes(":") ? head : `${repository.owner}:${head}`).toLowerCase())
      .filter((issue) => !base || issue.pull!.base === base)
      .sort((a, b) => b.number - a.number);
    const selected = page(request.query, pulls);
    return { status: 200, body: await Promise.all(selected.map((issue) => pullJson(request, repository, issue, false))) };
  });

  add("POST", "/repos/{owner}/{repo}/pulls", async (request) => {
    const repository = repositoryFor(request);
    const login = callerLogin(request);
    const { title, body, draft } = request.body;
    let head = request.body.head;
    const base = request.body.base;
    if (typeof head !== "string" || head === "") throw validationFailed([{ resource: "PullRequest", field: "head", code: "missing_field" }]);
    if (typeof base !== "string" || base === "") throw validationFailed([{ resource: "PullRequest", field: "base", code: "missing_field" }]);
    if (typeof title !== "string" || title.trim() === "") throw validationFailed([{ resource: "PullRequest", field: "title", code: "missing_field" }]);
    if (head.includes(":")) {
      const [owner, branch] = [head.slice(0, head.indexOf(":")), head.slice(head.indexOf(":") + 1)];
      // Pull requests from forks are not modelled: only the repository's own owner.
      if (owner.toLowerCase() !== repository.owner.toLowerCase()) throw validationFailed([{ resource: "PullRequest", field: "head", code: "invalid" }]);
      head = branch;
    }
    const headRef = head as string;
    const headSha = isSafeRef(headRef) ? await revParse(repository.gitDir, `refs/heads/${headRef}`) : undefined;
    const baseSha = isSafeRef(base) ? await revParse(repository.gitDir, `refs/heads/${base}`) : undefined;
    const errors: Array<Record<string, unknown>> = [];
    if (!headSha) errors.push({ resource: "PullRequest", field: "head", code: "invalid" });
    if (!baseSha) errors.push({ resource: "PullRequest", field: "base", code: "invalid" });
    if (errors.length > 0) throw validationFailed(errors);
    const existing = [...repository.issues.values()].find((issue) => issue.pull && issue.state === "open" && issue.pull.head === headRef);
    if (existing) throw validationFailed([{ resource: "PullRequest", code: "custom", message: `A pull request already exists for ${repository.owner}:${headRef}.` }]);
    const { commits } = await compareBranches(repository.gitDir, baseSha!, headSha!);
    if (commits === 0) throw validationFailed([{ resource: "PullRequest", code: "custom", message: `No commits between ${base} and ${headRef}` }]);
    const now = state.now();
    const issue: ServerIssue = {
      id: state.nextId(),
      number: repository.issues.size + 1,
      title,
      body: typeof body === "string" ? body : null,
      state: "open",
      user: login,
      labels: [],
      assignees: [],
      createdAt: now,
      updatedAt: now,
      closedAt: null,
      pull: { head: headRef, base, draft: draft === true, requestedReviewers: [], requestedTeams: [] },
    };
    repository.issues.set(issue.number, issue);
    return { status: 201, body: await pullJson(request, repository, issue, true) };
  });

  add("GET", "/repos/{owner}/{repo}/pulls/{pull_number}", async (request) => {
    const repository = repositoryFor(request);
    return { status: 200, body: await pullJson(request, repository, issueFor(repository, request.params.pull_number, true), true) };
  });

  add("PATCH", "/repos/{owner}/{repo}/pulls/{pull_number}", async (request) => {
    const repository = repositoryFor(request);
    const issue = issueFor(repository, request.params.pull_number, true);
    const login = callerLogin(request);
    if (login !== issue.user && !atLeast(accessTo(request.caller, repository), "push")) throw basicError(403, "Resource not accessible by personal access token");
    if (repository.archived) throw basicError(403, "Repository was archived so is read-only.");
    const { title, body, base, state: wanted } = request.body;
    if (title !== undefined) {
      if (typeof title !== "string" || title.trim() === "") throw validationFailed([{ resource: "PullRequest", field: "title", code: "invalid" }]);
      issue.title = title;
    }
    if (body !== undefined) issue.body = typeof body === "string" ? body : null;
    if (base !== undefined) {
      if (typeof base !== "string" || !isSafeRef(base) || !(await revParse(repository.gitDir, `refs/heads/${base}`))) {
        throw validationFailed([{ resource: "PullRequest", field: "base", code: "invalid", message: `Proposed base branch '${String(base)}' was not found` }]);
      }
      issue.pull!.base = base;
    }
    if (wanted === "open" || wanted === "closed") {
      issue.state = wanted;
      issue.closedAt = wanted === "closed" ? state.now() : null;
    }
    issue.updatedAt = state.now();
    return { status: 200, body: await pullJson(request, repository, issue, true) };
  });

  add("POST", "/repos/{owner}/{repo}/pulls/{pull_number}/requested_reviewers", async (request) => {
    const repository = repositoryFor(request, "push");
    const issue = issueFor(repository, request.params.pull_number, true);
    const reviewers = stringList(request.body.reviewers, "reviewers");
    const teams = stringList(request.body.team_reviewers, "team_reviewers");
    if (reviewers.some((login) => login.toLowerCase() === issue.user.toLowerCase())) {
      throw validationFailed([{ resource: "PullRequest", code: "custom", message: "Review cannot be requested from pull request author." }]);
    }
    if (reviewers.some((login) => !isCollaborator(repository, login))) {
      throw validationFailed([
        {
          resource: "PullRequest",
          code: "custom",
          message: `Reviews may only be requested from collaborators. One or more of the users or teams you specified is not a collaborator of the ${repository.owner}/${repository.name} repository.`,
        },
      ]);
    }
    const pull = issue.pull!;
    pull.requestedReviewers = unionIgnoringCase(pull.requestedReviewers, reviewers);
    pull.requestedTeams = unionIgnoringCase(pull.requestedTeams, teams);
    return { status: 201, body: await pullJson(request, repository, issue, false) };
  });

  add("GET", "/repos/{owner}/{repo}/issues/{issue_number}", async (request) => {
    const repository = repositoryFor(request);
    return { status: 200, body: issueJson(state.urls, repository, issueFor(repository, request.params.issue_number, false)) };
  });

  add("GET", "/repos/{owner}/{repo}/issues/{issue_number}/labels", async (request) => {
    const repository = repositoryFor(request);
    const issue = issueFor(repository, request.params.issue_number, false);
    return { status: 200, body: issue.labels.map((name) => labelJson(state.urls, repository, repository.labels.get(name.toLowerCase())!)) };
  });

  add("POST", "/repos/{owner}/{repo}/issues/{issue_number}/labels", async (request) => {
    const repository = repositoryFor(request, "push");
    const issue = issueFor(repository, request.params.issue_number, false);
    const names = stringList(Array.isArray(request.body) ? request.body : request.body.labels, "labels");
    for (const name of names) {
      if (name.trim() === "") throw validationFailed([{ resource: "Label", field: "name", code: "missing_field" }]);
      // GitHub creates a label that does not exist yet, in its default grey.
      if (!repository.labels.has(name.toLowerCase())) repository.labels.set(name.toLowerCase(), { id: state.nextId(), name, color: "ededed", description: "" });
      const canonical = repository.labels.get(name.toLowerCase())!.name;
      if (!issue.labels.some((label) => label.toLowerCase() === canonical.toLowerCase())) issue.labels.push(canonical);
    }
    issue.updatedAt = state.now();
    return { status: 200, body: issue.labels.map((name) => labelJson(state.urls, repository, repository.labels.get(name.toLowerCase())!)) };
  });

  add("POST", "/repos/{owner}/{repo}/issues/{issue_number}/assignees", async (request) => {
    const repository = repositoryFor(request, "push");
    const issue = issueFor(repository, request.params.issue_number, false);
    // GitHub silently skips users who cannot be assigned.
    const assignable = stringList(request.body.assignees, "assignees").filter((login) => isCollaborator(repository, login));
    issue.assignees = unionIgnoringCase(issue.assignees, assignable).slice(0, 10);
    issue.updatedAt = state.now();
    return { status: 201, body: issueJson(state.urls, repository, issue) };
  });

  add("GET", "/repos/{owner}/{repo}/issues/{issue_number}/comments", async (request) => {
    const repository = repositoryFor(request);
    const issue = issueFor(repository, request.params.issue_number, false);
    const comments = [...repository.comments.values()].filter((comment) => comment.issueNumber === issue.number).sort((a, b) => a.id - b.id);
    return { status: 200, body: page(request.query, comments).map((comment) => commentJson(state.urls, repository, comment)) };
  });

  add("POST", "/repos/{owner}/{repo}/issues/{issue_number}/comments", async (request) => {
    const repository = repositoryFor(request);
    if (repository.archived) throw basicError(403, "Repository was archived so is read-only.");
    const issue = issueFor(repository, request.params.issue_number, false);
    const login = callerLogin(request);
    const body = request.body.body;
    if (typeof body !== "string" || body.trim() === "") throw validationFailed([{ resource: "IssueComment", field: "body", code: "missing_field" }]);
    const now = state.now();
    const comment = { id: state.nextId(), issueNumber: issue.number, body, user: login, createdAt: now, updatedAt: now };
    repository.comments.set(comment.id, comment);
    return { status: 201, body: commentJson(state.urls, repository, comment) };
  });

  add("POST", "/repos/{owner}/{repo}/statuses/{sha}", async (request) => {
    const repository = repositoryFor(request);
    if (repository.archived) throw basicError(403, "Repository was archived so is read-only.");
    if (!atLeast(accessTo(request.caller, repository), "push")) throw basicError(403, "Resource not accessible by personal access token");
    const sha = request.params.sha!;
    if (!/^[0-9a-f]{40}$/.test(sha) || !(await readCommit(repository.gitDir, sha).then(() => true, () => false))) {
      throw validationFailed([{ resource: "Status", field: "sha", code: "invalid" }]);
    }
    const { state: wanted, context, description, target_url: targetUrl } = request.body;
    if (wanted !== "error" && wanted !== "failure" && wanted !== "pending" && wanted !== "success") throw validationFailed([{ resource: "Status", field: "state", code: "invalid" }]);
    if (description !== undefined && description !== null && (typeof description !== "string" || description.length > 140)) {
      throw validationFailed([{ resource: "Status", field: "description", code: "custom", message: "description is too long (maximum is 140 characters)" }]);
    }
    const now = state.now();
    const status = {
      id: state.nextId(),
      sha,
      state: wanted,
      context: typeof context === "string" && context !== "" ? context : "default",
      description: typeof description === "string" ? description : null,
      targetUrl: typeof targetUrl === "string" ? targetUrl : null,
      creator: callerLogin(request),
      createdAt: now,
      updatedAt: now,
    } as const;
    repository.statuses.push(status);
    return { status: 201, body: commitStatusJson(state.urls, repository, status) };
  });

  add("GET", "/repos/{owner}/{repo}/commits/{ref}", async (request) => {
    const repository = repositoryFor(request);
    const ref = request.params.ref!;
    const sha = /^[0-9a-f]{40}$/.test(ref) ? await revParse(repository.gitDir, ref) : isSafeRef(ref) ? await revParse(repository.gitDir, `refs/heads/${ref}`) : undefined;
    if (!sha) throw validationFailed([{ resource: "Commit", field: "ref", code: "invalid", message: `No commit found for SHA: ${ref}` }]);
    return { status: 200, body: commitJson(state.urls, repository, await readCommit(repository.gitDir, sha)) };
  });

  add("GET", "/repos/{owner}/{repo}/commits/{ref}/statuses", async (request) => {
    const repository = repositoryFor(request);
    const ref = request.params.ref!;
    const sha = /^[0-9a-f]{40}$/.test(ref) ? ref : isSafeRef(ref) ? await revParse(repository.gitDir, `refs/heads/${ref}`) : undefined;
    const statuses = repository.statuses.filter((status) => status.sha === sha).reverse();
    return { status: 200, body: page(request.query, statuses).map((status) => commitStatusJson(state.urls, repository, status)) };
  });

  add("GET", "/repos/{owner}/{repo}/issues/comments/{comment_id}", async (request) => {
    const repository = repositoryFor(request);
    const comment = repository.comments.get(Number(request.params.comment_id));
    if (!comment) throw notFound();
    return { status: 200, body: commentJson(state.urls, repository, comment) };
  });

  add("PATCH", "/repos/{owner}/{repo}/issues/comments/{comment_id}", async (request) => {
    const repository = repositoryFor(request);
    const comment = repository.comments.get(Number(request.params.comment_id));
    if (!comment) throw notFound();
    const login = callerLogin(request);
    if (login !== comment.user && !atLeast(accessTo(request.caller, repository), "push")) throw basicError(403, "Resource not accessible by personal access token");
    if (repository.archived) throw basicError(403, "Repository was archived so is read-only.");
    const body = request.body.body;
    if (typeof body !== "string" || body.trim() === "") throw validationFailed([{ resource: "IssueComment", field: "body", code: "missing_field" }]);
    comment.body = body;
    comment.updatedAt = state.now();
    return { status: 200, body: commentJson(state.urls, repository, comment) };
  });

  add("GET", "/user", async (request) => {
    if (request.caller.kind !== "token") throw requiresAuthentication();
    if (request.caller.record.kind === "installation") throw basicError(403, "Resource not accessible by integration");
    return { status: 200, body: userJson(state.urls, request.caller.record.login, state.startedAt, true) };
  });

  add("GET", "/users/{username}", async (request) => {
    const login = knownLogins(state).get(request.params.username!.toLowerCase());
    if (!login) throw notFound();
    return { status: 200, body: userJson(state.urls, login, state.startedAt, false) };
  });

  add("GET", "/app", async (request) => {
    if (request.caller.kind !== "app") throw basicError(401, "A JSON web token could not be decoded");
    return { status: 200, body: integrationJson(state.urls, request.caller.app, state.startedAt) };
  });

  add("POST", "/app/installations/{installation_id}/access_tokens", async (request) => {
    if (request.caller.kind !== "app") {
      throw basicError(401, "A JSON web token could not be decoded");
    }
    const app = request.caller.app;
    if (app.installationId !== Number(request.params.installation_id)) throw notFound();
    const token = `ghs_${randomBytes(18).toString("base64url")}`;
    const expiresAt = Date.now() + app.tokenLifetimeSeconds * 1000;
    state.tokens.set(token, {
      token,
      login: `${app.slug}[bot]`,
      kind: "installation",
      permission: app.permissions.contents === "write" ? "push" : "pull",
      repositories: new Set([...state.repositories.values()].filter((repository) => repository.owner.toLowerCase() === app.account).map((repository) => `${repository.owner}/${repository.name}`.toLowerCase())),
      installationPermissions: app.permissions,
      expiresAt,
      revoked: false,
    });
    app.mintedTokens.push(token);
    return {
      status: 201,
      body: { token, expires_at: new Date(expiresAt).toISOString().replace(/\.\d{3}Z$/, "Z"), permissions: app.permissions, repository_selection: "all" },
    };
  });

  const kit: RouteKit = { state, add, repositoryFor, issueFor, callerLogin };
  addConversationRoutes(kit);
  addCheckRunRoutes(kit);
  return routes;
}

/** Every account the server knows, by lower-cased login: token holders, App bots, owners, collaborators, authors. */
export function knownLogins(state: GitHubState): Map<string, string> {
  const logins = new Map<string, string>();
  const add = (login: string) => logins.set(login.toLowerCase(), login);
  for (const token of state.tokens.values()) add(token.login);
  for (const app of state.apps.values()) add(`${app.slug}[bot]`);
  for (const repository of state.repositories.values()) {
    add(repository.owner);
    for (const login of repository.collaborators) if (!logins.has(login)) add(login);
    for (const issue of repository.issues.values()) add(issue.user);
  }
  return logins;
}

/** Branch names git would accept in a ref, so that no request names something outside refs/heads. */
export function isSafeRef(name: string): boolean {
  return name.length > 0 && !name.startsWith("-") && !name.includes("..") && !/[\s~^:?*[\\\x00-\x1f]/.test(name) && !name.endsWith(".lock") && !name.endsWith("/");
}

function unionIgnoringCase(current: string[], added: string[]): string[] {
  const result = [...current];
  for (const entry of added) if (!result.some((existing) => existing.toLowerCase() === entry.toLowerCase())) result.push(entry);
  return result;
}

/** GitHub's paging: `per_page` (at most 100, default 30) and `page`. */
export function page<T>(query: URLSearchParams, items: T[]): T[] {
  const perPage = Math.min(100, Math.max(1, Number(query.get("per_page") ?? 30) || 30));
  const pageNumber = Math.max(1, Number(query.get("page") ?? 1) || 1);
  return items.slice((pageNumber - 1) * perPage, pageNumber * perPage);
}

export { GitHubHttpError };
