/**
 * Starts the bot as an HTTP server. Configuration comes from the environment:
 *   GITHUB_WEBHOOK_SECRET        the webhook's secret (required)
 *   GITHUB_TOKEN                 a token that can push, comment and open pull requests, or a GitHub App:
 *   GITHUB_APP_ID, GITHUB_APP_INSTALLATION_ID, and GITHUB_APP_PRIVATE_KEY (the PEM) or GITHUB_APP_PRIVATE_KEY_PATH
 *                                (an App is what check runs need)
 *   GITHUB_API_URL               GitHub Enterprise Server's API, e.g. https://ghe.example.com/api/v3
 *   PORT, HOST                   where to listen (default 3000 on 127.0.0.1)
 *   AGENT_LABEL                  the label that starts a task (default agent)
 *   AGENT_LOGIN                  the bot's login (default: read from GitHub)
 *   AGENT_ASSIGNEE               the user whose assignment starts a task (default: the bot's login; an App's bot cannot be assigned)
 *   AGENT_ALLOWED_BOTS           bots that may start tasks, e.g. dependabot[bot],renovate[bot]
 *   AGENT_CHECK_RUNS             1 or 0: report runs as check runs (default 1 with an App, 0 with a token)
 *   AGENT_MODEL                  provider/model (default: the core's, with its API key variable)
 *   RUNNING_AGENT_SANDBOX        local (bubblewrap, default), local-unisolated (or AGENT_UNISOLATED=1), docker, modal
 *                                (RUNNING_AGENT_DOCKER_IMAGE / _NETWORK, RUNNING_AGENT_MODAL_APP / _IMAGE)
 *   AGENT_JOBS_DB                a SQLite file for the bot's jobs (seen deliveries survive a restart); default: memory
 *   DATABASE_URL                 postgres://…: the jobs in PostgreSQL instead (several bot processes share them),
 *                                with RUNNING_AGENT_SECRET_KEY for the tokens jobs carry
 */
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { openPostgresJobStore, openSqliteJobStore } from "@running-agent/jobs";
import type { GitHubSettings } from "@running-agent/git-github";
import { createGitHubBot, type GitHubBot } from "./github-bot.js";
import { sandboxFromEnvironment } from "./sandbox-from-environment.js";

const env = process.env;
const secret = env.GITHUB_WEBHOOK_SECRET;
const appId = env.GITHUB_APP_ID;
const usage = "Set GITHUB_WEBHOOK_SECRET and GITHUB_TOKEN, or GITHUB_WEBHOOK_SECRET and a GitHub App: GITHUB_APP_ID, GITHUB_APP_INSTALLATION_ID and GITHUB_APP_PRIVATE_KEY or GITHUB_APP_PRIVATE_KEY_PATH (see README.md).";
if (!secret || (!env.GITHUB_TOKEN && !appId)) {
  console.error(usage);
  process.exit(64);
}

let github: GitHubSettings;
let bot: GitHubBot;
let sandbox: Awaited<ReturnType<typeof sandboxFromEnvironment>>;
try {
  const apiUrl = env.GITHUB_API_URL ? { baseUrl: env.GITHUB_API_URL } : {};
  if (appId) {
    const privateKey = env.GITHUB_APP_PRIVATE_KEY ?? (env.GITHUB_APP_PRIVATE_KEY_PATH ? readFileSync(env.GITHUB_APP_PRIVATE_KEY_PATH, "utf8") : undefined);
    const installationId = Number(env.GITHUB_APP_INSTALLATION_ID);
    if (!privateKey || !Number.isInteger(installationId) || installationId <= 0) throw new TypeError(usage);
    github = { app: { appId: /^\d+$/.test(appId) ? Number(appId) : appId, privateKey, installationId }, ...apiUrl };
  } else {
    github = { token: env.GITHUB_TOKEN!, ...apiUrl };
  }
  sandbox = await sandboxFromEnvironment(env);
} catch (error) {
  console.error(`github-bot: ${(error as Error).message}`);
  process.exit(64);
}

const store = env.DATABASE_URL
  ? await openPostgresJobStore({ connectionString: env.DATABASE_URL, secretKey: env.RUNNING_AGENT_SECRET_KEY })
  : env.AGENT_JOBS_DB
    ? openSqliteJobStore({ path: env.AGENT_JOBS_DB })
    : undefined;

try {
  bot = createGitHubBot({
    ...(store ? { store } : {}),
    webhookSecret: secret,
    github,
    sandbox: sandbox.provider,
    ...(env.AGENT_LABEL ? { label: env.AGENT_LABEL } : {}),
    ...(env.AGENT_LOGIN ? { login: env.AGENT_LOGIN } : {}),
    ...(env.AGENT_ASSIGNEE ? { assignee: env.AGENT_ASSIGNEE } : {}),
    ...(env.AGENT_ALLOWED_BOTS ? { allowedBots: env.AGENT_ALLOWED_BOTS.split(",").map((name) => name.trim()).filter(Boolean) } : {}),
    ...(env.AGENT_CHECK_RUNS ? { checkRuns: env.AGENT_CHECK_RUNS === "1" } : {}),
    ...(env.AGENT_MODEL ? { model: env.AGENT_MODEL } : {}),
  });
} catch (error) {
  // A bad App key or token is refused here, before the server listens.
  console.error(`github-bot: ${(error as Error).message}`);
  await store?.close();
  process.exit(64);
}

const server = createServer((request, response) => bot.handleRequest(request, response));
const port = Number(env.PORT ?? 3000);
const host = env.HOST ?? "127.0.0.1";
server.listen(port, host, () => console.log(`github-bot: listening on http://${host}:${port}/webhooks (${github.app ? `GitHub App ${github.app.appId}` : "token"}, sandbox ${sandbox.description})`));

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
