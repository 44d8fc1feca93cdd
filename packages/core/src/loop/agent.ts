import { performance } from "node:perf_hooks";
import { runOpencodeAgent } from "../agent/opencode-engine.js";
import type { TokenUsage } from "../events.js";
import type { ModelPrices } from "../model.js";
import type { OpencodeServerStartInput } from "../agent/opencode-server.js";
import { MODEL_API_KEY_ENV } from "./model-key.js";
import type { TaskContext } from "./task-context.js";

/**
 * Phase 5: runs OpenCode inside the sandbox on the task until it is done, fails, or times out;
 * then once more for each batch of the caller's follow-up messages (`handle.say`).
 */
export async function runAgent(context: TaskContext): Promise<void> {
  await agentRound(context, undefined);
  await drainFollowUps(context);
  // Nothing queued as the last round ended: what the agent did is what gets collected.
  context.followUps.close("its work is being collected and checked");
}

/**
 * A fix round: the same OpenCode session gets `message` (failed checks) and works on the same
 * workspace until it is done again.
 */
export async function continueAgent(context: TaskContext, message: string): Promise<void> {
  await agentRound(context, { sessionId: context.agentSessionId!, message });
}

async function drainFollowUps(context: TaskContext): Promise<void> {
  for (let message = context.followUps.take(); message !== undefined; message = context.followUps.take()) {
    context.emit({ type: "agent.message", text: message });
    await continueAgent(context, message);
  }
}

async function agentRound(context: TaskContext, continueSession: { sessionId: string; message: string } | undefined): Promise<void> {
  const options = context.options!;
  const remainingMs = Math.max(1, options.timeoutMs - (Date.now() - context.startedAt));
  const started = performance.now();
  const output = await runOpencodeAgent({
    ...opencodeServerSettings(context),
    task: options.task,
    timeoutMs: Math.min(remainingMs, options.agentTimeoutMs ?? remainingMs),
    // A server started ahead (pooled, or during the clone) serves the first round; the engine stops
    // the server at the end of each round, so a later round starts its own on the same session data.
    ...(context.agentServer && context.agentRounds.length === 0 ? { server: await context.agentServer.ready } : {}),
    signal: context.signal,
    // The server's password reaches the agent's shell: the secret scan of the changes must know it.
    addSecret: (secret) => context.redactor.add(secret),
    emit: (event) => {
      // The model answered: the task's start is over, and the pool may now use the CPU for a replacement.
      if (event.type.startsWith("agent.")) context.startPoolReplacement?.();
      context.emit(event);
    },
    ...(continueSession ? { continueSession } : {}),
  });
  context.agentSessionId = output.sessionId;
  context.summary = output.summary;
  const usage = priced(output.usage, options.model.prices);
  // OpenCode sums the whole session; a round's own share is what it added.
  context.agentRounds.push({ round: context.agentRounds.length, usage: usageSince(usage, context.usage), durationMs: performance.now() - started });
  context.usage = usage;
}

/** The caller's prices apply where OpenCode's catalogue had none. */
export function priced(usage: TokenUsage, prices: ModelPrices | undefined): TokenUsage {
  if (usage.costSource !== "unknown" || prices === undefined) return usage;
  const perToken = (price: number | undefined, fallback: number) => (price ?? fallback) / 1_000_000;
  const cost =
    usage.inputTokens * perToken(prices.input, 0) +
    usage.outputTokens * perToken(prices.output, 0) +
    usage.reasoningTokens * perToken(prices.reasoning, prices.output) +
    usage.cacheReadTokens * perToken(prices.cacheRead, prices.input) +
    usage.cacheWriteTokens * perToken(prices.cacheWrite, prices.input);
  return { ...usage, cost, costSource: "prices" };
}

function usageSince(total: TokenUsage, before: TokenUsage): TokenUsage {
  return {
    inputTokens: total.inputTokens - before.inputTokens,
    outputTokens: total.outputTokens - before.outputTokens,
    reasoningTokens: total.reasoningTokens - before.reasoningTokens,
    cacheReadTokens: total.cacheReadTokens - before.cacheReadTokens,
    cacheWriteTokens: total.cacheWriteTokens - before.cacheWriteTokens,
    cost: total.cost - before.cost,
    costSource: total.costSource,
  };
}

/** How this task's OpenCode server is started: the same whether it starts early (during the clone) or in this phase. */
export function opencodeServerSettings(context: TaskContext): Omit<OpencodeServerStartInput, "signal" | "deadline" | "timeoutMs" | "warmUp" | "port"> {
  const options = context.options!;
  return {
    session: context.session!,
    opencodeBinary: options.sandbox.opencodeBinary ?? "opencode",
    ...(options.sandbox.listenHostname ? { listenHostname: options.sandbox.listenHostname } : {}),
    model: context.egressProxy?.sandboxModel ?? context.modelProxy?.sandboxModel ?? options.model,
    apiKeyEnv: MODEL_API_KEY_ENV,
    allowRepoAgentConfig: options.allowRepoAgentConfig,
    admission: options.agentStart.admission,
    ...(options.agentStart.timeoutMs === undefined ? {} : { startTimeoutMs: options.agentStart.timeoutMs }),
  };
}
