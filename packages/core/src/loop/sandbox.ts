import { performance } from "node:perf_hooks";
import { MODEL_API_KEY_ENV } from "./model-key.js";
import { openSandboxAccess } from "../network/sandbox-access.js";
import type { BlockedConnection } from "../network/egress-proxy.js";
import { startOpencodeServer, type OpencodeServer } from "../agent/opencode-server.js";
import { isSandboxPool } from "../sandbox-pool/sandbox-pool.js";
import { opencodeServerSettings } from "./agent.js";
import type { TaskContext } from "./task-context.js";
import { checkedSession } from "./spec-checks.js";
import { cloneOnHost, startHostClone } from "./clone.js";
import { choosePreparedState } from "./moved-base.js";

const SANDBOX_GRACE_MS = 60_000;

/** Phase 2: opens the sandbox with limits, network policy, and the model's key as a secret. */
export async function openSandbox(context: TaskContext): Promise<void> {
  const options = context.options!;
  // The sandbox's time, from asking for it to its destruction, is in the result (sandboxMs).
  context.sandboxRequestedAt = performance.now();
  if (isSandboxPool(options.sandbox)) {
    // A pool of prepared sandboxes serves a task by its state's key, which names the commit: the host clone runs first.
    if (options.sandbox.preparedStateKey !== undefined && options.setupCommands.length > 0) {
      await cloneOnHost(context);
      // The pool's state when it is of this lineage (its base moved, and no setup input changed), else this commit's.
      context.preparedStateKey = await choosePreparedState(context, options.sandbox);
    }
    const taken = await options.sandbox.take({
      taskId: context.taskId,
      model: options.model,
      modelProxy: options.modelProxy,
      allowRepoAgentConfig: options.allowRepoAgentConfig,
      ...(context.raw.resources ? { resources: context.raw.resources } : {}),
      network: options.network,
      ...(context.preparedStateKey ? { preparedStateKey: context.preparedStateKey } : {}),
      signal: context.signal,
    });
    if ("lease" in taken) {
      const { session, server, modelProxy, egressProxy, preparedStateKey: startedFrom } = taken.lease;
      context.session = session;
      if (startedFrom !== undefined) context.startedFromPreparedState = startedFrom;
      context.startPoolReplacement = () => taken.lease.startReplacement();
      context.agentServer = { ready: Promise.resolve(server), pooled: true, cancel: () => undefined };
      if (modelProxy) {
        context.modelProxy = modelProxy;
        context.redactor.add(modelProxy.token);
      }
      if (egressProxy) {
        context.egressProxy = egressProxy;
        if (egressProxy.modelRoute && options.modelProxy) context.redactor.add(egressProxy.modelRoute.token);
        // What the warm-up was refused is the pool's business; from now on refusals are this task's.
        egressProxy.setOnBlocked((blocked) => reportBlocked(context, blocked));
      }
      context.emit({ type: "sandbox", provider: options.sandbox.providerId, sandboxId: session.id, isolated: session.isolated, pooled: true });
      warnIfUnisolated(context);
      return;
    }
    context.emit({ type: "log", level: "info", message: `No pooled sandbox for this task (${taken.miss}); opening a new one.` });
  }
  // A provider that starts sessions from prepared states needs the key (which names the commit) now: the
  // host clone runs first, in this phase.
  if (options.sandbox.startsFromPreparedStates === true && options.setupCommands.length > 0) {
    await cloneOnHost(context);
    context.preparedStateKey ??= await choosePreparedState(context, options.sandbox);
  }
  // Beside a create that waits on something else (a container's Engine, a remote API); a quick create (the local
  // sandbox's few folder writes) a clone beside it only slows down, and OpenCode starts after it.
  if (options.sandbox.quickCreate !== true) startHostClone(context);
  // The sandbox's own limit is a backstop: it lives a little longer than the task, so that the task's timeout
  // fires first and reports the phase it cut short, and teardown still finds the sandbox to destroy.
  const remainingMs = Math.max(1, options.timeoutMs - (Date.now() - context.startedAt)) + SANDBOX_GRACE_MS;
  // With the key on the host, the sandbox holds a per-run token that is worthless outside this run.
  const access = await openSandboxAccess({
    provider: options.sandbox,
    network: options.network,
    model: options.model,
    keyOnHost: options.modelProxy,
    onBlocked: (blocked) => reportBlocked(context, blocked),
  });
  context.modelProxy = access.modelProxy;
  context.egressProxy = access.egressProxy;
  if (access.token) context.redactor.add(access.token);
  const sandboxKey = access.sandboxKey;
  const created = await options.sandbox.create({
    taskId: context.taskId,
    ...(sandboxKey ? { secrets: { [MODEL_API_KEY_ENV]: sandboxKey } } : {}),
    ...(context.raw.resources ? { resources: context.raw.resources } : {}),
    ...access.createOptions,
    timeoutMs: remainingMs,
    labels: { "running-agent.repo": context.repository!.id },
    ...(context.preparedStateKey && context.prepare?.refresh !== true ? { preparedStateKey: context.preparedStateKey } : {}),
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
  const startedFrom = session.preparedStates?.startedFrom;
  if (startedFrom !== undefined) context.startedFromPreparedState = startedFrom;
  context.emit({ type: "sandbox", provider: options.sandbox.providerId, sandboxId: session.id, isolated: session.isolated });
  warnIfUnisolated(context);
  if (!context.prepare) context.agentServer = startAgentServerEarly(context);
}

/**
 * Starts OpenCode while the repository is cloned and set up: its start reads only its own config
 * folder (the workdir's config is read at the first request), so it can run before the files arrive.
 */
function startAgentServerEarly(context: TaskContext): NonNullable<TaskContext["agentServer"]> {
  const options = context.options!;
  const stop = new AbortController();
  const ready: Promise<OpencodeServer> = startOpencodeServer({
    ...opencodeServerSettings(context),
    deadline: context.startedAt + options.timeoutMs,
    timeoutMs: options.timeoutMs,
    signal: AbortSignal.any([context.signal, stop.signal]),
  });
  // Its failure is reported by the agent phase, which awaits it; a task that fails earlier never does.
  ready.catch(() => undefined);
  return { ready, pooled: false, cancel: () => stop.abort() };
}

/** A connection the egress proxy refused: an event now, a line in the PR body later. */
function reportBlocked(context: TaskContext, blocked: BlockedConnection): void {
  (context.networkBlocked ??= []).push(blocked);
  context.emit({ type: "network.blocked", host: blocked.host, port: blocked.port, method: blocked.method, reason: blocked.reason });
}

function warnIfUnisolated(context: TaskContext): void {
  const options = context.options!;
  const session = context.session!;
  if (!session.isolated) {
    context.emit({
      type: "warning",
      code: "SANDBOX_NOT_ISOLATED",
      message: `The ${options.sandbox.providerId} sandbox runs without isolation: the agent's commands can reach everything this user can. Install bubblewrap or use a container sandbox.`,
    });
  }
}
