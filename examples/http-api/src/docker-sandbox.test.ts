import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLocalGitHost } from "@running-agent/core";
import { createTestRepository, type TestRepository } from "@running-agent/core/testing";
import { CREATED_AT_LABEL, createDockerSandbox, DEFAULT_IMAGE, MANAGED_LABEL, TASK_ID_LABEL } from "@running-agent/sandbox-docker";
import { OFFLINE_NOTE_FILE } from "./offline-model.js";
import { SERVER_LABEL, serverLabels } from "./server-labels.js";
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

describe("the API with RUNNING_AGENT_SANDBOX=docker, killed mid-job", () => {
  let folder: string;
  let repository: TestRepository;
  let api: ApiProcess | undefined;
  /** Containers this test makes itself, standing for other servers and programs on the same Engine. */
  const foreignContainers: string[] = [];
  let ownLabel: string;

  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), "http-api-docker-restart-"));
    repository = await createTestRepository({ "README.md": "# Sample\n" }, { parent: folder });
  });

  afterAll(async () => {
    await api?.kill();
    // Whatever a failed run left: the test's own containers and any of this server's.
    const leftovers = ownLabel ? await docker.listContainers({ all: true, filters: { label: [ownLabel] } }) : [];
    for (const id of [...foreignContainers, ...leftovers.map((info) => info.Id)]) {
      await docker.getContainer(id).remove({ force: true }).catch(() => undefined);
    }
    await rm(folder, { recursive: true, force: true });
  });

  /** A container with the Docker sandbox's labels that the restarted server must not touch. */
  async function startForeignContainer(labels: Record<string, string>): Promise<string> {
    const container = await docker.createContainer({
      Image: DEFAULT_IMAGE,
      Entrypoint: ["sleep"],
      Cmd: ["600"],
      // Made long ago: the age cut-off alone would not spare it.
      Labels: { [MANAGED_LABEL]: "true", [TASK_ID_LABEL]: "not-this-server", [CREATED_AT_LABEL]: "2020-01-01T00:00:00.000Z", ...labels },
      HostConfig: { Init: true, AutoRemove: true, NetworkMode: "none" },
    });
    foreignContainers.push(container.id);
    await container.start();
    return container.id;
  }

  const isRunning = async (id: string) => (await docker.getContainer(id).inspect()).State.Running;

  it("removes the job's container on the next start, and only its own containers", { timeout: 300_000 }, async () => {
    const databasePath = join(folder, "jobs.db");
    ownLabel = `${SERVER_LABEL}=${serverLabels(databasePath)[SERVER_LABEL]}`;
    const environment = {
      RUNNING_AGENT_DB: databasePath,
      RUNNING_AGENT_SANDBOX: "docker",
      RUNNING_AGENT_DOCKER_NETWORK: "host",
      RUNNING_AGENT_MODEL: "scripted",
      TMPDIR: folder,
    };
    // First life: the model takes ten minutes per answer, so the job stays in its agent phase.
    api = await startApiProcess({ ...environment, RUNNING_AGENT_SCRIPTED_MODEL_DELAY_MS: "600000" });
    const submitted = await fetch(`${api.url}/submit`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ repo_url: repository.path, task: "Outlive the server" }),
    });
    const jobId = ((await submitted.json()) as { job_id: string }).job_id;
    for (;;) {
      const job = (await (await fetch(`${api.url}/status/${jobId}`)).json()) as { status: string; phase: string | null };
      if (job.status === "running" && job.phase === "agent") break;
      expect(["queued", "running"], api.output()).toContain(job.status);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const [jobContainer, ...others] = await docker.listContainers({ all: true, filters: { label: [`${TASK_ID_LABEL}=${jobId}`] } });
    expect(others).toEqual([]);
    // The job's container carries this server's label, derived from the database's real path.
    expect(jobContainer!.Labels[SERVER_LABEL]).toBe(serverLabels(databasePath)[SERVER_LABEL]);

    const otherServers = await startForeignContainer({ [SERVER_LABEL]: "another-api-server" });
    const otherProgram = await startForeignContainer({});

    await api.kill();
    // A crash leaves the container running (until its lifetime limit, which is long).
    expect(await isRunning(jobContainer!.Id)).toBe(true);

    // Second life on the same database, with a prompt model.
    api = await startApiProcess({ ...environment, RUNNING_AGENT_SCRIPTED_MODEL_DELAY_MS: "0" });
    expect(api.output()).toContain("removed 1 leftover docker sandbox(es) of this server");
    expect(api.output()).toContain(`job ${jobId}: its worker stopped heartbeating; queued again`);
    // Removed before the server listened: nothing to wait for.
    await expect(docker.getContainer(jobContainer!.Id).inspect()).rejects.toMatchObject({ statusCode: 404 });
    expect(await isRunning(otherServers)).toBe(true);
    expect(await isRunning(otherProgram)).toBe(true);

    // The job runs again, in a fresh container of this server, which is torn down after it.
    let rerun: any;
    for (;;) {
      rerun = await (await fetch(`${api.url}/status/${jobId}`)).json();
      if (!["queued", "running"].includes(rerun.status)) break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(rerun, api.output()).toMatchObject({ status: "completed", error: null });
    expect(await api.stop()).toBe(0);
    await expect.poll(() => docker.listContainers({ all: true, filters: { label: [ownLabel] } }), { timeout: 15_000 }).toEqual([]);
    expect(await isRunning(otherServers)).toBe(true);
    expect(await isRunning(otherProgram)).toBe(true);
  });
});
