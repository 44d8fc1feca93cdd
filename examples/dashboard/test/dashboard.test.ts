import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Page } from "playwright-core";
import { startAgentTask } from "@running-agent/core";
import { startApiServer, type ApiServer } from "@running-agent/example-http-api";
import { overflowsSideways, saveScreenshot, seriousAccessibilityViolations, startDashboardUnderTest, TEST_API_KEY, type DashboardUnderTest } from "./browser-harness.js";

const API_KEY = TEST_API_KEY;
const NOTE_FILE = "RUNNING_AGENT_TASK.md";

/** The real core with the local sandbox, the local Git host and the scripted model; one API serving the build, one browser. */
describe("the dashboard in headless Chromium: a job's change, phases and result", () => {
  let harness: DashboardUnderTest;
  let page: Page;
  let api: ApiServer;
  /** The submit form (the job list's filters have fields of the same names). */
  const form = { getByLabel: (label: string) => page.locator("form.submit-form").getByLabel(label) };

  beforeAll(async () => {
    harness = await startDashboardUnderTest({});
    ({ page, api } = harness);
  });

  afterAll(async () => {
    expect(await harness?.close()).toEqual([]);
  });

  it("submits through the form with the advanced fields, then shows the phases with durations, the summary, usage, branch, commit, files and the diff", async () => {
    await page.goto(`${api.url}/`);
    await expect.poll(async () => page.getByTestId("api-address").textContent()).toBe(api.url);
    // The placeholder is a repo_url this server's Git host accepts (GET /config).
    const config = (await (await fetch(`${api.url}/config`)).json()) as { git_host: { repo_url_example: string } };
    await expect.poll(async () => form.getByLabel("Repository").getAttribute("placeholder")).toBe(config.git_host.repo_url_example);
    expect(harness.runtime.gitHost.supports(config.git_host.repo_url_example)).toBe(true);

    await page.getByLabel("API key").fill(API_KEY);
    await form.getByLabel("Repository").fill(harness.repository.path);
    await form.getByLabel("Task").fill("Write down the task in a note");
    // The server takes base branch, draft and labels, and offers no model choice.
    await page.getByText("Advanced").click();
    await page.getByLabel("Base branch").fill("main");
    await page.getByLabel("Labels").fill("agent, docs");
    await page.getByLabel("Open as a draft").check();
    expect(await page.getByLabel("Model").count()).toBe(0);
    await page.getByRole("button", { name: "Run agent" }).click();

    const detail = page.locator(".job-detail");
    await detail.locator(".badge-completed").waitFor({ timeout: 180_000 });
    const jobId = (await detail.getAttribute("data-job-id"))!;
    // A deep link: the address bar names the job.
    expect(new URL(page.url()).pathname).toBe(`/jobs/${jobId}`);
    const result = (await (await fetch(`${api.url}/result/${jobId}`)).json()) as { branch: string; commit: string; base_branch: string; summary: string; usage: { inputTokens: number }; pr_url: string; pull_request: { draft: boolean } };
    expect(result.base_branch).toBe("main");
    // Asked for as a draft, opened as one (the checks had nothing to fail), and marked so in the detail and in the list.
    expect(result.pull_request.draft).toBe(true);
    await detail.locator("header").getByTestId("draft-badge").waitFor();
    await page.locator(`.job-list a[data-job-id="${jobId}"]`).getByTestId("draft-badge").waitFor();

    // The stepper: every phase that ran is done with its duration; setup and verify had nothing to do.
    for (const phase of ["validate", "sandbox", "clone", "agent", "collect", "commit", "push", "pull-request", "teardown"]) {
      const step = detail.locator(`.step[data-phase="${phase}"]`);
      await expect.poll(async () => step.getAttribute("data-state")).toBe("completed");
      expect(await step.locator(".step-state").textContent()).toMatch(/^done · \d+(\.\d)? (ms|s)$|^done · \d+ min \d+ s$/);
    }
    expect(await detail.locator('.step[data-phase="verify"]').getAttribute("data-state")).toBe("skipped");
    await expect.poll(async () => page.getByTestId("summary").textContent()).toBe(result.summary);
    expect(await page.getByTestId("usage").textContent()).toContain(`${result.usage.inputTokens.toLocaleString("en")} in`);

    // The change: branch, commit, files, and the diff the server read from the pushed branch.
    expect(await page.getByTestId("branch").textContent()).toBe(`${result.branch} → main`);
    expect(await page.getByTestId("commit").textContent()).toBe(result.commit.slice(0, 12));
    expect(await detail.getByRole("list", { name: "Changed files" }).textContent()).toContain(`added ${NOTE_FILE}`);
    const diff = page.getByTestId("diff");
    await diff.locator(".diff-file figcaption", { hasText: NOTE_FILE }).waitFor();
    expect(await diff.locator(".diff-code-insert").allTextContents()).toContainEqual(expect.stringContaining("Write down the task in a note"));
    // The local Git host's change request has no web page: shown as text, not as a dead link.
    expect(await page.getByTestId("pr-link").count()).toBe(0);
    expect(await page.getByTestId("pr-local").textContent()).toContain(result.pr_url);
    expect(result.pr_url).toMatch(/^local:\/\//);
    // A completed job has nothing to retry.
    expect(await detail.getByRole("button", { name: "Retry" }).count()).toBe(0);
    expect(await page.getByTestId("job-log").textContent()).toContain("agent: Recorded the task in RUNNING_AGENT_TASK.md.");
    await saveScreenshot(page, "finished-job");
    expect(await seriousAccessibilityViolations(page)).toEqual([]);
  });

  it("in dark mode and at 390 px wide: the system's colour scheme, nothing clipped sideways, no serious accessibility violation", async () => {
    const lightBackground = await page.evaluate(() => getComputedStyle(document.documentElement).backgroundColor);
    await page.emulateMedia({ colorScheme: "dark" });
    const darkBackground = await page.evaluate(() => getComputedStyle(document.documentElement).backgroundColor);
    expect(darkBackground).not.toBe(lightBackground);
    await saveScreenshot(page, "finished-job-dark");
    expect(await seriousAccessibilityViolations(page)).toEqual([]);

    await page.emulateMedia({ colorScheme: "light" });
    await page.setViewportSize({ width: 390, height: 844 });
    expect(await overflowsSideways(page)).toBe(false);
    // The form's fields fit inside their panel.
    const panel = (await page.locator(".submit-form").boundingBox())!;
    const input = (await form.getByLabel("Repository").boundingBox())!;
    expect(input.x + input.width).toBeLessThanOrEqual(panel.x + panel.width);
    const header = (await page.locator(".app-header").boundingBox())!;
    expect(header.width).toBeLessThanOrEqual(390);
    await saveScreenshot(page, "phone");
    expect(await seriousAccessibilityViolations(page)).toEqual([]);
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  it("a deep link opens a job with checks: the verify phase, each check's result per round, and the fix round", async () => {
    // One check that passes and one that always fails: round 0 fails, the agent gets its fix round, round 1 fails too, and the pull request opens as a draft.
    const checks = [
      { name: "note-written", command: `test -s ${NOTE_FILE}` },
      { name: "always-fails", command: "exit 3" },
    ];
    const jobId = await harness.submit({ repo_url: harness.repository.path, task: "Note the task and check it", checks, max_fix_rounds: 1 });
    await page.goto(`${api.url}/jobs/${jobId}`);
    const detail = page.locator(`.job-detail[data-job-id="${jobId}"]`);
    await detail.locator(".badge-completed").waitFor({ timeout: 240_000 });
    await expect.poll(async () => detail.locator('.step[data-phase="verify"]').getAttribute("data-state")).toBe("completed");
    const rows = detail.locator(".checks tbody tr");
    await expect.poll(async () => (await rows.allTextContents()).map((text) => text.replace(/\d+(\.\d)? (ms|s)$/, ""))).toEqual([
      "0note-writtenpassed",
      "0always-failsfailed (exit 3)",
      "1note-writtenpassed",
      "1always-failsfailed (exit 3)",
    ]);
    expect(await detail.locator(".checks caption").textContent()).toBe("Checks · 1 fix round of 1");
    const result = (await (await fetch(`${api.url}/result/${jobId}`)).json()) as { agent_rounds: unknown[]; checks: { passed: boolean } };
    expect(result.agent_rounds).toHaveLength(2);
    expect(result.checks.passed).toBe(false);
    expect(await page.getByTestId("usage").textContent()).toContain("Agent rounds2");
    await saveScreenshot(page, "checks-and-fix-round");
  });

  it("a job validation refused shows its error and offers no retry; an unsupported repo is refused in the form", async () => {
    await form.getByLabel("Repository").fill(join(harness.workDirectory, "no-such-repository.git"));
    await form.getByLabel("Task").fill("Anything");
    await page.getByRole("button", { name: "Run agent" }).click();
    const detail = page.locator(".job-detail");
    await detail.locator(".badge-failed").waitFor({ timeout: 60_000 });
    expect(await detail.locator("p.error").textContent()).toMatch(/^REPO_NOT_FOUND in validate: /);
    expect(await detail.getByRole("button", { name: "Retry" }).count()).toBe(0);
    expect(await detail.locator('.step[data-phase="validate"]').getAttribute("data-state")).toBe("failed");

    await form.getByLabel("Repository").fill("ssh://git@example.invalid/owner/repo.git");
    await form.getByLabel("Task").fill("Anything else");
    await page.getByRole("button", { name: "Run agent" }).click();
    await expect.poll(async () => page.getByRole("alert").textContent()).toContain("is not a repository this server's Git host");
    const jobs = (await (await fetch(`${api.url}/jobs`)).json()) as { jobs: { job_id: string; pr_draft: boolean | null }[] };
    expect(jobs.jobs).toHaveLength(3);
    // Only the two draft pull requests are marked: the refused job has none.
    const refusedId = (await detail.getAttribute("data-job-id"))!;
    expect(jobs.jobs.find((job) => job.job_id === refusedId)!.pr_draft).toBeNull();
    await expect.poll(async () => page.locator(".job-list").getByTestId("draft-badge").count()).toBe(2);
    expect(await page.locator(`.job-list a[data-job-id="${refusedId}"]`).getByTestId("draft-badge").count()).toBe(0);
    expect(harness.pageErrors).toEqual([]);
  });
  it("with protected reads, the page reads nothing until given the key, then lists, streams and diffs with it in the Authorization header, never in a URL", async () => {
    // A second API on the same build and runtime whose reads want the key (RUNNING_AGENT_PROTECT_READS).
    await using guarded = await startApiServer({ databasePath: join(harness.workDirectory, "guarded.db"), runTask: startAgentTask, taskDefaults: harness.runtime.taskDefaults, apiKey: API_KEY, protectReads: true, concurrency: 1, dashboardDirectory: join(harness.workDirectory, "dist") });
    const submitted = await fetch(`${guarded.url}/submit`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${API_KEY}` }, body: JSON.stringify({ repo_url: harness.repository.path, task: "Note the guarded task" }) });
    const jobId = ((await submitted.json()) as { job_id: string }).job_id;
    expect((await fetch(`${guarded.url}/jobs/${jobId}`)).status).toBe(401);
    const requested: string[] = [];
    page.on("request", (request) => requested.push(request.url()));

    // Another origin, so an empty session: without the key every read is refused.
    await page.goto(`${guarded.url}/jobs/${jobId}`);
    await expect.poll(async () => page.getByTestId("api-address").textContent()).toBe(`API key needed to read: ${guarded.url}`);
    expect(await page.locator(".job-detail").count()).toBe(0);

    await page.getByLabel("API key").fill(API_KEY);
    const detail = page.locator(`.job-detail[data-job-id="${jobId}"]`);
    // Completed as the job's own stream reports it, with the log replayed over that stream.
    await detail.locator(".badge-completed").waitFor({ timeout: 180_000 });
    await expect.poll(async () => page.getByTestId("job-log").textContent()).toContain("agent: Recorded the task in RUNNING_AGENT_TASK.md.");
    await page.getByTestId("diff").locator(".diff-file figcaption", { hasText: NOTE_FILE }).waitFor();
    await expect.poll(async () => page.getByTestId("api-address").textContent()).toBe(guarded.url);
    await page.locator(`.job-list a[data-job-id="${jobId}"]`).waitFor();
    expect(await page.evaluate(() => [sessionStorage.getItem("running-agent-api-key"), localStorage.getItem("running-agent-api-key")])).toEqual([API_KEY, null]);
    expect(requested.some((url) => url.includes(`/jobs/${jobId}/events`))).toBe(true);
    expect(requested.filter((url) => url.includes(API_KEY))).toEqual([]);
    page.removeAllListeners("request");
  });
});
