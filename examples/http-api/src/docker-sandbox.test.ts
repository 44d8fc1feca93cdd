import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLocalGitHost } from "@running-agent/core";
import { createTestRepository, type TestRepository } from "@running-agent/core/testing";
import { createDockerSandbox, MANAGED_LABEL, TASK_ID_LABEL } from "@running-agent/sandbox-docker";
import { OFFLINE_NOTE_FILE } from "./offline-model.js";
import { startApiProcess, type ApiProcess } from "./start-api-process.js";

/** The same Engine the server uses (dockerode's default socket), to look for the job's containers. */
const docker = createDockerSandbox().docker;

describe("the API with RUNNING_AGENT_SANDBOX=docker", () => {
  let folder: string;
  let repository: TestRepository;
  let api: ApiProcess | undefined;

  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), "http-api-docker-"));
    repository = await createTestRepository({ "README.md": "# Sample\n" }, { parent: folder });
  });

  afterAll(async () => {
    await api?.kill();
    await rm(folder, { recursive: true, force: true });
  });

  it("runs a job in a container, opens its change request, and leaves no container behind", { timeout: 300_000 }, async () => {
    api = await startApiProcess({
      RUNNING_AGENT_DB: join(folder, "jobs.db"),
      RUNNING_AGENT_SANDBOX: "docker",
      // The scripted model listens on this machine's loopback; only host networking reaches it.
      RUNNING_AGENT_DOCKER_NETWORK: "host",
      RUNNING_AGENT_MODEL: "scripted",
      TMPDIR: folder,
    });
    expect(api.output()).toMatch(/sandbox: docker \(image running-agent\/sandbox:opencode-[\d.]+, network host, label running-agent\.http-api=[0-9a-f]{16}\)/);

    const submitted = await fetch(`${api.url}/submit`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ repo_url: repository.path, task: "Note the task from a container" }),
    });
    const jobId = ((await submitted.json()) as { job_id: string }).job_id;
    let result: any;
    for (;;) {
      result = await (await fetch(`${api.url}/result/${jobId}`)).json();
      if (!["queued", "running"].includes(result.status)) break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }

    expect(result, api.output()).toMatchObject({ status: "completed", error: null, changes: [{ path: OFFLINE_NOTE_FILE, status: "added" }] });
    const [changeRequest] = await createLocalGitHost().listChangeRequests(repository.path);
    expect(result.pr_url).toBe(changeRequest!.url);
    expect(await repository.git("show", `${result.branch}:${OFFLINE_NOTE_FILE}`)).toContain("Note the task from a container");
    // It ran in a container of ours: the sandbox line names the Docker provider and the container.
    const sandboxLine = result.logs.find((line: string) => / sandbox docker [0-9a-f]{12,}/.test(line));
    expect(sandboxLine).toBeDefined();
    const containerId = / sandbox docker ([0-9a-f]+)/.exec(sandboxLine)![1]!;

    // Torn down: no container labelled with this job remains (the Engine may take a moment to remove it), and the job's own is gone.
    const containersOfJob = () => docker.listContainers({ all: true, filters: { label: [`${MANAGED_LABEL}=true`, `${TASK_ID_LABEL}=${jobId}`] } });
    await expect.poll(containersOfJob, { timeout: 15_000 }).toEqual([]);
    await expect(docker.getContainer(containerId).inspect()).rejects.toMatchObject({ statusCode: 404 });
    expect(await api.stop()).toBe(0);
  });
});
