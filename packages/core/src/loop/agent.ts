import { runOpencodeAgent } from "../agent/opencode-engine.js";
import type { OpencodeServerStartInput } from "../agent/opencode-server.js";
import { MODEL_API_KEY_ENV } from "./model-key.js";
import type { TaskContext } from "./task-context.js";

/** Phase 5: runs OpenCode inside the sandbox on the task until it is done, fails, or times out. */
export async function runAgent(context: TaskContext): Promise<void> {
  const options = context.options!;
  const remainingMs = Math.max(1, options.timeoutMs - (Date.now() - context.startedAt));
  const output = await runOpencodeAgent({
    ...opencodeServerSettings(context),
    task: options.task,
    timeoutMs: Math.min(remainingMs, options.agentTimeoutMs ?? remainingMs),
    ...(context.agentServer ? { server: await context.agentServer.ready } : {}),
    signal: context.signal,
    emit: (event) => context.emit(event),
  });
  context.summary = output.summary;
  context.usage = output.usage;
}

/** How this task's OpenCode server is started: the same whether it starts early (during the clone) or in this phase. */
export function opencodeServerSettings(context: TaskContext): Omit<OpencodeServerStartInput, "signal" | "deadline" | "timeoutMs" | "warmUp" | "port"> {
  const options = context.options!;
  return {
    session: context.session!,
    opencodeBinary: options.sandbox.opencodeBinary ?? "opencode",
    ...(options.sandbox.listenHostname ? { listenHostname: options.sandbox.listenHostname } : {}),
    model: context.modelProxy?.sandboxModel ?? options.model,
    apiKeyEnv: MODEL_API_KEY_ENV,
    allowRepoAgentConfig: options.allowRepoAgentConfig,
    admission: options.agentStart.admission,
    ...(options.agentStart.timeoutMs === undefined ? {} : { startTimeoutMs: options.agentStart.timeoutMs }),
  };
}
