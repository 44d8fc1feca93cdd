// Shared by this package's tests only (not exported): a provider scoped to one test file by a
// unique label, and the checks that nothing of ours is left on the engine.
import { randomUUID } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import Dockerode from "dockerode";
import { createDockerSandbox, MANAGED_LABEL, type DockerSandboxSettings } from "./create-docker-sandbox.js";

/** The local base image CI builds with scripts/docker-base-image.sh. */
export const TEST_BASE_IMAGE = process.env.RUNNING_AGENT_DOCKER_BASE_IMAGE ?? "running-agent/debian-base:bookworm";

/** The label that marks the containers of one test file. */
export const TEST_RUN_LABEL = "running-agent.test-run";

export const docker = new Dockerode();

/** A provider whose containers carry a label unique to the caller, so that parallel test files never see each other's containers. */
export function scopedProvider(settings: DockerSandboxSettings = {}) {
  const run = randomUUID();
  const provider = createDockerSandbox({ network: "none", ...settings, labels: { ...settings.labels, [TEST_RUN_LABEL]: run } });
  return { provider, run, containers: () => containersOf(run) };
}

/** Containers (running or not) of one scoped provider. */
export async function containersOf(run: string): Promise<Dockerode.ContainerInfo[]> {
  return docker.listContainers({ all: true, filters: { label: [`${MANAGED_LABEL}=true`, `${TEST_RUN_LABEL}=${run}`] } });
}

/** Waits until the Engine lists no container of the run (AutoRemove finishes shortly after a container stops). */
export async function expectNoContainers(run: string): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    if ((await containersOf(run)).length === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const left = await containersOf(run);
  throw new Error(`containers left behind: ${left.map((info) => `${info.Id.slice(0, 12)} (${info.State})`).join(", ")}`);
}

/**
 * True when a process on this machine has `marker` in its command line. Containers of a local
 * engine are processes of this kernel, so this proves from outside the container that a process
 * is gone.
 */
export async function isHostProcessAlive(marker: string): Promise<boolean> {
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const commandLine = await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
    if (commandLine.includes(marker)) return true;
  }
  return false;
}

/** Processes of a local engine's container, seen from this machine: pid, real uid and command line (NULs as spaces). */
export async function hostProcessesOf(containerId: string): Promise<Array<{ pid: number; uid: number; commandLine: string }>> {
  const found: Array<{ pid: number; uid: number; commandLine: string }> = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const cgroup = await readFile(`/proc/${entry}/cgroup`, "utf8").catch(() => "");
    if (!cgroup.includes(containerId)) continue;
    const status = await readFile(`/proc/${entry}/status`, "utf8").catch(() => "");
    const uid = /^Uid:\s+(\d+)/m.exec(status)?.[1];
    if (uid === undefined) continue;
    const commandLine = (await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "")).replaceAll("\0", " ").trim();
    found.push({ pid: Number(entry), uid: Number(uid), commandLine });
  }
  return found;
}
