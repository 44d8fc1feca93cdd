import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { agentError, createLocalGitHost, createLocalSandbox, ErrorCode, type GitHost, type SandboxProvider } from "@running-agent/core";
import { createTestRepository, OFFLINE_NOTE_FILE, startOfflineModel, type OfflineModel, type TestRepository } from "@running-agent/core/testing";
import type { JobRecord } from "./job-record.js";
import type { JobStore } from "./job-store.js";
import { JobWorker } from "./job-worker.js";
import { openSqliteJobStore } from "./sqlite-job-store.js";
import { watchJob, watchJobChanges } from "./watch-job.js";

let folder: string;
let repository: TestRepository;
let model: OfflineModel;
let store: JobStore;
const workers: JobWorker[] = [];

beforeEach(async () => {
  folder = await mkdtemp(join(tmpdir(), "jobs-worker-"));
  repository = await createTestRepository({ "README.md": "# Sample\n" }, { parent: folder });
  store = openSqliteJobStore({ path: join(folder, "jobs.db") });
});

afterEach(async () => {
  for (const worker of workers.splice(0)) await worker.stop();
  await store.close();
  await model?.close();
  await rm(folder, { recursive: true, force: true });
});

function startWorker(options: { store?: JobStore; concurrency?: number; leaseMs?: number; sandbox?: SandboxProvider; gitHost?: GitHost } = {}): JobWorker {
  const worker = new JobWorker({
    store: options.store ?? store,
    concurrency: options.concurrency ?? 1,
    leaseMs: options.leaseMs ?? 10_000,
    pollMs: 100,
    taskDefaults: {
      sandbox: options.sandbox ?? createLocalSandbox({ tempDirectory: folder }),
      gitHost: options.gitHost ?? createLocalGitHost(),
      model: model.model,
    },
  });
  workers.push(worker);
  return worker;
}

async function ended(id: string): Promise<JobRecord> {
  let last: JobRecord | undefined;
  for await (const message of watchJob(store, id)) if (message.kind === "status") last = message.job;
  return last!;
}

async function sessionFolders(): Promise<string[]> {
  return (await readdir(folder)).filter((name) => !name.startsWith("running-agent-test-repo-") && name !== "jobs.db" && !name.startsWith("jobs.db-"));
}

describe("JobWorker", () => {
  it("runs jobs at most `concurrency` at a time, each to a change request on the branch decided at submit, with its events stored", { timeout: 240_000 }, async () => {
    model = await startOfflineModel({ delayMs: 300 });
    const fromRevision = await store.currentRevision();
    const submitted = await Promise.all(["Add notes", "Add more notes", "Add even more notes"].map((task) => store.submit({ spec: { repo: repository.path, task } })));
    const controller = new AbortController();
    let mostRunning = 0;
    const watching = (async () => {
      for await (const _change of watchJobChanges(store, { signal: controller.signal, fromRevision })) {
        mostRunning = Math.max(mostRunning, (await store.countByStatus()).running ?? 0);
      }
    })();
    await startWorker({ concurrency: 2 }).start();
    const jobs = await Promise.all(submitted.map(({ job }) => ended(job.id)));
    controller.abort();
    await watching;
    expect(mostRunning).toBe(2);
    const changeRequests = await createLocalGitHost().listChangeRequests(repository.path);
    for (const [index, job] of jobs.entries()) {
      expect(job).toMatchObject({ status: "completed", attempts: 1, result: { branch: submitted[index]!.job.spec.branch } });
      expect(changeRequests.filter((request) => request.head === job.spec.branch)).toHaveLength(1);
      expect(await repository.git("show", `${job.spec.branch}:${OFFLINE_NOTE_FILE}`)).toContain(job.spec.task);
      const events = (await store.events(job.id)).map((stored) => stored.event as { type: string; phase?: string; status?: string });
      expect(events.filter((event) => event.type === "phase" && event.status === "completed").map((event) => event.phase)).toContain("pull-request");
    }
    expect(await sessionFolders()).toEqual([]);
  });

  it("stops a running job when it is cancelled through the store, and tears its sandbox down", { timeout: 120_000 }, async () => {
    model = await startOfflineModel({ delayMs: 600_000 });
    const { job } = await store.submit({ spec: { repo: repository.path, task: "Wait forever" } });
    await startWorker().start();
    for await (const message of watchJob(store, job.id)) if (message.kind === "status" && message.job.phase === "agent") break;
    await store.requestCancel(job.id, "Changed my mind.");
    const final = await ended(job.id);
    expect(final).toMatchObject({ status: "cancelled", error: { code: ErrorCode.ABORTED } });
    expect(await createLocalGitHost().listChangeRequests(repository.path)).toEqual([]);
    expect(await sessionFolders()).toEqual([]);
  });

  it("retries a retryable failure after its backoff and a bad input not at all", { timeout: 180_000 }, async () => {
    model = await startOfflineModel();
    const real = createLocalSandbox({ tempDirectory: folder });
    let creates = 0;
    // The first sandbox fails as a host out of room would; the real provider serves the rest.
    const flaky: SandboxProvider = Object.create(real);
    flaky.create = async (options) => {
      creates += 1;
      if (creates === 1) throw agentError(ErrorCode.SANDBOX_CREATE_FAILED, "No room for another sandbox right now.");
      return real.create(options);
    };
    const retried = await store.submit({ spec: { repo: repository.path, task: "Try again" }, retryDelayMs: 200 });
    const bad = await store.submit({ spec: { repo: repository.path, task: "Bad base", baseBranch: "no-such-branch" } });
    await startWorker({ sandbox: flaky }).start();
    expect(await ended(retried.job.id)).toMatchObject({ status: "completed", attempts: 2 });
    expect(await ended(bad.job.id)).toMatchObject({ status: "failed", attempts: 1, error: { code: ErrorCode.BASE_BRANCH_NOT_FOUND } });
  });

  it("reruns a job whose worker stalled past its lease: the rerun ends with the same branch and change request, and the stale worker's late result is refused", { timeout: 240_000 }, async () => {
    model = await startOfflineModel();
    let freeze: (() => void) | undefined;
    let frozen = false;
    const thawed = new Promise<void>((resolve) => (freeze = resolve));
    // Worker A's view of the store stops answering once it has opened the change request, as a process stopped by SIGSTOP would.
    const stalled: JobStore = Object.create(store);
    for (const name of ["renewLeases", "appendEvents", "finish", "requeue", "claim", "recoverExpiredLeases"] as const) {
      const real = (store[name] as (...args: unknown[]) => Promise<unknown>).bind(store);
      (stalled as unknown as Record<string, unknown>)[name] = async (...args: unknown[]) => {
        if (frozen) await thawed;
        return real(...args);
      };
    }
    const local = createLocalGitHost();
    const stopsAfterPullRequest: GitHost = Object.create(local);
    stopsAfterPullRequest.openChangeRequest = async (...args) => {
      const opened = await local.openChangeRequest(...args);
      frozen = true;
      return opened;
    };
    const { job } = await store.submit({ spec: { repo: repository.path, task: "Survive a stall" } });
    const first = startWorker({ store: stalled, gitHost: stopsAfterPullRequest, leaseMs: 1500 });
    await first.start();
    await new Promise<void>((resolve) => {
      const check = setInterval(() => frozen && (clearInterval(check), resolve()), 20);
    });
    expect(await store.get(job.id)).toMatchObject({ status: "running", workerId: first.id });

    const second = startWorker({ leaseMs: 10_000 });
    await second.start();
    const final = await ended(job.id);
    const changeRequests = await local.listChangeRequests(repository.path);
    expect(changeRequests).toHaveLength(1);
    expect(final).toMatchObject({ status: "completed", attempts: 2, workerId: undefined, result: { branch: job.spec.branch, pullRequest: { number: changeRequests[0]!.number, created: false } } });
    expect(changeRequests[0]!.head).toBe(job.spec.branch);

    freeze!();
    // The stale worker ends its attempt without writing: the job keeps the rerun's result.
    await new Promise<void>((resolve) => {
      const check = setInterval(() => first.runningCount === 0 && (clearInterval(check), resolve()), 20);
    });
    expect(await store.get(job.id)).toMatchObject({ status: "completed", attempts: 2, revision: final.revision });
  });
});
