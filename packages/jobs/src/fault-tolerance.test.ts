import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createLocalGitHost } from "@running-agent/core";
import { createTestRepository, OFFLINE_NOTE_FILE, startOfflineModel, type OfflineModel, type TestRepository } from "@running-agent/core/testing";
import { FINISHED_JOB_STATUSES, type JobRecord } from "./job-record.js";
import type { JobStore } from "./job-store.js";
import { openPostgresJobStore } from "./postgres-job-store.js";
import { openSqliteJobStore } from "./sqlite-job-store.js";
import { startPostgresCluster, type PostgresCluster } from "./testing/postgres-cluster.js";

/** A worker in a process of its own, killed by its pid. */
interface WorkerProcess {
  id: string;
  child: ChildProcess;
  output(): string;
  exited: Promise<unknown>;
}

let folder: string;
let repository: TestRepository;
let model: OfflineModel;
const children: WorkerProcess[] = [];

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), "jobs-faults-"));
  // Each answer takes 1.5 s: a job spends about 3 s in its agent phase, so that jobs overlap and a fault lands mid-job.
  model = await startOfflineModel({ delayMs: 1500 });
});
afterEach(async () => {
  for (const worker of children.splice(0)) {
    if (worker.child.exitCode === null && worker.child.signalCode === null) {
      worker.child.kill("SIGCONT");
      worker.child.kill("SIGKILL");
    }
    await worker.exited;
  }
});
afterAll(async () => {
  await model?.close();
  await rm(folder, { recursive: true, force: true });
});

async function startWorkerProcess(id: string, environment: Record<string, string>): Promise<WorkerProcess> {
  const work = join(folder, "work");
  await mkdir(work, { recursive: true });
  const child = spawn(process.execPath, ["--conditions=source", "--import", "tsx", "src/worker-process.ts"], {
    cwd: join(import.meta.dirname, ".."),
    env: { PATH: process.env.PATH, HOME: process.env.HOME, JOBS_WORK_PARENT: work, JOBS_WORKER_ID: id, JOBS_MODEL_JSON: JSON.stringify(model.model), ...environment },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const worker = { id, child, output: () => output, exited };
  children.push(worker);
  await new Promise<void>((resolve, reject) => {
    const check = () => output.includes(`ready ${id}`) && (child.stdout!.off("data", check), resolve());
    child.stdout!.on("data", check);
    void exited.then(() => reject(new Error(`worker ${id} exited before it was ready:\n${output}`)));
  });
  return worker;
}

/** Reads the store until `check` holds (the event the test waits for), or fails after `limitMs` with what it saw. */
async function until<T>(read: () => Promise<T>, check: (value: T) => boolean, what: string, limitMs = 600_000): Promise<T> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const value = await read().catch(() => undefined);
    if (value !== undefined && check(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function allJobs(store: JobStore): Promise<JobRecord[]> {
  return store.list({ limit: 1000 });
}

/** A job of this worker in its agent phase: killing or stopping the worker now lands mid-job. */
function agentJobOf(workerId: string) {
  return (jobs: JobRecord[]) => jobs.some((job) => job.status === "running" && job.workerId === workerId && job.phase === "agent");
}

/** Every job ended completed, with exactly one branch (one commit on main) and one change request, and nothing else was pushed or opened. */
async function expectEveryJobDoneOnce(jobs: JobRecord[], count: number): Promise<void> {
  expect(jobs).toHaveLength(count);
  const notCompleted = jobs.filter((job) => job.status !== "completed");
  expect(notCompleted.map((job) => [job.spec.task, job.status, job.error])).toEqual([]);
  const changeRequests = await createLocalGitHost().listChangeRequests(repository.path);
  const branches = (await repository.git("for-each-ref", "--format=%(refname:short)", "refs/heads/running-agent/")).trim().split("\n").filter(Boolean);
  expect(branches.sort()).toEqual(jobs.map((job) => job.spec.branch).sort());
  expect(changeRequests.map((request) => request.head).sort()).toEqual(jobs.map((job) => job.spec.branch).sort());
  for (const job of jobs) {
    const request = changeRequests.find((candidate) => candidate.head === job.spec.branch)!;
    expect(job.result).toMatchObject({ branch: job.spec.branch, pullRequest: { number: request.number } });
    expect((await repository.git("rev-list", "--count", `main..${job.spec.branch}`)).trim()).toBe("1");
    expect(await repository.git("show", `${job.spec.branch}:${OFFLINE_NOTE_FILE}`)).toContain(job.spec.task);
  }
}

describe("fault tolerance with real worker processes", () => {
  let cluster: PostgresCluster;
  beforeAll(async () => {
    cluster = await startPostgresCluster();
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  // 30 jobs on 3 workers with 2 slots each: about 3 minutes on 2 busy cores, most of it OpenCode starting (a cold start per job).
  it("PostgreSQL: 3 workers share 30 jobs through a SIGKILL, a SIGSTOP past the lease and a database restart; every job ends once, with one branch and one change request", { timeout: 900_000 }, async () => {
    repository = await createTestRepository({ "README.md": "# Sample\n" }, { parent: folder });
    const connectionString = await cluster.createDatabase();
    const secretKey = randomBytes(32).toString("base64");
    const store = await openPostgresJobStore({ connectionString, secretKey });
    try {
      for (let index = 0; index < 30; index++) {
        // Half the jobs carry a token, sealed in the database and opened by whichever worker runs them.
        await store.submit({ spec: { repo: repository.path, task: `Write note ${index}` }, maxAttempts: 6, retryDelayMs: 1000, ...(index % 2 === 0 ? { secrets: { gitToken: `token-${index}-${secretKey.slice(0, 8)}` } } : {}) });
      }
      const environment = { JOBS_DATABASE_URL: connectionString, JOBS_SECRET_KEY: secretKey, JOBS_CONCURRENCY: "2", JOBS_LEASE_MS: "5000" };
      const [killed, stopped] = await Promise.all([startWorkerProcess("worker-killed", environment), startWorkerProcess("worker-stopped", environment), startWorkerProcess("worker-steady", environment)]);

      await until(() => allJobs(store), agentJobOf(killed!.id), "the first worker to be in a job's agent phase");
      killed!.child.kill("SIGKILL");
      await killed!.exited;

      await until(() => allJobs(store), agentJobOf(stopped!.id), "the second worker to be in a job's agent phase");
      const held = (await allJobs(store)).filter((job) => job.status === "running" && job.workerId === stopped!.id).map((job) => job.id);
      stopped!.child.kill("SIGSTOP");
      // Past the lease: the others recover the stopped worker's jobs and run them again.
      await until(() => Promise.all(held.map((id) => store.get(id))), (jobs) => jobs.every((job) => job!.workerId !== stopped!.id), "the stopped worker's jobs to be taken over");
      stopped!.child.kill("SIGCONT");

      await until(() => store.countByStatus(), (counts) => (counts.completed ?? 0) >= 12, "a dozen jobs to complete");
      await cluster.restart();

      const jobs = await until(() => allJobs(store), (all) => all.every((job) => FINISHED_JOB_STATUSES.has(job.status)), "every job to end");
      await expectEveryJobDoneOnce(jobs, 30);
      // The faults did happen: the killed worker's job and the stopped worker's jobs ran again.
      expect(jobs.filter((job) => job.attempts > 1).length).toBeGreaterThanOrEqual(2);
      expect(stopped!.output()).toContain("lease lost");
    } finally {
      await store.close();
    }
  });
});

describe("fault tolerance on the embedded store", () => {
  it("SQLite: a worker SIGKILLed mid-job and started again on the same file finishes every job once", { timeout: 600_000 }, async () => {
    repository = await createTestRepository({ "README.md": "# Sample\n" }, { parent: folder });
    const path = join(folder, "embedded.db");
    const observe = () => {
      // The worker holds the file's lock; the test reads it only while no worker runs.
      const store = openSqliteJobStore({ path });
      return store;
    };
    const store = observe();
    for (let index = 0; index < 6; index++) await store.submit({ spec: { repo: repository.path, task: `Embedded note ${index}` } });
    await store.close();
    const environment = { JOBS_SQLITE_PATH: path, JOBS_CONCURRENCY: "2", JOBS_LEASE_MS: "30000" };
    const first = await startWorkerProcess("embedded-first", environment);
    await until(async () => first.output(), (output) => /job \S+: attempt 1 of 3/.test(output) && output.includes("completed"), "a job to complete and others to run");
    first.child.kill("SIGKILL");
    await first.exited;
    const second = await startWorkerProcess("embedded-second", environment);
    await until(async () => second.output(), (output) => (output.match(/: completed/g) ?? []).length + (first.output().match(/: completed/g) ?? []).length >= 6, "every job to complete");
    second.child.kill("SIGTERM");
    await second.exited;
    const after = observe();
    try {
      const jobs = await after.list({ limit: 100 });
      await expectEveryJobDoneOnce(jobs, 6);
      expect(second.output()).toMatch(/stopped heartbeating; queued again/);
      // The killed worker's folder (its clone of the job it was running) went at the second start; the second's own at its stop is empty of sessions.
      expect(second.output()).toContain(`removed the work folder of a dead worker: ${join(folder, "work", "running-agent-worker-embedded-first")}`);
      expect(await readdir(join(folder, "work"))).toEqual(["running-agent-worker-embedded-second"]);
      expect(await readdir(join(folder, "work", "running-agent-worker-embedded-second"))).toEqual(["owner.json"]);
    } finally {
      await after.close();
    }
  });
});
