// A worker process for the fault tests and the benchmark: a JobWorker on the store named by the
// environment, with the local sandbox, the local Git host and the model given as JSON.
import { createLocalGitHost, createLocalSandbox } from "@running-agent/core";
import { tmpdir } from "node:os";
import { JobWorker } from "./job-worker.js";
import { claimWorkFolder } from "./work-folder.js";
import type { JobStore } from "./job-store.js";
import { openPostgresJobStore } from "./postgres-job-store.js";
import { openSqliteJobStore } from "./sqlite-job-store.js";

const environment = process.env;
const store: JobStore = environment.JOBS_DATABASE_URL
  ? await openPostgresJobStore({ connectionString: environment.JOBS_DATABASE_URL, secretKey: environment.JOBS_SECRET_KEY, onError: (error) => console.log(`store error: ${error.message}`) })
  : openSqliteJobStore({ path: environment.JOBS_SQLITE_PATH! });
const workerId = environment.JOBS_WORKER_ID!;
// Sandboxes and host clones go in this worker's own folder; a dead predecessor's are removed first.
const workFolder = await claimWorkFolder({ workerId, parent: environment.JOBS_WORK_PARENT ?? tmpdir() });
for (const removed of workFolder.removed) console.log(`removed the work folder of a dead worker: ${removed}`);
process.env.TMPDIR = workFolder.path;
const worker = new JobWorker({
  store,
  workerId,
  concurrency: Number(environment.JOBS_CONCURRENCY ?? "1"),
  leaseMs: Number(environment.JOBS_LEASE_MS ?? "30000"),
  pollMs: 200,
  taskDefaults: { sandbox: createLocalSandbox(), gitHost: createLocalGitHost(), model: JSON.parse(environment.JOBS_MODEL_JSON!) },
  log: (line) => console.log(line),
});
await worker.start();
console.log(`ready ${worker.id}`);
process.once("SIGTERM", () => {
  void worker.stop().then(() => store.close()).then(() => process.exit(0));
});
