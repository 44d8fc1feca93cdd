import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { createLocalGitHost, createLocalSandbox, startAgentTask } from "@running-agent/core";
import { createTestRepository, type TestRepository } from "@running-agent/core/testing";
import { createGitHub } from "@running-agent/git-github";
import { startGitHubServer, type GitHubServer } from "@running-agent/git-github/testing";
import { startApiServer, type ApiServer } from "./api-server.js";
import { OFFLINE_NOTE_FILE, startOfflineModel, type OfflineModel } from "./offline-model.js";
import { readServerSentEvents } from "./read-server-sent-events.js";

const run = promisify(execFile);

/** Sandbox sessions still on disk, and processes still using the folder (OpenCode servers, bubblewrap). */
function leftovers(folder: string): string[] {
  const sessions = readdirSync(folder).filter((name) => name.startsWith("running-agent-") && !name.startsWith("running-agent-test-repo-"));
  const processes = execFileSync("ps", ["-eo", "pid=,args="], { encoding: "utf8" })
    .split("\n")
    .filter((line) => line.includes(folder) && !line.includes("ps -eo"));
  return [...sessions, ...processes];
}

/**
 * The seed README's curl commands, verbatim (sections 3, 4 and 5). Only the host is replaced
 * (https://your-name--agent-api-api.modal.run → this server) and JOB_ID by the submitted job's id.
 */
const SEED_SUBMIT = `curl -X POST https://your-name--agent-api-api.modal.run/submit \\
  -H "Content-Type: application/json" \\
  -d '{
    "repo_url": "https://github.com/you/your-repo.git",
    "task": "Add unit tests for the utils module"
  }'`;
const SEED_STATUS = "curl https://your-name--agent-api-api.modal.run/status/JOB_ID";
const SEED_RESULT = "curl https://your-name--agent-api-api.modal.run/result/JOB_ID";
const SEED_HOST = "https://your-name--agent-api-api.modal.run";

async function shell(command: string): Promise<any> {
  const { stdout } = await run("sh", ["-c", `${command} --silent --show-error`]);
  return JSON.parse(stdout);
}

async function waitForEnd(url: string, jobId: string): Promise<any> {
  for (;;) {
    const job = (await (await fetch(`${url}/status/${jobId}`)).json()) as any;
    if (!["queued", "running"].includes(job.status)) return job;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe("with the real core, the local sandbox and the offline model", () => {
  let folder: string;
  let model: OfflineModel;

  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), "http-api-e2e-"));
    model = await startOfflineModel();
  });

  afterAll(async () => {
    await model?.close();
    await rm(folder, { recursive: true, force: true });
  });

  it("submit → the job completes → the result has the change request the local Git host recorded", async () => {
    const repository: TestRepository = await createTestRepository({ "README.md": "# Sample\n" }, { parent: folder });
    const gitHost = createLocalGitHost();
    await using server: ApiServer = await startApiServer({
      databasePath: join(folder, "local.db"),
      runTask: startAgentTask,
      taskDefaults: { sandbox: createLocalSandbox({ tempDirectory: folder }), gitHost, model: model.model },
    });
    const submitted = (await (
      await fetch(`${server.url}/submit`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ repo_url: repository.path, task: "Note the task", checks: [{ name: "note-written", command: `test -s ${OFFLINE_NOTE_FILE}` }], max_fix_rounds: 1 }) })
    ).json()) as { job_id: string };
    const streamed = await readServerSentEvents(`${server.url}/jobs/${submitted.job_id}/events`);
    expect(streamed.at(-1)).toMatchObject({ event: "end", data: { status: "completed" } });
    const phases = streamed.filter((event) => event.event === "agent-event" && event.data.type === "phase" && event.data.status === "completed").map((event) => event.data.phase);
    expect(phases).toEqual(expect.arrayContaining(["validate", "sandbox", "clone", "agent", "collect", "commit", "push", "pull-request"]));

    const result = (await (await fetch(`${server.url}/result/${submitted.job_id}`)).json()) as any;
    expect(result).toMatchObject({ status: "completed", changes: [{ path: OFFLINE_NOTE_FILE, status: "added" }], error: null });
    const [changeRequest] = await gitHost.listChangeRequests(repository.path);
    expect(result.pr_url).toBe(changeRequest!.url);
    expect(changeRequest!.head).toBe(result.branch);
    expect(await repository.git("show", `${result.branch}:${OFFLINE_NOTE_FILE}`)).toContain("Note the task");
    expect(result.timings.total).toBeGreaterThan(0);
    // The check ran in the sandbox before the change request opened, and /result shows it.
    expect(result.checks).toMatchObject({ passed: true, onChecksFailed: "draft", rounds: [{ round: 0, passed: true, checks: [{ name: "note-written", passed: true, exitCode: 0 }] }] });
    const refused = await fetch(`${server.url}/submit`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ repo_url: repository.path, task: "x", checks: "npm test" }) });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toContain('checks must be "auto" or a list');
    expect(result.logs.some((line: string) => line.includes(`opened change request #1: ${changeRequest!.url}`))).toBe(true);
    // The job's commit against its parent, read back from the local Git host's repository.
    const diff = await fetch(`${server.url}/jobs/${submitted.job_id}/diff`);
    expect(diff.headers.get("content-type")).toBe("text/x-diff; charset=utf-8");
    expect(diff.headers.get("x-commit")).toBe(result.commit);
    const diffText = await diff.text();
    expect(diffText).toContain(`diff --git a/${OFFLINE_NOTE_FILE} b/${OFFLINE_NOTE_FILE}\nnew file mode 100644`);
    expect(diffText).toMatch(/^\+.*Note the task/m);
    expect(diffText).not.toContain("README.md");
    expect(leftovers(folder)).toEqual([]);
  });

  describe("the seed README's curl commands, unchanged but for the host", () => {
    let github: GitHubServer;
    let server: ApiServer;
    const token = "ghp_serverDefaultToken0000000000";

    beforeAll(async () => {
      github = await startGitHubServer();
      await github.createRepository({ owner: "you", name: "your-repo", files: { "src/utils.ts": "export const one = 1;\n" } });
      github.grantToken({ login: "you", token });
      // github.com URLs, answered by the local GitHub-compatible server.
      const gitHost = createGitHub({ token, baseUrl: github.apiUrl, webUrl: "https://github.com", gitUrl: github.gitUrl });
      server = await startApiServer({
        databasePath: join(folder, "seed.db"),
        runTask: startAgentTask,
        taskDefaults: { sandbox: createLocalSandbox({ tempDirectory: folder }), gitHost, model: model.model },
      });
    });

    afterAll(async () => {
      await server?.close();
      await github?.close();
    });

    it("POST /submit, GET /status/JOB_ID and GET /result/JOB_ID answer as the README says", async () => {
      const submitted = await shell(SEED_SUBMIT.replace(SEED_HOST, server.url));
      expect(Object.keys(submitted).sort()).toEqual(["job_id", "status"]);
      expect(submitted.status).toBe("queued");

      const status = await shell(SEED_STATUS.replace(SEED_HOST, server.url).replace("JOB_ID", submitted.job_id));
      expect(status).toMatchObject({ job_id: submitted.job_id, repo_url: "https://github.com/you/your-repo.git", task: "Add unit tests for the utils module" });
      expect(["queued", "running"]).toContain(status.status);

      const ended = await waitForEnd(server.url, submitted.job_id);
      expect(ended.error).toBeNull();
      const result = await shell(SEED_RESULT.replace(SEED_HOST, server.url).replace("JOB_ID", submitted.job_id));
      // "Response includes the PR URL, logs, and timing info."
      expect(result.status).toBe("completed");
      expect(result.pr_url).toMatch(/\/you\/your-repo\/pull\/1$/);
      expect(result.logs.length).toBeGreaterThan(5);
      expect(result.timings).toMatchObject({ total: expect.any(Number), agent: expect.any(Number) });
      const [pullRequest] = github.pullRequests("you/your-repo");
      expect(pullRequest).toMatchObject({ number: 1 });
      expect(await github.readFile("you/your-repo", result.branch, OFFLINE_NOTE_FILE)).toContain("Add unit tests for the utils module");
      expect(JSON.stringify(result)).not.toContain(token);
      // The diff is read from the GitHub-compatible server's repository with the server's token.
      const diff = await (await fetch(`${server.url}/jobs/${submitted.job_id}/diff`)).text();
      expect(diff).toContain(`+++ b/${OFFLINE_NOTE_FILE}`);
      expect(diff).toMatch(/^\+.*Add unit tests for the utils module/m);
      expect(diff).not.toContain("src/utils.ts");
      expect(leftovers(folder)).toEqual([]);
    });

    it("a per-request github_token is used for that job and never reaches the database", async () => {
      const personalToken = "ghp_personalToken11111111111111";
      github.grantToken({ login: "contributor", token: personalToken, repositories: ["you/your-repo"] });
      const response = await fetch(`${server.url}/submit`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ repo_url: "https://github.com/you/your-repo.git", task: "Add a contributor note", github_token: personalToken, user_id: "contributor" }),
      });
      const submitted = (await response.json()) as { job_id: string };
      const ended = await waitForEnd(server.url, submitted.job_id);
      expect(ended).toMatchObject({ status: "completed", user_id: "contributor", error: null });
      // The pull request was opened as the token's user, not with the server's token.
      expect(github.pullRequests("you/your-repo").at(-1)).toMatchObject({ user: "contributor", title: "Add a contributor note" });
      await server.close();
      for (const file of readdirSync(folder).filter((name) => name.startsWith("seed.db"))) {
        expect(readFileSync(join(folder, file)).includes(personalToken), file).toBe(false);
      }
    });
  });
});
