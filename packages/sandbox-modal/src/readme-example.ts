import { createLocalGitHost, runAgentTask, type AgentTaskEvent, type ModelConfig } from "@running-agent/core";
import { createModalSandbox } from "@running-agent/sandbox-modal";

// The Modal token comes from MODAL_TOKEN_ID / MODAL_TOKEN_SECRET (or ~/.modal.toml).
export async function runOnModal(repo: string, task: string, model: ModelConfig, onEvent?: (event: AgentTaskEvent) => void) {
  const gitHost = createLocalGitHost();
  const result = await runAgentTask({
    repo,
    task,
    model,
    sandbox: createModalSandbox({ app: "my-coding-agent", cpu: 2, memoryMiB: 4096 }),
    gitHost,
    ...(onEvent ? { onEvent } : {}),
  });
  return { result, changeRequests: await gitHost.listChangeRequests(repo) };
}
