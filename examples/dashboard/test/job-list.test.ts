import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Page } from "playwright-core";
import type { ApiServer } from "@running-agent/example-http-api";
import { saveScreenshot, seriousAccessibilityViolations, startDashboardUnderTest, TEST_API_KEY, type DashboardUnderTest } from "./browser-harness.js";

const API_KEY = TEST_API_KEY;

/**
 * One API whose scripted model takes ten minutes per answer and runs one job at a time: the
 * first job stays in its agent phase until it is cancelled, the others wait in the queue.
 */
describe("the dashboard in headless Chromium: a running job, cancel and retry, and a long filtered list", () => {
  let harness: DashboardUnderTest;
  let page: Page;
  let api: ApiServer;
  let runningJobId: string;

  beforeAll(async () => {
    // A server that takes a model choice and none of the other advanced fields.
    harness = await startDashboardUnderTest({ RUNNING_AGENT_SCRIPTED_MODEL_DELAY_MS: "600000" }, { submitFields: { baseBranch: false, draft: false, labels: false, models: ["google/gemini-2.5-flash"] } });
    ({ page, api } = harness);
  });

  afterAll(async () => {
    expect(await harness?.close()).toEqual([]);
  });

  it("while a job runs, the header, the list and the stepper show the phase the log shows", async () => {
    await page.goto(`${api.url}/`);
    await page.getByLabel("API key").fill(API_KEY);
    const form = page.locator("form.submit-form");
    await form.getByLabel("Repository").fill(harness.repository.path);
    await form.getByLabel("Task").fill("A task that will be cancelled");
    // The advanced fields this server takes: a model, and nothing else.
    await form.getByText("Advanced").click();
    await form.getByLabel("Model").waitFor();
    expect(await form.getByLabel("Model").locator("option").allTextContents()).toEqual(["the server's model", "google/gemini-2.5-flash"]);
    for (const label of ["Base branch", "Labels", "Open as a draft"]) expect(await form.getByLabel(label).count()).toBe(0);
    await page.getByRole("button", { name: "Run agent" }).click();
    const detail = page.locator(".job-detail");
    await detail.getByText("phase agent started").waitFor({ timeout: 120_000 });
    runningJobId = (await detail.getAttribute("data-job-id"))!;
    await expect.poll(async () => page.getByTestId("job-meta").textContent()).toContain("· phase agent");
    await expect.poll(async () => page.locator(`.job-list .job[data-job-id="${runningJobId}"] .job-meta`).textContent()).toMatch(/· agent$/);
    expect(await detail.locator('.step[data-phase="agent"]').getAttribute("data-state")).toBe("running");
    expect(await detail.locator('.step[aria-current="step"]').getAttribute("data-phase")).toBe("agent");
    expect(await detail.locator('.step[data-phase="clone"]').getAttribute("data-state")).toBe("completed");
    expect(await detail.locator('.step[data-phase="push"] .step-state').textContent()).toBe("waiting");
    await saveScreenshot(page, "running-job");
  });

  it("lists 50 jobs a page, pages past them, and filters by status, repository, user and text on the server", async () => {
    // 55 more jobs; they wait behind the running one.
    const queued: string[] = [];
    for (let index = 0; index < 55; index += 1) {
      queued.push(await harness.submit({ repo_url: index % 5 === 0 ? join(harness.workDirectory, "other.git") : harness.repository.path, task: `Queued task ${index}`, user_id: index % 11 === 0 ? "grace" : "ada" }));
    }
    const rows = page.locator(".job-list li .job");
    await expect.poll(async () => rows.count()).toBe(50);
    expect(await page.getByTestId("page-range").textContent()).toBe("1–50");
    expect(await rows.first().getAttribute("data-job-id")).toBe(queued.at(-1));
    await page.getByRole("button", { name: "Older" }).click();
    await expect.poll(async () => page.getByTestId("page-range").textContent()).toBe("51–56");
    expect(await rows.last().getAttribute("data-job-id")).toBe(runningJobId);
    expect(await page.getByRole("button", { name: "Older" }).isDisabled()).toBe(true);
    await page.getByRole("button", { name: "Newer" }).click();
    await expect.poll(async () => page.getByTestId("page-range").textContent()).toBe("1–50");

    const filters = page.getByRole("search", { name: "Filter jobs" });
    await filters.getByLabel("Status").selectOption("running");
    await expect.poll(async () => rows.evaluateAll((links) => links.map((link) => link.getAttribute("data-job-id")))).toEqual([runningJobId]);
    await filters.getByLabel("Status").selectOption("queued");
    await filters.getByLabel("Repository").fill(join(harness.workDirectory, "other.git"));
    await filters.getByLabel("User").fill("grace");
    await filters.getByRole("button", { name: "Filter" }).click();
    // index % 5 === 0 and index % 11 === 0: 0 and 55 is past the end, so 0 alone.
    await expect.poll(async () => rows.evaluateAll((links) => links.map((link) => link.getAttribute("data-job-id")))).toEqual([queued[0]]);
    await filters.getByLabel("Repository").fill("");
    await filters.getByLabel("User").fill("");
    await filters.getByLabel("Search").fill("QUEUED TASK 4");
    await filters.getByRole("button", { name: "Filter" }).click();
    const expected = queued.filter((_, index) => String(index).startsWith("4")).reverse();
    await expect.poll(async () => rows.evaluateAll((links) => links.map((link) => link.getAttribute("data-job-id")))).toEqual(expected);
    await saveScreenshot(page, "filtered-list");
    expect(await seriousAccessibilityViolations(page)).toEqual([]);

    // A deep link to a job on no loaded page (the oldest queued one is on page 2 without filters).
    await page.goto(`${api.url}/jobs/${queued[0]}`);
    await page.locator(`.job-detail[data-job-id="${queued[0]}"] .badge-queued`).waitFor();
    expect(await page.locator(".job-detail h2").textContent()).toBe("Queued task 0");
  });

  it("cancels the running job from its page, then offers a retry", async () => {
    await page.goto(`${api.url}/jobs/${runningJobId}`);
    const detail = page.locator(`.job-detail[data-job-id="${runningJobId}"]`);
    await detail.getByRole("button", { name: "Cancel" }).click();
    await detail.locator(".badge-cancelled").waitFor({ timeout: 60_000 });
    await detail.locator("p.error", { hasText: "ABORTED" }).waitFor();
    expect(await detail.locator('.step[data-phase="agent"]').getAttribute("data-state")).toBe("failed");
    const status = (await (await fetch(`${api.url}/status/${runningJobId}`)).json()) as { status: string; pr_url: string | null; retryable: boolean };
    expect(status).toMatchObject({ status: "cancelled", pr_url: null, retryable: true });
    await detail.getByRole("button", { name: "Retry" }).click();
    // The retry is a new job, selected and named in the address bar.
    await expect.poll(async () => new URL(page.url()).pathname).not.toBe(`/jobs/${runningJobId}`);
    const retryId = new URL(page.url()).pathname.split("/").at(-1)!;
    expect((await (await fetch(`${api.url}/status/${retryId}`)).json()) as object).toMatchObject({ retry_of: runningJobId, task: "A task that will be cancelled" });
    // Back returns to the cancelled job, which now links to its retry and offers no second one.
    await page.goBack();
    await expect.poll(async () => page.locator(".job-detail").getAttribute("data-job-id")).toBe(runningJobId);
    await page.locator(".job-detail").getByText(`Retried as job ${retryId.slice(0, 8)}`).waitFor();
    expect(await page.locator(".job-detail").getByRole("button", { name: "Retry" }).count()).toBe(0);
    expect(harness.pageErrors).toEqual([]);
  });
});
