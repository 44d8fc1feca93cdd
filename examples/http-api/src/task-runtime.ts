import { dirname, join, resolve } from "node:path";
import {
  createLocalGitHost,
  createLocalSandbox,
  createPreparedStateCache,
  createSandboxPool,
  keepPrepared,
  startAgentTask,
  type AgentTaskOptions,
  type GitHost,
  type KeptPrepared,
  type SandboxPool,
  type SandboxProvider,
} from "@running-agent/core";
import type { RunTask } from "@running-agent/jobs";
import { createGitHub } from "@running-agent/git-github";
import { createGitLab } from "@running-agent/git-gitlab";
import { startOfflineModel, type OfflineModel } from "./offline-model.js";
import { sameRepo, type ServerConfig } from "./server-config.js";
import { serverLabels } from "./server-labels.js";

/** How long a kept state is used (each sandbox's cache); the schedules prepare again at half of it, so a pool never outlives its state. */
const PREPARED_STATE_MAX_AGE_MS = 6 * 3_600_000;

/** The sandbox, Git host and model every task of this server gets, and what to stop on shutdown. */
export interface TaskRuntime {
  taskDefaults: Partial<AgentTaskOptions>;
  /** Starts a task: core's `startAgentTask`, with the setup commands of a prepared repository on its tasks. */
  runTask: RunTask;
  /**
   * Starts keeping `config.preparedRepos` prepared (role `worker` or `both`; nothing for `api`), until
   * close. Called once the server started: Docker's startup reap would remove a preparation's container.
   */
  startPreparing(): void;
  gitHost: GitHost;
  /**
   * True when the sandbox provider's `reapOrphans` sees this server's sandboxes only (Docker,
   * whose containers carry this server's label), so that startup may remove what a crash left.
   */
  reapOrphanSandboxes: boolean;
  /** Human-readable lines for the startup banner. */
  description: string[];
  close(): Promise<void>;
}

/** Builds the runtime from the configuration: the embedded local parts unless told otherwise. */
export async function createTaskRuntime(config: ServerConfig, log: (line: string) => void = () => undefined): Promise<TaskRuntime> {
  const sandbox = await createSandbox(config);
  const gitHost =
    config.gitHost === "github"
      ? createGitHub({
          ...(config.github.token ? { token: config.github.token } : {}),
          ...(config.github.apiUrl ? { baseUrl: config.github.apiUrl } : {}),
          ...(config.github.webUrl ? { webUrl: config.github.webUrl } : {}),
          ...(config.github.gitUrl ? { gitUrl: config.github.gitUrl } : {}),
        })
      : config.gitHost === "gitlab"
        ? createGitLab({ ...(config.gitlab.token ? { token: config.gitlab.token } : {}), ...(config.gitlab.url ? { baseUrl: config.gitlab.url } : {}) })
        : createLocalGitHost();
  let offlineModel: OfflineModel | undefined;
  if (config.model === "scripted") offlineModel = await startOfflineModel({ delayMs: config.scriptedModelDelayMs });
  const model = offlineModel?.model ?? config.model;
  // A pool warms servers for the configured model; a job that asks for another model opens its own sandbox.
  let pool: SandboxPool | undefined;
  try {
    if (config.pool.size > 0) {
      pool = createSandboxPool(sandbox.provider, {
        size: config.pool.size,
        ...(config.pool.idleTimeoutMs ? { idleTimeoutMs: config.pool.idleTimeoutMs } : {}),
        ...(model ? { model } : {}),
      });
    }
  } catch (error) {
    await offlineModel?.close();
    throw error;
  }
  const setupByRepo = new Map(config.preparedRepos.map((entry) => [sameRepo(entry.repo), entry.setup]));
  // Per prepared repository (with `pool`), sandboxes held ready from its current state; made with the schedules.
  const preparedPools = new Map<string, SandboxPool>();
  const defaultSandbox = pool ?? sandbox.provider;
  // A job's own setup commands (a library caller's) win; the configured ones make its state the prepared one.
  // A job on the server's sandbox goes to its repository's prepared pool, which serves it when the state's key
  // is the job's (else the job opens its own sandbox, as without a pool).
  const runTask: RunTask = (options) => {
    const repo = sameRepo(options.repo);
    const setupCommands = options.setupCommands ?? setupByRepo.get(repo);
    const preparedPool = options.sandbox === defaultSandbox ? preparedPools.get(repo) : undefined;
    return startAgentTask({ ...options, ...(setupCommands ? { setupCommands } : {}), ...(preparedPool ? { sandbox: preparedPool } : {}) });
  };
  const kept: KeptPrepared[] = [];
  const startPreparing = () => {
    // Only a process that runs jobs prepares: an API process's states would serve no task.
    if (config.role === "api" || kept.length > 0) return;
    for (const entry of config.preparedRepos) {
      // Bad options throw at once (a repo the Git host does not serve): said like a failed preparation, the server goes on.
      try {
        const schedule = keepPrepared({
          repo: entry.repo,
          ...(entry.baseBranch ? { baseBranch: entry.baseBranch } : {}),
          sandbox: sandbox.provider,
          gitHost,
          setupCommands: entry.setup,
          everyMs: entry.everyMs,
          maxAgeMs: PREPARED_STATE_MAX_AGE_MS / 2,
          onPrepared: (prepared) => log(`prepared ${entry.repo} at ${prepared.baseBranch} ${prepared.commit.slice(0, 12)}: ${prepared.reused ? "kept state reused" : `setup ran (${Math.round(prepared.durationMs)} ms)`}`),
          onError: (error) => log(`preparing ${entry.repo} failed: ${error.code}: ${error.message}`),
        });
        kept.push(schedule);
        if (entry.pool > 0) {
          preparedPools.set(
            sameRepo(entry.repo),
            createSandboxPool(sandbox.provider, {
              size: entry.pool,
              ...(config.pool.idleTimeoutMs ? { idleTimeoutMs: config.pool.idleTimeoutMs } : {}),
              ...(model ? { model } : {}),
              prepared: schedule,
              onEvent: (event) => {
                if (event.type === "retired") log(`pool of ${entry.repo}: retired sandbox ${event.sandboxId.slice(0, 12)} of the old prepared state`);
                if (event.type === "start-failed") log(`pool of ${entry.repo}: a sandbox failed to start: ${event.code}: ${event.message}`);
              },
            }),
          );
        }
      } catch (error) {
        log(`preparing ${entry.repo} failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  };
  return {
    taskDefaults: { sandbox: pool ?? sandbox.provider, gitHost, ...(model ? { model } : {}) },
    runTask,
    startPreparing,
    gitHost,
    reapOrphanSandboxes: sandbox.reapOrphans,
    description: [
      `sandbox: ${sandbox.description}`,
      `git host: ${config.gitHost === "github" ? `github (${config.github.apiUrl ?? "api.github.com"})` : config.gitHost === "gitlab" ? `gitlab (${config.gitlab.url ?? "gitlab.com"})` : "local (paths and file:// URLs on this machine)"}`,
      `model: ${offlineModel ? `scripted offline model at ${offlineModel.server.url}` : (config.model ?? "core's default (Gemini, GEMINI_API_KEY)")}`,
      `sandbox pool: ${pool ? `${pool.size} ready for the configured model` : "none (RUNNING_AGENT_POOL_SIZE=0)"}${config.role !== "api" && config.preparedRepos.some((entry) => entry.pool > 0) ? `; per prepared repository, from its state: ${config.preparedRepos.map((entry) => `${entry.repo} ${entry.pool}`).join(", ")}` : ""}`,
      `prepared repositories: ${config.preparedRepos.length === 0 ? "none (RUNNING_AGENT_PREPARED_REPOS)" : `${config.preparedRepos.map((entry) => entry.repo).join(", ")}${sandbox.preparedStates ? ` (${sandbox.preparedStates})` : ""}${config.role === "api" ? "; kept by the worker processes" : ""}`}`,
    ],
    close: async () => {
      await Promise.all(kept.splice(0).map((schedule) => schedule.stop()));
      await Promise.all([...preparedPools.values()].map((preparedPool) => preparedPool.close()));
      preparedPools.clear();
      await pool?.close();
      await offlineModel?.close();
    },
  };
}

/** The configured sandbox provider, a line that names it, and where it keeps prepared states (none without prepared repositories). */
async function createSandbox(config: ServerConfig): Promise<{ provider: SandboxProvider; description: string; reapOrphans: boolean; preparedStates?: string }> {
  const prepare = config.preparedRepos.length > 0;
  if (config.sandbox === "local" || config.sandbox === "local-unisolated") {
    // Beside the database, not in the work folder: a restart (or another worker on this host) finds the states again.
    const directory = join(dirname(resolve(config.databasePath)), "prepared-states");
    const preparedStates = prepare ? { preparedStates: createPreparedStateCache({ directory, maxAgeMs: PREPARED_STATE_MAX_AGE_MS }) } : {};
    const where = prepare ? { preparedStates: `states in ${directory}` } : {};
    // Startup leaves local sandboxes alone: bubblewrap's die with the server (restart.test.ts checks it).
    if (config.sandbox === "local") return { provider: createLocalSandbox({ isolation: "bubblewrap", ...preparedStates }), description: "local (bubblewrap)", reapOrphans: false, ...where };
    return { provider: createLocalSandbox({ isolation: "none", ...preparedStates }), description: "local, NOT isolated", reapOrphans: false, ...where };
  }
  if (config.sandbox === "modal") {
    // Loaded only when chosen; the SDK takes MODAL_TOKEN_ID / MODAL_TOKEN_SECRET (and MODAL_SERVER_URL) from the environment.
    const { createModalSandbox, createModalPreparedStateCache } = await import("@running-agent/sandbox-modal");
    const image = config.modal.image === undefined ? undefined : config.modal.image.startsWith("im-") ? { imageId: config.modal.image } : { registryTag: config.modal.image };
    const provider = createModalSandbox({ ...(config.modal.app ? { app: config.modal.app } : {}), ...(image ? { image } : {}), ...(prepare ? { preparedStates: createModalPreparedStateCache({ maxAgeMs: PREPARED_STATE_MAX_AGE_MS }) } : {}) });
    // Missing or wrong credentials stop the server at startup instead of failing every job.
    await provider.validate();
    return { provider, description: `modal (app ${config.modal.app ?? "running-agent"}${config.modal.image ? `, image ${config.modal.image}` : ""})`, reapOrphans: false, ...(prepare ? { preparedStates: "filesystem snapshots" } : {}) };
  }
  // Loaded only when chosen (as the CLI does), so that a server on the local sandbox never loads dockerode.
  const { createDockerSandbox, createDockerPreparedStateCache } = await import("@running-agent/sandbox-docker");
  const network = config.docker.network ?? "bridge";
  // The server's label scopes reapOrphans to its own containers: another server or program on the same Engine is never touched.
  const labels = serverLabels(config.databasePath);
  const provider = createDockerSandbox({ ...(config.docker.image ? { image: config.docker.image } : {}), network, labels, ...(prepare ? { preparedStates: createDockerPreparedStateCache({ maxAgeMs: PREPARED_STATE_MAX_AGE_MS }) } : {}) });
  // An unreachable Engine or a missing image stops the server at startup instead of failing every job.
  await provider.validate();
  return {
    provider,
    description: `docker (image ${provider.image}, network ${typeof network === "string" ? network : network.name}, label ${Object.entries(labels).map(([key, value]) => `${key}=${value}`).join(",")})`,
    reapOrphans: true,
    ...(prepare ? { preparedStates: "committed images" } : {}),
  };
}
