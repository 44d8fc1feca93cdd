import { rm } from "node:fs/promises";
import { performance } from "node:perf_hooks";
import type { TaskContext } from "./task-context.js";

/** Phase 8: destroys the sandbox and removes host folders, whatever happened before. Never throws. */
export async function teardown(context: TaskContext): Promise<void> {
  const problems: string[] = [];
  context.startPoolReplacement?.();
  if (context.agentServer) {
    // A server started ahead of the agent phase that never got there (the clone failed) stops here.
    context.agentServer.cancel();
    await context.agentServer.ready.then(
      (server) => server.process.kill().catch(() => undefined),
      () => undefined,
    );
  }
  if (context.session) {
    try {
      await context.session.destroy();
    } catch (error) {
      problems.push(`destroying sandbox ${context.session.id}: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (context.sandboxRequestedAt !== undefined) {
      context.sandboxMs = performance.now() - context.sandboxRequestedAt;
      context.emit({ type: "sandbox.destroyed", sandboxId: context.session.id, lifetimeMs: context.sandboxMs });
    }
  }
  if (context.modelProxy) {
    await context.modelProxy.close();
    context.modelProxy = undefined;
  }
  if (context.egressProxy) {
    await context.egressProxy.close();
    context.egressProxy = undefined;
  }
  if (context.hostClone) {
    // A clone started beside the sandbox that the task never waited for (it failed first) ends before its folder goes.
    context.hostClone.stop();
    await context.hostClone.done.catch(() => undefined);
  }
  for (const folder of context.hostFolders.splice(0)) {
    try {
      await rm(folder, { recursive: true, force: true, maxRetries: 3 });
    } catch (error) {
      problems.push(`removing ${folder}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  for (const problem of problems) context.emit({ type: "log", level: "error", message: `Teardown problem: ${problem}` });
}
