import { agentError, ErrorCode } from "../errors.js";
import { validateOptions } from "../loop/validate.js";
import { lineageOf } from "../loop/setup.js";
import type { AgentTaskOptions } from "../run-options.js";
import type { PoolPreparedState } from "../sandbox-pool/sandbox-pool.js";
import { PREPARATION_TASK } from "./prepare-repository.js";

/** What {@link latestPreparedState} needs: the task fields that make a prepared state's lineage, and where it is kept. */
export type LatestPreparedStateOptions = Pick<AgentTaskOptions, "repo" | "sandbox" | "gitHost" | "gitToken" | "signal"> & {
  /** The setup commands, as the tasks will pass them. At least one. */
  setupCommands: string[];
};

/**
 * The newest prepared state the provider keeps for this repository and these setup commands (any
 * commit), in the form a pool starts from (`createSandboxPool(provider, { prepared })`), or undefined.
 * Resolves the repository with the Git host; reads no commit, clones nothing, opens no sandbox. A
 * task on another commit takes such a pooled sandbox and brings in what changed (unless a setup
 * input did). Bad options fail with the task's typed errors.
 */
export async function latestPreparedState(options: LatestPreparedStateOptions): Promise<PoolPreparedState | undefined> {
  const setupCommands = options?.setupCommands;
  if (!Array.isArray(setupCommands) || setupCommands.length === 0) {
    throw agentError(ErrorCode.INVALID_OPTIONS, "latestPreparedState needs setupCommands: a prepared state is what they leave behind.", { phase: "validate", details: { option: "setupCommands" } });
  }
  const validated = validateOptions({ ...options, ...PREPARATION_TASK });
  const provider = validated.sandbox;
  if (typeof provider.findPreparedState !== "function") return undefined;
  const hostOptions = { ...(options.signal ? { signal: options.signal } : {}), ...(validated.gitToken ? { token: validated.gitToken } : {}) };
  const repository = await validated.gitHost.resolveRepository(validated.repo, hostOptions);
  const lineage = lineageOf(repository, validated.setupCommands);
  const found = await provider.findPreparedState({ lineage, ...(options.signal ? { signal: options.signal } : {}) });
  return found && { key: found.key, commit: found.commit, lineage, reused: true };
}
