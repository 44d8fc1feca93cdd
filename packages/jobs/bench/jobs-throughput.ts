// What the job layer costs and gives: jobs per minute for 1, 2 and 4 worker processes on one
// PostgreSQL, the queue's latency from submit to claim, and the time per job against calling
// runAgentTask directly (the embedded and the PostgreSQL store, one in-process worker).
// Real parts: OpenCode under bubblewrap, the offline scripted model with a fixed delay per
// answer, the local Git host. `pnpm bench [jobs per run] [model delay ms]`; prints tables,
// asserts nothing. Numbers from a 2-core machine shared with other work are noisy: compare the
// rows of one run with each other.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { createLocalGitHost, createLocalSandbox, runAgentTask } from "@running-agent/core";
import { createTestRepository, startOfflineModel } from "@running-agent/core/offline";
import { FINISHED_JOB_STATUSES, JobWorker, openPostgresJobStore, openSqliteJobStore, type JobStore } from "../src/index.js";
import { startPostgresCluster } from "../src/testing/postgres-cluster.js";

const jobsPerRun = Number(process.argv[2] ?? 8);
const delayMs = Number(process.argv[3] ?? 1000);
const folder = await mkdtemp(join(tmpdir(), "jobs-bench-"));
const model = await startOfflineModel({ delayMs });
const cluster = await startPostgresCluster();
const children: ChildProcess[] = [];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / Math.max(1, values.length);
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

async function waitAllDone(store: JobStore, ids: string[]): Promise<void> {
  for (;;) {
    const jobs = await Promise.all(ids.map((id) => store.get(id)));
    if (jobs.every((job) => job && FINISHED_JOB_STATUSES.has(job.status))) {
      const bad = jobs.filter((job) => job!.status !== "completed" && job!.status !== "no_changes");
      if (bad.length > 0) throw new Error(`jobs did not complete: ${JSON.stringify(bad.map((job) => [job!.status, job!.error]))}`);
      return;
    }
    await sleep(50);
  }
}

async function startWorkerProcesses(count: number, connectionString: string, fixedTaskMs?: number): Promise<ChildProcess[]> {
  const started: ChildProcess[] = [];
  for (let index = 0; index < count; index++) {
    const id = `bench-${count}-${index}`;
    const work = join(folder, "work");
    await mkdir(work, { recursive: true });
    const child = spawn(process.execPath, ["--conditions=source", "--import", "tsx", "src/worker-process.ts"], {
      cwd: join(import.meta.dirname, ".."),
      env: { PATH: process.env.PATH, HOME: process.env.HOME, JOBS_WORK_PARENT: work, JOBS_WORKER_ID: id, JOBS_MODEL_JSON: JSON.stringify(model.model), JOBS_DATABASE_URL: connectionString, JOBS_CONCURRENCY: "1", ...(fixedTaskMs ? { JOBS_FIXED_TASK_MS: String(fixedTaskMs) } : {}) },
      stdio: ["ignore", "pipe", "inherit"],
    });
    children.push(child);
    started.push(child);
    await new Promise<void>((resolve, reject) => {
      let output = "";
      child.stdout!.on("data", (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes(`ready ${id}`)) resolve();
      });
      child.once("exit", (code) => reject(new Error(`worker ${id} exited with ${code}`)));
    });
  }
  return started;
}

async function stopProcesses(processes: ChildProcess[]): Promise<void> {
  await Promise.all(
    processes.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null) return resolve();
          child.once("exit", () => resolve());
          child.kill("SIGTERM");
        }),
    ),
  );
}

/** Submits `jobsPerRun` jobs at once to `workers` worker processes (one slot each) and measures until the last ends. */
async function throughput(workers: number, fixedTaskMs?: number, count = jobsPerRun): Promise<{ jobsPerMinute: number; wallMs: number; latencyMs: number }> {
  const repository = await createTestRepository({ "README.md": "# Bench\n" }, { parent: folder });
  const connectionString = await cluster.createDatabase();
  const store = await openPostgresJobStore({ connectionString });
  const processes = await startWorkerProcesses(workers, connectionString, fixedTaskMs);
  const start = performance.now();
  const ids: string[] = [];
  for (let index = 0; index < count; index++) ids.push((await store.submit({ spec: { repo: repository.path, task: `Bench note ${index}` } })).job.id);
  await waitAllDone(store, ids);
  const wallMs = performance.now() - start;
  // Latency of the first `workers` jobs: a free worker was waiting for each.
  const first = (await Promise.all(ids.slice(0, workers).map((id) => store.get(id)))).map((job) => job!.startedAt! - job!.createdAt);
  await stopProcesses(processes);
  await store.close();
  return { jobsPerMinute: (count / wallMs) * 60_000, wallMs, latencyMs: mean(first) };
}

/** One job at a time, three ways: runAgentTask directly, through the embedded store, through PostgreSQL; time per job and time spent in store calls. */
async function overhead(): Promise<Record<string, Record<string, string>>> {
  const repository = await createTestRepository({ "README.md": "# Bench\n" }, { parent: folder });
  const taskDefaults = { sandbox: createLocalSandbox({ tempDirectory: folder }), gitHost: createLocalGitHost(), model: model.model };
  const runs = Math.max(2, Math.ceil(jobsPerRun / 2));
  const rows: Record<string, Record<string, string>> = {};

  const direct: number[] = [];
  for (let index = 0; index < runs; index++) {
    const start = performance.now();
    await runAgentTask({ ...taskDefaults, repo: repository.path, task: `Direct note ${index}` });
    direct.push(performance.now() - start);
  }
  rows["runAgentTask directly"] = { "per job": seconds(mean(direct)), "vs direct": "—", "in store calls per job": "—", "submit → claim": "—" };

  for (const kind of ["embedded", "postgres"] as const) {
    const store = kind === "embedded" ? openSqliteJobStore({ path: join(folder, "overhead.db") }) : await openPostgresJobStore({ connectionString: await cluster.createDatabase() });
    // Counts the time the worker and the submitter spend waiting for the store.
    let storeMs = 0;
    const timed = new Proxy(store, {
      get(target, property) {
        const value = Reflect.get(target, property, target);
        if (typeof value !== "function") return value;
        return (...args: unknown[]) => {
          const start = performance.now();
          const result = (value as (...a: unknown[]) => unknown).apply(target, args);
          if (result instanceof Promise) return result.finally(() => (storeMs += performance.now() - start));
          storeMs += performance.now() - start;
          return result;
        };
      },
    });
    const worker = new JobWorker({ store: timed, concurrency: 1, pollMs: 100, taskDefaults });
    await worker.start();
    const perJob: number[] = [];
    const latency: number[] = [];
    storeMs = 0;
    let measuredStoreMs = 0;
    for (let index = 0; index < runs; index++) {
      const start = performance.now();
      const before = storeMs;
      const { job } = await timed.submit({ spec: { repo: repository.path, task: `Queued note ${index}` } });
      await waitAllDone(store, [job.id]);
      perJob.push(performance.now() - start);
      measuredStoreMs += storeMs - before;
      const done = (await store.get(job.id))!;
      latency.push(done.startedAt! - done.createdAt);
    }
    await worker.stop();
    await store.close();
    rows[`through the ${kind} store`] = {
      "per job": seconds(mean(perJob)),
      "vs direct": `${mean(perJob) - mean(direct) >= 0 ? "+" : ""}${((mean(perJob) - mean(direct)) / 1000).toFixed(2)} s`,
      // Includes the worker's idle polls and heartbeats during the job: the store's whole cost per job.
      "in store calls per job": `${(measuredStoreMs / runs).toFixed(0)} ms`,
      "submit → claim": `${mean(latency).toFixed(0)} ms`,
    };
  }
  return rows;
}

try {
  console.log(`${jobsPerRun} jobs per run, scripted model answering after ${delayMs} ms (2 answers per job), Node ${process.version}`);
  const table: Record<string, Record<string, string>> = {};
  for (const workers of [1, 2, 4]) {
    const measured = await throughput(workers);
    table[`${workers} worker process${workers > 1 ? "es" : ""} (1 slot each), PostgreSQL`] = {
      "jobs per minute": measured.jobsPerMinute.toFixed(1),
      "all jobs": seconds(measured.wallMs),
      "submit → claim (idle worker)": `${measured.latencyMs.toFixed(0)} ms`,
    };
  }
  console.table(table);
  // The job layer alone: each task only waits `fixedMs`, so the ideal is 60000 / fixedMs jobs per minute per worker.
  const fixedMs = 2 * delayMs;
  const orchestration: Record<string, Record<string, string>> = {};
  for (const workers of [1, 2, 4]) {
    const count = 5 * workers;
    const measured = await throughput(workers, fixedMs, count);
    const ideal = (60_000 / fixedMs) * workers;
    orchestration[`${workers} worker process${workers > 1 ? "es" : ""}, ${count} tasks of ${fixedMs} ms`] = {
      "jobs per minute": measured.jobsPerMinute.toFixed(1),
      ideal: ideal.toFixed(1),
      "layer's time per job": `${((measured.wallMs * workers) / count - fixedMs).toFixed(0)} ms`,
      "submit → claim (idle worker)": `${measured.latencyMs.toFixed(0)} ms`,
    };
  }
  console.table(orchestration);
  console.table(await overhead());
} finally {
  await stopProcesses(children);
  await model.close();
  await cluster.stop();
  await rm(folder, { recursive: true, force: true });
}
