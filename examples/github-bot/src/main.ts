/**
 * Starts the bot as an HTTP server. Configuration comes from the environment:
 *   GITHUB_WEBHOOK_SECRET  the webhook's secret (required)
 *   GITHUB_TOKEN           a token that can push, comment and open pull requests (required)
 *   GITHUB_API_URL         GitHub Enterprise Server's API, e.g. https://ghe.example.com/api/v3
 *   PORT, HOST             where to listen (default 3000 on 127.0.0.1)
 *   AGENT_LABEL            the label that starts a task (default agent)
 *   AGENT_MODEL            provider/model (default: the core's, with its API key variable)
 *   AGENT_UNISOLATED=1     run the local sandbox without bubblewrap
 *   AGENT_JOBS_DB          a SQLite file for the bot's jobs (seen deliveries survive a restart); default: memory
 *   DATABASE_URL           postgres://…: the jobs in PostgreSQL instead (several bot processes share them),
 *                          with RUNNING_AGENT_SECRET_KEY for the tokens jobs carry
 */
import { createServer } from "node:http";
import { createLocalSandbox } from "@running-agent/core";
import { openPostgresJobStore, openSqliteJobStore } from "@running-agent/jobs";
import { createGitHubBot } from "./github-bot.js";

const secret = process.env.GITHUB_WEBHOOK_SECRET;
const token = process.env.GITHUB_TOKEN;
if (!secret || !token) {
  console.error("Set GITHUB_WEBHOOK_SECRET and GITHUB_TOKEN (see README.md).");
  process.exit(64);
}

const store = process.env.DATABASE_URL
  ? await openPostgresJobStore({ connectionString: process.env.DATABASE_URL, secretKey: process.env.RUNNING_AGENT_SECRET_KEY })
  : process.env.AGENT_JOBS_DB
    ? openSqliteJobStore({ path: process.env.AGENT_JOBS_DB })
    : undefined;

const bot = createGitHubBot({
  ...(store ? { store } : {}),
  webhookSecret: secret,
  github: { token, ...(process.env.GITHUB_API_URL ? { baseUrl: process.env.GITHUB_API_URL } : {}) },
  sandbox: createLocalSandbox({ isolation: process.env.AGENT_UNISOLATED === "1" ? "none" : "bubblewrap" }),
  ...(process.env.AGENT_LABEL ? { label: process.env.AGENT_LABEL } : {}),
  ...(process.env.AGENT_MODEL ? { model: process.env.AGENT_MODEL } : {}),
});

const server = createServer((request, response) => bot.handleRequest(request, response));
const port = Number(process.env.PORT ?? 3000);
const host = process.env.HOST ?? "127.0.0.1";
server.listen(port, host, () => console.log(`github-bot: listening on http://${host}:${port}/webhooks`));

let stopping = false;
const stop = () => {
  if (stopping) process.exit(130);
  stopping = true;
  console.log("github-bot: stopping, cancelling running tasks (again to quit at once)");
  server.close();
  void bot
    .close()
    .then(() => store?.close())
    .then(() => process.exit(0));
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
