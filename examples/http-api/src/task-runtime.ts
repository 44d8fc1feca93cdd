import { createLocalGitHost, createLocalSandbox, createSandboxPool, type AgentTaskOptions, type GitHost, type SandboxPool, type SandboxProvider } from "@running-agent/core";
import { createGitHub } from "@running-agent/git-github";
import { startOfflineModel, type OfflineModel } from "./offline-model.js";
import type { ServerConfig } from "./server-config.js";
import { serverLabels } from "./server-labels.js";

/** The sandbox, Git host and model every task of this server gets, and what to stop on shutdown. */
export interface TaskRuntime {
  taskDefaults: Partial<AgentTaskOptions>;
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
export async function createTaskRuntime(config: ServerConfig): Promise<TaskRuntime> {
  const sandbox = await createSandbox(config);
  const gitHost =
    config.gitHost === "github"
      ? createGitHub({
          ...(config.github.token ? { token: config.github.token } : {}),
          ...(config.github.apiUrl ? { baseUrl: config.github.apiUrl } : {}),
          ...(config.github.webUrl ? { webUrl: config.github.webUrl } : {}),
          ...(config.github.gitUrl ? { gitUrl: config.github.gitUrl } : {}),
        })
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
  return {
    taskDefaults: { sandbox: pool ?? sandbox.provider, gitHost, ...(model ? { model } : {}) },
    gitHost,
    reapOrphanSandboxes: sandbox.reapOrphans,
    description: [
      `sandbox: ${sandbox.description}`,
      `git host: ${config.gitHost === "github" ? `github (${config.github.apiUrl ?? "api.github.com"})` : "local (paths and file:// URLs on this machine)"}`,
      `model: ${offlineModel ? `scripted offline model at ${offlineModel.server.url}` : (config.model ?? "core's default (Gemini, GEMINI_API_KEY)")}`,
      `sandbox pool: ${pool ? `${pool.size} ready for the configured model` : "none (RUNNING_AGENT_POOL_SIZE=0)"}`,
    ],
    close: async () => {
      await pool?.close();
      await offlineModel?.close();
    },
  };
}

/** The configured sandbox provider and a line that names it. */
async function createSandbox(config: ServerConfig): Promise<{ provider: SandboxProvider; description: string; reapOrphans: boolean }> {
  // Startup leaves local sandboxes alone: bubblewrap's die with the server (restart.test.ts checks it).
  if (config.sandbox === "local") return { provider: createLocalSandbox({ isolation: "bubblewrap" }), description: "local (bubblewrap)", reapOrphans: false };
  if (config.sandbox === "local-unisolated") return { provider: createLocalSandbox({ isolation: "none" }), description: "local, NOT isolated", reapOrphans: false };
  // Loaded only when chosen (as the CLI does), so that a server on the local sandbox never loads dockerode.
  const { createDockerSandbox } = await import("@running-agent/sandbox-docker");
  const network = config.docker.network ?? "bridge";
  // The server's label scopes reapOrphans to its own containers: another server or program on the same Engine is never touched.
  const labels = serverLabels(config.databasePath);
  const provider = createDockerSandbox({ ...(config.docker.image ? { image: config.docker.image } : {}), network, labels });
  // An unreachable Engine or a missing image stops the server at startup instead of failing every job.
  await provider.validate();
  return {
    provider,
    description: `docker (image ${provider.image}, network ${typeof network === "string" ? network : network.name}, label ${Object.entries(labels).map(([key, value]) => `${key}=${value}`).join(",")})`,
    reapOrphans: true,
  };
}
