import { execFileSync } from "node:child_process";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTestRepository, type TestRepository } from "@running-agent/core/testing";
import { OFFLINE_NOTE_FILE } from "./offline-model.js";
import { readServerSentEvents } from "./read-server-sent-events.js";
import { startApiProcess, type ApiProcess } from "./start-api-process.js";

const MARKER = ".prepared-marker";

/** Processes whose command line mentions the folder (sandboxes, OpenCode servers, git, the API). */
function processesUsing(folder: string): string[] {
  return execFileSync("ps", ["-eo", "pid=,args="], { encoding: "utf8" })
    .split("\n")
    .filter((line) => line.includes(folder) && !line.includes("ps -eo"));
}

describe("RUNNING_AGENT_PREPARED_REPOS on the local sandbox", () => {
  let folder: string;
  let repository: TestRepository;
  let api: ApiProcess | undefined;

  beforeEach(async () => {
    folder = await mkdtemp(join(tmpdir(), "http-api-prepared-"));
    // The setup's output is ignored, as a node_modules would be: else it is part of the task's change.
    repository = await createTestRepository({ "README.md": "# Sample\n", ".gitignore": `${MARKER}\n` }, { parent: folder });
  });

  afterEach(async () => {
    await api?.kill();
    await rm(folder, { recursive: true, force: true });
  });

  it("prepares the repository ahead of any job; the job takes a sandbox of the repository's pool that holds the state (no setup in its events, no server start); stopping leaves nothing running", { timeout: 300_000 }, async () => {
    api = await startApiProcess({
      RUNNING_AGENT_DB: join(folder, "jobs.db"),
      RUNNING_AGENT_MODEL: "scripted",
      // A pool of one for this repository, started from its state (no general pool: RUNNING_AGENT_POOL_SIZE is 0).
      RUNNING_AGENT_PREPARED_REPOS: JSON.stringify([{ repo: repository.path, setup: [`echo prepared | tee ${MARKER}`], pool: 1 }]),
      // Sandboxes and the worker's folder live in the test's folder, so that leftovers can be found by path.
      TMPDIR: folder,
    });
    const started = api;
    // The worker prepares at start, before any job exists.
    await expect.poll(() => started.output(), { timeout: 120_000 }).toMatch(/prepared \S+ at main [0-9a-f]{12}: setup ran/);
    expect(started.output()).toContain(`prepared repositories: ${repository.path} (states in ${join(folder, "prepared-states")})`);
    expect(started.output()).toContain(`sandbox pool: none (RUNNING_AGENT_POOL_SIZE=0); per prepared repository, from its state: ${repository.path} 1`);

    const submitted = (await (
      await fetch(`${started.url}/submit`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        // The check sees the setup's file: the task's workspace is the prepared one.
        body: JSON.stringify({ repo_url: repository.path, task: "Note the task", checks: [{ name: "prepared", command: `test -s ${MARKER}` }], max_fix_rounds: 0 }),
      })
    ).json()) as { job_id: string };
    const streamed = await readServerSentEvents(`${started.url}/jobs/${submitted.job_id}/events`);
    expect(streamed.at(-1)).toMatchObject({ event: "end", data: { status: "completed" } });
    const events = streamed.filter((event) => event.event === "agent-event").map((event) => event.data);
    expect(events.filter((event) => event.type === "command.output")).toEqual([]);
    expect(events.some((event) => event.type === "log" && String(event.message).startsWith("Started from the prepared state"))).toBe(true);
    // The pooled sandbox's warm server served the job: none started for it.
    expect(events.find((event) => event.type === "sandbox")).toMatchObject({ pooled: true });
    // A sandbox that holds the state already: the host clone (whose commit names the state) came before the take.
    const order = events.flatMap((event) => (event.type === "sandbox" ? ["sandbox"] : event.type === "log" && String(event.message).startsWith("Cloned ") ? ["cloned"] : []));
    expect(order).toEqual(["cloned", "sandbox"]);
    expect(events.some((event) => event.type === "log" && String(event.message).startsWith("OpenCode server ready in"))).toBe(false);

    const result = (await (await fetch(`${started.url}/result/${submitted.job_id}`)).json()) as any;
    expect(result.checks).toMatchObject({ passed: true, rounds: [{ checks: [{ name: "prepared", passed: true }] }] });
    // The agent's file only: the setup's came with the state.
    expect(result.changes).toEqual([{ path: OFFLINE_NOTE_FILE, status: "added" }]);
    // Once, ahead of the job: the task did not run it again.
    expect(started.output().match(/setup ran/g)).toHaveLength(1);

    expect(await started.stop()).toBe(0);
    api = undefined;
    expect(processesUsing(folder)).toEqual([]);
    // The worker's folder holds its owner record only: no sandbox, host clone or half-kept state.
    const workFolders = (await readdir(folder)).filter((name) => name.startsWith("running-agent-worker-"));
    expect(workFolders).toHaveLength(1);
    expect(await readdir(join(folder, workFolders[0]!))).toEqual(["owner.json"]);
    expect((await readdir(join(folder, "prepared-states"))).filter((name) => name.startsWith("."))).toEqual([]);
  });
});
