import { startAgentTask } from "@running-agent/core";
import { startApiServer } from "./api-server.js";
import { loadServerConfig } from "./server-config.js";
import { createTaskRuntime } from "./task-runtime.js";

/** `pnpm start`: the HTTP API configured from environment variables (see the README). */
async function main(): Promise<void> {
  const log = (line: string) => console.log(`${new Date().toISOString()} ${line}`);
  const config = loadServerConfig(process.env);
  const runtime = await createTaskRuntime(config);
  const server = await startApiServer({
    databasePath: config.databasePath,
    runTask: startAgentTask,
    taskDefaults: runtime.taskDefaults,
    gitHostDescription: config.gitHost === "github" ? "github: https://github.com/owner/name URLs" : "local: paths and file:// URLs on the server",
    apiKey: config.apiKey,
    concurrency: config.concurrency,
    bodyLimitBytes: config.bodyLimitBytes,
    corsOrigin: config.corsOrigin,
    host: config.host,
    port: config.port,
    log,
  });
  for (const line of runtime.description) log(line);
  log(`jobs: ${config.databasePath}, ${config.concurrency} at a time`);
  if (!config.apiKey) log("WARNING: no RUNNING_AGENT_API_KEY set: anyone who can reach this port can submit and cancel jobs.");
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
