/**
 * The Git host seam: where repositories live and change requests (pull requests) are opened.
 * Version: `git-host-v1`. The core clones and pushes on the host with the credentials a
 * Git host hands out; credentials never go into the sandbox.
 */
export const GIT_HOST_SPEC_VERSION = "git-host-v1" as const;

/** Username and password (or token) for git over HTTP, sent by the host's git as an Authorization header for the remote's URL only. */
export interface GitCredentials {
  /** The user name git sends (for a token, what the host expects: `x-access-token`, `oauth2`). */
  username: string;
  /** The password or token. */
  password: string;
}

/** A repository the Git host has checked. */
export interface ResolvedRepository {
  /** A stable display id, e.g. `owner/name` or a local path. */
  id: string;
  /**
   * Where git fetches and pushes: an `http(s)://` URL without credentials, or an absolute
   * local path (for the local Git host).
   */
  remote: string;
  /** The branch change requests target when none is given. */
  defaultBranch: string;
  /** Whether the credentials this host holds can push. */
  canPush: boolean;
  /** A web page for the repository, when there is one. */
  webUrl?: string;
}

/** What the core asks to open or update. */
export interface ChangeRequestInput {
  /** Branch with the agent's commit. */
  head: string;
  /** Branch to merge into. */
  base: string;
  /** The change request's title. */
  title: string;
  /** Its description (Markdown), redacted. */
  body: string;
  /** Open as a draft (default false). On an update, undefined leaves the draft state as it is. */
  draft?: boolean;
  /** Labels to add. */
  labels?: string[];
  /** Users to ask for a review. */
  reviewers?: string[];
  /** Users to assign. */
  assignees?: string[];
}

/** An opened or updated change request. */
export interface ChangeRequest {
  /** Host-specific number (PR number). */
  number: number;
  /** Web URL, or a `local://` URL for the local host. */
  url: string;
  /** The branch it merges from. */
  head: string;
  /** The branch it merges into. */
  base: string;
  /** Its title as the host now has it. */
  title: string;
  /** Its description as the host now has it. */
  body: string;
  /** Whether it is a draft now. */
  draft: boolean;
  /** True when this call opened it, false when it updated an existing one. */
  created: boolean;
}

/** Per-task overrides a caller can pass through `runAgentTask` (the seed's per-request `github_token`). */
export interface GitHostTaskOptions {
  /** A token used for this task instead of the host's own. */
  token?: string;
  /** The task's signal: a request still running when it aborts is cancelled. */
  signal?: AbortSignal;
}

/** A Git host. `createX(settings)` builds one without I/O. */
export interface GitHost {
  /** Always `git-host-v1` for this version of the spec. */
  readonly specificationVersion: typeof GIT_HOST_SPEC_VERSION;
  /** A short id: `local`, `github`. */
  readonly hostId: string;

  /**
   * Optional. Maps a reference form the core does not parse (e.g. `git@github.com:owner/repo.git`
   * or `ssh://`) to the `https://` URL or path this host serves it under; undefined leaves the
   * repo as given. The core calls it first, before parsing `repo`, so a host can accept forms
   * the core refuses. May throw INVALID_REPO for a form it recognizes but cannot use. No I/O.
   */
  normalizeRepo?(repo: string): string | undefined;

  /** True when this host serves the given repository reference (URL or path). No I/O. */
  supports(repo: string): boolean;

  /**
   * Checks that the repository exists and what the credentials may do. Rejects with
   * REPO_NOT_FOUND, AUTH_FAILED, PERMISSION_DENIED, REPO_ARCHIVED, INVALID_REPO or RATE_LIMITED.
   */
  resolveRepository(repo: string, options?: GitHostTaskOptions): Promise<ResolvedRepository>;

  /** Whether a branch exists on the remote. */
  branchExists(repository: ResolvedRepository, branch: string, options?: GitHostTaskOptions): Promise<boolean>;

  /**
   * Credentials for git over HTTP. `read` for clone and fetch, `write` for push.
   * Returns undefined when none are needed (public repos, local paths).
   */
  getCredentials(repository: ResolvedRepository, access: "read" | "write", options?: GitHostTaskOptions): Promise<GitCredentials | undefined>;

  /** Opens a change request from head into base, or updates the open one for the same head. */
  openChangeRequest(repository: ResolvedRepository, input: ChangeRequestInput, options?: GitHostTaskOptions): Promise<ChangeRequest>;

  /**
   * Optional: rejects, before anything is created, a task branch these credentials may not push
   * to (a protected branch), with INVALID_BRANCH. Called in validate with the task's own branch.
   */
  checkPushBranch?(repository: ResolvedRepository, branch: string, options?: GitHostTaskOptions): Promise<void>;

  /**
   * Optional: records the run's checks on the pushed commit, where reviewers see them (GitHub:
   * commit statuses; the local host: on the change request's record). Called after the change
   * request is open; a failure here is a warning, never the task's failure.
   */
  reportChecks?(repository: ResolvedRepository, report: CheckReport, options?: GitHostTaskOptions): Promise<void>;

  /** Secrets this host holds, so the core's redactor can remove them from everything that leaves the loop. */
  secrets?(): string[];
}

/** How one check ended, as a Git host reports it. */
export interface CheckOutcome {
  /** The check's name, e.g. `test`. */
  name: string;
  /** The command it ran. */
  command: string;
  /** True when it exited 0 within its time. */
  passed: boolean;
  /** Its exit code, null when it was stopped (by its timeout). */
  exitCode: number | null;
  /** True when it ran out of time. */
  timedOut: boolean;
  /** How long it ran, in ms. */
  durationMs: number;
}

/** The checks of a run's last round, for {@link GitHost.reportChecks}. */
export interface CheckReport {
  /** The pushed commit the checks ran on. */
  commit: string;
  /** The branch the commit was pushed to. */
  branch: string;
  /** The change request it belongs to. */
  changeRequest: ChangeRequest;
  /** One entry per check, in order. */
  checks: CheckOutcome[];
  /** How many fix rounds ran before this result. */
  fixRounds: number;
}
