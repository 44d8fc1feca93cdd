import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { claimWorkFolder, JobWorker, openPostgresJobStore, type JobStore } from "@running-agent/jobs";
import { startApiServer } from "./api-server.js";
import { defaultDashboardDirectory } from "./dashboard-files.js";
import { loadServerConfig } from "./server-config.js";
import { createTaskRuntime } from "./task-runtime.js";

/** What {@link startServerProcess} takes besides the environment. */
export interface ServerProcessOptions {
  log: (line: string) => void;
  /** The form's example repo_url (`GET /config`); default: one that fits the configured Git host. */
  repoUrlExample?: string;
}

/** A started server process: the API's address (none for a worker) and how to stop it. */
export interface ServerProcess {
  url: string | undefined;
  /** Running jobs go back to the queue; then the store and the runtime close. */
  stop(): Promise<void>;
}

/**
 * The HTTP API and/or a worker, configured from environment variables (see the README), as
 * `pnpm start` runs it: `RUNNING_AGENT_ROLE` says which.
 */
export async function startServerProcess(environment: NodeJS.ProcessEnv, options: ServerProcessOptions): Promise<ServerProcess> {
  const { log } = options;
  const config = loadServerConfig(environment);
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
  const runtime = await createTaskRuntime(config, log);
  const storeLine = config.databaseUrl ? `jobs: PostgreSQL (${new URL(config.databaseUrl).host})` : `jobs: ${config.databasePath}`;

  if (config.role === "worker") {
    const worker = new JobWorker({ store: store!, workerId, runTask: runtime.runTask, taskDefaults: runtime.taskDefaults, concurrency: config.concurrency, secrets: config.apiKey ? [config.apiKey] : [], log });
    // A worker that fails to start stops the runtime's schedules and pool with it.
    await worker.start().catch(async (error: unknown) => {
      await runtime.close();
      throw error;
    });
    runtime.startPreparing();
    for (const line of runtime.description) log(line);
    log(`${storeLine}, ${config.concurrency} at a time`);
    log(`worker ${worker.id} ready`);
    return {
      url: undefined,
      stop: async () => {
        await worker.stop();
        await store!.close();
        await runtime.close();
      },
    };
  }

  const starting = startApiServer({
    ...(store ? { store } : { databasePath: config.databasePath }),
    role: config.role,
    workerId,
    runTask: runtime.runTask,
    taskDefaults: runtime.taskDefaults,
    reapOrphanSandboxes: runtime.reapOrphanSandboxes,
    gitHostDescription:
      config.gitHost === "github" ? "github: https://github.com/owner/name URLs" : config.gitHost === "gitlab" ? "gitlab: https://HOST/group/.../project URLs" : "local: paths and file:// URLs on the server",
    repoUrlExample:
      options.repoUrlExample ??
      (config.gitHost === "github"
        ? `${(config.github.webUrl ?? "https://github.com").replace(/\/+$/, "")}/owner/repo.git`
        : config.gitHost === "gitlab"
          ? `${(config.gitlab.url ?? "https://gitlab.com").replace(/\/+$/, "")}/group/project.git`
          : "/srv/repos/project.git"),
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
  // A server that fails to start (a locked database, a taken port) stops the runtime's schedules and pool with it.
  const server = await starting.catch(async (error: unknown) => {
    await runtime.close();
    throw error;
  });
  runtime.startPreparing();
  for (const line of runtime.description) log(line);
  log(config.role === "api" ? `${storeLine}; role api: worker processes run the jobs` : `${storeLine}, ${config.concurrency} at a time`);
  if (!config.apiKey) log("WARNING: no RUNNING_AGENT_API_KEY set: anyone who can reach this port can submit and cancel jobs.");
  log(dashboardDirectory ? `dashboard: ${server.url}/ (from ${dashboardDirectory})` : "dashboard: not built (pnpm --filter @running-agent/example-dashboard build, then restart)");
  log(`listening on ${server.url}`);
  return {
    url: server.url,
    stop: async () => {
      await server.close();
      await runtime.close();
    },
  };
}

/**
 * SIGTERM and SIGINT: running jobs are stopped and go back to the queue (another worker, or the
 * next start, runs them); the process exits 0 once everything stopped, 1 if stopping failed.
 */
export function stopOnSignals(log: (line: string) => void, stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: stopping; running jobs go back to the queue`);
    stop().then(
      () => process.exit(0),
      (error: unknown) => {
        log(`stopping failed: ${error instanceof Error ? error.message : String(error)}`);
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => handler("SIGTERM"));
  process.on("SIGINT", () => handler("SIGINT"));
}
