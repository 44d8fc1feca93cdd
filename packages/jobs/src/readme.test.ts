import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLocalGitHost } from "@running-agent/core";
import { createTestRepository, OFFLINE_NOTE_FILE, startOfflineModel, type OfflineModel } from "@running-agent/core/testing";
import { runJob } from "../examples/run-a-job.js";

describe("README", () => {
  let folder: string;
  let model: OfflineModel;
  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), "jobs-readme-"));
    model = await startOfflineModel();
  });
  afterAll(async () => {
    await model?.close();
    await rm(folder, { recursive: true, force: true });
  });

  it("shows examples/run-a-job.ts verbatim", async () => {
    const readme = await readFile(new URL("../README.md", import.meta.url), "utf8");
    const example = await readFile(new URL("../examples/run-a-job.ts", import.meta.url), "utf8");
    expect(/<!-- examples\/run-a-job\.ts[^>]*-->\n```ts\n([\s\S]*?)```/.exec(readme)?.[1]).toBe(example);
  });

  it("runs the example: the job completes with its change request, and the same key returns it", { timeout: 120_000 }, async () => {
    const repository = await createTestRepository({ "README.md": "# Sample\n" }, { parent: folder });
    const options = { databasePath: join(folder, "jobs.db"), repo: repository.path, task: "Add a notes file", model: model.model };
    const job = await runJob(options);
    expect(job).toMatchObject({ status: "completed", attempts: 1, result: { branch: job.spec.branch } });
    const [request, ...others] = await createLocalGitHost().listChangeRequests(repository.path);
    expect(others).toEqual([]);
    expect(request!.head).toBe(job.spec.branch);
    expect(await repository.git("show", `${job.spec.branch}:${OFFLINE_NOTE_FILE}`)).toContain("Add a notes file");
    // The same key on the same file: the ended job comes back, nothing runs again.
    expect(await runJob(options)).toMatchObject({ id: job.id, status: "completed" });
    expect(await createLocalGitHost().listChangeRequests(repository.path)).toHaveLength(1);
  });
});
