import { createLocalGitHost, createLocalSandbox, type AgentTaskOptions, type GitHost } from "@running-agent/core";
import { createGitHub } from "@running-agent/git-github";
import { startOfflineModel, type OfflineModel } from "./offline-model.js";
import type { ServerConfig } from "./server-config.js";

/** The sandbox, Git host and model every task of this server gets, and what to stop on shutdown. */
export interface TaskRuntime {
  taskDefaults: Partial<AgentTaskOptions>;
  gitHost: GitHost;
  /** Human-readable lines for the startup banner. */
  description: string[];
  close(): Promise<void>;
}

/** Builds the runtime from the configuration: the embedded local parts unless told otherwise. */
export async function createTaskRuntime(config: ServerConfig): Promise<TaskRuntime> {
  const sandbox = createLocalSandbox({ isolation: config.sandbox === "local" ? "bubblewrap" : "none" });
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
  return {
    taskDefaults: { sandbox, gitHost, ...(model ? { model } : {}) },
    gitHost,
    description: [
      `sandbox: ${config.sandbox === "local" ? "local (bubblewrap)" : "local, NOT isolated"}`,
      `git host: ${config.gitHost === "github" ? `github (${config.github.apiUrl ?? "api.github.com"})` : "local (paths and file:// URLs on this machine)"}`,
      `model: ${offlineModel ? `scripted offline model at ${offlineModel.server.url}` : (config.model ?? "core's default (Gemini, GEMINI_API_KEY)")}`,
    ],
    close: async () => {
      await offlineModel?.close();
    },
  };
}
