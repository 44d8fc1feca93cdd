import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OFFLINE_NOTE_FILE } from "./offline-model.js";

const packageRoot = join(dirname(fileURLToPath(import.meta.url)), "..");

describe("pnpm start:offline-github, as the README says", () => {
  let folder: string;
  let output = "";
  let exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  let pid: number;
  let running = true;
  let url: string;

  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), "http-api-offline-github-"));
    // Its own process group, as a terminal's foreground job is: Ctrl-C signals pnpm and node alike.
    const child = spawn("pnpm", ["start:offline-github"], {
      cwd: packageRoot,
      detached: true,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", TMPDIR: folder, PORT: "0", RUNNING_AGENT_DB: join(folder, "jobs.db"), RUNNING_AGENT_CONCURRENCY: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    pid = child.pid!;
    child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
    child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
    exited = new Promise((resolve) =>
      child.once("exit", (code, signal) => {
        running = false;
        resolve({ code, signal });
      }),
    );
    url = await new Promise<string>((resolve, reject) => {
      const check = () => {
        const match = /listening on (http:\/\/\S+)/.exec(output);
        if (match) resolve(match[1]!);
      };
      child.stdout!.on("data", check);
      void exited.then(() => reject(new Error(`pnpm start:offline-github exited before listening:\n${output}`)));
    });
  });

  afterAll(async () => {
    // Only if a test failed before stopping it: the whole group this test started.
    if (pid && running) process.kill(-pid, "SIGKILL");
    await exited;
    await rm(folder, { recursive: true, force: true });
  });

  it("takes the seed's submit with an https://github.com URL, opens the pull request on the local server, and stops with Ctrl-C without a pnpm failure", async () => {
    expect(output).toContain("repository https://github.com/you/your-repo.git");
    const config = (await (await fetch(`${url}/config`)).json()) as { git_host: { id: string; repo_url_example: string } };
    expect(config.git_host).toMatchObject({ id: "github", repo_url_example: "https://github.com/you/your-repo.git" });

    const submitted = (await (
      await fetch(`${url}/submit`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ repo_url: "https://github.com/you/your-repo.git", task: "Add unit tests for the utils module" }) })
    ).json()) as { job_id: string; status: string };
    expect(submitted.status).toBe("queued");
    let status: { status: string; error: unknown };
    for (;;) {
      status = (await (await fetch(`${url}/status/${submitted.job_id}`)).json()) as typeof status;
      if (status.status !== "queued" && status.status !== "running") break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(status).toMatchObject({ status: "completed", error: null });
    const result = (await (await fetch(`${url}/result/${submitted.job_id}`)).json()) as { pr_url: string; branch: string; logs: string[] };
    // The pull request as the local server reports it (its own address).
    expect(result.pr_url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/you\/your-repo\/pull\/1$/);
    expect(result.logs.some((line) => line.includes("opened change request #1"))).toBe(true);
    const diff = await (await fetch(`${url}/jobs/${submitted.job_id}/diff`)).text();
    expect(diff).toContain(`+++ b/${OFFLINE_NOTE_FILE}`);

    // Ctrl-C: SIGINT to the foreground process group (pnpm and the server).
    process.kill(-pid, "SIGINT");
    const { code } = await exited;
    expect(code).toBe(0);
    expect(output).toContain("SIGINT: stopping");
    expect(output).not.toMatch(/ELIFECYCLE|Command failed/);
  });
});
