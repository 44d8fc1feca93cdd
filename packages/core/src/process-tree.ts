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

/**
 * Resolves once no live process is left in the child's process group, SIGKILLing what remains every
 * 20 ms, or after `limitMs`. A signalled process ends only when it is next scheduled, so on a busy
 * machine a group's members can outlive the leader's exit by a moment. Zombies do not count: an
 * orphan's is reaped by PID 1, which on some machines takes a second or two.
 */
export async function awaitProcessTreeEnd(child: ChildProcess, limitMs = 2000): Promise<void> {
  const group = child.pid;
  if (group === undefined) return;
  const deadline = Date.now() + limitMs;
  for (;;) {
    try {
      process.kill(-group, "SIGKILL");
    } catch {
      // ESRCH: the group is empty.
      return;
    }
    const live = liveGroupMembers(group);
    // Without /proc there is no telling a zombie from a live process: the SIGKILL has to do.
    if (live === undefined || live === 0 || Date.now() >= deadline) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** How many processes of the group are not zombies, from `/proc/<pid>/stat`; undefined without /proc. */
function liveGroupMembers(group: number): number | undefined {
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return undefined;
  }
  let live = 0;
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // After the command name in parentheses: state, parent pid, process group.
      const [state, , processGroup] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (processGroup === String(group) && state !== "Z" && state !== "X") live += 1;
    } catch {
      // Ended while we looked.
    }
  }
  return live;
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
