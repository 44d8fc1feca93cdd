import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { createTestRepository, listenOnLoopback, parseBasicAuthorization, readRequestBody, serveGitHttpBackend, stopGitServer } from "@running-agent/core/offline";
import type { ServerUser } from "./gitlab-json.js";
import { callerFor, createRestRoutes, DRAFT, findToken, GitLabHttpError, hasScope, insufficientScope, messageError, type BranchCommit, type Caller, type Route } from "./gitlab-rest-api.js";
import { protectionRulePattern } from "../protection-rule.js";
import { createWebhookSender, webhookParts, type WebhookDelivery } from "./gitlab-webhooks.js";
import { accessLevel, AccessLevel, levelOf, NO_ONE, type GitLabState, type Role, type ServerIssue, type ServerMergeRequest, type ServerProject } from "./gitlab-server-state.js";

/** Options for {@link startGitLabServer}. */
export interface GitLabServerOptions {
  /** Folder for the bare repositories. Default: a new temporary folder, removed on close. */
  root?: string;
  /**
   * Serve under a relative URL root, as a self-managed GitLab at `https://example.com/gitlab`
   * does: e.g. `/gitlab`. Default: none.
   */
  relativeUrlRoot?: string;
  /** Serve HTTPS with this key and certificate (PEM), e.g. one signed by a private CA. Default: plain HTTP. */
  tls?: {
    /** The server's private key (PEM). */
    key: string;
    /** Its certificate (PEM). */
    cert: string;
  };
}

/** A project to create with {@link GitLabServer.createProject}. */
export interface CreateProjectOptions {
  /** `group/project` or `group/sub/project`. */
  path: string;
  /** Default `main`. */
  defaultBranch?: string;
  /** Files of the first commit. Default: a README. */
  files?: Record<string, string>;
  /** Default `private`. */
  visibility?: "private" | "internal" | "public";
  /** Default false: an archived project refuses pushes and merge requests, as on GitLab. */
  archived?: boolean;
  /** The project's description in its REST answers. */
  description?: string;
  /** Direct members: username to role (the users are created when new). */
  members?: Record<string, Role>;
}

/** A token to accept, with {@link GitLabServer.createPersonalAccessToken} and the others. */
export interface TokenOptions {
  /** Default `["api"]`. */
  scopes?: string[];
  /** Seconds until the token stops working. Default: never. */
  expiresInSeconds?: number;
  /** Use this token value instead of a generated `glpat-...` one. */
  token?: string;
}

/** A failure answered instead of the real response. */
export interface InjectedFailure {
  /** Only this method. Default: any. */
  method?: string;
  /** A route template (`/projects/:id/merge_requests`), an exact path (without `/api/v4`), or a pattern. Default: any. */
  path?: string | RegExp;
  /** The HTTP status answered. */
  status: number;
  /** Default `{ message: "<status> ..." }`. */
  body?: unknown;
  /** Extra response headers, e.g. `retry-after` or the rate-limit ones. */
  headers?: Record<string, string>;
  /** How many matching requests fail. Default 1. */
  times?: number;
  /** Apply to git smart-HTTP requests instead of REST requests. */
  git?: boolean;
}

/** One request the server saw. Holds no credential. */
export interface GitLabRequestRecord {
  /** REST or git smart HTTP. */
  kind: "api" | "git";
  /** The HTTP method. */
  method: string;
  /** The path without the URL root and `/api/v4`, still URL-encoded, without the query. */
  path: string;
  /** The query string without `?`, empty when none. */
  query: string;
  /** The REST v4 route template, when one matched. */
  route?: string;
  /** How the caller authenticated: a `PRIVATE-TOKEN` header, a bearer token, basic auth (git). */
  authorization: "none" | "private-token" | "bearer" | "basic" | "other";
  /** The user the token acts as, when it was valid. */
  username?: string;
  /** The HTTP status answered. */
  status: number;
  /** The JSON body sent back (REST only). */
  responseBody?: unknown;
  /** True when the answer came from an injected failure. */
  injected?: boolean;
}

/** A merge request as the server holds it, by usernames. */
export interface MergeRequestRecord {
  /** The merge request's number in its project. */
  iid: number;
  /** Its title (without the `Draft:` prefix). */
  title: string;
  /** Its description. */
  description: string;
  /** Opened, closed or merged. */
  state: "opened" | "closed" | "merged";
  /** The branch it merges from. */
  sourceBranch: string;
  /** The branch it merges into. */
  targetBranch: string;
  /** A draft. */
  draft: boolean;
  /** The username that opened it. */
  author: string;
  /** Label names. */
  labels: string[];
  /** Assigned usernames. */
  assignees: string[];
  /** Usernames asked for a review. */
  reviewers: string[];
}

/** A running local GitLab-compatible server. */
export interface GitLabServer extends AsyncDisposable {
  /** The web and git base URL, `http://127.0.0.1:PORT` (`https` with `tls`; plus the relative URL root). Pass it as `baseUrl`. */
  readonly url: string;
  /** `<url>/api/v4`. */
  readonly apiUrl: string;
  /** Every request so far, in order. */
  readonly requests: GitLabRequestRecord[];
  /** Creates a project (its groups need not exist) with one commit on its default branch. */
  createProject(options: CreateProjectOptions): Promise<{
    /** The project's full path, `group/sub/project`. */
    path: string;
    /** Its numeric id. */
    id: number;
    /** Its clone URL on this server: `<url>/<path>.git`. */
    httpUrl: string;
    /** The bare repository on disk. */
    gitDir: string;
  }>;
  /** Creates a user, or returns the one with this username. */
  createUser(
    username: string,
    options?: { name?: string; email?: string; bot?: boolean },
  ): {
    /** The user's numeric id. */
    id: number;
    /** Their username. */
    username: string;
  };
  /** Adds or changes a project member's role. */
  addProjectMember(path: string, username: string, role: Role): void;
  /** Adds or changes a group member's role; it reaches every subgroup and project below. */
  addGroupMember(groupPath: string, username: string, role: Role): void;
  /** A personal access token of a user (created when new). */
  createPersonalAccessToken(username: string, options?: TokenOptions): string;
  /** A project access token: a new bot user that is a member of the project with `role` (default Maintainer). */
  createProjectAccessToken(path: string, options?: TokenOptions & { role?: Role }): string;
  /** A group access token: a new bot user that is a member of the group with `role` (default Maintainer). */
  createGroupAccessToken(groupPath: string, options?: TokenOptions & { role?: Role }): string;
  /** Stops accepting a token (GitLab then answers 401). */
  revokeToken(token: string): void;
  /** Archives or unarchives a project. */
  setArchived(path: string, archived: boolean): void;
  /**
   * Protects a branch by exact name or by a wildcard rule (`release/*`, which also covers branches
   * created later): pushes need `pushRole` (default Maintainer; `"no one"` for none), for REST's
   * `can_push` and `GET .../protected_branches`, and for git itself. Where several rules cover a
   * branch, the most permissive decides, as in GitLab.
   */
  protectBranch(path: string, branch: string, pushRole?: Role | "no one"): void;
  /**
   * Adds a project webhook: GitLab POSTs `Note Hook` and `Issue Hook` deliveries to `url` (default
   * events: both), with `token` as `X-Gitlab-Token`.
   */
  addWebhook(path: string, hook: { url: string; token?: string; events?: Array<"note" | "issues"> }): void;
  /** Opens an issue as a user (created when new). */
  createIssue(
    path: string,
    issue: { title: string; description?: string; author: string; labels?: string[] },
  ): {
    /** The issue's number within the project (`#3`). */
    iid: number;
  };
  /** A user comments on an issue, as in GitLab's UI: the note is kept and the Note Hook sent; resolves with each webhook's answer. */
  commentOnIssue(path: string, iid: number, note: { author: string; body: string }): Promise<WebhookDelivery[]>;
  /** A user adds a label to an issue: the Issue Hook (`action: "update"`, `changes.labels`) is sent; resolves with each webhook's answer. */
  labelIssue(path: string, iid: number, label: { author: string; label: string }): Promise<WebhookDelivery[]>;
  /** Sends a delivery again with the same body and `Idempotency-Key`, as GitLab's "Resend request" does. */
  resendWebhook(delivery: WebhookDelivery): Promise<WebhookDelivery>;
  /** An issue's comments, oldest first, by username. */
  issueNotes(
    path: string,
    iid: number,
  ): Array<{
    /** The username that wrote the comment. */
    author: string;
    /** The comment's text (Markdown). */
    body: string;
  }>;
  /** Makes a branch at `from` (default: the default branch), as someone with the rights to would push it. */
  createBranch(path: string, branch: string, from?: string): Promise<void>;
  /** The sha a branch points at, or undefined. */
  branchSha(path: string, branch: string): Promise<string | undefined>;
  /** A file's text at a ref, or undefined. */
  readFile(path: string, ref: string, file: string): Promise<string | undefined>;
  /** The commit statuses of a project, oldest first. */
  commitStatuses(path: string): Array<{
    /** The commit. */
    sha: string;
    /** The branch given with the status. */
    ref: string;
    /** The status's name (its context). */
    name: string;
    /** `pending`, `running`, `success`, `failed` or `canceled`. */
    status: string;
    /** Its description, null when none. */
    description: string | null;
    /** Its link, null when none. */
    targetUrl: string | null;
  }>;
  /** The merge requests of a project, oldest first. */
  mergeRequests(path: string): MergeRequestRecord[];
  /** Answers matching requests with a failure instead of the real response. */
  injectFailure(failure: InjectedFailure): void;
  /**
   * Answers the next matching REST request(s) with GitLab's 429 `Retry later`, with
   * `RateLimit-*` headers and, unless `retryAfter: false`, `Retry-After`.
   */
  rateLimit(options: { retryAfterSeconds: number; retryAfter?: boolean; times?: number; method?: string; path?: string | RegExp }): void;
  /** Stops the server, kills running git processes, removes the temporary folder it made. Idempotent. */
  close(): Promise<void>;
}

const API_PREFIX = "/api/v4";
const GIT_PATH = /^\/(.+?)(?:\.git)?\/(info\/refs|git-upload-pack|git-receive-pack)$/;

// Refuses pushes to protected branches unless REMOTE_USER may push there under one of the rules that
// cover the branch (each line: the rule as a regular expression, then who may push); the server rewrites
// the list before each push.
const PRE_RECEIVE_HOOK = `#!/bin/sh
list="$GIT_DIR/running-agent-protected-branches"
[ -f "$list" ] || exit 0
while read old new ref; do
  branch=\${ref#refs/heads/}
  if ! awk -F '\\t' -v b="$branch" -v u="$REMOTE_USER" 'BEGIN { covered = 0; allowed = 0 } b ~ $1 { covered = 1; n = split($2, a, " "); for (i = 1; i <= n; i++) if (a[i] == u) allowed = 1 } END { exit covered && !allowed }' "$list"; then
    echo "GitLab: You are not allowed to push code to protected branches on this project." >&2
    exit 1
  fi
done
exit 0
`;

/**
 * Starts a local GitLab-compatible server on 127.0.0.1 and a free port: git smart HTTP by
 * `git http-backend` at `<url>/<group>/<project>.git` (any username, a token as the password),
 * and the REST v4 operations the adapter uses under `<url>/api/v4`, with GitLab's status codes
 * and error bodies. Point `createGitLab({ baseUrl: server.url })` at it.
 */
export async function startGitLabServer(options: GitLabServerOptions = {}): Promise<GitLabServer> {
  const ownRoot = options.root === undefined;
  const root = options.root ?? (await mkdtemp(join(tmpdir(), "gitlab-server-")));
  const urlRoot = (options.relativeUrlRoot ?? "").replace(/\/+$/, "");
  if (urlRoot !== "" && !/^(\/[A-Za-z0-9_-]+)+$/.test(urlRoot)) throw new Error(`relativeUrlRoot must look like /gitlab, not ${options.relativeUrlRoot}`);
  const requests: GitLabRequestRecord[] = [];
  const failures: Array<InjectedFailure & { remaining: number }> = [];
  const children = new Set<ChildProcess>();
  let counter = 0;
  const state: GitLabState = {
    webUrl: "",
    users: new Map(),
    tokens: new Map(),
    projects: new Map(),
    groups: new Map(),
    nextId: () => ++counter,
    now: () => new Date().toISOString(),
  };
  const branchCommit = async (project: ServerProject, branch: string): Promise<BranchCommit | undefined> => {
    let output: string;
    try {
      output = await project.repository.git("log", "-1", "--format=%H%x00%P%x00%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%s%x00%B", `refs/heads/${branch}`, "--");
    } catch {
      return undefined;
    }
    const [id, parents, authorName, authorEmail, authoredDate, committerName, committerEmail, committedDate, title, message] = output.replace(/\n$/, "").split("\0") as string[];
    return {
      id: id!,
      short_id: id!.slice(0, 8),
      title: title!,
      message: message!,
      author_name: authorName!,
      author_email: authorEmail!,
      authored_date: authoredDate!,
      committer_name: committerName!,
      committer_email: committerEmail!,
      committed_date: committedDate!,
      parent_ids: parents ? parents.split(" ") : [],
    };
  };
  const commitExists = async (project: ServerProject, sha: string): Promise<boolean> => {
    if (!/^[0-9a-f]{40}$/.test(sha)) return false;
    return project.repository.git("cat-file", "-e", `${sha}^{commit}`).then(
      () => true,
      () => false,
    );
  };
  const routes = createRestRoutes(state, { branch: branchCommit, commitExists });
  const webhooks = createWebhookSender(state);

  const listener = (request: IncomingMessage, response: ServerResponse) => {
    handle(request, response).catch((error: unknown) => {
      if (!response.headersSent) response.writeHead(500, { "content-type": "application/json" });
      response.end(JSON.stringify({ message: "500 Internal Server Error", error: (error as Error).message }));
    });
  };
  const server = options.tls ? createHttpsServer({ key: options.tls.key, cert: options.tls.cert }, listener) : createServer(listener);

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? "/", "http://127.0.0.1");
    // The raw path keeps `%2F` in project ids and branch names, as GitLab reads them.
    const rawPath = (request.url ?? "/").replace(/[?#].*$/, "");
    if (urlRoot && !(rawPath === urlRoot || rawPath.startsWith(`${urlRoot}/`))) {
      response.writeHead(404, { "content-type": "text/plain" });
      response.end("Not Found\n");
      return;
    }
    const path = rawPath.slice(urlRoot.length) || "/";
    if (path === API_PREFIX || path.startsWith(`${API_PREFIX}/`)) return handleApi(request, response, path.slice(API_PREFIX.length) || "/", url);
    return handleGit(request, response, path, url);
  }

  function takeFailure(kind: "api" | "git", method: string, path: string, template: string | undefined) {
    const failure = failures.find(
      (candidate) =>
        candidate.remaining > 0 &&
        (candidate.git === true ? "git" : "api") === kind &&
        (!candidate.method || candidate.method.toUpperCase() === method) &&
        (candidate.path === undefined || (candidate.path instanceof RegExp ? candidate.path.test(path) : candidate.path === path || candidate.path === template)),
    );
    if (failure) failure.remaining -= 1;
    return failure;
  }

  function matchRoute(method: string, path: string): { route: Route; params: Record<string, string> } | undefined {
    const segments = path.split("/").filter(Boolean);
    for (const route of routes) {
      if (route.method !== method || route.segments.length !== segments.length) continue;
      const params: Record<string, string> = {};
      const matched = route.segments.every((segment, index) => {
        if (segment.startsWith(":")) {
          try {
            params[segment.slice(1)] = decodeURIComponent(segments[index]!);
            return true;
          } catch {
            return false;
          }
        }
        return segment === segments[index];
      });
      if (matched) return { route, params };
    }
    return undefined;
  }

  async function handleApi(request: IncomingMessage, response: ServerResponse, path: string, url: URL): Promise<void> {
    const method = (request.method ?? "GET").toUpperCase();
    const record: GitLabRequestRecord = { kind: "api", method, path, query: url.search.slice(1), authorization: authorizationKind(request.headers), status: 0 };
    requests.push(record);
    const rawBody = await readRequestBody(request);
    const matched = matchRoute(method, path);
    if (matched) record.route = matched.route.template;
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      record.status = status;
      record.responseBody = body;
      const text = typeof body === "string";
      response.writeHead(status, {
        "content-type": text ? "text/plain; charset=utf-8" : "application/json",
        "x-request-id": randomBytes(8).toString("hex"),
        ...(Array.isArray(body) ? { "x-page": "1", "x-per-page": "100", "x-total": String(body.length), "x-total-pages": "1", "x-next-page": "", "x-prev-page": "" } : {}),
        ...headers,
      });
      response.end(status === 204 ? undefined : text ? body : JSON.stringify(body));
    };
    try {
      const caller: Caller = callerFor(state, request.headers);
      if (caller.kind === "token") record.username = caller.user.username;
      const failure = takeFailure("api", method, path, matched?.route.template);
      if (failure) {
        record.injected = true;
        return send(failure.status, failure.body ?? { message: `${failure.status} Injected failure` }, failure.headers);
      }
      if (!matched) throw messageError(404, "404 Not Found");
      if (caller.kind === "token" && !hasScope(caller.token, matched.route.write ? "api" : "read_api")) throw insufficientScope("api");
      let body: Record<string, unknown> = {};
      if (rawBody.byteLength > 0) {
        try {
          body = JSON.parse(rawBody.toString("utf8")) as Record<string, unknown>;
        } catch {
          throw new GitLabHttpError(400, { error: "400 Bad request - Invalid JSON" });
        }
      }
      const result = await matched.route.handle({ caller, params: matched.params, query: url.searchParams, body });
      return send(result.status, result.body);
    } catch (error) {
      if (error instanceof GitLabHttpError) return send(error.status, error.body, error.headers);
      throw error;
    }
  }

  async function handleGit(request: IncomingMessage, response: ServerResponse, path: string, url: URL): Promise<void> {
    const method = (request.method ?? "GET").toUpperCase();
    const record: GitLabRequestRecord = { kind: "git", method, path, query: url.search.slice(1), authorization: authorizationKind(request.headers), status: 0 };
    requests.push(record);
    const plain = (status: number, text: string, headers: Record<string, string> = {}) => {
      record.status = status;
      response.writeHead(status, { "content-type": "text/plain; charset=utf-8", ...headers });
      response.end(`${text}\n`);
    };
    const challenge = { "www-authenticate": 'Basic realm="GitLab"' };
    const match = GIT_PATH.exec(path);
    if (!match) return plain(404, "Not Found");
    let projectPath: string;
    try {
      projectPath = decodeURIComponent(match[1]!);
    } catch {
      return plain(404, "Not Found");
    }
    const project = state.projects.get(projectPath.toLowerCase());
    const service = match[2] === "info/refs" ? url.searchParams.get("service") : match[2];
    if (service !== "git-upload-pack" && service !== "git-receive-pack") return plain(403, "Smart HTTP only.");
    const push = service === "git-receive-pack";
    const credentials = parseBasicAuthorization(request.headers.authorization);
    let user: ServerUser | undefined;
    if (credentials) {
      // GitLab takes any username with a token as the password (`oauth2`, the bot's name, ...).
      const token = findToken(state, credentials.password);
      if (!token) return plain(401, "HTTP Basic: Access denied. If a password was provided for Git authentication, the password was incorrect or you're required to use a token instead of a password.", challenge);
      if (!hasScope(token, push ? "write_repository" : "read_repository")) return plain(403, "You are not allowed to push code to this project.");
      user = state.users.get(token.userId);
      record.username = user?.username;
    }
    const failure = takeFailure("git", method, path, undefined);
    if (failure) {
      record.injected = true;
      return plain(failure.status, String((failure.body as { message?: unknown } | undefined)?.message ?? "Injected failure"), failure.headers);
    }
    const level = project ? accessLevel(state, project, user?.id) : 0;
    const canRead = project !== undefined && (project.visibility === "public" || level >= AccessLevel.reporter);
    if (!canRead || (push && !user)) {
      if (!user) return plain(401, "HTTP Basic: Access denied.", challenge);
      return plain(404, "The project you were looking for could not be found or you don't have permission to view it.");
    }
    if (push && (level < AccessLevel.developer || project.archived)) return plain(403, "You are not allowed to push code to this project.");
    if (push) await writeProtectedBranches(project);
    const answer = await serveGitHttpBackend(request, response, {
      projectRoot: root,
      pathInfo: `/${project.gitPath}/${match[2]}`,
      query: url.search.slice(1),
      remoteUser: user?.username ?? "anonymous",
      children,
    });
    record.status = answer.status;
  }

  async function writeProtectedBranches(project: ServerProject): Promise<void> {
    const lines = [...project.protectedBranches].map(([rule, pushLevel]) => {
      const pushers = pushLevel === NO_ONE ? [] : [...state.users.values()].filter((candidate) => accessLevel(state, project, candidate.id) >= pushLevel).map((candidate) => candidate.username);
      return `${protectionRulePattern(rule)}\t${pushers.join(" ")}\n`;
    });
    await writeFile(join(project.repository.path, "running-agent-protected-branches"), lines.join(""));
  }

  await mkdir(root, { recursive: true });
  const port = await listenOnLoopback(server);
  state.webUrl = `${options.tls ? "https" : "http"}://127.0.0.1:${port}${urlRoot}`;

  const projectNamed = (path: string): ServerProject => {
    const project = state.projects.get(path.toLowerCase());
    if (!project) throw new Error(`No project ${path} on this server.`);
    return project;
  };
  const issueNamed = (project: ServerProject, iid: number): ServerIssue => {
    const issue = project.issues.get(iid);
    if (!issue) throw new Error(`No issue #${iid} in ${project.path} on this server.`);
    return issue;
  };
  const createUser = (username: string, userOptions: { name?: string; email?: string; bot?: boolean } = {}): ServerUser => {
    const existing = [...state.users.values()].find((user) => user.username.toLowerCase() === username.toLowerCase());
    if (existing) return existing;
    if (!/^[A-Za-z0-9_.][A-Za-z0-9_.-]*$/.test(username)) throw new Error(`Not a valid username: ${username}`);
    const id = state.nextId();
    const user: ServerUser = { id, username, name: userOptions.name ?? username, email: userOptions.email ?? `${id}-${username}@users.noreply.gitlab.test`, bot: userOptions.bot ?? false, createdAt: state.now() };
    state.users.set(id, user);
    return user;
  };
  const issueToken = (userId: number, kind: "personal" | "project" | "group", tokenOptions: TokenOptions = {}): string => {
    const token = tokenOptions.token ?? `glpat-${randomBytes(15).toString("base64url")}`;
    state.tokens.set(token, {
      token,
      userId,
      kind,
      scopes: tokenOptions.scopes ?? ["api"],
      ...(tokenOptions.expiresInSeconds === undefined ? {} : { expiresAt: Date.now() + tokenOptions.expiresInSeconds * 1000 }),
      revoked: false,
    });
    return token;
  };
  const groupMembers = (groupPath: string) => {
    const key = groupPath.toLowerCase().replace(/^\/+|\/+$/g, "");
    let members = state.groups.get(key);
    if (!members) state.groups.set(key, (members = new Map()));
    return members;
  };

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      await stopGitServer(server, children);
      await Promise.all([...state.projects.values()].map((project) => project.repository.remove()));
      if (ownRoot) await rm(root, { recursive: true, force: true });
    })();
    return closing;
  };

  return {
    url: state.webUrl,
    apiUrl: `${state.webUrl}${API_PREFIX}`,
    requests,
    async createProject(projectOptions) {
      const path = projectOptions.path.replace(/^\/+|\/+$/g, "");
      const segments = path.split("/");
      if (segments.length < 2 || segments.some((segment) => !/^[A-Za-z0-9_.][A-Za-z0-9_.-]*$/.test(segment) || segment === "." || segment === "..")) throw new Error(`Not a valid project path: ${path}`);
      if (state.projects.has(path.toLowerCase())) throw new Error(`${path} exists already.`);
      const defaultBranch = projectOptions.defaultBranch ?? "main";
      const repository = await createTestRepository(projectOptions.files ?? { "README.md": `# ${segments.at(-1)}\n` }, { branch: defaultBranch, parent: root, name: "repo.git" });
      await writeFile(join(repository.path, "hooks", "pre-receive"), PRE_RECEIVE_HOOK);
      await chmod(join(repository.path, "hooks", "pre-receive"), 0o755);
      const project: ServerProject = {
        id: state.nextId(),
        path,
        repository,
        gitPath: relative(root, repository.path),
        defaultBranch,
        archived: projectOptions.archived ?? false,
        visibility: projectOptions.visibility ?? "private",
        description: projectOptions.description ?? null,
        createdAt: state.now(),
        members: new Map(),
        protectedBranches: new Map(),
        mergeRequests: new Map(),
        issues: new Map(),
        webhooks: [],
        statuses: [],
      };
      for (const [username, role] of Object.entries(projectOptions.members ?? {})) project.members.set(createUser(username).id, levelOf(role));
      state.projects.set(path.toLowerCase(), project);
      return { path, id: project.id, httpUrl: `${state.webUrl}/${path}.git`, gitDir: repository.path };
    },
    createUser: (username, userOptions) => {
      const user = createUser(username, userOptions);
      return { id: user.id, username: user.username };
    },
    addProjectMember(path, username, role) {
      projectNamed(path).members.set(createUser(username).id, levelOf(role));
    },
    addGroupMember(groupPath, username, role) {
      groupMembers(groupPath).set(createUser(username).id, levelOf(role));
    },
    createPersonalAccessToken: (username, tokenOptions) => issueToken(createUser(username).id, "personal", tokenOptions),
    createProjectAccessToken(path, tokenOptions = {}) {
      const project = projectNamed(path);
      const bot = createUser(`project_${project.id}_bot_${randomBytes(4).toString("hex")}`, { bot: true, name: `${path.split("/").pop()} bot` });
      project.members.set(bot.id, levelOf(tokenOptions.role ?? "maintainer"));
      return issueToken(bot.id, "project", tokenOptions);
    },
    createGroupAccessToken(groupPath, tokenOptions = {}) {
      const members = groupMembers(groupPath);
      const bot = createUser(`group_${state.nextId()}_bot_${randomBytes(4).toString("hex")}`, { bot: true, name: `${groupPath} bot` });
      members.set(bot.id, levelOf(tokenOptions.role ?? "maintainer"));
      return issueToken(bot.id, "group", tokenOptions);
    },
    revokeToken(token) {
      const record = state.tokens.get(token);
      if (record) record.revoked = true;
    },
    setArchived(path, archived) {
      projectNamed(path).archived = archived;
    },
    protectBranch(path, branch, pushRole = "maintainer") {
      projectNamed(path).protectedBranches.set(branch, pushRole === "no one" ? NO_ONE : levelOf(pushRole));
    },
    addWebhook(path, hook) {
      projectNamed(path).webhooks.push({ url: hook.url, token: hook.token, events: new Set(hook.events ?? ["note", "issues"]) });
    },
    createIssue(path, issueOptions) {
      const project = projectNamed(path);
      const iid = project.issues.size + 1;
      project.issues.set(iid, {
        id: state.nextId(),
        iid,
        title: issueOptions.title,
        description: issueOptions.description ?? "",
        authorId: createUser(issueOptions.author).id,
        labels: [...(issueOptions.labels ?? [])],
        createdAt: state.now(),
        notes: [],
      });
      return { iid };
    },
    async commentOnIssue(path, iid, noteOptions) {
      const project = projectNamed(path);
      const issue = issueNamed(project, iid);
      const author = createUser(noteOptions.author);
      const note = { id: state.nextId(), body: noteOptions.body, authorId: author.id, createdAt: state.now() };
      issue.notes.push(note);
      const { projectJson, userJson, labelJson, issueUrl } = webhookParts(state, project);
      return webhooks.deliver(project, "note", {
        object_kind: "note",
        event_type: "note",
        project_id: project.id,
        user: userJson(author),
        project: projectJson,
        object_attributes: { id: note.id, note: note.body, noteable_type: "Issue", author_id: author.id, created_at: note.createdAt, updated_at: note.createdAt, project_id: project.id, system: false, url: `${issueUrl(issue)}#note_${note.id}`, action: "create" },
        issue: { id: issue.id, iid: issue.iid, title: issue.title, description: issue.description, state: "opened", author_id: issue.authorId, project_id: project.id, created_at: issue.createdAt, updated_at: note.createdAt, labels: issue.labels.map(labelJson) },
      });
    },
    async labelIssue(path, iid, labelOptions) {
      const project = projectNamed(path);
      const issue = issueNamed(project, iid);
      const author = createUser(labelOptions.author);
      const previous = [...issue.labels];
      if (!issue.labels.includes(labelOptions.label)) issue.labels.push(labelOptions.label);
      const { projectJson, userJson, labelJson, issueUrl } = webhookParts(state, project);
      const now = state.now();
      return webhooks.deliver(project, "issues", {
        object_kind: "issue",
        event_type: "issue",
        user: userJson(author),
        project: projectJson,
        object_attributes: { id: issue.id, iid: issue.iid, title: issue.title, description: issue.description, state: "opened", action: "update", url: issueUrl(issue), author_id: issue.authorId, project_id: project.id, created_at: issue.createdAt, updated_at: now, labels: issue.labels.map(labelJson) },
        labels: issue.labels.map(labelJson),
        changes: { labels: { previous: previous.map(labelJson), current: issue.labels.map(labelJson) } },
      });
    },
    resendWebhook: (delivery) => webhooks.resend(delivery),
    issueNotes(path, iid) {
      return issueNamed(projectNamed(path), iid).notes.map((note) => ({ author: state.users.get(note.authorId)!.username, body: note.body }));
    },
    async createBranch(path, branch, from) {
      const project = projectNamed(path);
      await project.repository.git("branch", branch, `refs/heads/${from ?? project.defaultBranch}`);
    },
    async branchSha(path, branch) {
      return (await branchCommit(projectNamed(path), branch))?.id;
    },
    async readFile(path, ref, file) {
      try {
        return await projectNamed(path).repository.git("show", `${ref}:${file}`);
      } catch {
        return undefined;
      }
    },
    commitStatuses(path) {
      return projectNamed(path).statuses.map(({ sha, ref, name, status, description, targetUrl }) => ({ sha, ref, name, status, description, targetUrl }));
    },
    mergeRequests(path) {
      const name = (id: number) => state.users.get(id)!.username;
      return [...projectNamed(path).mergeRequests.values()].map((mergeRequest: ServerMergeRequest) => ({
        iid: mergeRequest.iid,
        title: mergeRequest.title,
        description: mergeRequest.description,
        state: mergeRequest.state,
        sourceBranch: mergeRequest.sourceBranch,
        targetBranch: mergeRequest.targetBranch,
        draft: DRAFT.test(mergeRequest.title),
        author: name(mergeRequest.authorId),
        labels: [...mergeRequest.labels],
        assignees: mergeRequest.assigneeIds.map(name),
        reviewers: mergeRequest.reviewerIds.map(name),
      }));
    },
    injectFailure(failure) {
      failures.push({ ...failure, remaining: failure.times ?? 1 });
    },
    rateLimit(limit) {
      const reset = Math.floor(Date.now() / 1000) + limit.retryAfterSeconds;
      failures.push({
        remaining: limit.times ?? 1,
        status: 429,
        body: "Retry later\n",
        ...(limit.method ? { method: limit.method } : {}),
        ...(limit.path ? { path: limit.path } : {}),
        headers: {
          "ratelimit-name": "throttle_authenticated_api",
          "ratelimit-limit": "2000",
          "ratelimit-observed": "2001",
          "ratelimit-remaining": "0",
          "ratelimit-reset": String(reset),
          "ratelimit-resettime": new Date(reset * 1000).toUTCString(),
          ...(limit.retryAfter === false ? {} : { "retry-after": String(limit.retryAfterSeconds) }),
        },
      });
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

function authorizationKind(headers: IncomingMessage["headers"]): GitLabRequestRecord["authorization"] {
  if (headers["private-token"]) return "private-token";
  const header = headers.authorization;
  if (!header) return "none";
  const scheme = header.trim().split(/\s+/, 1)[0]!.toLowerCase();
  return scheme === "bearer" || scheme === "basic" ? scheme : "other";
}
