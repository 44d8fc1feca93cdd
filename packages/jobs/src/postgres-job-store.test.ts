import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { JobErrorCode } from "./job-error.js";
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
