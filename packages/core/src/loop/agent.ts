import { runOpencodeAgent } from "../agent/opencode-engine.js";
import { MODEL_API_KEY_ENV } from "./model-key.js";
import type { TaskContext } from "./task-context.js";

/** Phase 5: runs OpenCode inside the sandbox on the task until it is done, fails, or times out. */
export async function runAgent(context: TaskContext): Promise<void> {
  const options = context.options!;
  const remainingMs = Math.max(1, options.timeoutMs - (Date.now() - context.startedAt));
  const output = await runOpencodeAgent({
    session: context.session!,
    opencodeBinary: options.sandbox.opencodeBinary ?? "opencode",
    ...(options.sandbox.listenHostname ? { listenHostname: options.sandbox.listenHostname } : {}),
    model: context.modelProxy?.sandboxModel ?? options.model,
    apiKeyEnv: MODEL_API_KEY_ENV,
    task: options.task,
    allowRepoAgentConfig: options.allowRepoAgentConfig,
    timeoutMs: Math.min(remainingMs, options.agentTimeoutMs ?? remainingMs),
    signal: context.signal,
    addSecret: (secret) => context.redactor.add(secret),
    emit: (event) => context.emit(event),
  });
  context.summary = output.summary;
  context.usage = output.usage;
}
