import type { ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

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

/** True when a process with this host pid exists (signal 0 probes without sending anything). */
export function isPidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Kills every process of this user whose environment holds `name=value` exactly. Catches processes
 * that left their process group (setsid, double fork) but kept the environment they were given.
 * Returns how many were signalled.
 */
export function killProcessesByEnvironment(name: string, value: string): number {
  // NUL on both sides, so that OTHER_NAME=value does not match.
  const needle = Buffer.from(`\0${name}=${value}\0`);
  let killed = 0;
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return 0;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const environment = Buffer.concat([Buffer.from([0]), readFileSync(`/proc/${entry}/environ`)]);
      if (!environment.includes(needle)) continue;
      process.kill(Number(entry), "SIGKILL");
      killed += 1;
    } catch {
      // Gone, or not ours to read.
    }
  }
  return killed;
}

/**
 * Kills the processes marked with `name=value` in their environment and waits until none is left
 * (a SIGKILL is delivered asynchronously), re-killing late forks. Gives up after `limitMs`.
 */
export async function sweepProcessesByEnvironment(name: string, value: string, limitMs = 5_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (killProcessesByEnvironment(name, value) > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
