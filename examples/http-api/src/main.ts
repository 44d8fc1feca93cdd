import { startAgentTask } from "@running-agent/core";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { startApiServer } from "./api-server.js";
import { defaultDashboardDirectory } from "./dashboard-files.js";
import { loadServerConfig } from "./server-config.js";
import { createTaskRuntime } from "./task-runtime.js";

/** `pnpm start`: the HTTP API configured from environment variables (see the README). */
async function main(): Promise<void> {
  const log = (line: string) => console.log(`${new Date().toISOString()} ${line}`);
  const config = loadServerConfig(process.env);
  const dashboardDirectory = config.dashboardDirectory ? resolve(config.dashboardDirectory) : defaultDashboardDirectory();
  if (dashboardDirectory && !existsSync(join(dashboardDirectory, "index.html"))) {
    throw new Error(`Bad configuration: RUNNING_AGENT_DASHBOARD_DIR: ${dashboardDirectory} has no index.html (build the dashboard: pnpm --filter @running-agent/example-dashboard build).`);
  }
  const runtime = await createTaskRuntime(config);
  const server = await startApiServer({
    databasePath: config.databasePath,
    runTask: startAgentTask,
    taskDefaults: runtime.taskDefaults,
    reapOrphanSandboxes: runtime.reapOrphanSandboxes,
    gitHostDescription:
      config.gitHost === "github" ? "github: https://github.com/owner/name URLs" : config.gitHost === "gitlab" ? "gitlab: https://HOST/group/.../project URLs" : "local: paths and file:// URLs on the server",
    apiKey: config.apiKey,
    concurrency: config.concurrency,
    bodyLimitBytes: config.bodyLimitBytes,
    corsOrigin: config.corsOrigin,
    host: config.host,
    port: config.port,
    dashboardDirectory,
    log,
  });
  for (const line of runtime.description) log(line);
  log(`jobs: ${config.databasePath}, ${config.concurrency} at a time`);
  if (!config.apiKey) log("WARNING: no RUNNING_AGENT_API_KEY set: anyone who can reach this port can submit and cancel jobs.");
  log(dashboardDirectory ? `dashboard: ${server.url}/ (from ${dashboardDirectory})` : "dashboard: not built (pnpm --filter @running-agent/example-dashboard build, then restart)");
  log(`listening on ${server.url}`);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: stopping; running jobs become interrupted (retry them after the restart), queued jobs stay queued`);
    await server.close();
    await runtime.close();
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
