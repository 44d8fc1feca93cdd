import { createLocalSandbox, type ModelConfig } from "@running-agent/core";
import { JobWorker, openSqliteJobStore, watchJob, type JobRecord } from "@running-agent/jobs";

/** Runs one task as a durable job in an embedded store, printing its progress; resolves with the ended job. */
export async function runJob(options: { databasePath: string; repo: string; task: string; model: ModelConfig | string }): Promise<JobRecord> {
  const store = openSqliteJobStore({ path: options.databasePath }); // or: await openPostgresJobStore({ connectionString, secretKey })
  const worker = new JobWorker({ store, taskDefaults: { sandbox: createLocalSandbox(), model: options.model } });
  await worker.start();
  try {
    const { job } = await store.submit({
      key: `example:${options.task}`, // a second submit with this key returns the same job
      spec: { repo: options.repo, task: options.task },
      // secrets: { gitToken }, // never stored in plain text
    });
    let last = job;
    for await (const message of watchJob(store, job.id)) {
      if (message.kind !== "status") continue;
      last = message.job;
      console.log(last.status, last.phase ?? "");
    }
    return last;
  } finally {
    await worker.stop();
    await store.close();
  }
}
