import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createTestRepository } from "@running-agent/core/testing";
import { startPostgresCluster, type PostgresCluster } from "@running-agent/jobs/testing";
import { startGitHubServer, type GitHubServer } from "@running-agent/git-github/testing";
import { OFFLINE_NOTE_FILE } from "./offline-model.js";
import { readServerSentEvents } from "./read-server-sent-events.js";
import { startApiProcess, type ApiProcess } from "./start-api-process.js";

const run = promisify(execFile);
const API_KEY = "fleet-test-api-key";
const SERVER_TOKEN = "ghp_fleetServerToken000000000000";
const started: ApiProcess[] = [];
let folder: string;

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), "http-api-fleet-"));
});
afterEach(async () => {
  for (const process of started.splice(0)) await process.kill();
});
afterAll(async () => {
  await rm(folder, { recursive: true, force: true });
});

async function curlJson(args: string[]): Promise<any> {
  const { stdout } = await run("curl", ["--silent", "--show-error", ...args]);
  return JSON.parse(stdout);
}

async function statusOf(api: ApiProcess, jobId: string): Promise<any> {
  return (await fetch(`${api.url}/status/${jobId}`)).json();
}

async function waitForJob(api: ApiProcess, jobId: string, check: (job: any) => boolean): Promise<any> {
  for (;;) {
    const job = await statusOf(api, jobId);
    if (check(job)) return job;
    if (!["queued", "running"].includes(job.status)) throw new Error(`job ${jobId} ended ${job.status}: ${JSON.stringify(job.error)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe("API and worker processes on one PostgreSQL database", () => {
  let cluster: PostgresCluster;
  let github: GitHubServer;
  let api: ApiProcess;
  let worker: ApiProcess;
  let connectionString: string;

  beforeAll(async () => {
    cluster = await startPostgresCluster();
    connectionString = await cluster.createDatabase();
    github = await startGitHubServer();
    await github.createRepository({ owner: "you", name: "your-repo", files: { "src/utils.ts": "export const one = 1;\n" } });
    github.grantToken({ login: "you", token: SERVER_TOKEN });
  });
  afterAll(async () => {
    await github?.close();
    await cluster?.stop();
  });

  async function startFleet(): Promise<void> {
    const environment = {
      DATABASE_URL: connectionString,
      RUNNING_AGENT_SECRET_KEY: randomBytes(32).toString("base64"),
      RUNNING_AGENT_API_KEY: API_KEY,
      RUNNING_AGENT_GIT_HOST: "github",
      GITHUB_TOKEN: SERVER_TOKEN,
      GITHUB_API_URL: github.apiUrl,
      GITHUB_WEB_URL: "https://github.com",
      GITHUB_GIT_URL: github.gitUrl,
      RUNNING_AGENT_MODEL: "scripted",
      // Each answer takes 2 s: the job is still in its agent phase when the test cancels it.
      RUNNING_AGENT_SCRIPTED_MODEL_DELAY_MS: "2000",
      RUNNING_AGENT_CONCURRENCY: "2",
      TMPDIR: folder,
    };
    api = await startApiProcess(environment, ["--role", "api"]);
    started.push(api);
    worker = await startApiProcess(environment, ["--role", "worker"]);
    started.push(worker);
  }

  it("the seed's curl flow works against the API process while the job runs in the worker process; a per-request token is sealed in the database", { timeout: 300_000 }, async () => {
    await startFleet();
    expect(api.output()).toContain("role api: worker processes run the jobs");
    const submitted = await curlJson(["-X", "POST", `${api.url}/submit`, "-H", "Content-Type: application/json", "-H", `Authorization: Bearer ${API_KEY}`, "-d", JSON.stringify({ repo_url: "https://github.com/you/your-repo.git", task: "Add unit tests for the utils module" })]);
    expect(submitted).toEqual({ job_id: expect.any(String), status: "queued" });
    const running = await waitForJob(api, submitted.job_id, (job) => job.status === "running");
    expect(running.task).toBe("Add unit tests for the utils module");
    // The live stream from the API process shows the worker's events and ends with the job.
    const streamed = await readServerSentEvents(`${api.url}/jobs/${submitted.job_id}/events`);
    expect(streamed.at(-1)).toMatchObject({ event: "end", data: { status: "completed" } });
    expect(streamed.some((event) => event.event === "agent-event" && event.data.type === "phase" && event.data.phase === "pull-request")).toBe(true);

    const status = await curlJson([`${api.url}/status/${submitted.job_id}`]);
    expect(status).toMatchObject({ status: "completed", error: null, pr_url: expect.stringMatching(/\/you\/your-repo\/pull\/\d+$/) });
    const result = await curlJson([`${api.url}/result/${submitted.job_id}`]);
    expect(result.logs.length).toBeGreaterThan(5);
    expect(await github.readFile("you/your-repo", result.branch, OFFLINE_NOTE_FILE)).toContain("Add unit tests for the utils module");
    expect(worker.output()).toContain(`job ${submitted.job_id}: completed`);
    expect(api.output()).not.toContain(`job ${submitted.job_id}: attempt`);

    // A per-request token goes from the API process to the worker sealed in PostgreSQL.
    const personalToken = "ghp_fleetPersonalToken1111111111";
    github.grantToken({ login: "contributor", token: personalToken, repositories: ["you/your-repo"] });
    const withToken = (await (
      await fetch(`${api.url}/submit`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${API_KEY}` },
        body: JSON.stringify({ repo_url: "https://github.com/you/your-repo.git", task: "Add a contributor note", github_token: personalToken }),
      })
    ).json()) as { job_id: string };
    await waitForJob(api, withToken.job_id, (job) => job.status === "completed");
    expect(github.pullRequests("you/your-repo").at(-1)).toMatchObject({ user: "contributor", title: "Add a contributor note" });
    const bytes = await cluster.rawBytes();
    expect(bytes.includes(Buffer.from("Add a contributor note"))).toBe(true);
    expect(bytes.includes(Buffer.from(personalToken))).toBe(false);
  });

  it("a cancel sent to the API process stops the job running in the worker process within 2 s", { timeout: 300_000 }, async () => {
    await startFleet();
    const response = await fetch(`${api.url}/submit`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${API_KEY}` },
      body: JSON.stringify({ repo_url: "https://github.com/you/your-repo.git", task: "Cancel me" }),
    });
    const { job_id: jobId } = (await response.json()) as { job_id: string };
    await waitForJob(api, jobId, (job) => job.status === "running" && job.phase === "agent");
    const sentAt = Date.now();
    const cancelled = await (await fetch(`${api.url}/jobs/${jobId}/cancel`, { method: "POST", headers: { authorization: `Bearer ${API_KEY}` } })).json();
    expect(cancelled).toEqual({ job_id: jobId, status: "cancelled" });
    // The worker logs, with its clock (this machine's), when the cancel reached the job.
    const line = worker.output().split("\n").find((candidate) => candidate.includes(`job ${jobId}: cancel requested`));
    expect(line).toBeDefined();
    expect(Date.parse(line!.split(" ")[0]!) - sentAt).toBeLessThan(2000);
    expect(await statusOf(api, jobId)).toMatchObject({ status: "cancelled", error: { code: "ABORTED" } });
    expect(github.pullRequests("you/your-repo").some((request: { title: string }) => request.title === "Cancel me")).toBe(false);
  });
});

describe("two API processes on one embedded database", () => {
  it("the second refuses to start with a clear error and changes no row", { timeout: 120_000 }, async () => {
    const repository = await createTestRepository({ "README.md": "# Sample\n" }, { parent: folder });
    const environment = { RUNNING_AGENT_DB: join(folder, "embedded.db"), RUNNING_AGENT_API_KEY: API_KEY, RUNNING_AGENT_MODEL: "scripted", RUNNING_AGENT_SCRIPTED_MODEL_DELAY_MS: "600000", RUNNING_AGENT_CONCURRENCY: "1", TMPDIR: folder };
    const first = await startApiProcess(environment);
    started.push(first);
    const submit = async (task: string) =>
      ((await (await fetch(`${first.url}/submit`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${API_KEY}` }, body: JSON.stringify({ repo_url: repository.path, task }) })).json()) as { job_id: string }).job_id;
    const runningId = await submit("Running");
    const queuedId = await submit("Queued");
    await waitForJob(first, runningId, (job) => job.status === "running" && job.phase === "agent");
    const before = ((await (await fetch(`${first.url}/jobs`)).json()) as { jobs: unknown[] }).jobs;

    const refused = await startApiProcess(environment).then(
      (second) => {
        started.push(second);
        return undefined;
      },
      (error: Error) => error.message,
    );
    expect(refused).toContain("exited with 1 before listening");
    expect(refused).toContain("is in use by another process");
    expect(refused).not.toContain("listening on");

    const after = ((await (await fetch(`${first.url}/jobs`)).json()) as { jobs: unknown[] }).jobs;
    expect(after).toEqual(before);
    expect(await statusOf(first, runningId)).toMatchObject({ status: "running", phase: "agent" });
    expect(await statusOf(first, queuedId)).toMatchObject({ status: "queued" });
    expect(first.output()).not.toContain("queued again");
  });
});
