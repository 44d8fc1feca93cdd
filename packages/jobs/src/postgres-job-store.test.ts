import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import PgBoss from "pg-boss";
import { JobErrorCode } from "./job-error.js";
import type { JobStore } from "./job-store.js";
import { openPostgresJobStore } from "./postgres-job-store.js";
import { startPostgresCluster, type PostgresCluster } from "./testing/postgres-cluster.js";
import { testJobStore } from "./testing/job-store-conformance.js";

let cluster: PostgresCluster;
const secretKey = randomBytes(32).toString("base64");

beforeAll(async () => {
  cluster = await startPostgresCluster();
});
afterAll(async () => {
  await cluster?.stop();
});

testJobStore("postgres", {
  async open() {
    const connectionString = await cluster.createDatabase();
    return openPostgresJobStore({ connectionString, secretKey, maintenanceIntervalSeconds: 1 });
  },
  rawBytes: () => cluster.rawBytes(),
});

describe("the PostgreSQL store", () => {
  it("fails a job whose secret was sealed with another key with SECRET_UNREADABLE, and refuses secrets without a key", async () => {
    const connectionString = await cluster.createDatabase();
    const submitter = await openPostgresJobStore({ connectionString, secretKey });
    const { job } = await submitter.submit({ spec: { repo: "/r", task: "Sealed" }, secrets: { gitToken: "ghp_sealedWithKeyOne123" } });
    const otherKey = await openPostgresJobStore({ connectionString, secretKey: randomBytes(32).toString("hex") });
    const [claimed] = await otherKey.claim("worker-x", 1, 30_000);
    expect(claimed!.job.id).toBe(job.id);
    expect(claimed!.secrets).toMatchObject({ code: JobErrorCode.SECRET_UNREADABLE });
    const keyless = await openPostgresJobStore({ connectionString });
    await expect(keyless.submit({ spec: { repo: "/r", task: "x" }, secrets: { gitToken: "ghp_x123456" } })).rejects.toMatchObject({ code: JobErrorCode.SECRET_KEY_INVALID });
    await expect(openPostgresJobStore({ connectionString, secretKey: "too-short" })).rejects.toMatchObject({ code: JobErrorCode.SECRET_KEY_INVALID });
    for (const store of [submitter, otherKey, keyless]) await store.close();
  });

  it("hands out again a delivery whose worker died before it marked the job running, once pg-boss expires it", { timeout: 150_000 }, async () => {
    const connectionString = await cluster.createDatabase();
    const store = await openPostgresJobStore({ connectionString, secretKey, deliveryExpirySeconds: 1, maintenanceIntervalSeconds: 1 });
    const { job } = await store.submit({ spec: { repo: "/r", task: "Taken and dropped" }, retryDelayMs: 1000 });
    // Another process takes the delivery from pg-boss and dies before it updates the job.
    const thief = new PgBoss({ connectionString, supervise: false, schedule: false });
    await thief.start();
    expect(await thief.fetch("running-agent-jobs")).toHaveLength(1);
    await thief.stop({ graceful: false, close: true });
    expect(await store.claim("worker-a", 1, 30_000)).toEqual([]);
    expect(await store.get(job.id)).toMatchObject({ status: "queued" });
    const deadline = Date.now() + 60_000;
    let claimed: Awaited<ReturnType<JobStore["claim"]>> = [];
    while (claimed.length === 0 && Date.now() < deadline) {
      claimed = await store.claim("worker-a", 1, 30_000);
      if (claimed.length === 0) await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(claimed.map((item) => item.job.id)).toEqual([job.id]);
    expect(claimed[0]!.job).toMatchObject({ status: "running", attempts: 1 });

    // The job runs longer than the delivery's expiry: pg-boss hands the delivery out again, and the claim drops it (completes it: the job is running).
    const inspector = new PgBoss({ connectionString, supervise: false, schedule: false });
    await inspector.start();
    for (;;) {
      expect(await store.claim("worker-b", 1, 30_000)).toEqual([]);
      if ((await inspector.getJobById("running-agent-jobs", job.id))?.state === "completed") break;
      if (Date.now() > deadline) throw new Error("pg-boss did not hand the delivery out again");
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    await inspector.stop({ graceful: false, close: true });
    expect(await store.get(job.id)).toMatchObject({ status: "running", workerId: "worker-a" });
    // A retryable failure after that still comes back, after its backoff, on a new delivery.
    expect(await store.requeue("worker-a", job.id, { code: "SANDBOX_CREATE_FAILED", message: "no room" })).toBe(true);
    let again: Awaited<ReturnType<JobStore["claim"]>> = [];
    while (again.length === 0 && Date.now() < deadline + 30_000) {
      again = await store.claim("worker-b", 1, 30_000);
      if (again.length === 0) await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(again.map((item) => item.job)).toMatchObject([{ id: job.id, attempts: 2, workerId: "worker-b" }]);
    await store.close();
  });

  it("keeps working across a database restart: calls fail with STORE_UNAVAILABLE meanwhile, then succeed", async () => {
    const connectionString = await cluster.createDatabase();
    const errors: Error[] = [];
    const store = await openPostgresJobStore({ connectionString, secretKey, onError: (error) => errors.push(error) });
    const { job } = await store.submit({ spec: { repo: "/r", task: "Survives" } });
    const [claimed] = await store.claim("worker-a", 1, 60_000);
    expect(claimed!.job.id).toBe(job.id);
    await cluster.restart();
    // The first call after a restart may meet a dropped pooled connection; a later one connects afresh.
    const held = await (async () => {
      for (let attempt = 0; attempt < 20; attempt++) {
        try {
          return await store.renewLeases("worker-a", [job.id], 60_000);
        } catch (error) {
          expect(error).toMatchObject({ code: JobErrorCode.STORE_UNAVAILABLE });
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      }
      throw new Error("the store did not come back");
    })();
    expect(held.held).toEqual([job.id]);
    expect(await store.finish("worker-a", job.id, { status: "failed", error: { code: "X", message: "done" } })).toBe(true);
    await store.close();
  });
});
