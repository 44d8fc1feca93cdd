import { ErrorCode, agentError } from "../errors.js";
import { resolveModel } from "../agent/model-resolution.js";
import { createLocalSandbox } from "../sandbox-local/local-sandbox.js";
import { createLocalGitHost } from "../git/local-git-host.js";
import { parseRepoReference } from "../git/repo-reference.js";
import { validateBranchName } from "../git/branch-name.js";
import { SANDBOX_SPEC_VERSION, type SandboxProvider } from "../spec/sandbox-spec.js";
import { GIT_HOST_SPEC_VERSION, type GitHost } from "../spec/git-host-spec.js";
import type { AgentTaskOptions, GitIdentity } from "../run-options.js";
import type { TaskContext, ValidatedOptions } from "./task-context.js";
import { checkChangeLimits } from "./change-limits.js";

const DEFAULT_AUTHOR: GitIdentity = { name: "Running Agent", email: "agent@running-agent.invalid" };
const DEFAULT_TIMEOUT_MS = 30 * 60_000;
const MAX_TASK_LENGTH = 100_000;

/**
 * Phase 1: checks everything the caller gave before anything is created, fills in defaults,
 * and asks the Git host about the repository and the base branch. Every failure here is a
 * typed error whose message says what to fix.
 */
export async function validate(context: TaskContext): Promise<void> {
  const options = validateOptions(context.raw);
  context.options = options;
  context.redactor.add(options.model.apiKey, options.gitToken);
  // Hosts that mint tokens (GitHub App installations) hold new secrets as the run goes on.
  const gitHost = options.gitHost;
  if (gitHost.secrets) context.redactor.addSource(() => gitHost.secrets!());

  await options.sandbox.validate?.({ signal: context.signal });

  const hostOptions = { signal: context.signal, ...(options.gitToken ? { token: options.gitToken } : {}) };
  const repository = await options.gitHost.resolveRepository(options.repo, hostOptions);
  context.repository = repository;
  const baseBranch = options.baseBranch ?? repository.defaultBranch;
  if (!(await options.gitHost.branchExists(repository, baseBranch, hostOptions))) {
    throw agentError(
      ErrorCode.BASE_BRANCH_NOT_FOUND,
      `The base branch "${baseBranch}" does not exist in ${repository.id}. Pass an existing branch as baseBranch (the default branch is "${repository.defaultBranch}").`,
    );
  }
  if (!repository.canPush) {
    throw agentError(ErrorCode.PERMISSION_DENIED, `The credentials for ${repository.id} cannot push. Use a token with write access to the repository.`);
  }
  context.baseBranch = baseBranch;
  // Re-running with the same branch continues it, so the change request is updated, not duplicated.
  const continues = options.branch !== undefined && (await options.gitHost.branchExists(repository, options.branch, hostOptions));
  context.startBranch = continues ? options.branch : baseBranch;
}

/** The synchronous part of validation: shapes, defaults and spec versions. No I/O. */
export function validateOptions(raw: AgentTaskOptions): ValidatedOptions {
  if (typeof raw !== "object" || raw === null) {
    throw agentError(ErrorCode.INVALID_OPTIONS, "runAgentTask needs an options object with at least { repo, task }.");
  }
  if (typeof raw.task !== "string" || raw.task.trim() === "") {
    throw agentError(ErrorCode.INVALID_TASK, "The task is empty. Say in plain words what the agent should do.");
  }
  if (raw.task.length > MAX_TASK_LENGTH) {
    throw agentError(ErrorCode.INVALID_TASK, `The task is ${raw.task.length} characters long; the limit is ${MAX_TASK_LENGTH}.`);
  }
  if (typeof raw.repo !== "string" || raw.repo.trim() === "") {
    throw agentError(ErrorCode.INVALID_REPO, "The repo is empty. Pass an https:// URL or a local path to a Git repository.");
  }
  const reference = parseRepoReference(raw.repo.trim());
  const repo = reference.kind === "local" ? reference.path : reference.url;

  const sandbox = checkSandboxProvider(raw.sandbox ?? createLocalSandbox());
  const gitHost = checkGitHost(raw.gitHost ?? defaultGitHost(reference.kind, raw.repo));
  if (!gitHost.supports(repo)) {
    throw agentError(
      ErrorCode.UNSUPPORTED_REPO,
      `The Git host "${gitHost.hostId}" does not serve ${repo}. Pass a gitHost that does (e.g. createGitHub() for github.com).`,
    );
  }

  const model = resolveModel(raw.model);
  if (raw.branch !== undefined) validateBranchName(raw.branch);
  if (raw.baseBranch !== undefined) validateBranchName(raw.baseBranch);
  const branchPrefix = raw.branchPrefix ?? "running-agent/";
  if (raw.branchPrefix !== undefined) validateBranchName(`${branchPrefix}x`);

  const timeoutMs = raw.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  checkPositive("timeoutMs", timeoutMs);
  if (raw.agentTimeoutMs !== undefined) checkPositive("agentTimeoutMs", raw.agentTimeoutMs);
  const cloneDepth = raw.cloneDepth ?? 1;
  if (cloneDepth !== "full" && (!Number.isInteger(cloneDepth) || cloneDepth < 1)) {
    throw agentError(ErrorCode.INVALID_OPTIONS, `cloneDepth must be a positive integer or "full", not ${String(cloneDepth)}.`);
  }
  const author = checkIdentity("author", raw.author ?? DEFAULT_AUTHOR);
  const committer = checkIdentity("committer", raw.committer ?? author);
  const coAuthors = (raw.coAuthors ?? []).map((identity, index) => checkIdentity(`coAuthors[${index}]`, identity));
  const setupCommands = raw.setupCommands ?? [];
  if (!Array.isArray(setupCommands) || setupCommands.some((command) => typeof command !== "string" || command.trim() === "")) {
    throw agentError(ErrorCode.INVALID_OPTIONS, "setupCommands must be a list of non-empty command strings.");
  }
  const closesIssue = raw.pullRequest?.closesIssue;
  if (closesIssue !== undefined && (!Number.isInteger(closesIssue) || closesIssue < 1)) {
    throw agentError(ErrorCode.INVALID_OPTIONS, `pullRequest.closesIssue must be an issue number, not ${String(closesIssue)}.`);
  }

  return {
    repo,
    task: raw.task.trim(),
    sandbox,
    gitHost,
    model,
    baseBranch: raw.baseBranch,
    branch: raw.branch,
    branchPrefix,
    setupCommands,
    cloneDepth,
    author,
    committer,
    coAuthors,
    pullRequest: raw.pullRequest ?? {},
    timeoutMs,
    agentTimeoutMs: raw.agentTimeoutMs,
    allowRepoAgentConfig: raw.allowRepoAgentConfig ?? false,
    gitToken: raw.gitToken,
    modelProxy: checkModelProxy(raw.modelProxy, sandbox),
    changeLimits: checkChangeLimits(raw.changeLimits),
  };
}

function defaultGitHost(kind: "local" | "http", repo: string): GitHost {
  if (kind === "local") return createLocalGitHost();
  throw agentError(
    ErrorCode.UNSUPPORTED_REPO,
    `No Git host was given for ${repo.replace(/\/\/[^/@]*@/, "//")}. Pass gitHost, e.g. createGitHub({ token }) from @running-agent/git-github; the default local Git host serves only local paths and file:// URLs.`,
  );
}

function checkSandboxProvider(value: unknown): SandboxProvider {
  const provider = value as Partial<SandboxProvider> | null;
  if (typeof provider !== "object" || provider === null || typeof provider.create !== "function") {
    throw agentError(
      ErrorCode.INVALID_SANDBOX_PROVIDER,
      "The sandbox does not implement the SandboxProvider spec (no create method). Pass createLocalSandbox(), createDockerSandbox() or another provider.",
    );
  }
  if (provider.specificationVersion !== SANDBOX_SPEC_VERSION) {
    throw agentError(
      ErrorCode.UNSUPPORTED_SPEC_VERSION,
      `The sandbox provider implements spec version "${String(provider.specificationVersion)}"; this core supports "${SANDBOX_SPEC_VERSION}". Upgrade the provider or the core so they match.`,
    );
  }
  return provider as SandboxProvider;
}

function checkGitHost(value: unknown): GitHost {
  const host = value as Partial<GitHost> | null;
  const members = ["supports", "resolveRepository", "branchExists", "getCredentials", "openChangeRequest"] as const;
  if (typeof host !== "object" || host === null || members.some((member) => typeof host[member] !== "function")) {
    throw agentError(
      ErrorCode.INVALID_GIT_HOST,
      `The gitHost does not implement the GitHost spec (it needs ${members.join(", ")}). Pass createLocalGitHost(), createGitHub() or another Git host.`,
    );
  }
  if (host.specificationVersion !== GIT_HOST_SPEC_VERSION) {
    throw agentError(
      ErrorCode.UNSUPPORTED_SPEC_VERSION,
      `The Git host implements spec version "${String(host.specificationVersion)}"; this core supports "${GIT_HOST_SPEC_VERSION}". Upgrade the Git host or the core so they match.`,
    );
  }
  return host as GitHost;
}

function checkModelProxy(requested: boolean | undefined, sandbox: SandboxProvider): boolean {
  if (!requested) return false;
  if (!sandbox.reachesHostLoopback) {
    throw agentError(
      ErrorCode.CAPABILITY_UNSUPPORTED,
      `modelProxy needs a sandbox that reaches the host's 127.0.0.1; the "${sandbox.providerId}" sandbox as configured does not. Use the local sandbox or Docker with network: "host", or leave modelProxy off.`,
    );
  }
  return true;
}

function checkPositive(name: string, value: unknown): void {
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
    throw agentError(ErrorCode.INVALID_OPTIONS, `${name} must be a positive number of milliseconds, not ${String(value)}.`);
  }
}

function checkIdentity(name: string, identity: GitIdentity): GitIdentity {
  const valid =
    typeof identity === "object" &&
    identity !== null &&
    typeof identity.name === "string" &&
    identity.name.trim() !== "" &&
    !/[<>\n]/.test(identity.name) &&
    typeof identity.email === "string" &&
    /^[^\s<>@]+@[^\s<>@]+$/.test(identity.email);
  if (!valid) {
    throw agentError(ErrorCode.INVALID_OPTIONS, `${name} must be { name, email } with a plain name and an address like bot@example.com.`);
  }
  return { name: identity.name.trim(), email: identity.email };
}
