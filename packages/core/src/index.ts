export * from "./errors.js";
export * from "./phases.js";
export * from "./events.js";
export * from "./changes.js";
export * from "./model.js";
export * from "./run-options.js";
export * from "./spec/sandbox-spec.js";
export * from "./spec/git-host-spec.js";
export * from "./archive.js";
export { Redactor, REDACTED } from "./redactor.js";
export { EventLog } from "./event-log.js";
export { taskTitle } from "./loop/task-title.js";
export { createLocalSandbox, type LocalSandboxOptions } from "./sandbox-local/local-sandbox.js";
export { startEgressProxy, type BlockedConnection, type EgressProxy, type EgressProxyOptions } from "./network/egress-proxy.js";
export { forwardLoopbackToSocket, type SocketForwarder } from "./network/socket-forwarder.js";
export { createPreparedStateCache, type PreparedStateCache, type PreparedStateCacheOptions } from "./sandbox-local/prepared-state-cache.js";
export { prepareRepository, type PrepareRepositoryOptions, type PreparedRepository } from "./prepared/prepare-repository.js";
export { keepPrepared, type KeepPreparedOptions, type KeptPrepared } from "./prepared/keep-prepared.js";
export { DEFAULT_SETUP_INPUT_NAMES } from "./loop/setup-inputs.js";
export { latestPreparedState, type LatestPreparedStateOptions } from "./prepared/latest-prepared-state.js";
export { createLocalGitHost, type LocalGitHost, type LocalGitHostSettings } from "./git/local-git-host.js";
export type { LocalChangeRequest } from "./git/change-request-store.js";
export { parseRepoReference, type RepoReference } from "./git/repo-reference.js";
export { checkChangeRequestInput, checkStatusDescription, describeRepo, isServedProtocol, isWebUrl, parseScpLikeRemote } from "./git/git-host-helpers.js";
export { makeBranchName, validateBranchName, type BranchNameOptions } from "./git/branch-name.js";
export { cloneRepository, type CloneRepositoryInput } from "./git/clone.js";
export { collectChanges, type CollectChangesInput } from "./git/collect.js";
export { placeRepository, type PlaceRepositoryInput } from "./git/place.js";
export { listWorkspace, type WorkspaceListing, type ListedEntry } from "./git/workspace-listing.js";
export { DEFAULT_CHANGE_LIMITS } from "./git/change-checks.js";
export { commitChanges, type CommitChangesInput } from "./git/commit.js";
export { pushBranch, type PushBranchInput } from "./git/push.js";
export { resolveModel, DEFAULT_COMPATIBLE_LIMITS, type ResolvedModel, type OpencodeProviderBlock } from "./agent/model-resolution.js";
export { runAgentTask, startAgentTask } from "./run-agent-task.js";
export { DEFAULT_GIT_STALL_TIMEOUT_MS } from "./git/remote-git.js";
// Types of PooledSandboxLease's fields.
export type { ModelProxy, ModelRoute } from "./agent/model-proxy.js";
export type { LegacyNetworkPolicy } from "./network/network-policy.js";
export type { OpencodeServer, OutputTail } from "./agent/opencode-server.js";
export {
  createSandboxPool,
  isSandboxPool,
  type SandboxPool,
  type SandboxPoolOptions,
  type SandboxPoolEvent,
  type SandboxPoolStats,
  type PooledSandboxRequest,
  type PooledSandboxLease,
  type PoolPreparedState,
} from "./sandbox-pool/sandbox-pool.js";
export { createStartAdmission, defaultStartAdmission, type StartAdmission, type StartAdmissionOptions } from "./agent/start-admission.js";
export { diffStat } from "./loop/pull-request.js";
export type { CheckSpec, CheckResult, CheckRound, ChecksFailedPolicy, Verification } from "./verify/check-types.js";
export { detectChecks, type DetectedChecks } from "./verify/detect-checks.js";
