import { MODEL_API_KEY_ENV } from "./model-key.js";
import { startModelProxy } from "../agent/model-proxy.js";
import type { TaskContext } from "./task-context.js";
import { checkedSession } from "./spec-checks.js";

const SANDBOX_GRACE_MS = 60_000;

/** Phase 2: opens the sandbox with limits, network policy, and the model's key as a secret. */
export async function openSandbox(context: TaskContext): Promise<void> {
  const options = context.options!;
  // The sandbox's own limit is a backstop: it lives a little longer than the task, so that the task's timeout
  // fires first and reports the phase it cut short, and teardown still finds the sandbox to destroy.
  const remainingMs = Math.max(1, options.timeoutMs - (Date.now() - context.startedAt)) + SANDBOX_GRACE_MS;
  // With the proxy, the sandbox holds a per-run token that is worthless outside this run; the key stays here.
  if (options.modelProxy) {
    context.modelProxy = await startModelProxy(options.model);
    context.redactor.add(context.modelProxy.token);
  }
  const sandboxKey = context.modelProxy ? context.modelProxy.token : options.model.apiKey;
  const created = await options.sandbox.create({
    taskId: context.taskId,
    ...(sandboxKey ? { secrets: { [MODEL_API_KEY_ENV]: sandboxKey } } : {}),
    ...(context.raw.resources ? { resources: context.raw.resources } : {}),
    ...(context.raw.network ? { network: context.raw.network } : {}),
    timeoutMs: remainingMs,
    labels: { "running-agent.repo": context.repository!.id },
    signal: context.signal,
  });
  // A session that breaks the spec is destroyed where it can be, then refused.
  let session;
  try {
    session = checkedSession(created, options.sandbox.providerId);
  } catch (error) {
    const destroy = (created as { destroy?: unknown } | null)?.destroy;
    if (typeof destroy === "function") await Promise.resolve(destroy.call(created)).catch(() => {});
    throw error;
  }
  context.session = session;
  context.emit({ type: "sandbox", provider: options.sandbox.providerId, sandboxId: session.id, isolated: session.isolated });
  if (!session.isolated) {
    context.emit({
      type: "warning",
      code: "SANDBOX_NOT_ISOLATED",
      message: `The ${options.sandbox.providerId} sandbox runs without isolation: the agent's commands can reach everything this user can. Install bubblewrap or use a container sandbox.`,
    });
  }
}
