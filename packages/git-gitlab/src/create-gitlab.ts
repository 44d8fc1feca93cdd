import {
  agentError,
  describeRepo,
  ErrorCode,
  GIT_HOST_SPEC_VERSION,
  isWebUrl,
  type ChangeRequest,
  type ChangeRequestInput,
  type CheckReport,
  type GitCredentials,
  type GitHost,
  type GitHostTaskOptions,
  type GitIdentity,
  type ResolvedRepository,
} from "@running-agent/core";
import { createCommitStatuses } from "./commit-statuses.js";
import { createGitLabClient, GitLabResponseError, type GitLabClient, type GitLabClientSettings } from "./gitlab-client.js";
import { resolveGitLabEndpoints, type GitLabEndpoints } from "./gitlab-endpoints.js";
import { parseGitLabProjectReference, type GitLabProjectReference } from "./gitlab-project-reference.js";
import { toGitLabError } from "./gitlab-request-error.js";
import type { GitLabSettings } from "./gitlab-settings.js";
import { openMergeRequest } from "./open-merge-request.js";
import { protectionRuleCovers } from "./protection-rule.js";

/** GitLab's access level of a Developer: the lowest that may push to unprotected branches. */
const DEVELOPER_ACCESS = 30;
/** Bytes an HTTP header value can carry: visible ASCII, no spaces. */
const HEADER_SAFE = /^[\x21-\x7e]+$/;

/** GitLab's push access level "No one". */
const NO_ACCESS = 0;

/** A protected-branch rule as `GET /projects/:id/protected_branches` lists it. */
interface ProtectionRule {
  name: string;
  push_access_levels?: Array<{ access_level: number; user_id?: number | null; group_id?: number | null; deploy_key_id?: number | null }>;
}

interface ProjectData {
  id: number;
  path_with_namespace: string;
  default_branch: string | null;
  archived: boolean;
  web_url: string;
  permissions?: { project_access: { access_level: number } | null; group_access: { access_level: number } | null } | null;
}

/**
 * gitlab.com or a self-managed GitLab as a {@link GitHost}: checks the project and the
 * token's access level, hands the token to the core's git over HTTP (`oauth2:<token>`), and
 * opens or updates merge requests with `@gitbeaker/core`.
 */
export class GitLab implements GitHost {
  readonly specificationVersion = GIT_HOST_SPEC_VERSION;
  readonly hostId = "gitlab";
  /** The base URLs this host talks to. */
  readonly endpoints: GitLabEndpoints;
  readonly #token: string | undefined;
  readonly #clientSettings: GitLabClientSettings;

  constructor(settings: GitLabSettings = {}) {
    if (typeof settings !== "object" || settings === null) throw agentError(ErrorCode.INVALID_OPTIONS, "createGitLab: settings must be an object.");
    const token = settings.token ?? (process.env.GITLAB_TOKEN || undefined);
    if (token !== undefined) checkToken(token, "createGitLab: token");
    for (const name of ["maxRateLimitWaitSeconds", "maxRetries"] as const) {
      const value = settings[name];
      if (value !== undefined && !(typeof value === "number" && Number.isFinite(value) && value >= 0)) {
        throw agentError(ErrorCode.INVALID_OPTIONS, `createGitLab: ${name} must be a number, 0 or more.`);
      }
    }
    if (settings.dispatcher !== undefined && (typeof settings.dispatcher !== "object" || settings.dispatcher === null)) {
      throw agentError(ErrorCode.INVALID_OPTIONS, "createGitLab: dispatcher must be an undici Dispatcher (e.g. new Agent({ connect: { ca } })).");
    }
    this.endpoints = resolveGitLabEndpoints(settings);
    this.#token = token;
    this.#clientSettings = {
      webUrl: this.endpoints.webUrl,
      userAgent: settings.userAgent ?? "running-agent-git-gitlab",
      maxRateLimitWaitSeconds: settings.maxRateLimitWaitSeconds ?? 60,
      maxRetries: settings.maxRetries ?? 2,
      dispatcher: settings.dispatcher,
    };
  }

  /** `git@HOST:group/project.git` and `ssh://git@HOST/group/project.git` of the served host, as the https URL the core parses. No I/O. */
  normalizeRepo(repo: string): string | undefined {
    if (typeof repo !== "string" || /^https?:\/\//i.test(repo.trim())) return undefined;
    const reference = parseGitLabProjectReference(repo, this.endpoints);
    return reference ? `${this.endpoints.webUrl}/${reference.path}.git` : undefined;
  }

  supports(repo: string): boolean {
    try {
      return parseGitLabProjectReference(repo, this.endpoints) !== undefined;
    } catch {
      // A served host with a path that names no project: ours to reject with a clear error.
      return true;
    }
  }

  async resolveRepository(repo: string, options: GitHostTaskOptions = {}): Promise<ResolvedRepository> {
    const reference = this.#reference(repo);
    const client = this.#client(options);
    let project: ProjectData;
    try {
      project = (await client.Projects.show(reference.path)) as unknown as ProjectData;
    } catch (error) {
      throw toGitLabError(error, { action: `read project ${reference.path}`, notFound: ErrorCode.REPO_NOT_FOUND, signal: options.signal });
    }
    const path = project.path_with_namespace;
    if (project.archived) {
      throw agentError(ErrorCode.REPO_ARCHIVED, `${path} is archived on GitLab and takes no pushes or merge requests; unarchive it first.`, { details: { repo: path } });
    }
    // Personal, project and group access tokens all act as a user (a bot user for the last two) with a role here.
    const permissions = project.permissions;
    const accessLevel = Math.max(permissions?.project_access?.access_level ?? 0, permissions?.group_access?.access_level ?? 0);
    const canPush = permissions ? accessLevel >= DEVELOPER_ACCESS : true;
    if (!canPush) {
      throw agentError(
        ErrorCode.PERMISSION_DENIED,
        `The token can read ${path} but cannot push to it (access level ${accessLevel}): it needs the Developer role (30) or higher, and the api and write_repository scopes.`,
        { details: { repo: path, accessLevel } },
      );
    }
    if (!project.default_branch) {
      throw agentError(ErrorCode.BASE_BRANCH_NOT_FOUND, `${path} has no commits yet, so there is no branch to start from; push a first commit.`, { details: { repo: path } });
    }
    return { id: path, remote: `${this.endpoints.gitUrl}/${path}.git`, defaultBranch: project.default_branch, canPush, webUrl: project.web_url };
  }

  async branchExists(repository: ResolvedRepository, branch: string, options: GitHostTaskOptions = {}): Promise<boolean> {
    return (await this.#branch(repository, branch, options)) !== undefined;
  }

  /**
   * Refuses, before anything is created, a task branch that GitLab protects against this
   * token's pushes (INVALID_BRANCH). For a branch that exists, GitLab's branch answer says
   * `can_push`; for one the push would create, the project's protection rules are read (wildcards
   * such as `release/*` included), which GitLab shows only to Maintainers: for a Developer's token
   * such a rule is met at the push.
   */
  async checkPushBranch(repository: ResolvedRepository, branch: string, options: GitHostTaskOptions = {}): Promise<void> {
    const found = await this.#branch(repository, branch, options);
    const refused = found ? found.protected === true && found.can_push === false : await this.#newBranchRefused(repository, branch, options);
    if (refused) {
      throw agentError(
        ErrorCode.INVALID_BRANCH,
        `The branch "${branch}" is protected in ${repository.id} and this token may not push to it; pass another branch, or leave branch unset for a generated name.`,
        { details: { branch } },
      );
    }
  }

  async getCredentials(repository: ResolvedRepository, _access: "read" | "write", options: GitHostTaskOptions = {}): Promise<GitCredentials | undefined> {
    projectPath(repository);
    // GitLab's git over HTTP takes any username with a token as the password; `oauth2` is what it documents.
    return { username: "oauth2", password: this.#tokenFor(options) };
  }

  async openChangeRequest(repository: ResolvedRepository, input: ChangeRequestInput, options: GitHostTaskOptions = {}): Promise<ChangeRequest> {
    const path = projectPath(repository);
    return openMergeRequest(this.#client(options), { id: path, path }, input, options.signal);
  }

  /** Records the run's checks as commit statuses (`running-agent/<name>`) on the pushed commit. */
  async reportChecks(repository: ResolvedRepository, report: CheckReport, options: GitHostTaskOptions = {}): Promise<void> {
    await createCommitStatuses(this.#client(options), projectPath(repository), report, options.signal);
  }

  /**
   * The commit identity of the token's user (a bot user for project and group tokens): its
   * commit email, public email, or GitLab's `ID-USERNAME@users.noreply.HOST`.
   */
  async commitIdentity(options: GitHostTaskOptions = {}): Promise<GitIdentity> {
    try {
      const user = (await this.#client(options).Users.showCurrentUser()) as unknown as { id: number; username: string; name?: string; commit_email?: string; public_email?: string };
      const noreply = `${user.id}-${user.username}@users.noreply.${new URL(this.endpoints.webUrl).hostname}`;
      return { name: user.name || user.username, email: user.commit_email || user.public_email || noreply };
    } catch (error) {
      throw toGitLabError(error, { action: "read the token's user account", signal: options.signal });
    }
  }

  secrets(): string[] {
    return this.#token ? [this.#token] : [];
  }

  async #branch(repository: ResolvedRepository, branch: string, options: GitHostTaskOptions): Promise<{ protected?: boolean; can_push?: boolean } | undefined> {
    if (typeof branch !== "string" || branch.trim() === "") throw agentError(ErrorCode.INVALID_BRANCH, "branchExists: the branch name is empty.");
    const path = projectPath(repository);
    try {
      return (await this.#client(options).Branches.show(path, branch)) as unknown as { protected?: boolean; can_push?: boolean };
    } catch (error) {
      if (error instanceof GitLabResponseError && error.status === 404) return undefined;
      throw toGitLabError(error, { action: `read branch ${branch} of ${repository.id}`, signal: options.signal });
    }
  }

  /** Whether the protection rules that cover a branch not yet created let none of them take this token's push. */
  async #newBranchRefused(repository: ResolvedRepository, branch: string, options: GitHostTaskOptions): Promise<boolean> {
    const path = projectPath(repository);
    const client = this.#client(options);
    let rules: ProtectionRule[];
    try {
      rules = (await client.ProtectedBranches.all(path, { perPage: 100 })) as unknown as ProtectionRule[];
    } catch (error) {
      // Below Maintainer GitLab hides the rules (403); the push then meets them.
      if (error instanceof GitLabResponseError && error.status === 403) return false;
      throw toGitLabError(error, { action: `read the protected branches of ${repository.id}`, signal: options.signal });
    }
    const covering = rules.filter((rule) => protectionRuleCovers(rule.name, branch));
    if (covering.length === 0) return false;
    let project: ProjectData;
    try {
      project = (await client.Projects.show(path)) as unknown as ProjectData;
    } catch (error) {
      throw toGitLabError(error, { action: `read project ${repository.id}`, notFound: ErrorCode.REPO_NOT_FOUND, signal: options.signal });
    }
    const level = Math.max(project.permissions?.project_access?.access_level ?? 0, project.permissions?.group_access?.access_level ?? 0);
    // GitLab lets the most permissive covering rule decide. An entry for a user, group or deploy key
    // (Premium) may be this token's: only rules of role levels alone count as a refusal.
    return covering.every((rule) =>
      (rule.push_access_levels ?? []).every((entry) => entry.user_id == null && entry.group_id == null && entry.deploy_key_id == null && (entry.access_level === NO_ACCESS || level < entry.access_level)),
    );
  }

  #reference(repo: string): GitLabProjectReference {
    const reference = parseGitLabProjectReference(repo, this.endpoints);
    if (!reference) {
      const served = [...this.endpoints.hosts].join(", ");
      if (isWebUrl(repo)) throw agentError(ErrorCode.UNSUPPORTED_REPO, `The GitLab host serves projects on ${served}; ${describeRepo(repo)} is not one of them.`);
      throw agentError(ErrorCode.INVALID_REPO, `${describeRepo(repo)} is not a GitLab project URL; expected https://HOST/GROUP/PROJECT(.git) on ${served}.`);
    }
    return reference;
  }

  #tokenFor(options: GitHostTaskOptions): string {
    if (options.token !== undefined) {
      checkToken(options.token, "The per-task token");
      return options.token;
    }
    if (!this.#token) throw agentError(ErrorCode.AUTH_FAILED, "The GitLab host has no token: pass createGitLab({ token }) or set GITLAB_TOKEN (a personal, project or group access token with the api scope).");
    return this.#token;
  }

  #client(options: GitHostTaskOptions): GitLabClient {
    return createGitLabClient(this.#clientSettings, this.#tokenFor(options), options.signal);
  }
}

/** A GitLab Git host. Synchronous and without I/O: the token is checked by the first call that needs it. */
export function createGitLab(settings: GitLabSettings = {}): GitLab {
  return new GitLab(settings);
}

function checkToken(token: unknown, what: string): void {
  if (typeof token !== "string" || token.trim() === "") throw agentError(ErrorCode.INVALID_OPTIONS, `${what} must be a non-empty string.`);
  // Said without the token: it is a secret even when malformed.
  if (!HEADER_SAFE.test(token)) throw agentError(ErrorCode.INVALID_OPTIONS, `${what} has characters an HTTP header cannot carry (spaces, line breaks, control or non-ASCII characters); copy it again from GitLab.`);
}

function projectPath(repository: ResolvedRepository): string {
  const id = typeof repository?.id === "string" ? repository.id : "";
  const segments = id.split("/");
  if (segments.length < 2 || segments.some((segment) => segment === "" || segment === "." || segment === "..")) {
    throw agentError(ErrorCode.INVALID_REPO, "The GitLab host was given a repository it did not resolve; call resolveRepository first.");
  }
  return id;
}
