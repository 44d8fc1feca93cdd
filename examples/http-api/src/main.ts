import { parseArgs } from "node:util";
import { startServerProcess, stopOnSignals } from "./server-process.js";

/** `pnpm start [--role api|worker|both]`: the HTTP API and/or a worker, configured from environment variables (see the README). */
async function main(): Promise<void> {
  const log = (line: string) => console.log(`${new Date().toISOString()} ${line}`);
  const { values } = parseArgs({ options: { role: { type: "string" } }, strict: true });
  const server = await startServerProcess({ ...process.env, ...(values.role ? { RUNNING_AGENT_ROLE: values.role } : {}) }, { log });
  stopOnSignals(log, server.stop);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
