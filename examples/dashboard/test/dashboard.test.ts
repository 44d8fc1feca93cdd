import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { build } from "vite";
import { startAgentTask } from "@running-agent/core";
import { createTestRepository, type TestRepository } from "@running-agent/core/testing";
import { createTaskRuntime, loadServerConfig, startApiServer, type ApiServer, type TaskRuntime } from "@running-agent/example-http-api";

const dashboardRoot = join(dirname(fileURLToPath(import.meta.url)), "..");
const screenshotPath = join(dashboardRoot, "test-results", "finished-job.png");
/** Debian's Chromium; the test never downloads a browser. */
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"];
const API_KEY = "dashboard-test-key";

describe("the dashboard in headless Chromium", () => {
  let workDirectory: string;
  let repository: TestRepository;
  let runtime: TaskRuntime;
  let api: ApiServer;
  let context: BrowserContext;
  let page: Page;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`No Chromium at ${CHROMIUM}: install Debian's package (apt-get install -y chromium) or set CHROMIUM_PATH.`);
    workDirectory = await mkdtemp(join(tmpdir(), "dashboard-test-"));
    repository = await createTestRepository({ "README.md": "# Sample\n" }, { parent: workDirectory });
    runtime = await createTaskRuntime(loadServerConfig({ RUNNING_AGENT_MODEL: "scripted", RUNNING_AGENT_SANDBOX: "local", RUNNING_AGENT_GIT_HOST: "local" }));
    // The production build, served by the API itself, as `pnpm start` does: the page talks to its own origin.
    const outDir = join(workDirectory, "dist");
    await build({ root: dashboardRoot, logLevel: "warn", build: { outDir, emptyOutDir: true } });
    api = await startApiServer({
      databasePath: join(workDirectory, "jobs.db"),
      runTask: startAgentTask,
      taskDefaults: runtime.taskDefaults,
      apiKey: API_KEY,
      concurrency: 1,
      dashboardDirectory: outDir,
    });

    const profile = join(workDirectory, "chromium-profile");
    await mkdir(profile);
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1280, height: 800 } });
    page = context.pages()[0] ?? (await context.newPage());
  });

  afterAll(async () => {
    await context?.close();
    // Chromium is gone with its context: no process still uses this test's profile.
    const browsers = execFileSync("ps", ["-eo", "pid=,args="], { encoding: "utf8" })
      .split("\n")
      .filter((line) => workDirectory && line.includes(join(workDirectory, "chromium-profile")));
    await api?.close();
    await runtime?.close();
    await repository?.remove();
    await rm(workDirectory, { recursive: true, force: true });
    expect(browsers).toEqual([]);
  });

  it("submits a task through the form, streams its log, and shows the finished job with its PR link", async () => {
    const pageErrors: string[] = [];
    page.on("pageerror", (error) => pageErrors.push(error.message));
    await page.goto(`${api.url}/`);
    await expect.poll(async () => page.locator(".app-header .api").textContent()).toBe(api.url);

    await page.getByLabel("API key").fill(API_KEY);
    await page.getByLabel("Repository").fill(repository.path);
    await page.getByLabel("Task").fill("Write down the task in a note");
    await page.getByRole("button", { name: "Run agent" }).click();

    // The new job is selected; its log streams from the API's SSE endpoint.
    const detail = page.locator(".job-detail");
    await detail.getByText("phase sandbox started").waitFor({ timeout: 60_000 });
    const prLink = page.getByTestId("pr-link");
    await prLink.waitFor({ timeout: 180_000 });
    await detail.locator(".badge-completed").waitFor({ timeout: 30_000 });
    await detail.getByText(/Changed: RUNNING_AGENT_TASK\.md \(added\)/).waitFor({ timeout: 30_000 });

    const href = await prLink.getAttribute("href");
    const jobs = (await (await fetch(`${api.url}/jobs`)).json()) as { jobs: { job_id: string; status: string; pr_url: string | null }[] };
    expect(jobs.jobs).toHaveLength(1);
    expect(jobs.jobs[0]).toMatchObject({ status: "completed", pr_url: href });
    expect(href).toMatch(/^local:\/\/.*\/change-requests\/1$/);
    const log = await page.getByTestId("job-log").textContent();
    expect(log).toContain("phase pull-request completed");
    expect(log).toContain("opened change request #1");
    // The agent's answer, assembled from the streamed deltas (the API streams agent.text without the text so far).
    expect(log).toContain("agent: Recorded the task in RUNNING_AGENT_TASK.md.");
    // The job list shows the same job as completed.
    await page.locator(".job-list .job.selected .badge-completed").waitFor();
    expect(pageErrors).toEqual([]);

    await mkdir(dirname(screenshotPath), { recursive: true });
    await page.screenshot({ path: screenshotPath, fullPage: true });
  });

  it("shows the API's error when the form is submitted with a repo the Git host cannot serve", async () => {
    await page.getByLabel("Repository").fill("ssh://git@example.invalid/owner/repo.git");
    await page.getByLabel("Task").fill("Anything");
    await page.getByRole("button", { name: "Run agent" }).click();
    await expect.poll(async () => page.getByRole("alert").textContent()).toContain("is not a repository this server's Git host");
    const jobs = (await (await fetch(`${api.url}/jobs`)).json()) as { jobs: unknown[] };
    expect(jobs.jobs).toHaveLength(1);
  });

  it("cancels a running job from its page", async () => {
    // A second API whose model takes ten minutes per answer, so that the job is still running when Cancel is clicked.
    const slowRuntime = await createTaskRuntime(loadServerConfig({ RUNNING_AGENT_MODEL: "scripted", RUNNING_AGENT_SCRIPTED_MODEL_DELAY_MS: "600000" }));
    const slowApi = await startApiServer({ databasePath: join(workDirectory, "slow.db"), runTask: startAgentTask, taskDefaults: slowRuntime.taskDefaults, apiKey: API_KEY });
    try {
      // The page from the first API, talking to another origin: CORS is exercised too.
      await page.goto(`${api.url}/?api=${encodeURIComponent(slowApi.url)}`);
      await page.getByLabel("API key").fill(API_KEY);
      await page.getByLabel("Repository").fill(repository.path);
      await page.getByLabel("Task").fill("A task that will be cancelled");
      await page.getByRole("button", { name: "Run agent" }).click();
      const detail = page.locator(".job-detail");
      await detail.getByText("phase agent started").waitFor({ timeout: 120_000 });
      await detail.getByRole("button", { name: "Cancel" }).click();
      await detail.locator(".badge-cancelled").waitFor({ timeout: 60_000 });
      await detail.locator("p.error", { hasText: "ABORTED" }).waitFor();
      const jobs = (await (await fetch(`${slowApi.url}/jobs`)).json()) as { jobs: { status: string; pr_url: string | null }[] };
      expect(jobs.jobs).toEqual([expect.objectContaining({ status: "cancelled", pr_url: null })]);
      // Cancelled jobs offer a retry instead.
      await detail.getByRole("button", { name: "Retry" }).waitFor();
    } finally {
      await slowApi.close();
      await slowRuntime.close();
    }
  });
});
