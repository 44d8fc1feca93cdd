import type { ChildProcess } from "node:child_process";

/**
 * Sends a signal to a child spawned with `detached: true` and to everything in its process group.
 * Processes that left the group on purpose (setsid) are out of reach here; the bubblewrap sandbox
 * catches those with its PID namespace.
 */
export function signalProcessTree(child: ChildProcess, signal: NodeJS.Signals = "SIGKILL"): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // The group is already gone.
  }
  try {
    child.kill(signal);
  } catch {
    // Already exited.
  }
}

/** Resolves once the child has exited (immediately when it already has). */
export function childExited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    child.once("exit", () => resolve());
    child.once("error", () => resolve());
  });
}

/** True when a process with this host pid exists (signal 0 probes without sending anything). */
export function isPidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
