import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { claimWorkFolder } from "./work-folder.js";

let parent: string;
beforeEach(async () => {
  parent = await mkdtemp(join(tmpdir(), "jobs-work-folder-"));
});
afterEach(async () => {
  await rm(parent, { recursive: true, force: true });
});

/** A process that has exited: its pid is free. */
async function deadPid(): Promise<number> {
  const child = spawn("true");
  await new Promise((resolve) => child.once("exit", resolve));
  return child.pid!;
}

async function leftover(name: string, owner: object): Promise<string> {
  const folder = join(parent, `running-agent-worker-${name}`);
  await mkdir(join(folder, "running-agent-clone-abc"), { recursive: true });
  await writeFile(join(folder, "owner.json"), JSON.stringify(owner));
  return folder;
}

describe("claimWorkFolder", () => {
  it("removes the folders of this host's dead workers and keeps a live worker's, another host's and unowned ones", async () => {
    const dead = await leftover("dead", { workerId: "dead", hostname: hostname(), pid: await deadPid(), startedAt: 1 });
    const sleeper = spawn("sleep", ["60"]);
    try {
      const live = await leftover("live", { workerId: "live", hostname: hostname(), pid: sleeper.pid, startedAt: 1 });
      const elsewhere = await leftover("elsewhere", { workerId: "elsewhere", hostname: `not-${hostname()}`, pid: await deadPid(), startedAt: 1 });
      await mkdir(join(parent, "running-agent-worker-unowned"));
      const claimed = await claimWorkFolder({ workerId: "fresh", parent });
      expect(claimed.removed).toEqual([dead]);
      expect(claimed.path).toBe(join(parent, "running-agent-worker-fresh"));
      expect((await readdir(parent)).sort()).toEqual([live, elsewhere, join(parent, "running-agent-worker-unowned"), claimed.path].map((path) => path.slice(parent.length + 1)).sort());
      // The new folder is this process's: a later claim by another worker keeps it.
      expect((await claimWorkFolder({ workerId: "other", parent })).removed).toEqual([]);
    } finally {
      sleeper.kill("SIGKILL");
    }
  });
});
