import { execFileSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createLocalGitHost } from "@running-agent/core";
import { createTestRepository, type TestRepository } from "@running-agent/core/testing";
import { startApiProcess, type ApiProcess } from "./start-api-process.js";

const API_KEY = "restart-test-api-key";

/** Processes whose command line or working files mention the folder (sandboxes, OpenCode servers, the API). */
function processesUsing(folder: string): string[] {
  return execFileSync("ps", ["-eo", "pid=,args="], { encoding: "utf8" })
    .split("\n")
    .filter((line) => line.includes(folder) && !line.includes("ps -eo"));
}

async function submit(api: ApiProcess, repo: string, task: string): Promise<string> {
  const response = await fetch(`${api.url}/submit`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${API_KEY}` },
    body: JSON.stringify({ repo_url: repo, task }),
  });
  expect(response.status).toBe(200);
  return ((await response.json()) as { job_id: string }).job_id;
}

async function status(api: ApiProcess, jobId: string): Promise<any> {
  return (await fetch(`${api.url}/status/${jobId}`)).json();
}

async function waitFor(api: ApiProcess, jobId: string, done: (job: any) => boolean): Promise<any> {
  for (;;) {
    const job = await status(api, jobId);
    if (done(job)) return job;
    if (["failed", "cancelled"].includes(job.status)) throw new Error(`job ${jobId} ended ${job.status}: ${JSON.stringify(job.error)}\n${api.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe("a server killed mid-job", () => {
  let folder: string;
  let repository: TestRepository;
  const started: ApiProcess[] = [];

  beforeEach(async () => {
    folder = await mkdtemp(join(tmpdir(), "http-api-restart-"));
    repository = await createTestRepository({ "README.md": "# Sample\n" }, { parent: folder });
  });

  afterEach(async () => {
    for (const api of started) await api.kill();
    await rm(folder, { recursive: true, force: true });
  });

  it("loses no job: after the restart the running one runs again on its branch, the queued one runs, one change request each", { timeout: 300_000 }, async () => {
    const environment = {
      RUNNING_AGENT_DB: join(folder, "jobs.db"),
      RUNNING_AGENT_API_KEY: API_KEY,
      RUNNING_AGENT_CONCURRENCY: "1",
      RUNNING_AGENT_MODEL: "scripted",
      // Sandboxes of this test live in its folder, so that leftovers can be found by path.
      TMPDIR: folder,
    };
    // First life: the model takes ten minutes per answer, so the first job stays in its agent phase.
    const first = await startApiProcess({ ...environment, RUNNING_AGENT_SCRIPTED_MODEL_DELAY_MS: "600000" });
    started.push(first);
    const runningId = await submit(first, repository.path, "First task");
    const queuedId = await submit(first, repository.path, "Second task");
    await waitFor(first, runningId, (job) => job.status === "running" && job.phase === "agent");
    expect((await status(first, queuedId)).status).toBe("queued");

    await first.kill();
    // bubblewrap dies with its parent: nothing of the killed server's sandbox keeps running.
    await expect.poll(() => processesUsing(folder), { timeout: 15_000 }).toEqual([]);

    // Second life on the same database, with a prompt model and room for two jobs: the lock proves the first process dead, so its job runs again at once.
    const second = await startApiProcess({ ...environment, RUNNING_AGENT_SCRIPTED_MODEL_DELAY_MS: "0", RUNNING_AGENT_CONCURRENCY: "2" });
    started.push(second);
    expect(second.output()).toContain(`job ${runningId}: its worker stopped heartbeating; queued again`);
    // The killed process's work folder (its clone of the running job) is removed at the start.
    expect(second.output()).toMatch(/removed the work folder of a dead worker: .*running-agent-worker-/);

    const rerun = await waitFor(second, runningId, (job) => job.status === "completed");
    const queued = await waitFor(second, queuedId, (job) => job.status === "completed");
    const result = (await (await fetch(`${second.url}/result/${runningId}`)).json()) as { branch: string };
    expect(result.branch).toMatch(/^running-agent\/first-task-/);

    // Both tasks reached the Git host: two change requests, nothing lost, nothing twice.
    const changeRequests = await createLocalGitHost().listChangeRequests(repository.path);
    expect(changeRequests.map((request) => request.url).sort()).toEqual([queued.pr_url, rerun.pr_url].sort());
    expect(changeRequests.find((request) => request.url === rerun.pr_url)?.head).toBe(result.branch);
    const jobs = ((await (await fetch(`${second.url}/jobs`)).json()) as { jobs: { job_id: string; status: string }[] }).jobs;
    expect(jobs.map((job) => [job.job_id, job.status]).sort()).toEqual(
      [
        [runningId, "completed"],
        [queuedId, "completed"],
      ].sort(),
    );

    expect(await second.stop()).toBe(0);
    expect(processesUsing(folder)).toEqual([]);
  });
});
