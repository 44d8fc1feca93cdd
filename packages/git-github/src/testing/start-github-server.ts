import type { ChildProcess } from "node:child_process";
import { generateKeyPairSync, randomBytes, timingSafeEqual } from "node:crypto";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { listenOnLoopback, parseBasicAuthorization, readRequestBody, serveGitHttpBackend, stopGitServer } from "@running-agent/core/offline";
import { commitFiles, initBareRepository, listFilesAt, readFileAt, revParse, type CommitIdentity, type FileContent } from "./git-plumbing.js";
import { basicError, GitHubHttpError, notFound } from "./github-http-error.js";
import { runAddReaction, runDraftMutation } from "./github-graphql.js";
import { accessTo, callerFor, createRestRoutes, type Caller, type GitHubState } from "./github-rest-api.js";
import type { RepositoryPermission, ServerApp, ServerRepository, ServerToken } from "./github-server-model.js";

/** Options for {@link startGitHubServer}. */
export interface GitHubServerOptions {
  /** Folder for the bare repositories. Default: a new temporary folder, removed on close. */
  root?: string;
}

/** A repository to create with {@link GitHubServer.createRepository}. */
export interface CreateRepositoryOptions {
  /** The owning user or organization's login. */
  owner: string;
  /** The repository's name. */
  name: string;
  /** Default `main`. */
  defaultBranch?: string;
  /** Files of the first commit on the default branch. Without files the repository is empty. */
  files?: Record<string, FileContent>;
  /** Default true: callers need a token to see it. */
  private?: boolean;
  /** Default false: an archived repository refuses pushes and pull requests, as on GitHub. */
  archived?: boolean;
  /** The repository's description in its REST answers. */
  description?: string;
  /** Logins that may be assigned and asked for review, besides the owner and token holders with push. */
  collaborators?: string[];
}

/** A created repository. */
export interface CreatedRepository {
  /** `owner/name`. */
  fullName: string;
  /** The `https://github.com/...`-shaped URL on this server: `<url>/<owner>/<name>.git`. */
  cloneUrl: string;
  /** The repository's web page on this server: `<url>/<owner>/<name>`. */
  htmlUrl: string;
  /** The bare repository on disk. */
  gitDir: string;
}

/** A token to accept with {@link GitHubServer.grantToken}. */
export interface GrantTokenOptions {
  /** The user the token acts as. */
  login: string;
  /** Default `push`. */
  permission?: RepositoryPermission;
  /** `all` (default) or a list of `owner/name`. */
  repositories?: "all" | string[];
  /** Use this token value instead of a generated `ghp_...` one. */
  token?: string;
  /** Seconds until the token stops working. Default: never. */
  expiresInSeconds?: number;
}

/** A GitHub App installed on an account, made with {@link GitHubServer.createApp}. */
export interface CreateAppOptions {
  /** The account (owner) the App is installed on. */
  account: string;
  /** Default `running-agent-test`. Its bot user is `<slug>[bot]`. */
  slug?: string;
  /** Default contents, pull_requests and issues `write`, metadata `read`. */
  permissions?: Record<string, "read" | "write">;
  /** How long minted installation tokens live. Default 3600 (GitHub's hour). */
  tokenLifetimeSeconds?: number;
}

/** A created App: what `createGitHub({ app })` needs, and the tokens minted so far. */
export interface CreatedApp {
  /** The App's id (`createGitHub({ app: { appId } })`). */
  appId: number;
  /** Its installation on the account. */
  installationId: number;
  /** PKCS#1 PEM, as GitHub hands it out. */
  privateKey: string;
  /** The App's slug; its bot user is `<slug>[bot]`. */
  slug: string;
  /** Every installation token minted, oldest first. */
  readonly mintedTokens: readonly string[];
}

/** A failure answered instead of the real response. */
export interface InjectedFailure {
  /** Only this method (e.g. `POST`). Default: any. */
  method?: string;
  /** A GitHub path template (`/repos/{owner}/{repo}/pulls`), an exact path, or a pattern on the path. Default: any. */
  path?: string | RegExp;
  /** The HTTP status answered. */
  status: number;
  /** Default: GitHub's basic-error body for the status. */
  body?: unknown;
  /** Extra response headers, e.g. `retry-after` or the rate-limit ones. */
  headers?: Record<string, string>;
  /** How many matching requests fail. Default 1. */
  times?: number;
  /** Apply to git smart-HTTP requests instead of REST requests. */
  git?: boolean;
  /** Apply to GraphQL requests (`POST /api/graphql`) instead of REST requests. */
  graphql?: boolean;
}

/** One request the server saw. Holds no credential. */
export interface GitHubRequestRecord {
  /** REST, git smart HTTP or GraphQL. */
  kind: "api" | "git" | "graphql";
  /** The HTTP method. */
  method: string;
  /** The path without `/api/v3` and without the query. */
  path: string;
  /** The query string without `?`, empty when none. */
  query: string;
  /** The GitHub path template of the REST operation, when one matched. */
  route?: string;
  /** How the caller authenticated. */
  authorization: "none" | "token" | "bearer" | "basic" | "other";
  /** The user the token acts as, when it was valid. */
  login?: string;
  /** The HTTP status answered. */
  status: number;
  /** The JSON body sent back (REST only). */
  responseBody?: unknown;
  /** True when the answer came from an injected failure. */
  injected?: boolean;
}

/** A pull request as the server holds it. */
export interface PullRequestRecord {
  /** The pull request's number in its repository. */
  number: number;
  /** Its title. */
  title: string;
  /** Its description, null when none was given. */
  body: string | null;
  /** Open or closed. */
  state: "open" | "closed";
  /** The branch it merges from. */
  head: string;
  /** The branch it merges into. */
  base: string;
  /** Opened as a draft. */
  draft: boolean;
  /** The login that opened it. */
  user: string;
  /** Label names, in the order added. */
  labels: string[];
  /** Assigned logins. */
  assignees: string[];
  /** Logins asked for a review. */
  requestedReviewers: string[];
  /** Team slugs asked for a review. */
  requestedTeams: string[];
}

/** A reaction as the server holds it: on what (`issue` by number, the others by id) and by whom. */
export interface ReactionRecord {
  /** What the reaction is on. */
  subject: {
    /** An issue or pull request, a comment on one, a review comment (on a diff line), or a review. */
    kind: "issue" | "issue-comment" | "review-comment" | "review";
    /** The issue's number for `issue`, the comment's or review's id otherwise. */
    id: number;
  };
  /** GitHub's reaction name: `+1`, `-1`, `laugh`, `confused`, `heart`, `hooray`, `rocket` or `eyes`. */
  content: string;
  /** The login that reacted (`<slug>[bot]` for an app). */
  user: string;
}

/** A comment as the server holds it. */
export interface CommentRecord {
  /** The comment's id. */
  id: number;
  /** The issue or pull request it is on. */
  issueNumber: number;
  /** Its text. */
  body: string;
  /** The login that wrote it. */
  user: string;
}

/** A running local GitHub-compatible server. */
export interface GitHubServer extends AsyncDisposable {
  /** Web and git base URL, `http://127.0.0.1:PORT`. Repositories are at `<url>/<owner>/<name>.git`. */
  readonly url: string;
  /** The REST API base URL (GitHub Enterprise Server layout), `<url>/api/v3`. */
  readonly apiUrl: string;
  /** Same as {@link url}: where git clones and pushes. */
  readonly gitUrl: string;
  /** Every request so far, in order. */
  readonly requests: GitHubRequestRecord[];
  /** Creates a repository (with a first commit of `files`, if any) and returns where it is. */
  createRepository(options: CreateRepositoryOptions): Promise<CreatedRepository>;
  /** Archives or unarchives a repository. */
  setArchived(fullName: string, archived: boolean): void;
  /**
   * Commits files onto a branch as someone else would push them; `null` deletes a file. A new
   * branch starts from `from` (default: the default branch). Returns the sha.
   */
  commit(fullName: string, options: { branch: string; files: Record<string, FileContent>; message?: string; author?: CommitIdentity; from?: string }): Promise<string>;
  /** The sha a branch points at, or undefined. */
  branchSha(fullName: string, branch: string): Promise<string | undefined>;
  /** A file's text at a ref, or undefined. */
  readFile(fullName: string, ref: string, path: string): Promise<string | undefined>;
  /** Every file path at a ref. */
  listFiles(fullName: string, ref: string): Promise<string[]>;
  /** Accepts a token from now on; returns it. */
  grantToken(options: GrantTokenOptions): string;
  /** Stops accepting a token (GitHub then answers 401 Bad credentials). */
  revokeToken(token: string): void;
  /** Installs a GitHub App on an account, with a fresh RSA key. */
  createApp(options: CreateAppOptions): CreatedApp;
  /** Opens an issue (for tasks that come from issues); returns its number. */
  createIssue(fullName: string, options: { title: string; body?: string; user: string }): number;
  /** Answers the next matching request(s) with a failure (5xx, 403, ...). */
  injectFailure(failure: InjectedFailure): void;
  /**
   * Answers the next matching request(s) with GitHub's rate-limit response: `primary` (403 with
   * `x-ratelimit-remaining: 0` and `x-ratelimit-reset`), `secondary` (403 with `retry-after`) or
   * `too-many-requests` (429 with `retry-after`).
   */
  rateLimit(options: { kind: "primary" | "secondary" | "too-many-requests"; retryAfterSeconds: number; times?: number; method?: string; path?: string | RegExp }): void;
  /** The pull requests of a repository, oldest first. */
  pullRequests(fullName: string): PullRequestRecord[];
  /** The reactions in a repository, oldest first (reviews' too, which only GraphQL's `addReaction` makes). */
  reactions(fullName: string): ReactionRecord[];
  /** The comments of a repository, optionally of one issue or pull request, oldest first. */
  comments(fullName: string, issueNumber?: number): CommentRecord[];
  /** Stops the server, kills running git processes, and removes the temporary folder it made. Idempotent. */
  close(): Promise<void>;
}

const API_PREFIX = "/api/v3";
const SERVER_IDENTITY: CommitIdentity = { name: "GitHub server", email: "noreply@github-server.invalid" };

/**
 * Starts a local GitHub-compatible server on 127.0.0.1 and a free port: git smart HTTP by
 * `git http-backend` with token auth at `/<owner>/<repo>.git`, and the REST operations the
 * adapter and bots use under `/api/v3`, with GitHub's status codes and error bodies. Point
 * `createGitHub({ baseUrl: server.apiUrl })` at it.
 */
export async function startGitHubServer(options: GitHubServerOptions = {}): Promise<GitHubServer> {
  const ownRoot = options.root === undefined;
  const root = options.root ?? (await mkdtemp(join(tmpdir(), "github-server-")));
  const requests: GitHubRequestRecord[] = [];
  const failures: Array<InjectedFailure & { remaining: number }> = [];
  const children = new Set<ChildProcess>();
  const apps = new Map<number, ServerApp>();
  let counter = 1000;
  const state: GitHubState = {
    urls: { web: "", api: "" },
    repositories: new Map(),
    tokens: new Map(),
    apps,
    nextId: () => ++counter,
    now: () => new Date().toISOString().replace(/\.\d{3}Z$/, "Z"),
    startedAt: new Date().toISOString().replace(/\.\d{3}Z$/, "Z"),
  };
  const routes = createRestRoutes(state);
  const used = new Map<string, number>();

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      if (!response.headersSent) response.writeHead(500, { "content-type": "application/json; charset=utf-8" });
      response.end(JSON.stringify({ message: `Server Error: ${(error as Error).message}` }));
    });
  });

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? "/", "http://127.0.0.1");
    if (url.pathname === API_PREFIX || url.pathname.startsWith(`${API_PREFIX}/`)) return handleApi(request, response, url);
    if (url.pathname === "/api/graphql") return handleGraphql(request, response, url);
    return handleGit(request, response, url);
  }

  function takeFailure(kind: GitHubRequestRecord["kind"], method: string, path: string, template: string | undefined): (InjectedFailure & { remaining: number }) | undefined {
    const failure = failures.find(
      (candidate) =>
        candidate.remaining > 0 &&
        (candidate.git === true ? "git" : candidate.graphql === true ? "graphql" : "api") === kind &&
        (!candidate.method || candidate.method.toUpperCase() === method) &&
        (candidate.path === undefined || (candidate.path instanceof RegExp ? candidate.path.test(path) : candidate.path === path || candidate.path === template)),
    );
    if (failure) failure.remaining -= 1;
    return failure;
  }

  async function handleApi(request: IncomingMessage, response: ServerResponse, url: URL): Promise<void> {
    const method = (request.method ?? "GET").toUpperCase();
    const path = url.pathname.slice(API_PREFIX.length) || "/";
    const record: GitHubRequestRecord = { kind: "api", method, path, query: url.search.slice(1), authorization: authorizationKind(request.headers.authorization), status: 0 };
    requests.push(record);
    const rawBody = await readRequestBody(request);
    let route: (typeof routes)[number] | undefined;
    let match: RegExpExecArray | null = null;
    for (const candidate of routes) {
      if (candidate.method !== method) continue;
      match = candidate.pattern.exec(path);
      if (match) {
        route = candidate;
        break;
      }
    }
    if (route) record.route = route.template;
    let caller: Caller = { kind: "anonymous" };
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      record.status = status;
      record.responseBody = body;
      const key = caller.kind === "token" ? caller.record.login : caller.kind === "app" ? `app-${caller.app.appId}` : "anonymous";
      const count = (used.get(key) ?? 0) + 1;
      used.set(key, count);
      response.writeHead(status, {
        "content-type": "application/json; charset=utf-8",
        "x-github-media-type": "github.v3; format=json",
        "x-github-request-id": randomBytes(8).toString("hex").toUpperCase(),
        "x-ratelimit-limit": "5000",
        "x-ratelimit-remaining": String(Math.max(0, 5000 - count)),
        "x-ratelimit-reset": String(Math.floor(Date.now() / 1000) + 3600),
        "x-ratelimit-used": String(count),
        "x-ratelimit-resource": "core",
        ...headers,
      });
      response.end(status === 204 ? undefined : JSON.stringify(body));
    };
    try {
      caller = callerFor(state, request.headers.authorization);
      if (caller.kind === "token") record.login = caller.record.login;
      const failure = takeFailure("api", method, path, route?.template);
      if (failure) {
        record.injected = true;
        const body = failure.body ?? (basicError(failure.status, failure.status >= 500 ? "Server Error" : "Injected failure").body);
        return send(failure.status, body, failure.headers);
      }
      if (!route || !match) throw notFound();
      let body: Record<string, unknown> = {};
      if (rawBody.byteLength > 0) {
        try {
          body = JSON.parse(rawBody.toString("utf8")) as Record<string, unknown>;
        } catch {
          throw basicError(400, "Problems parsing JSON");
        }
      }
      const params: Record<string, string> = {};
      route.names.forEach((name, index) => {
        params[name] = decodeURIComponent(match![index + 1]!);
      });
      const result = await route.handle({ caller, params, query: url.searchParams, body });
      return send(result.status, result.body);
    } catch (error) {
      if (error instanceof GitHubHttpError) return send(error.status, error.body, error.headers);
      throw error;
    }
  }

  async function handleGraphql(request: IncomingMessage, response: ServerResponse, url: URL): Promise<void> {
    const method = (request.method ?? "GET").toUpperCase();
    const record: GitHubRequestRecord = { kind: "graphql", method, path: url.pathname, query: "", authorization: authorizationKind(request.headers.authorization), status: 0 };
    requests.push(record);
    const rawBody = await readRequestBody(request);
    const send = (status: number, body: unknown) => {
      record.status = status;
      record.responseBody = body;
      response.writeHead(status, { "content-type": "application/json; charset=utf-8" });
      response.end(JSON.stringify(body));
    };
    let caller: Caller;
    try {
      caller = callerFor(state, request.headers.authorization);
    } catch (error) {
      if (error instanceof GitHubHttpError) return send(error.status, error.body);
      throw error;
    }
    if (caller.kind !== "token") return send(401, { message: "This endpoint requires you to be authenticated.", documentation_url: "https://docs.github.com/graphql/guides/forming-calls-with-graphql#authenticating-with-graphql" });
    record.login = caller.record.login;
    const failure = takeFailure("graphql", method, url.pathname, undefined);
    if (failure) {
      record.injected = true;
      return send(failure.status, failure.body ?? basicError(failure.status, "Server Error").body);
    }
    let body: { query?: unknown; variables?: Record<string, unknown> };
    try {
      body = JSON.parse(rawBody.toString("utf8")) as typeof body;
    } catch {
      return send(400, { message: "Problems parsing JSON", documentation_url: "https://docs.github.com/graphql" });
    }
    const query = String(body.query ?? "");
    send(200, /\baddReaction\b/.test(query) ? runAddReaction(state, caller, query, body.variables ?? {}) : runDraftMutation(state, caller, query, body.variables ?? {}));
  }

  async function handleGit(request: IncomingMessage, response: ServerResponse, url: URL): Promise<void> {
    const method = (request.method ?? "GET").toUpperCase();
    const record: GitHubRequestRecord = { kind: "git", method, path: url.pathname, query: url.search.slice(1), authorization: authorizationKind(request.headers.authorization), status: 0 };
    requests.push(record);
    const plain = (status: number, text: string, headers: Record<string, string> = {}) => {
      record.status = status;
      response.writeHead(status, { "content-type": "text/plain; charset=utf-8", ...headers });
      response.end(`${text}\n`);
    };
    const match = /^\/([^/]+)\/([^/]+?)(?:\.git)?\/(info\/refs|git-upload-pack|git-receive-pack)$/.exec(url.pathname);
    if (!match) return plain(404, "Not Found");
    const repository = state.repositories.get(`${decodeURIComponent(match[1]!)}/${decodeURIComponent(match[2]!)}`.toLowerCase());
    const service = match[3] === "info/refs" ? url.searchParams.get("service") : match[3];
    if (service !== "git-upload-pack" && service !== "git-receive-pack") return plain(403, "Smart HTTP only.");
    const credentials = parseBasicAuthorization(request.headers.authorization);
    let caller: Caller = { kind: "anonymous" };
    if (credentials) {
      const token = findToken(state.tokens, credentials.password);
      if (!token) return plain(401, "Invalid username or token. Password authentication is not supported for Git operations.", { "www-authenticate": 'Basic realm="GitHub"' });
      caller = { kind: "token", record: token };
      record.login = token.login;
    }
    const failure = takeFailure("git", method, url.pathname, undefined);
    if (failure) {
      record.injected = true;
      return plain(failure.status, String((failure.body as { message?: unknown } | undefined)?.message ?? "Injected failure"), failure.headers);
    }
    const access = repository ? accessTo(caller, repository) : "none";
    const push = service === "git-receive-pack";
    if (!repository || access === "none" || (push && caller.kind === "anonymous")) {
      if (caller.kind === "anonymous") return plain(401, "Authentication required.", { "www-authenticate": 'Basic realm="GitHub"' });
      return plain(404, "Repository not found.");
    }
    if (push && access === "pull") return plain(403, `Permission to ${repository.owner}/${repository.name}.git denied to ${(caller as { record: ServerToken }).record.login}.`);
    if (push && repository.archived) return plain(403, "This repository was archived so it is read-only.");
    const answer = await serveGitHttpBackend(request, response, {
      projectRoot: root,
      pathInfo: `/${repository.owner}/${repository.name}.git/${match[3]}`,
      query: url.search.slice(1),
      remoteUser: caller.kind === "token" ? caller.record.login : "anonymous",
      children,
    });
    record.status = answer.status;
  }

  await mkdir(root, { recursive: true });
  const port = await listenOnLoopback(server);
  const url = `http://127.0.0.1:${port}`;
  state.urls.web = url;
  state.urls.api = `${url}${API_PREFIX}`;

  const repositoryNamed = (fullName: string): ServerRepository => {
    const repository = state.repositories.get(fullName.toLowerCase());
    if (!repository) throw new Error(`No repository ${fullName} on this server.`);
    return repository;
  };

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      await stopGitServer(server, children);
      if (ownRoot) await rm(root, { recursive: true, force: true });
    })();
    return closing;
  };

  return {
    url,
    apiUrl: state.urls.api,
    gitUrl: url,
    requests,
    async createRepository(repositoryOptions) {
      const { owner, name } = repositoryOptions;
      if (!/^[A-Za-z0-9][A-Za-z0-9-]*$/.test(owner) || !/^[A-Za-z0-9._-]+$/.test(name) || name.endsWith(".git")) throw new Error(`Not a valid repository name: ${owner}/${name}`);
      const key = `${owner}/${name}`.toLowerCase();
      if (state.repositories.has(key)) throw new Error(`${owner}/${name} exists already.`);
      const gitDir = join(root, owner, `${name}.git`);
      const defaultBranch = repositoryOptions.defaultBranch ?? "main";
      await initBareRepository(gitDir, defaultBranch);
      if (repositoryOptions.files && Object.keys(repositoryOptions.files).length > 0) {
        await commitFiles(gitDir, defaultBranch, repositoryOptions.files, "Initial commit", SERVER_IDENTITY);
      }
      state.repositories.set(key, {
        id: state.nextId(),
        owner,
        name,
        gitDir,
        defaultBranch,
        private: repositoryOptions.private ?? true,
        archived: repositoryOptions.archived ?? false,
        description: repositoryOptions.description ?? null,
        createdAt: state.now(),
        collaborators: new Set((repositoryOptions.collaborators ?? []).map((login) => login.toLowerCase())),
        labels: new Map(),
        issues: new Map(),
        comments: new Map(),
        statuses: [],
        reactions: [],
        reviews: new Map(),
        reviewComments: new Map(),
        checkRuns: new Map(),
      });
      // Installation tokens minted earlier reach the account's new repositories too.
      for (const token of state.tokens.values()) {
        if (token.kind === "installation" && token.repositories !== "all" && [...apps.values()].some((app) => app.account === owner.toLowerCase() && `${app.slug}[bot]` === token.login)) {
          token.repositories.add(key);
        }
      }
      return { fullName: `${owner}/${name}`, cloneUrl: `${url}/${owner}/${name}.git`, htmlUrl: `${url}/${owner}/${name}`, gitDir };
    },
    setArchived(fullName, archived) {
      repositoryNamed(fullName).archived = archived;
    },
    async commit(fullName, commitOptions) {
      const repository = repositoryNamed(fullName);
      const from = `refs/heads/${commitOptions.from ?? repository.defaultBranch}`;
      return commitFiles(repository.gitDir, commitOptions.branch, commitOptions.files, commitOptions.message ?? "Update files", commitOptions.author ?? SERVER_IDENTITY, from);
    },
    branchSha: (fullName, branch) => revParse(repositoryNamed(fullName).gitDir, `refs/heads/${branch}`),
    readFile: (fullName, ref, path) => readFileAt(repositoryNamed(fullName).gitDir, ref, path),
    listFiles: (fullName, ref) => listFilesAt(repositoryNamed(fullName).gitDir, ref),
    grantToken(grant) {
      const token = grant.token ?? `ghp_${randomBytes(18).toString("base64url")}`;
      const permission = grant.permission ?? "push";
      const repositories = grant.repositories === undefined || grant.repositories === "all" ? "all" : new Set(grant.repositories.map((name) => name.toLowerCase()));
      state.tokens.set(token, {
        token,
        login: grant.login,
        kind: "user",
        permission,
        repositories,
        ...(grant.expiresInSeconds === undefined ? {} : { expiresAt: Date.now() + grant.expiresInSeconds * 1000 }),
        revoked: false,
      });
      // Holders of push access count as collaborators (they may review and be assigned).
      if (permission !== "pull") {
        for (const repository of state.repositories.values()) {
          if (repositories === "all" || repositories.has(`${repository.owner}/${repository.name}`.toLowerCase())) repository.collaborators.add(grant.login.toLowerCase());
        }
      }
      return token;
    },
    revokeToken(token) {
      const record = state.tokens.get(token);
      if (record) record.revoked = true;
    },
    createApp(appOptions) {
      const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
      const app: ServerApp = {
        appId: state.nextId(),
        slug: appOptions.slug ?? "running-agent-test",
        installationId: state.nextId(),
        account: appOptions.account.toLowerCase(),
        publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
        permissions: appOptions.permissions ?? { contents: "write", pull_requests: "write", issues: "write", metadata: "read" },
        tokenLifetimeSeconds: appOptions.tokenLifetimeSeconds ?? 3600,
        mintedTokens: [],
      };
      apps.set(app.appId, app);
      return {
        appId: app.appId,
        installationId: app.installationId,
        privateKey: privateKey.export({ type: "pkcs1", format: "pem" }).toString(),
        slug: app.slug,
        mintedTokens: app.mintedTokens,
      };
    },
    createIssue(fullName, issueOptions) {
      const repository = repositoryNamed(fullName);
      const now = state.now();
      const number = repository.issues.size + 1;
      repository.issues.set(number, {
        id: state.nextId(),
        number,
        title: issueOptions.title,
        body: issueOptions.body ?? null,
        state: "open",
        user: issueOptions.user,
        labels: [],
        assignees: [],
        createdAt: now,
        updatedAt: now,
        closedAt: null,
      });
      return number;
    },
    injectFailure(failure) {
      failures.push({ ...failure, remaining: failure.times ?? 1 });
    },
    rateLimit(limit) {
      const reset = Math.floor(Date.now() / 1000) + limit.retryAfterSeconds;
      const common = { times: limit.times ?? 1, ...(limit.method ? { method: limit.method } : {}), ...(limit.path ? { path: limit.path } : {}) };
      const secondaryMessage = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID.";
      if (limit.kind === "primary") {
        failures.push({
          ...common,
          remaining: common.times,
          status: 403,
          body: { message: "API rate limit exceeded for user. If you reach out to GitHub Support for help, please include the request ID.", documentation_url: "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api", status: "403" },
          headers: { "x-ratelimit-limit": "5000", "x-ratelimit-remaining": "0", "x-ratelimit-used": "5000", "x-ratelimit-reset": String(reset), "x-ratelimit-resource": "core" },
        });
      } else {
        const status = limit.kind === "secondary" ? 403 : 429;
        failures.push({
          ...common,
          remaining: common.times,
          status,
          body: { message: secondaryMessage, documentation_url: "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits", status: String(status) },
          headers: { "retry-after": String(limit.retryAfterSeconds) },
        });
      }
    },
    pullRequests(fullName) {
      return [...repositoryNamed(fullName).issues.values()]
        .filter((issue) => issue.pull)
        .map((issue) => ({
          number: issue.number,
          title: issue.title,
          body: issue.body,
          state: issue.state,
          head: issue.pull!.head,
          base: issue.pull!.base,
          draft: issue.pull!.draft,
          user: issue.user,
          labels: [...issue.labels],
          assignees: [...issue.assignees],
          requestedReviewers: [...issue.pull!.requestedReviewers],
          requestedTeams: [...issue.pull!.requestedTeams],
        }));
    },
    reactions(fullName) {
      return repositoryNamed(fullName).reactions.map((reaction) => ({ subject: { ...reaction.subject }, content: reaction.content, user: reaction.user }));
    },
    comments(fullName, issueNumber) {
      return [...repositoryNamed(fullName).comments.values()]
        .filter((comment) => issueNumber === undefined || comment.issueNumber === issueNumber)
        .sort((a, b) => a.id - b.id)
        .map((comment) => ({ id: comment.id, issueNumber: comment.issueNumber, body: comment.body, user: comment.user }));
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

function authorizationKind(header: string | undefined): GitHubRequestRecord["authorization"] {
  if (!header) return "none";
  const scheme = header.trim().split(/\s+/, 1)[0]!.toLowerCase();
  return scheme === "token" || scheme === "bearer" || scheme === "basic" ? scheme : "other";
}

function findToken(tokens: Map<string, ServerToken>, given: string): ServerToken | undefined {
  for (const record of tokens.values()) {
    const a = Buffer.from(record.token);
    const b = Buffer.from(given);
    if (a.byteLength === b.byteLength && timingSafeEqual(a, b)) {
      return record.revoked || (record.expiresAt !== undefined && record.expiresAt <= Date.now()) ? undefined : record;
    }
  }
  return undefined;
}
