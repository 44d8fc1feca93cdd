import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { AxeBuilder } from "@axe-core/playwright";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { build } from "vite";
import { startAgentTask } from "@running-agent/core";
import { createTestRepository, type TestRepository } from "@running-agent/core/testing";
import { createTaskRuntime, loadServerConfig, startApiServer, type ApiServer, type ApiServerOptions, type TaskRuntime } from "@running-agent/example-http-api";

export const dashboardRoot = join(dirname(fileURLToPath(import.meta.url)), "..");
/** Where the browser tests save their screenshots (git-ignored). */
export const screenshotDirectory = join(dashboardRoot, "test-results");
/** Debian's Chromium; the tests never download a browser. */
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"];

/** The production build, into `outDir`, as `pnpm build` makes it; the API serves it, so the page talks to its own origin. */
export async function buildDashboard(outDir: string): Promise<void> {
  await build({ root: dashboardRoot, logLevel: "warn", build: { outDir, emptyOutDir: true } });
}

/** Headless Chromium with a profile in `workDirectory`; `close` also checks that no Chromium of this profile is left. */
export async function launchChromium(workDirectory: string): Promise<{ context: BrowserContext; page: Page; close(): Promise<string[]> }> {
  if (!existsSync(CHROMIUM)) throw new Error(`No Chromium at ${CHROMIUM}: install Debian's package (apt-get install -y chromium) or set CHROMIUM_PATH.`);
  const profile = join(workDirectory, "chromium-profile");
  await mkdir(profile, { recursive: true });
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1280, height: 800 } });
  // Every wait is for an element or an event; Playwright's 30 s default is too short for them on a
  // loaded machine (load 10 on 2 cores), where a page build or a job's step can take longer.
  context.setDefaultTimeout(90_000);
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context,
    page,
    async close() {
      await context.close();
      // Chromium is gone with its context: no process still uses this test's profile.
      return execFileSync("ps", ["-eo", "pid=,args="], { encoding: "utf8" })
        .split("\n")
        .filter((line) => line.includes(profile));
    },
  };
}

/** Saves a full-page screenshot under {@link screenshotDirectory}; returns its path. */
export async function saveScreenshot(page: Page, name: string): Promise<string> {
  await mkdir(screenshotDirectory, { recursive: true });
  const path = join(screenshotDirectory, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** axe-core's serious and critical violations on the page as it is now, one line each (rule, impact, the first elements). */
export async function seriousAccessibilityViolations(page: Page): Promise<string[]> {
  const results = await new AxeBuilder({ page }).analyze();
  return results.violations
    .filter((violation) => violation.impact === "serious" || violation.impact === "critical")
    .map((violation) => `${violation.id} (${violation.impact}): ${violation.help} at ${violation.nodes.slice(0, 3).map((node) => node.target.join(" ")).join(", ")}`);
}

/** Whether the page is wider than its viewport (something overflows sideways). */
export async function overflowsSideways(page: Page): Promise<boolean> {
  return page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
}

/** What a browser test file works with: one API serving the build, one browser page, one test repository. */
export interface DashboardUnderTest {
  workDirectory: string;
  repository: TestRepository;
  runtime: TaskRuntime;
  api: ApiServer;
  page: Page;
  /** Uncaught errors of the page so far. */
  pageErrors: string[];
  /** Submits through the API (not the form), with the key. */
  submit(body: object): Promise<string>;
  /** Stops everything; returns Chromium processes of this test's profile still running (none expected). */
  close(): Promise<string[]>;
}

/** The API key the test servers want. */
export const TEST_API_KEY = "dashboard-test-key";

/**
 * Builds the dashboard and starts the API serving it, configured from `environment` as
 * `pnpm start` would be (the real core: the local sandbox, the local Git host, the scripted
 * model), one job at a time, with `serverOptions` on top, then headless Chromium. The page
 * talks to the API's own origin.
 */
export async function startDashboardUnderTest(environment: Record<string, string>, serverOptions: Partial<ApiServerOptions> = {}): Promise<DashboardUnderTest> {
  const workDirectory = await mkdtemp(join(tmpdir(), "dashboard-test-"));
  const repository = await createTestRepository({ "README.md": "# Sample\n" }, { parent: workDirectory });
  const runtime = await createTaskRuntime(loadServerConfig({ RUNNING_AGENT_MODEL: "scripted", RUNNING_AGENT_SANDBOX: "local", RUNNING_AGENT_GIT_HOST: "local", ...environment }));
  const outDir = join(workDirectory, "dist");
  await buildDashboard(outDir);
  const api = await startApiServer({ databasePath: join(workDirectory, "jobs.db"), runTask: startAgentTask, taskDefaults: runtime.taskDefaults, apiKey: TEST_API_KEY, concurrency: 1, dashboardDirectory: outDir, ...serverOptions });
  const browser = await launchChromium(workDirectory);
  const pageErrors: string[] = [];
  browser.page.on("pageerror", (error) => pageErrors.push(error.message));
  return {
    workDirectory,
    repository,
    runtime,
    api,
    page: browser.page,
    pageErrors,
    async submit(body) {
      const response = await fetch(`${api.url}/submit`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${TEST_API_KEY}` }, body: JSON.stringify(body) });
      return ((await response.json()) as { job_id: string }).job_id;
    },
    async close() {
      const left = await browser.close();
      await api.close();
      await runtime.close();
      await repository.remove();
      await rm(workDirectory, { recursive: true, force: true });
      console.log(`dashboard screenshots: ${screenshotDirectory}`);
      return left;
    },
  };
}
