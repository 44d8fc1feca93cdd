import { constants as fsConstants } from "node:fs";
import { access, realpath } from "node:fs/promises";
import { dirname } from "node:path";
import { agentError, ErrorCode, RunningAgentError } from "../errors.js";
import {
  GIT_HOST_SPEC_VERSION,
  type ChangeRequest,
  type ChangeRequestInput,
  type CheckReport,
  type GitCredentials,
  type GitHost,
  type GitHostTaskOptions,
  type ResolvedRepository,
} from "../spec/git-host-spec.js";
import { validateBranchName } from "./branch-name.js";
import { ChangeRequestStore, type LocalChangeRequest } from "./change-request-store.js";
import { GitCommandFailure, runGit } from "./git-command.js";
import { parseRepoReference } from "./repo-reference.js";

/** Settings for {@link createLocalGitHost}. */
export interface LocalGitHostSettings {
  /** Report `canPush: false` for every repository (a dry run that must never push). Default false. */
  readOnly?: boolean;
}

/** The local Git host: {@link GitHost} plus reading back the recorded change requests. */
export interface LocalGitHost extends GitHost {
  readonly hostId: "local";
  /** Every change request recorded for the repository, oldest first. */
  listChangeRequests(repository: ResolvedRepository | string): Promise<LocalChangeRequest[]>;
  /** One change request by number, or undefined. */
  getChangeRequest(repository: ResolvedRepository | string, number: number): Promise<LocalChangeRequest | undefined>;
}

/**
 * A Git host for repositories on this machine, given as a path or `file://` URL (bare or with a
 * working tree). Branches are pushed with git; change requests are recorded as JSON inside the
 * repository's git folder, so that they can be listed and read back. No network, no credentials.
 * Does no I/O until asked.
 */
export function createLocalGitHost(settings: LocalGitHostSettings = {}): LocalGitHost {
  return new LocalGitHostImplementation(settings);
}

interface InspectedRepository {
  path: string;
  gitDir: string;
  bare: boolean;
}

class LocalGitHostImplementation implements LocalGitHost {
  readonly specificationVersion = GIT_HOST_SPEC_VERSION;
  readonly hostId = "local" as const;

  constructor(private readonly settings: LocalGitHostSettings) {}

  supports(repo: string): boolean {
    try {
      return parseRepoReference(repo).kind === "local";
    } catch {
      return false;
    }
  }

  async resolveRepository(repo: string, options?: GitHostTaskOptions): Promise<ResolvedRepository> {
    const reference = parseRepoReference(repo);
    if (reference.kind !== "local") {
      throw agentError(ErrorCode.UNSUPPORTED_REPO, `The local Git host serves local paths and file:// URLs, not ${reference.url}. Pass a Git host for that server.`);
    }
    const inspected = await inspect(reference.path, options?.signal);
    const defaultBranch = await readDefaultBranch(inspected, options?.signal);
    const writable = await access(inspected.gitDir, fsConstants.W_OK).then(() => true, () => false);
    return {
      id: inspected.path,
      remote: inspected.path,
      defaultBranch,
      canPush: writable && !this.settings.readOnly,
    };
  }

  async branchExists(repository: ResolvedRepository, branch: string, options?: GitHostTaskOptions): Promise<boolean> {
    validateBranchName(branch);
    return branchInRepository(repository.remote, branch, options?.signal);
  }

  async getCredentials(): Promise<GitCredentials | undefined> {
    return undefined;
  }

  async openChangeRequest(repository: ResolvedRepository, input: ChangeRequestInput, options?: GitHostTaskOptions): Promise<ChangeRequest> {
    validateBranchName(input.head);
    validateBranchName(input.base);
    if (typeof input.title !== "string" || input.title.trim() === "") {
      throw agentError(ErrorCode.INVALID_OPTIONS, "A change request needs a title.", { phase: "pull-request" });
    }
    const inspected = await inspect(repository.remote, options?.signal);
    if (!(await refExists(inspected, `refs/heads/${input.base}`, options?.signal))) {
      throw agentError(ErrorCode.BASE_BRANCH_NOT_FOUND, `The base branch "${input.base}" does not exist in ${inspected.path}.`, { phase: "pull-request" });
    }
    const headCommit = await resolveCommit(inspected, `refs/heads/${input.head}`, options?.signal);
    if (headCommit === undefined) {
      throw agentError(ErrorCode.PULL_REQUEST_FAILED, `The head branch "${input.head}" does not exist in ${inspected.path}; push it first.`, { phase: "pull-request" });
    }
    const store = new ChangeRequestStore(inspected.gitDir);
    const now = new Date().toISOString();
    const fields = {
      head: input.head,
      base: input.base,
      headCommit,
      title: input.title,
      body: input.body ?? "",
      draft: input.draft,
      labels: [...(input.labels ?? [])],
      reviewers: [...(input.reviewers ?? [])],
      assignees: [...(input.assignees ?? [])],
      updatedAt: now,
    };
    const { record, created } = await store.update((records) => {
      const existing = records.find((candidate) => candidate.state === "open" && candidate.head === input.head);
      if (existing) {
        Object.assign(existing, { ...fields, draft: fields.draft ?? existing.draft });
        return { record: { ...existing }, created: false };
      }
      const number = records.reduce((highest, candidate) => Math.max(highest, candidate.number), 0) + 1;
      const fresh: LocalChangeRequest = { number, url: changeRequestUrl(inspected.path, number), state: "open", ...fields, draft: fields.draft ?? false, createdAt: now };
      records.push(fresh);
      return { record: { ...fresh }, created: true };
    });
    return {
      number: record.number,
      url: record.url,
      head: record.head,
      base: record.base,
      title: record.title,
      body: record.body,
      draft: record.draft,
      created,
    };
  }

  async reportChecks(repository: ResolvedRepository, report: CheckReport, options?: GitHostTaskOptions): Promise<void> {
    const inspected = await inspect(repository.remote, options?.signal);
    const found = await new ChangeRequestStore(inspected.gitDir).update((records) => {
      const record = records.find((candidate) => candidate.number === report.changeRequest.number);
      if (!record) return false;
      record.checks = { commit: report.commit, fixRounds: report.fixRounds, results: report.checks.map((check) => ({ ...check })), reportedAt: new Date().toISOString() };
      return true;
    });
    if (!found) throw agentError(ErrorCode.GIT_HOST_ERROR, `No change request ${report.changeRequest.number} in ${inspected.path} to record the checks on.`);
  }

  async listChangeRequests(repository: ResolvedRepository | string): Promise<LocalChangeRequest[]> {
    const inspected = await inspect(typeof repository === "string" ? localPath(repository) : repository.remote);
    return new ChangeRequestStore(inspected.gitDir).list();
  }

  async getChangeRequest(repository: ResolvedRepository | string, number: number): Promise<LocalChangeRequest | undefined> {
    return (await this.listChangeRequests(repository)).find((record) => record.number === number);
  }
}

function localPath(repo: string): string {
  const reference = parseRepoReference(repo);
  if (reference.kind !== "local") throw agentError(ErrorCode.UNSUPPORTED_REPO, `The local Git host serves local paths and file:// URLs, not ${reference.url}.`);
  return reference.path;
}

function changeRequestUrl(repositoryPath: string, number: number): string {
  return `local://${encodeURI(repositoryPath)}/change-requests/${number}`;
}

/**
 * Checks that `path` itself is a git repository (bare, or with `.git`): discovery is stopped at
 * its parent so that a folder inside some other repository is not mistaken for one.
 */
async function inspect(path: string, signal?: AbortSignal): Promise<InspectedRepository> {
  const real = await existingPath(path);
  try {
    const { stdout } = await runGit(["rev-parse", "--is-bare-repository", "--absolute-git-dir"], discoveryOptions(real, signal));
    const [bare, gitDir] = stdout.toString("utf8").trim().split("\n");
    return { path: real, gitDir: gitDir!, bare: bare === "true" };
  } catch (error) {
    if (RunningAgentError.isInstance(error)) throw error;
    throw notARepository(real, error);
  }
}

/**
 * Whether `path` holds the branch, in one git process: the same discovery as {@link inspect} (stopped at
 * the parent), so a path that is not a repository is still REPO_NOT_FOUND. Validation asks this several
 * times per task, so it skips inspect's separate rev-parse.
 */
async function branchInRepository(path: string, branch: string, signal?: AbortSignal): Promise<boolean> {
  const real = await existingPath(path);
  try {
    await runGit(["rev-parse", "--verify", "--quiet", `refs/heads/${branch}^{commit}`], discoveryOptions(real, signal));
    return true;
  } catch (error) {
    if (!(error instanceof GitCommandFailure)) throw error;
    if (error.exitCode === 1) return false;
    if (/not a git repository/i.test(error.stderr)) throw notARepository(real, error);
    throw error;
  }
}

async function existingPath(path: string): Promise<string> {
  try {
    return await realpath(path);
  } catch (cause) {
    throw agentError(ErrorCode.REPO_NOT_FOUND, `${path} does not exist. Pass the path of a git repository.`, { cause });
  }
}

function discoveryOptions(real: string, signal: AbortSignal | undefined) {
  return { cwd: real, env: { GIT_CEILING_DIRECTORIES: dirname(real) }, ...(signal ? { signal } : {}) };
}

function notARepository(real: string, cause: unknown): RunningAgentError {
  return agentError(ErrorCode.REPO_NOT_FOUND, `${real} is not a git repository. Pass the path of a repository (with a .git folder) or of a bare repository.`, { cause });
}

async function readDefaultBranch(inspected: InspectedRepository, signal?: AbortSignal): Promise<string> {
  try {
    const { stdout } = await runGit(["--git-dir", inspected.gitDir, "symbolic-ref", "--quiet", "--short", "HEAD"], signal ? { signal } : {});
    return stdout.toString("utf8").trim();
  } catch (error) {
    if (!(error instanceof GitCommandFailure)) throw error;
  }
  // A detached HEAD names no branch; fall back to the usual names.
  for (const candidate of ["main", "master"]) {
    if (await refExists(inspected, `refs/heads/${candidate}`, signal)) return candidate;
  }
  throw agentError(ErrorCode.GIT_HOST_ERROR, `${inspected.path} has a detached HEAD and no main or master branch; pass baseBranch.`);
}

async function resolveCommit(inspected: InspectedRepository, ref: string, signal?: AbortSignal): Promise<string | undefined> {
  try {
    const { stdout } = await runGit(["--git-dir", inspected.gitDir, "rev-parse", "--verify", "--quiet", `${ref}^{commit}`], signal ? { signal } : {});
    return stdout.toString("utf8").trim();
  } catch (error) {
    if (error instanceof GitCommandFailure && error.exitCode === 1) return undefined;
    throw error;
  }
}

async function refExists(inspected: InspectedRepository, ref: string, signal?: AbortSignal): Promise<boolean> {
  return (await resolveCommit(inspected, ref, signal)) !== undefined;
}
