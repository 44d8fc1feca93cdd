import { performance } from "node:perf_hooks";
import { removeTree } from "../remove-tree.js";
import type { TaskContext } from "./task-context.js";

/** Phase 8: destroys the sandbox and removes host folders, whatever happened before. Never throws. */
export async function teardown(context: TaskContext): Promise<void> {
  const problems: string[] = [];
  context.startPoolReplacement?.();
  // The sandbox (and the proxies it may still use until it is gone) and the host folders are
  // independent: their removals run at once.
  const sandboxSide = (async () => {
    const released = await releaseSandbox(context);
    if (released) problems.push(released);
    if (context.session && context.sandboxMs !== undefined) context.emit({ type: "sandbox.destroyed", sandboxId: context.session.id, lifetimeMs: context.sandboxMs });
    if (context.modelProxy) {
      await context.modelProxy.close();
      context.modelProxy = undefined;
    }
    if (context.egressProxy) {
      await context.egressProxy.close();
      context.egressProxy = undefined;
    }
  })();
  const hostSide = (async () => {
    if (context.hostClone) {
      // A clone started beside the sandbox that the task never waited for (it failed first) ends before its folder goes.
      context.hostClone.stop();
      await context.hostClone.done.catch(() => undefined);
    }
    await Promise.all(
      context.hostFolders.splice(0).map((folder) =>
        removeTree(folder).catch((error: unknown) => {
          problems.push(`removing ${folder}: ${error instanceof Error ? error.message : String(error)}`);
        }),
      ),
    );
  })();
  await Promise.all([sandboxSide, hostSide]);
  for (const problem of problems) context.emit({ type: "log", level: "error", message: `Teardown problem: ${problem}` });
}

/**
 * Stops the agent's server and destroys the sandbox, once. The loop calls it as soon as the task needs
 * the sandbox no more (after the last collect and checks), so that its removal runs beside the commit,
 * push and change request, which are host work; teardown calls it again and awaits the same release.
 * Never rejects: resolves with the problem to report, if any.
 */
export function releaseSandbox(context: TaskContext): Promise<string | undefined> {
  context.sandboxReleased ??= (async () => {
    if (context.agentServer) {
      // A server started ahead of the agent phase that never got there (the clone failed) stops here.
      context.agentServer.cancel();
      await context.agentServer.ready.then(
        (server) => server.process.kill().catch(() => undefined),
        () => undefined,
      );
    }
    if (!context.session) return undefined;
    let problem: string | undefined;
    try {
      await context.session.destroy();
    } catch (error) {
      problem = `destroying sandbox ${context.session.id}: ${error instanceof Error ? error.message : String(error)}`;
    }
    if (context.sandboxRequestedAt !== undefined) context.sandboxMs = performance.now() - context.sandboxRequestedAt;
    return problem;
  })();
  return context.sandboxReleased;
}
