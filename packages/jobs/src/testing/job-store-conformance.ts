import { afterEach, describe, expect, it } from "vitest";
import { JobError, JobErrorCode } from "../job-error.js";
import type { JobStore } from "../job-store.js";
import { watchJob, watchJobChanges, type JobWatchMessage } from "../watch-job.js";

/** How the suite gets a store: each test opens a fresh, empty one. */
export interface JobStoreHarness {
  /** Opens a store for one test; every test calls it, and the suite closes each store after its test. */
  open(): Promise<JobStore>;
  /** Every byte the store has written to disk (data files and logs), after making it flush. */
  rawBytes(store: JobStore): Promise<Buffer>;
}

const spec = (task: string) => ({ repo: "/srv/repos/sample.git", task });

/** Waits for `check` to hold, reading again after each event loop turn (no guessed sleeps in assertions). */
async function eventually<T>(read: () => Promise<T>, check: (value: T) => boolean, what: string, limitMs = 30_000): Promise<T> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const value = await read();
    if (check(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last value: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * The contract every job store passes (the embedded SQLite store and PostgreSQL): submit and
 * keys, claims that never hand one job to two workers, fenced writes, events, cancel, requeue
 * with backoff, lease recovery, secrets that never reach the disk in plain text.
 */
export function testJobStore(name: string, harness: JobStoreHarness): void {
  describe(`job store conformance: ${name}`, () => {
    const opened: JobStore[] = [];
    const open = async () => {
      const store = await harness.open();
      opened.push(store);
      return store;
    };
    afterEach(async () => {
      for (const store of opened.splice(0)) await store.close();
    });

    it("submits a queued job whose branch is decided once; the same key returns the same job", async () => {
      const store = await open();
      const first = await store.submit({ spec: spec("Add a multiply function"), key: "delivery-1", labels: { userId: "ana" } });
      expect(first.created).toBe(true);
      expect(first.job).toMatchObject({ status: "queued", key: "delivery-1", attempts: 0, maxAttempts: 3, labels: { userId: "ana" }, hasSecrets: false });
      expect(first.job.spec.branch).toMatch(/^running-agent\/add-a-multiply-function-[0-9a-f]{8}$/);
      const again = await store.submit({ spec: spec("Something else"), key: "delivery-1" });
      expect(again).toMatchObject({ created: false, job: { id: first.job.id, spec: { task: "Add a multiply function", branch: first.job.spec.branch } } });
      const given = await store.submit({ spec: { ...spec("Named"), branch: "feature/named" } });
      expect(given.job.spec.branch).toBe("feature/named");
      expect((await store.list({ limit: 10 })).map((job) => job.id)).toEqual([given.job.id, first.job.id]);
      expect((await store.list({ limit: 10, label: { userId: "ana" } })).map((job) => job.id)).toEqual([first.job.id]);
      // Paging and the repository and text filters, newest first.
      expect((await store.list({ limit: 1, offset: 1 })).map((job) => job.id)).toEqual([first.job.id]);
      expect(await store.list({ limit: 10, offset: 2 })).toEqual([]);
      const other = await store.submit({ spec: { repo: "/srv/other.git", task: "Fix 100% of the typos_" } });
      expect((await store.list({ limit: 10, repo: "/srv/other.git" })).map((job) => job.id)).toEqual([other.job.id]);
      expect((await store.list({ limit: 10, search: "MULTIPLY" })).map((job) => job.id)).toEqual([first.job.id]);
      expect((await store.list({ limit: 10, search: "other.git" })).map((job) => job.id)).toEqual([other.job.id]);
      // What the user typed is text, not a pattern.
      expect((await store.list({ limit: 10, search: "100%" })).map((job) => job.id)).toEqual([other.job.id]);
      expect(await store.list({ limit: 10, search: "_%" })).toEqual([]);
      expect(await store.list({ limit: 10, repo: "/srv/other.git", search: "multiply" })).toEqual([]);
      expect(await store.countByStatus()).toEqual({ queued: 3 });
      expect(await store.addLabels(first.job.id, { retriedBy: given.job.id })).toBe(true);
      const labelled = await store.get(first.job.id);
      expect(labelled).toMatchObject({ labels: { userId: "ana", retriedBy: given.job.id } });
      expect(labelled!.revision).toBeGreaterThan(first.job.revision);
      expect(await store.addLabels("00000000-0000-4000-8000-000000000000", { a: "b" })).toBe(false);
    });

    it("refuses what cannot be stored, before storing anything", async () => {
      const store = await open();
      const refusals = [
        { spec: { repo: "", task: "x" } },
        { spec: { repo: "/r", task: " " } },
        { spec: { repo: "/r", task: "x", sandbox: {} } },
        { spec: { repo: "/r", task: "x", branch: "bad..branch" } },
        { spec: { repo: "/r", task: "x" }, maxAttempts: 0 },
      ];
      for (const input of refusals) {
        const error = await store.submit(input as never).then(() => undefined, (caught: unknown) => caught);
        expect(JobError.isInstance(error) && error.code).toBe(JobErrorCode.INVALID_JOB);
      }
      expect(await store.list({ limit: 10 })).toEqual([]);
    });

    it("claims oldest first, never hands one job to two workers, and fences every write by the lease holder", async () => {
      const store = await open();
      const ids: string[] = [];
      for (let index = 0; index < 6; index++) ids.push((await store.submit({ spec: spec(`Task ${index}`) })).job.id);
      const [a, b] = await Promise.all([store.claim("worker-a", 4, 30_000), store.claim("worker-b", 4, 30_000)]);
      const claimed = [...a!, ...b!].map((item) => item.job.id);
      expect(new Set(claimed).size).toBe(claimed.length);
      expect(claimed.sort()).toEqual([...ids].sort());
      const first = a![0]!;
      expect(first.job).toMatchObject({ status: "running", attempts: 1, workerId: "worker-a" });
      expect(first.lastSeq).toBe(0);

      const other = first.job.workerId === "worker-a" ? "worker-b" : "worker-a";
      expect(await store.appendEvents(other, first.job.id, [{ seq: 1, event: { type: "log" } }])).toBe(false);
      expect(await store.finish(other, first.job.id, { status: "failed", error: { code: "X", message: "no" } })).toBe(false);
      expect((await store.renewLeases(other, [first.job.id], 30_000)).held).toEqual([]);
      expect((await store.renewLeases("worker-a", [first.job.id], 30_000)).held).toEqual([first.job.id]);
      expect(await store.finish("worker-a", first.job.id, { status: "failed", error: { code: "AGENT_FAILED", message: "it broke" } })).toBe(true);
      expect(await store.finish("worker-a", first.job.id, { status: "failed", error: { code: "AGENT_FAILED", message: "twice" } })).toBe(false);
      expect(await store.get(first.job.id)).toMatchObject({ status: "failed", error: { code: "AGENT_FAILED", message: "it broke" }, workerId: undefined });
      expect(await store.claim("worker-c", 10, 30_000)).toEqual([]);
    });

    it("stores events with the phase and streams them to a reader while the job runs, ending with its status", async () => {
      const store = await open();
      const { job } = await store.submit({ spec: spec("Stream me") });
      const [claimed] = await store.claim("worker-a", 1, 30_000);
      const seen: JobWatchMessage[] = [];
      const reading = (async () => {
        for await (const message of watchJob(store, job.id)) seen.push(message);
      })();
      expect(await store.appendEvents("worker-a", job.id, [{ seq: 1, event: { type: "phase", phase: "agent", status: "started" } }], "agent")).toBe(true);
      await eventually(async () => seen.filter((message) => message.kind === "event").length, (count) => count === 1, "the first event");
      expect(await store.appendEvents("worker-a", job.id, [{ seq: 2, event: { type: "log", message: "two" } }, { seq: 3, event: { type: "log", message: "three" } }])).toBe(true);
      expect((await store.get(job.id))?.phase).toBe("agent");
      expect(await store.finish("worker-a", claimed!.job.id, { status: "cancelled", error: { code: "ABORTED", message: "stop" } })).toBe(true);
      await reading;
      expect(seen.filter((message) => message.kind === "event").map((message) => (message as { seq: number }).seq)).toEqual([1, 2, 3]);
      expect(seen.at(-1)).toMatchObject({ kind: "status", job: { status: "cancelled" } });
      expect((await store.events(job.id, 1)).map((event) => event.event)).toEqual([{ type: "log", message: "two" }, { type: "log", message: "three" }]);
      const replay: JobWatchMessage[] = [];
      for await (const message of watchJob(store, job.id, { afterSeq: 2 })) replay.push(message);
      expect(replay.map((message) => message.kind)).toEqual(["event", "status"]);
    });

    it("cancels a queued job at once and flags a running one for its worker", async () => {
      const store = await open();
      const queued = (await store.submit({ spec: spec("Never runs") })).job;
      const cancelled = await store.requestCancel(queued.id, "Not needed.");
      expect(cancelled).toMatchObject({ status: "cancelled", error: { code: "ABORTED", message: "Not needed." } });
      expect(await store.claim("worker-a", 5, 30_000)).toEqual([]);
      const running = (await store.submit({ spec: spec("Runs") })).job;
      await store.claim("worker-a", 1, 30_000);
      expect(await store.requestCancel(running.id, "Stop it.")).toMatchObject({ status: "running", cancelRequested: true });
      expect(await store.renewLeases("worker-a", [running.id], 30_000)).toEqual({ held: [running.id], cancelRequested: [running.id] });
      expect(await store.requestCancel("00000000-0000-4000-8000-000000000000", "x")).toBeUndefined();
    });

    it("requeues a retryable failure after its backoff, and a graceful stop at once without counting it", async () => {
      const store = await open();
      const { job } = await store.submit({ spec: spec("Flaky"), retryDelayMs: 1000 });
      await store.claim("worker-a", 1, 30_000);
      expect(await store.requeue("worker-b", job.id, { code: "SANDBOX_CREATE_FAILED", message: "x" })).toBe(false);
      expect(await store.requeue("worker-a", job.id, { code: "SANDBOX_CREATE_FAILED", message: "no room" })).toBe(true);
      expect(await store.get(job.id)).toMatchObject({ status: "queued", attempts: 1, error: { code: "SANDBOX_CREATE_FAILED" } });
      const before = Date.now();
      expect(await store.claim("worker-b", 1, 30_000)).toEqual([]);
      const [again] = await eventually(() => store.claim("worker-b", 1, 30_000), (claimed) => claimed.length === 1, "the retry to become due");
      expect(Date.now() - before).toBeGreaterThanOrEqual(900);
      expect(again!.job).toMatchObject({ id: job.id, attempts: 2, workerId: "worker-b" });
      expect(await store.requeue("worker-b", job.id)).toBe(true);
      const [third] = await eventually(() => store.claim("worker-c", 1, 30_000), (claimed) => claimed.length === 1, "the released job");
      expect(third!.job).toMatchObject({ attempts: 2, workerId: "worker-c" });
    });

    it("recovers jobs whose lease expired: queued again, failed when no attempt is left, cancelled when asked", async () => {
      const store = await open();
      const rerun = (await store.submit({ spec: spec("Rerun"), maxAttempts: 2 })).job;
      const last = (await store.submit({ spec: spec("Last"), maxAttempts: 1 })).job;
      const asked = (await store.submit({ spec: spec("Asked") })).job;
      await store.registerWorker({ id: "worker-dead", hostname: "h", pid: 1, startedAt: Date.now() });
      expect((await store.claim("worker-dead", 3, 200)).length).toBe(3);
      await store.requestCancel(asked.id, "Stop.");
      // The three leases expire a moment apart: recovery may take them in more than one sweep.
      const recovered = { requeued: [] as string[], failed: [] as string[], cancelled: [] as string[] };
      await eventually(
        async () => {
          const sweep = await store.recoverExpiredLeases();
          for (const kind of ["requeued", "failed", "cancelled"] as const) recovered[kind].push(...sweep[kind]);
          return recovered.requeued.length + recovered.failed.length + recovered.cancelled.length;
        },
        (count) => count >= 3,
        "the leases to expire",
      );
      expect(recovered).toEqual({ requeued: [rerun.id], failed: [last.id], cancelled: [asked.id] });
      expect(await store.get(last.id)).toMatchObject({ status: "failed", error: { code: JobErrorCode.LEASE_EXPIRED } });
      expect(await store.get(asked.id)).toMatchObject({ status: "cancelled" });
      expect(await store.appendEvents("worker-dead", rerun.id, [{ seq: 1, event: {} }])).toBe(false);
      const [claimed] = await eventually(() => store.claim("worker-live", 1, 30_000), (items) => items.length === 1, "the recovered job");
      expect(claimed!.job).toMatchObject({ id: rerun.id, attempts: 2, workerId: "worker-live", spec: { branch: rerun.spec.branch } });
      expect(await store.finish("worker-dead", rerun.id, { status: "failed", error: { code: "X", message: "late" } })).toBe(false);
      expect((await store.recoverExpiredLeases()).requeued).toEqual([]);
    });

    it("hands a job's secrets to the worker that claims it and never writes them to disk in plain text", async () => {
      const store = await open();
      const token = `ghp_${"conformance".repeat(3)}Secret42`;
      const { job } = await store.submit({ spec: spec("With a token"), secrets: { gitToken: token } });
      expect(job.hasSecrets).toBe(true);
      expect(JSON.stringify(await store.get(job.id))).not.toContain(token);
      const [claimed] = await store.claim("worker-a", 1, 30_000);
      expect(claimed!.secrets).toEqual({ gitToken: token });
      await store.appendEvents("worker-a", job.id, [{ seq: 1, event: { type: "log", message: "working" } }]);
      const bytes = await harness.rawBytes(store);
      expect(bytes.length).toBeGreaterThan(0);
      expect(bytes.includes(Buffer.from("With a token"))).toBe(true);
      expect(bytes.includes(Buffer.from(token))).toBe(false);
    });

    it("tells live workers and streams every job change", async () => {
      const store = await open();
      await store.registerWorker({ id: "worker-a", hostname: "host-a", pid: 10, startedAt: 1 });
      expect((await store.liveWorkers(60_000)).map((worker) => worker.id)).toEqual(["worker-a"]);
      await store.unregisterWorker("worker-a");
      expect(await store.liveWorkers(60_000)).toEqual([]);

      const controller = new AbortController();
      const changes: string[] = [];
      const fromRevision = await store.currentRevision();
      const watching = (async () => {
        for await (const job of watchJobChanges(store, { signal: controller.signal, fromRevision })) {
          changes.push(`${job.spec.task}:${job.status}`);
          if (changes.length === 3) controller.abort();
        }
      })();
      const { job } = await store.submit({ spec: spec("Watched") });
      await eventually(async () => changes.length, (count) => count >= 1, "the submit");
      await store.claim("worker-b", 1, 30_000);
      await eventually(async () => changes.length, (count) => count >= 2, "the claim");
      await store.finish("worker-b", job.id, { status: "failed", error: { code: "X", message: "y" } });
      await watching;
      expect(changes).toEqual(["Watched:queued", "Watched:running", "Watched:failed"]);
    });
  });
}
