import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { startAgentTask } from "@running-agent/core";
import { claimWorkFolder, JobWorker, openPostgresJobStore, type JobStore } from "@running-agent/jobs";
import { startApiServer } from "./api-server.js";
import { defaultDashboardDirectory } from "./dashboard-files.js";
import { loadServerConfig } from "./server-config.js";
import { createTaskRuntime } from "./task-runtime.js";

/** `pnpm start [--role api|worker|both]`: the HTTP API and/or a worker, configured from environment variables (see the README). */
async function main(): Promise<void> {
  const log = (line: string) => console.log(`${new Date().toISOString()} ${line}`);
  const { values } = parseArgs({ options: { role: { type: "string" } }, strict: true });
  const config = loadServerConfig({ ...process.env, ...(values.role ? { RUNNING_AGENT_ROLE: values.role } : {}) });
  const dashboardDirectory = config.dashboardDirectory ? resolve(config.dashboardDirectory) : defaultDashboardDirectory();
  if (dashboardDirectory && !existsSync(join(dashboardDirectory, "index.html"))) {
    throw new Error(`Bad configuration: RUNNING_AGENT_DASHBOARD_DIR: ${dashboardDirectory} has no index.html (build the dashboard: pnpm --filter @running-agent/example-dashboard build).`);
  }
  // PostgreSQL is opened here; the embedded file is opened (and locked) by the API server itself.
  const store: JobStore | undefined = config.databaseUrl
    ? await openPostgresJobStore({ connectionString: config.databaseUrl, secretKey: config.secretKey, onError: (error) => log(`database: ${error.message}`) })
    : undefined;
  const workerId = `worker-${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`;
  if (config.role !== "api") {
    // Sandboxes and host clones of this process go in its own folder; those of dead predecessors on this host are removed first.
    const workFolder = await claimWorkFolder({ workerId });
    for (const removed of workFolder.removed) log(`removed the work folder of a dead worker: ${removed}`);
    process.env.TMPDIR = workFolder.path;
  }
  const runtime = await createTaskRuntime(config);
  const storeLine = config.databaseUrl ? `jobs: PostgreSQL (${new URL(config.databaseUrl).host})` : `jobs: ${config.databasePath}`;

  if (config.role === "worker") {
    const worker = new JobWorker({ store: store!, workerId, taskDefaults: runtime.taskDefaults, concurrency: config.concurrency, secrets: config.apiKey ? [config.apiKey] : [], log });
    await worker.start();
    for (const line of runtime.description) log(line);
    log(`${storeLine}, ${config.concurrency} at a time`);
    log(`worker ${worker.id} ready`);
    onStop(log, async () => {
      await worker.stop();
      await store!.close();
      await runtime.close();
    });
    return;
  }

  const server = await startApiServer({
    ...(store ? { store } : { databasePath: config.databasePath }),
    role: config.role,
    workerId,
    runTask: startAgentTask,
    taskDefaults: runtime.taskDefaults,
    reapOrphanSandboxes: runtime.reapOrphanSandboxes,
    gitHostDescription:
      config.gitHost === "github" ? "github: https://github.com/owner/name URLs" : config.gitHost === "gitlab" ? "gitlab: https://HOST/group/.../project URLs" : "local: paths and file:// URLs on the server",
    repoUrlExample:
      config.gitHost === "github"
        ? `${(config.github.webUrl ?? "https://github.com").replace(/\/+$/, "")}/owner/repo.git`
        : config.gitHost === "gitlab"
          ? `${(config.gitlab.url ?? "https://gitlab.com").replace(/\/+$/, "")}/group/project.git`
          : "/srv/repos/project.git",
    submitFields: config.submitFields,
    apiKey: config.apiKey,
    protectReads: config.protectReads,
    headersTimeoutMs: config.headersTimeoutMs,
    requestTimeoutMs: config.requestTimeoutMs,
    concurrency: config.concurrency,
    bodyLimitBytes: config.bodyLimitBytes,
    corsOrigin: config.corsOrigin,
    host: config.host,
    port: config.port,
    dashboardDirectory,
    log,
  });
  for (const line of runtime.description) log(line);
  log(config.role === "api" ? `${storeLine}; role api: worker processes run the jobs` : `${storeLine}, ${config.concurrency} at a time`);
  if (!config.apiKey) log("WARNING: no RUNNING_AGENT_API_KEY set: anyone who can reach this port can submit and cancel jobs.");
  log(dashboardDirectory ? `dashboard: ${server.url}/ (from ${dashboardDirectory})` : "dashboard: not built (pnpm --filter @running-agent/example-dashboard build, then restart)");
  log(`listening on ${server.url}`);
  onStop(log, async () => {
    await server.close();
    await runtime.close();
  });
}

/** SIGTERM and SIGINT: running jobs are stopped and go back to the queue (another worker, or the next start, runs them). */
function onStop(log: (line: string) => void, stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: stopping; running jobs go back to the queue`);
    void stop().then(() => process.exit(0));
  };
  process.on("SIGTERM", () => handler("SIGTERM"));
  process.on("SIGINT", () => handler("SIGINT"));
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
