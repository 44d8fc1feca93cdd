import { ErrorCode, RunningAgentError, agentError } from "../errors.js";
import { resolveModel } from "../agent/model-resolution.js";
import { createLocalSandbox } from "../sandbox-local/local-sandbox.js";
import { createLocalGitHost } from "../git/local-git-host.js";
import { parseRepoReference } from "../git/repo-reference.js";
import { makeBranchName, validateBranchName } from "../git/branch-name.js";
import { DEFAULT_GIT_STALL_TIMEOUT_MS } from "../git/remote-git.js";
import { isDeepStrictEqual } from "node:util";
import { SANDBOX_SPEC_VERSION, type SandboxNetworkPolicy, type SandboxProvider } from "../spec/sandbox-spec.js";
import { allowEntryProblem, defaultNetworkPolicy, normalizeNetworkPolicy, type LegacyNetworkPolicy } from "../network/network-policy.js";
import { GIT_HOST_SPEC_VERSION, type GitHost, type GitHostTaskOptions, type ResolvedRepository } from "../spec/git-host-spec.js";
import type { AgentTaskOptions, GitIdentity } from "../run-options.js";
import type { CheckSpec } from "../verify/check-types.js";
import { providerStartAdmission, type StartAdmission } from "../agent/start-admission.js";
import type { TaskContext, ValidatedOptions } from "./task-context.js";
import { checkSetupInputs } from "./setup-inputs.js";
import {
  checkBoolean,
  checkFunction,
  checkIdentity,
  checkLine,
  checkLineList,
  checkMilliseconds,
  checkPositiveInteger,
  checkSecrets,
  checkSignal,
  checkTaskId,
  checkText,
  describeValue,
  invalidOption,
  isPlainObject,
} from "./option-checks.js";
import { checkedGitHost } from "./spec-checks.js";
import { checkTaskBranch } from "./branch-checks.js";
import { checkChangeLimits } from "./change-limits.js";

const DEFAULT_AUTHOR: GitIdentity = { name: "Running Agent", email: "agent@running-agent.invalid" };
const DEFAULT_TIMEOUT_MS = 30 * 60_000;
const MAX_TASK_LENGTH = 100_000;
const MAX_CLONE_DEPTH = 1_000_000;
// GitHub's limits for a pull request's title and body (the generated sections need room too).
const MAX_TITLE_LENGTH = 256;
const MAX_BODY_LENGTH = 50_000;
const MAX_ISSUE_NUMBER = 2 ** 31 - 1;
const DEFAULT_MAX_FIX_ROUNDS = 2;
const MAX_FIX_ROUNDS = 10;
const CHECKS_FAILED_POLICIES: readonly unknown[] = ["draft", "fail", "open"];
const CHECK_NAME = /^[A-Za-z0-9._:-]{1,64}$/;

/**
 * Phase 1: checks everything the caller gave before anything is created, fills in defaults,
 * and asks the Git host about the repository and the base branch. Every failure here is a
 * typed error whose message says what to fix.
 */
export async function validate(context: TaskContext): Promise<void> {
  const options = validateOptions(context.raw);
  context.options = options;
  context.redactor.add(options.model.apiKey, options.gitToken, ...options.secrets);
  // Hosts that mint tokens (GitHub App installations) hold new secrets as the run goes on.
  const gitHost = options.gitHost;
  if (gitHost.secrets) context.redactor.addSource(() => gitHost.secrets!());

  await options.sandbox.validate?.({ signal: context.signal, network: options.network });

  const hostOptions = { signal: context.signal, ...(options.gitToken ? { token: options.gitToken } : {}) };
  const repository = await options.gitHost.resolveRepository(options.repo, hostOptions);
  context.repository = repository;
  const baseBranch = options.baseBranch ?? repository.defaultBranch;
  const pushes = !context.prepare && repository.canPush;
  // The task branch's lookups run alongside the base branch's (all read-only), and both finish before either
  // is judged: the errors come in the same order as one by one, and nothing of the call runs on after it fails.
  const taskBranchCheck = pushes ? startTaskBranchCheck(context, options, repository, baseBranch, hostOptions) : undefined;
  const [baseBranchCheck] = await Promise.allSettled([options.gitHost.branchExists(repository, baseBranch, hostOptions), taskBranchCheck]);
  if (baseBranchCheck.status === "rejected") throw baseBranchCheck.reason;
  if (!baseBranchCheck.value) {
    throw agentError(
      ErrorCode.BASE_BRANCH_NOT_FOUND,
      `The base branch "${baseBranch}" does not exist in ${repository.id}. Pass an existing branch as baseBranch (the default branch is "${repository.defaultBranch}").`,
    );
  }
  if (context.prepare) {
    // Preparing reads the base branch only: no push, no task branch.
    context.baseBranch = baseBranch;
    context.startBranch = baseBranch;
    return;
  }
  if (!repository.canPush) {
    throw agentError(ErrorCode.PERMISSION_DENIED, `The credentials for ${repository.id} cannot push. Use a token with write access to the repository.`);
  }
  context.baseBranch = baseBranch;
  const { branch, continues } = await taskBranchCheck!;
  context.taskBranch = branch;
  context.startBranch = continues ? branch : baseBranch;
}

async function startTaskBranchCheck(
  context: TaskContext,
  options: ValidatedOptions,
  repository: ResolvedRepository,
  baseBranch: string,
  hostOptions: GitHostTaskOptions,
): Promise<{ branch: string; continues: boolean }> {
  // The branch name is decided here, once, so that every rule about it is checked before anything exists.
  const branch = options.branch ?? makeBranchName(options.task, { prefix: options.branchPrefix, suffix: context.taskId.slice(0, 8) });
  // Re-running with the same branch continues it, so the change request is updated, not duplicated.
  const { continues } = await checkTaskBranch({ gitHost: options.gitHost, repository, branch, baseBranch, hostOptions });
  return { branch, continues };
}

/** The synchronous part of validation: shapes, ranges, defaults and spec versions. No I/O. */
export function validateOptions(raw: AgentTaskOptions): ValidatedOptions {
  if (!isPlainObject(raw)) {
    throw agentError(ErrorCode.INVALID_OPTIONS, `runAgentTask needs an options object with at least { repo, task }, not ${describeValue(raw)}.`);
  }
  if (typeof raw.task !== "string") throw invalidOption("task", "a string that says what the agent should do", raw.task, ErrorCode.INVALID_TASK);
  if (raw.task.trim() === "") {
    throw agentError(ErrorCode.INVALID_TASK, "The task is empty. Say in plain words what the agent should do.");
  }
  // The task becomes the commit message and part of the change request.
  checkText("task", raw.task, MAX_TASK_LENGTH, ErrorCode.INVALID_TASK);
  if (typeof raw.repo !== "string") throw invalidOption("repo", "a string: an https:// URL or a local path", raw.repo, ErrorCode.INVALID_REPO);
  if (raw.repo.trim() === "") {
    throw agentError(ErrorCode.INVALID_REPO, "The repo is empty. Pass an https:// URL or a local path to a Git repository.");
  }
  checkTaskId(raw.taskId);
  const secrets = checkSecrets(raw.secrets);
  checkSignal(raw.signal);
  checkFunction("onEvent", raw.onEvent);

  // Only a missing value takes the default: `null` is a wrong value like any other.
  const sandbox = checkSandboxProvider(raw.sandbox === undefined ? createLocalSandbox() : raw.sandbox);
  const reference = parseRepoReference(normalizedRepo(raw.repo.trim(), raw.gitHost));
  const repo = reference.kind === "local" ? reference.path : reference.url;
  // Wrapped so that a host answering outside its spec fails with SPEC_VIOLATION, not a TypeError later.
  const gitHost = checkedGitHost(checkGitHost(raw.gitHost === undefined ? defaultGitHost(reference.kind, raw.repo) : raw.gitHost));
  if (!gitHost.supports(repo)) {
    throw agentError(
      ErrorCode.UNSUPPORTED_REPO,
      `The Git host "${gitHost.hostId}" does not serve ${repo}. Pass a gitHost that does (e.g. createGitHub() for github.com).`,
    );
  }

  const model = resolveModel(raw.model);
  const branch = raw.branch === undefined ? undefined : checkBranchOption("branch", raw.branch);
  const baseBranch = raw.baseBranch === undefined ? undefined : checkBranchOption("baseBranch", raw.baseBranch);
  if (raw.branchPrefix !== undefined && typeof raw.branchPrefix !== "string") throw invalidOption("branchPrefix", "a string", raw.branchPrefix, ErrorCode.INVALID_BRANCH);
  const branchPrefix = raw.branchPrefix ?? "running-agent/";
  if (raw.branchPrefix !== undefined) validateBranchName(`${branchPrefix}x`);

  const timeoutMs = checkMilliseconds("timeoutMs", raw.timeoutMs) ?? DEFAULT_TIMEOUT_MS;
  const agentTimeoutMs = checkMilliseconds("agentTimeoutMs", raw.agentTimeoutMs);
  const gitStallTimeoutMs = checkMilliseconds("gitStallTimeoutMs", raw.gitStallTimeoutMs) ?? DEFAULT_GIT_STALL_TIMEOUT_MS;
  const cloneDepth = raw.cloneDepth ?? 1;
  if (cloneDepth !== "full" && checkPositiveInteger("cloneDepth", cloneDepth, MAX_CLONE_DEPTH) === undefined) {
    throw invalidOption("cloneDepth", `a whole number from 1 to ${MAX_CLONE_DEPTH} or "full"`, cloneDepth);
  }
  const author = checkIdentity("author", raw.author ?? DEFAULT_AUTHOR);
  const committer = checkIdentity("committer", raw.committer ?? author);
  if (raw.coAuthors !== undefined && !Array.isArray(raw.coAuthors)) throw invalidOption("coAuthors", "an array of { name, email }", raw.coAuthors);
  const coAuthors = (raw.coAuthors ?? []).map((identity, index) => checkIdentity(`coAuthors[${index}]`, identity));
  const setupCommands = raw.setupCommands ?? [];
  if (!Array.isArray(setupCommands)) throw invalidOption("setupCommands", "an array of command strings", setupCommands);
  setupCommands.forEach((command, index) => {
    if (typeof command !== "string") throw invalidOption(`setupCommands[${index}]`, "a command string", command);
    if (command.trim() === "") throw agentError(ErrorCode.INVALID_OPTIONS, `setupCommands[${index}] is blank; every setup command must be a non-empty command string.`);
    checkText(`setupCommands[${index}]`, command, MAX_TASK_LENGTH);
  });
  const setupInputs = checkSetupInputs(raw.setupInputs);
  const pullRequest = checkPullRequestOptions(raw.pullRequest);
  const checks = checkChecks(raw.checks);
  const maxFixRounds = raw.maxFixRounds === undefined ? DEFAULT_MAX_FIX_ROUNDS : checkWholeNumber("maxFixRounds", raw.maxFixRounds, 0, MAX_FIX_ROUNDS);
  const onChecksFailed = raw.onChecksFailed ?? "draft";
  if (!CHECKS_FAILED_POLICIES.includes(onChecksFailed)) throw invalidOption("onChecksFailed", '"draft", "fail" or "open"', onChecksFailed);
  checkResources(raw.resources);
  const network = checkNetwork("network", raw.network) ?? defaultNetworkPolicy(sandbox, model);
  const setupNetwork = checkNetwork("setupNetwork", raw.setupNetwork) ?? network;
  const egressProxy = sandbox.egressProxy === true && network !== "open";
  if (!egressProxy && raw.setupNetwork !== undefined && !isDeepStrictEqual(setupNetwork, network)) {
    throw agentError(
      ErrorCode.CAPABILITY_UNSUPPORTED,
      `setupNetwork needs a sandbox whose network the host's egress proxy enforces (the local sandbox with bubblewrap and a policy other than "open"); the "${sandbox.providerId}" sandbox fixes its policy when it is created.`,
    );
  }
  const allowRepoAgentConfig = checkBoolean("allowRepoAgentConfig", raw.allowRepoAgentConfig) ?? false;
  const modelProxy = checkBoolean("modelProxy", raw.modelProxy);
  if (raw.gitToken !== undefined) {
    if (typeof raw.gitToken !== "string" || raw.gitToken.trim() === "") throw invalidOption("gitToken", "a non-empty string", raw.gitToken);
    // It goes into HTTP headers: bytes a header cannot carry would fail far from here.
    if (!/^[\x21-\x7e]+$/.test(raw.gitToken)) {
      throw agentError(ErrorCode.INVALID_OPTIONS, "gitToken contains a space, a line break or a byte an HTTP header cannot carry; check how it was read.");
    }
  }

  return {
    repo,
    task: raw.task.trim(),
    sandbox,
    gitHost,
    model,
    baseBranch,
    branch,
    branchPrefix,
    setupCommands,
    setupInputs,
    cloneDepth,
    author,
    committer,
    coAuthors,
    pullRequest,
    timeoutMs,
    agentTimeoutMs,
    gitStallTimeoutMs,
    allowRepoAgentConfig,
    gitToken: raw.gitToken,
    modelProxy: checkModelProxy(modelProxy, sandbox, egressProxy),
    network,
    setupNetwork,
    egressProxy,
    secrets,
    checks,
    maxFixRounds,
    onChecksFailed,
    agentStart: checkAgentStart(raw.agentStart, sandbox),
    changeLimits: checkChangeLimits(raw.changeLimits),
  };
}

/** A branch option: `refs/heads/` is dropped (it names the same branch), and the rest must be a valid name. */
function checkBranchOption(name: "branch" | "baseBranch", value: unknown): string {
  if (typeof value !== "string") throw invalidOption(name, "a branch name", value, ErrorCode.INVALID_BRANCH);
  const branch = value.startsWith("refs/heads/") ? value.slice("refs/heads/".length) : value;
  validateBranchName(branch);
  return branch;
}

function checkPullRequestOptions(value: unknown): ValidatedOptions["pullRequest"] {
  if (value === undefined) return {};
  if (!isPlainObject(value)) throw invalidOption("pullRequest", "an object { title?, body?, draft?, labels?, reviewers?, assignees?, closesIssue? }", value);
  const title = checkLine("pullRequest.title", value.title, MAX_TITLE_LENGTH);
  const body = checkText("pullRequest.body", value.body, MAX_BODY_LENGTH);
  const draft = checkBoolean("pullRequest.draft", value.draft);
  const labels = checkLineList("pullRequest.labels", value.labels, 100);
  const reviewers = checkLineList("pullRequest.reviewers", value.reviewers, 100);
  const assignees = checkLineList("pullRequest.assignees", value.assignees, 100);
  const closesIssue = checkPositiveInteger("pullRequest.closesIssue", value.closesIssue, MAX_ISSUE_NUMBER);
  return {
    ...(title !== undefined ? { title } : {}),
    ...(body !== undefined ? { body } : {}),
    ...(draft !== undefined ? { draft } : {}),
    ...(labels !== undefined ? { labels } : {}),
    ...(reviewers !== undefined ? { reviewers } : {}),
    ...(assignees !== undefined ? { assignees } : {}),
    ...(closesIssue !== undefined ? { closesIssue } : {}),
  };
}

function checkWholeNumber(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) throw invalidOption(name, `a whole number from ${min} to ${max}`, value);
  return value;
}

/** `"auto"`, or a list of checks with unique, plain names and non-blank commands. */
function checkChecks(value: unknown): CheckSpec[] | "auto" | undefined {
  if (value === undefined || value === "auto") return value;
  if (!Array.isArray(value)) throw invalidOption("checks", '"auto" or an array of { name, command, timeoutMs? }', value);
  const names = new Set<string>();
  return value.map((check, index) => {
    const label = `checks[${index}]`;
    if (!isPlainObject(check)) throw invalidOption(label, "an object { name, command, timeoutMs? }", check);
    if (typeof check.name !== "string" || !CHECK_NAME.test(check.name)) throw invalidOption(`${label}.name`, "1 to 64 letters, digits, '.', '_', ':' or '-'", check.name);
    if (names.has(check.name)) throw agentError(ErrorCode.INVALID_OPTIONS, `${label}.name "${check.name}" is used twice; every check needs its own name.`, { details: { option: `${label}.name` } });
    names.add(check.name);
    if (typeof check.command !== "string") throw invalidOption(`${label}.command`, "a command string", check.command);
    if (check.command.trim() === "") throw agentError(ErrorCode.INVALID_OPTIONS, `${label}.command is blank; a check needs a command.`, { details: { option: `${label}.command` } });
    checkText(`${label}.command`, check.command, MAX_TASK_LENGTH);
    const timeoutMs = checkMilliseconds(`${label}.timeoutMs`, check.timeoutMs);
    return { name: check.name, command: check.command, ...(timeoutMs !== undefined ? { timeoutMs } : {}) };
  });
}

function checkResources(value: unknown): void {
  if (value === undefined) return;
  if (!isPlainObject(value)) throw invalidOption("resources", "an object { cpu?, memoryMiB?, pids? }", value);
  if (value.cpu !== undefined && (typeof value.cpu !== "number" || !Number.isFinite(value.cpu) || value.cpu <= 0 || value.cpu > 1024)) {
    throw invalidOption("resources.cpu", "a number of cores above 0 (fractions allowed) and at most 1024", value.cpu);
  }
  checkPositiveInteger("resources.memoryMiB", value.memoryMiB, 16 * 1024 * 1024);
  checkPositiveInteger("resources.pids", value.pids, 4_194_304);
}

/** A network policy, normalized: the `{ mode }` forms of earlier versions map onto the current ones. */
function checkNetwork(name: "network" | "setupNetwork", value: unknown): SandboxNetworkPolicy | undefined {
  if (value === undefined) return undefined;
  if (value === "none" || value === "open") return value;
  const expected = '"none", "open" or { allow: [domains, addresses or CIDR ranges] } (or the older { mode: ... } forms)';
  if (isPlainObject(value) && "allow" in value) {
    const allow = checkLineList(`${name}.allow`, value.allow, 253, 1000) ?? [];
    for (const entry of allow) {
      const problem = allowEntryProblem(entry);
      if (problem) throw agentError(ErrorCode.INVALID_OPTIONS, `${name}.allow: ${problem}.`, { details: { option: name, entry } });
    }
    return { allow };
  }
  const modes = ["none", "allow-list", "open"];
  if (!isPlainObject(value) || typeof value.mode !== "string" || !modes.includes(value.mode)) {
    throw invalidOption(name, expected, isPlainObject(value) ? value.mode : value);
  }
  const hosts = checkLineList(`${name}.hosts`, value.hosts, 253, 1000);
  const cidrs = checkLineList(`${name}.cidrs`, value.cidrs, 64, 1000);
  for (const entry of [...(hosts ?? []), ...(cidrs ?? [])]) {
    const problem = allowEntryProblem(entry);
    if (problem) throw agentError(ErrorCode.INVALID_OPTIONS, `${name}: ${problem}.`, { details: { option: name, entry } });
  }
  return normalizeNetworkPolicy(value as LegacyNetworkPolicy);
}

// A Git host may serve forms the parser refuses (ssh, scp-like); it maps them first.
function normalizedRepo(repo: string, gitHost: unknown): string {
  const host = gitHost as Partial<GitHost> | null | undefined;
  if (typeof host?.normalizeRepo !== "function") return repo;
  let mapped: unknown;
  try {
    mapped = host.normalizeRepo(repo);
  } catch (error) {
    if (RunningAgentError.isInstance(error)) throw error;
    throw agentError(ErrorCode.SPEC_VIOLATION, `The Git host "${String(host.hostId)}" broke its spec: normalizeRepo() threw instead of returning a URL, a path or undefined. Fix or upgrade the adapter.`, {
      details: { seam: "Git host", member: "normalizeRepo()" },
    });
  }
  if (mapped === undefined) return repo;
  if (typeof mapped !== "string" || mapped.trim() === "") {
    throw agentError(ErrorCode.SPEC_VIOLATION, `The Git host "${String(host.hostId)}" broke its spec: normalizeRepo() gave ${describeValue(mapped)} where a URL, a path or undefined was expected. Fix or upgrade the adapter.`, {
      details: { seam: "Git host", member: "normalizeRepo()" },
    });
  }
  return mapped.trim();
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

function checkModelProxy(requested: boolean | undefined, sandbox: SandboxProvider, egressProxy: boolean): boolean {
  // Behind the egress proxy the key stays on the host unless the caller asks otherwise.
  if (requested === undefined) return egressProxy;
  if (!requested) return false;
  if (!egressProxy && !sandbox.reachesHostLoopback) {
    throw agentError(
      ErrorCode.CAPABILITY_UNSUPPORTED,
      `modelProxy needs a sandbox that reaches the host's 127.0.0.1; the "${sandbox.providerId}" sandbox as configured does not. Use the local sandbox or Docker with network: "host", or leave modelProxy off.`,
    );
  }
  return true;
}
function checkAgentStart(requested: unknown, sandbox: SandboxProvider): ValidatedOptions["agentStart"] {
  if (requested !== undefined && !isPlainObject(requested)) throw invalidOption("agentStart", "an object { timeoutMs?, admission? }", requested);
  const timeoutMs = checkMilliseconds("agentStart.timeoutMs", requested?.timeoutMs);
  const admission = requested?.admission;
  if (admission !== undefined && typeof (admission as Partial<StartAdmission> | null)?.acquire !== "function") {
    throw invalidOption("agentStart.admission", "a StartAdmission from createStartAdmission()", admission);
  }
  return { timeoutMs, admission: (admission as StartAdmission | undefined) ?? providerStartAdmission(sandbox) };
}
