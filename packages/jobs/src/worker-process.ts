// A worker process for the fault tests and the benchmark: a JobWorker on the store named by the
// environment, with the local sandbox, the local Git host and the model given as JSON.
// JOBS_FIXED_TASK_MS (the benchmark's orchestration table only) replaces the agent task with a
// wait of that long, so that the figure measures the job layer alone.
import { agentError, createLocalGitHost, createLocalSandbox, ErrorCode, type AgentTaskResult } from "@running-agent/core";
import { tmpdir } from "node:os";
import { JobWorker, type RunTask } from "./job-worker.js";
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
  ...(environment.JOBS_FIXED_TASK_MS ? { runTask: fixedDelayTask(Number(environment.JOBS_FIXED_TASK_MS)) } : {}),
  log: (line) => console.log(line),
});
await worker.start();
console.log(`ready ${worker.id}`);
process.once("SIGTERM", () => {
  void worker.stop().then(() => store.close()).then(() => process.exit(0));
});

/** A task that only waits: what the job layer adds to a task of known length. */
function fixedDelayTask(ms: number): RunTask {
  return (options) => {
    const taskId = options.taskId ?? "fixed";
    let stop = (): void => undefined;
    const result = new Promise<AgentTaskResult>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          resolve({
            taskId,
            status: "no_changes",
            repository: { id: options.repo },
            baseBranch: "main",
            changes: [],
            summary: "",
            model: "fixed/delay",
            usage: { inputTokens: 0, outputTokens: 0, reasoningTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0, cost: 0, costSource: "unknown" },
            timings: { total: ms },
          } as unknown as AgentTaskResult),
        ms,
      );
      stop = () => {
        clearTimeout(timer);
        reject(agentError(ErrorCode.ABORTED, "Cancelled."));
      };
    });
    result.catch(() => undefined);
    options.onEvent?.({ type: "phase", phase: "agent", status: "started", taskId, at: Date.now() });
    const say = async (): Promise<void> => {
      throw agentError(ErrorCode.INVALID_OPTIONS, "A fixed-delay task takes no messages.");
    };
    return { taskId, result, events: [], cancel: async () => stop(), say, [Symbol.asyncIterator]: async function* () {} };
  };
}
