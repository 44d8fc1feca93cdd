import { agentError, ErrorCode } from "../errors.js";
import type { AgentTaskOptions } from "../run-options.js";
import { runPreparation } from "../run-agent-task.js";
import { preparedStateKey, preparedStateLineage } from "../loop/setup.js";
import { isSandboxPool } from "../sandbox-pool/sandbox-pool.js";

/** What {@link prepareRepository} needs: the fields of a task that decide its prepared state, and how to reach it. */
export type PrepareRepositoryOptions = Pick<
  AgentTaskOptions,
  "repo" | "baseBranch" | "sandbox" | "gitHost" | "gitToken" | "cloneDepth" | "network" | "setupNetwork" | "resources" | "timeoutMs" | "gitStallTimeoutMs" | "secrets" | "signal" | "onEvent" | "taskId"
> & {
  /** The setup commands, as the tasks will pass them (any change is another state). At least one. */
  setupCommands: string[];
  /** Run the setup even when a state of this key is kept, and keep the new one in its place. */
  refresh?: boolean;
};

/** What {@link prepareRepository} did. */
export interface PreparedRepository {
  /** The prepared state's key: the repository, the base commit and the setup commands. */
  key: string;
  /** True when a state of this key was already kept and the setup commands did not run. */
  reused: boolean;
  /**
   * The state's lineage: the repository, its remote and the setup commands, without the commit. A pool
   * of this state serves a task of the same lineage on a later commit (bringing in what changed).
   */
  lineage: string;
  /** The repository, as the Git host identifies it (its `ResolvedRepository.id`). */
  repository: string;
  /** The base branch the state was prepared on. */
  baseBranch: string;
  /** The base branch's commit the state holds. */
  commit: string;
  /** How long the preparation took, in ms. */
  durationMs: number;
}

// No model is asked: validation wants one, and a loopback address gives the same default network as a task's.
const NO_MODEL = { provider: "openai-compatible", model: "none", baseURL: "http://127.0.0.1:9/v1", apiKey: "unused" } as const;
/** The task fields a preparation gives the loop's validation. */
export const PREPARATION_TASK = { task: "Prepare the repository", model: NO_MODEL } as const;

/**
 * Clones the repository's base branch, runs the setup commands in a sandbox and keeps the result as a
 * prepared state, so that the next task on this repository, commit and commands starts from it. The
 * same validation, typed errors and teardown as {@link runAgentTask}, without the agent; the sandbox
 * provider must keep prepared states (else CAPABILITY_UNSUPPORTED, phase `setup`).
 */
export async function prepareRepository(options: PrepareRepositoryOptions): Promise<PreparedRepository> {
  const setupCommands = options?.setupCommands;
  if (!Array.isArray(setupCommands) || setupCommands.length === 0) {
    throw agentError(ErrorCode.INVALID_OPTIONS, "prepareRepository needs setupCommands: a prepared state is what they leave behind.", { phase: "validate", details: { option: "setupCommands" } });
  }
  if (isSandboxPool(options.sandbox)) {
    throw agentError(ErrorCode.INVALID_OPTIONS, "prepareRepository needs a sandbox provider, not a pool: pass the provider the pool was made from.", { phase: "validate", details: { option: "sandbox" } });
  }
  const { refresh, ...task } = options;
  const started = performance.now();
  const context = await runPreparation({ ...task, ...PREPARATION_TASK, modelProxy: false }, refresh === true);
  return {
    key: preparedStateKey(context),
    lineage: preparedStateLineage(context),
    reused: context.preparedStateReused === true,
    repository: context.repository!.id,
    baseBranch: context.baseBranch!,
    commit: context.baseCommit!,
    durationMs: performance.now() - started,
  };
}
