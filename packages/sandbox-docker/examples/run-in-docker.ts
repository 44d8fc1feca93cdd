import { runAgentTask, type AgentTaskResult, type ModelConfig } from "@running-agent/core";
import { buildDefaultImage, createDockerSandbox } from "@running-agent/sandbox-docker";

/** Runs one task in a fresh container on the local Docker Engine, with only the model reachable (through the host's egress proxy). */
export async function runInDocker(options: {
  repo: string; // a Git URL, or a local path with the default local Git host
  task: string;
  model: ModelConfig; // e.g. { provider: "google", model: "gemini-2.5-pro", apiKey }
  baseImage?: string; // default "debian:bookworm-slim" from Docker Hub; offline, a local Debian image
}): Promise<AgentTaskResult> {
  // Once per engine: builds running-agent/sandbox:opencode-1.18.33 unless that tag exists.
  await buildDefaultImage(options.baseImage ? { baseImage: options.baseImage } : {});

  const sandbox = createDockerSandbox({
    network: "host", // for tasks with network "open"; others run with none, behind the egress proxy
    resources: { cpu: 1, memoryMiB: 2048, pids: 512 },
  });
  await sandbox.reapOrphans({ olderThanMs: 60 * 60 * 1000 }); // leftovers of a crashed process
  return runAgentTask({ repo: options.repo, task: options.task, model: options.model, sandbox });
}
