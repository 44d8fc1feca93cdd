import { createServer } from "node:net";
import { ErrorCode, RunningAgentError } from "@running-agent/core";
import { expectRunningAgentError } from "@running-agent/core/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDockerSandbox, CREATED_AT_LABEL, MANAGED_LABEL, TASK_ID_LABEL } from "./create-docker-sandbox.js";
import { DEFAULT_IMAGE } from "./default-image.js";
import { docker, expectNoContainers, scopedProvider, TEST_BASE_IMAGE } from "./test-engine.js";

const codeOf = async (promise: Promise<unknown>): Promise<string> => (await expectRunningAgentError(promise)).code;

describe("containers", () => {
  it("applies CPU, memory and process limits, our labels, the init process and no network; secrets reach the environment, never the command line", async () => {
    const { provider, run } = scopedProvider();
    const session = await provider.create({
      taskId: "limits-task",
      resources: { cpu: 0.5, memoryMiB: 256, pids: 128 },
      env: { PLAIN_SETTING: "plain" },
      secrets: { MODEL_API_KEY: "not-a-real-key-123" },
      labels: { "running-agent.repo": "local/repo" },
      timeoutMs: 60_000,
    });
    try {
      const info = await docker.getContainer(session.id).inspect();
      expect(info.HostConfig.NanoCpus).toBe(500_000_000);
      expect(info.HostConfig.Memory).toBe(256 * 1024 * 1024);
      expect(info.HostConfig.MemorySwap).toBe(256 * 1024 * 1024);
      expect(info.HostConfig.PidsLimit).toBe(128);
      expect(info.HostConfig.Init).toBe(true);
      expect(info.HostConfig.AutoRemove).toBe(true);
      expect(info.HostConfig.NetworkMode).toBe("none");
      expect(info.Config.Labels).toMatchObject({ [MANAGED_LABEL]: "true", [TASK_ID_LABEL]: "limits-task", "running-agent.repo": "local/repo" });
      expect(Number.isNaN(Date.parse(info.Config.Labels[CREATED_AT_LABEL] ?? ""))).toBe(false);
      expect(info.Config.Env).toEqual(expect.arrayContaining(["PLAIN_SETTING=plain", "MODEL_API_KEY=not-a-real-key-123"]));
      expect(JSON.stringify([info.Config.Cmd, info.Config.Entrypoint, info.Args, info.Path])).not.toContain("not-a-real-key-123");
      // The container ends by itself some time after the task's limit, even if this process dies.
      expect(info.Config.Cmd).toEqual([String(60 + 120)]);

      // The kernel enforces what the Engine was told.
      const limits = await session.exec(["cat", "/sys/fs/cgroup/pids/pids.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]);
      expect(limits.stdout.split("\n").slice(0, 2)).toEqual(["128", String(256 * 1024 * 1024)]);
      const interfaces = await session.exec(["cat", "/proc/net/dev"]);
      expect(interfaces.stdout).toContain("lo:");
      expect(interfaces.stdout.split("\n").filter((line) => line.includes(":") && !line.includes("lo:"))).toEqual([]);
      await expect(session.exposePort(4096)).rejects.toMatchObject({ code: ErrorCode.SANDBOX_PORT_UNAVAILABLE });
    } finally {
      await session.destroy();
    }
    await expectNoContainers(run);
  });

  it("a memory hog is stopped by the memory limit with SANDBOX_OUT_OF_MEMORY; the session stays usable", async () => {
    const { provider, run } = scopedProvider();
    await using session = await provider.create({ taskId: "memory-hog", resources: { memoryMiB: 64 } });
    // `tail` keeps the whole last "line" of 400 MiB of zeros in memory.
    const error = await session.exec(["sh", "-c", "head -c 400m /dev/zero | tail -n 1 > /dev/null"]).catch((caught: unknown) => caught);
    expect(RunningAgentError.isInstance(error) && error.code).toBe(ErrorCode.SANDBOX_OUT_OF_MEMORY);
    expect((error as Error).message).toMatch(/memoryMiB/);
    expect((await session.exec(["echo", "still here"])).stdout).toBe("still here\n");
    await session.destroy();
    await expectNoContainers(run);
  });

  it("a container killed from outside mid-exec gives SANDBOX_TERMINATED, and nothing of it remains", async () => {
    const { provider, run } = scopedProvider();
    const session = await provider.create({ taskId: "killed-mid-task" });
    let started!: () => void;
    const running = new Promise<void>((resolve) => (started = resolve));
    const exec = session.exec(["sh", "-c", "echo started; sleep 600"], { onStdout: () => started() }).catch((caught: unknown) => caught);
    await running;
    await docker.getContainer(session.id).kill();
    const error = await exec;
    expect(RunningAgentError.isInstance(error) && error.code).toBe(ErrorCode.SANDBOX_TERMINATED);
    // Nothing left even before the caller's destroy.
    await expectNoContainers(run);
    expect(await codeOf(session.exec(["true"]))).toBe(ErrorCode.SANDBOX_TERMINATED);
    await session.destroy();
  });

  it("a sandbox past its timeoutMs is removed and later calls say so", async () => {
    const { provider, run } = scopedProvider();
    const session = await provider.create({ taskId: "short-lived", timeoutMs: 1_000 });
    // expectNoContainers polls: the lifetime timer removes the container after about a second.
    await expectNoContainers(run);
    expect(await codeOf(session.exec(["true"]))).toBe(ErrorCode.SANDBOX_TERMINATED);
    await session.destroy();
  });
});

describe("reapOrphans", () => {
  it("removes our containers older than the cutoff (only those with the provider's labels) and keeps younger ones", async () => {
    const crashed = scopedProvider();
    const other = scopedProvider();
    // Sessions that are never destroyed stand for those of a crashed process.
    const first = await crashed.provider.create({ taskId: "orphan-1" });
    const second = await crashed.provider.create({ taskId: "orphan-2" });
    const bystander = await other.provider.create({ taskId: "not-an-orphan" });
    try {
      expect(await crashed.provider.reapOrphans({ olderThanMs: 60 * 60 * 1000 })).toBe(0);
      expect(await crashed.containers()).toHaveLength(2);
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(await crashed.provider.reapOrphans({ olderThanMs: 0 })).toBe(2);
      await expectNoContainers(crashed.run);
      expect((await other.containers()).map((info) => info.Id)).toEqual([bystander.id]);
      expect(await codeOf(first.exec(["true"]))).toBe(ErrorCode.SANDBOX_TERMINATED);
      await Promise.all([first.destroy(), second.destroy()]);
    } finally {
      await bystander.destroy();
    }
    await expectNoContainers(other.run);
    expect(await codeOf(crashed.provider.reapOrphans({ olderThanMs: -1 }))).toBe(ErrorCode.INVALID_OPTIONS);
  });
});

describe("bad input", () => {
  let imageWithoutGit: string;

  beforeAll(async () => {
    // An image with OpenCode but no git: the default image with git deleted.
    imageWithoutGit = `running-agent/test-without-git:${process.pid}`;
    const container = await docker.createContainer({ Image: DEFAULT_IMAGE, Entrypoint: ["rm", "-f", "/usr/bin/git"], HostConfig: { NetworkMode: "none" } });
    await container.start();
    await container.wait();
    await container.commit({ repo: imageWithoutGit.split(":")[0], tag: imageWithoutGit.split(":")[1] });
    await container.remove({ force: true });
  });
  afterAll(async () => {
    await docker.getImage(imageWithoutGit).remove({ force: true }).catch(() => undefined);
  });

  it("rejects bad settings synchronously with INVALID_OPTIONS, before any I/O", () => {
    const bad: Array<Record<string, unknown>> = [
      { network: "bogus" },
      { network: { name: "" } },
      { resources: { cpu: -1 } },
      { resources: { memoryMiB: Number.NaN } },
      { resources: { pids: 1.5 } },
      { pullPolicy: "sometimes" },
      { workdir: "relative/path" },
      { workdir: "/work", scratchDir: "/work/scratch" },
      { env: { "1BAD": "x" } },
      { image: "" },
      { publishedPorts: [0] },
    ];
    for (const settings of bad) {
      let error: unknown;
      try {
        createDockerSandbox(settings as never);
      } catch (caught) {
        error = caught;
      }
      expect(RunningAgentError.isInstance(error) && error.code, JSON.stringify(settings)).toBe(ErrorCode.INVALID_OPTIONS);
    }
  });

  it("no engine at the socket or TCP address: SANDBOX_UNAVAILABLE saying how to start or point at one", async () => {
    const missingSocket = createDockerSandbox({ docker: { socketPath: "/nonexistent/docker.sock" } });
    const validation = await missingSocket.validate().catch((caught: unknown) => caught);
    expect(RunningAgentError.isInstance(validation) && validation.code).toBe(ErrorCode.SANDBOX_UNAVAILABLE);
    expect((validation as Error).message).toMatch(/DOCKER_HOST/);
    expect((validation as Error).message).toContain("unix:///nonexistent/docker.sock");
    expect(await codeOf(missingSocket.create({ taskId: "x" }))).toBe(ErrorCode.SANDBOX_UNAVAILABLE);

    const closedPort = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, "127.0.0.1", () => {
        const port = (server.address() as { port: number }).port;
        server.close(() => resolve(port));
      });
    });
    const noTcpEngine = createDockerSandbox({ docker: { host: "127.0.0.1", port: closedPort, protocol: "http" } });
    expect(await codeOf(noTcpEngine.validate())).toBe(ErrorCode.SANDBOX_UNAVAILABLE);
  });

  it("a missing image: SANDBOX_IMAGE_NOT_FOUND saying how to build it, from validate and create, nothing created", async () => {
    const { provider, run } = scopedProvider({ image: "running-agent/no-such-image:never" });
    const error = await provider.validate().catch((caught: unknown) => caught);
    expect(RunningAgentError.isInstance(error) && error.code).toBe(ErrorCode.SANDBOX_IMAGE_NOT_FOUND);
    expect((error as Error).message).toMatch(/docker build|docker pull/);
    expect(await codeOf(provider.create({ taskId: "x" }))).toBe(ErrorCode.SANDBOX_IMAGE_NOT_FOUND);
    await expectNoContainers(run);

    const defaultImageMissing = createDockerSandbox({ image: DEFAULT_IMAGE.replace(/:.*/, ":missing-tag") });
    await expect(defaultImageMissing.validate()).rejects.toMatchObject({ code: ErrorCode.SANDBOX_IMAGE_NOT_FOUND });
  });

  it("pullPolicy missing: a pull that fails (a registry on loopback that is not there) is SANDBOX_IMAGE_NOT_FOUND", async () => {
    const { provider, run } = scopedProvider({ image: "127.0.0.1:1/running-agent/nothing:never", pullPolicy: "missing" });
    const error = await provider.validate().catch((caught: unknown) => caught);
    expect(RunningAgentError.isInstance(error) && error.code).toBe(ErrorCode.SANDBOX_IMAGE_NOT_FOUND);
    expect((error as Error).message).toMatch(/Could not pull image 127\.0\.0\.1:1\/running-agent\/nothing:never/);
    expect(await codeOf(provider.create({ taskId: "x" }))).toBe(ErrorCode.SANDBOX_IMAGE_NOT_FOUND);
    await expectNoContainers(run);
  });

  it("an image without OpenCode or without git: SANDBOX_IMAGE_INVALID naming what is missing, nothing left", async () => {
    const noOpencode = scopedProvider({ image: TEST_BASE_IMAGE });
    const error = await noOpencode.provider.create({ taskId: "x" }).catch((caught: unknown) => caught);
    expect(RunningAgentError.isInstance(error) && error.code).toBe(ErrorCode.SANDBOX_IMAGE_INVALID);
    expect((error as RunningAgentError).details).toMatchObject({ missing: "opencode" });
    await expectNoContainers(noOpencode.run);

    const noGit = scopedProvider({ image: imageWithoutGit });
    const gitError = await noGit.provider.create({ taskId: "x" }).catch((caught: unknown) => caught);
    expect(RunningAgentError.isInstance(gitError) && gitError.code).toBe(ErrorCode.SANDBOX_IMAGE_INVALID);
    expect((gitError as RunningAgentError).details).toMatchObject({ missing: "git" });
    await expectNoContainers(noGit.run);
  });

  it("limits the Engine refuses: SANDBOX_RESOURCE_LIMIT, nothing left", async () => {
    const { provider, run } = scopedProvider();
    const tooManyCpus = await provider.create({ taskId: "x", resources: { cpu: 512 } }).catch((caught: unknown) => caught);
    expect(RunningAgentError.isInstance(tooManyCpus) && tooManyCpus.code).toBe(ErrorCode.SANDBOX_RESOURCE_LIMIT);
    expect((tooManyCpus as Error).message).toMatch(/CPU/i);
    expect(await codeOf(provider.create({ taskId: "x", resources: { memoryMiB: 1 } }))).toBe(ErrorCode.SANDBOX_RESOURCE_LIMIT);
    await expectNoContainers(run);
  });

  it("bad create options, a missing network, an unsupported policy and an aborted signal fail with typed errors and create nothing", async () => {
    const { provider, run } = scopedProvider();
    expect(await codeOf(provider.create({ taskId: "" }))).toBe(ErrorCode.INVALID_OPTIONS);
    expect(await codeOf(provider.create({ taskId: "x", env: { "BAD-NAME": "x" } }))).toBe(ErrorCode.INVALID_OPTIONS);
    expect(await codeOf(provider.create({ taskId: "x", resources: { memoryMiB: 0 } }))).toBe(ErrorCode.INVALID_OPTIONS);
    expect(await codeOf(provider.create({ taskId: "x", timeoutMs: -5 }))).toBe(ErrorCode.INVALID_OPTIONS);
    expect(await codeOf(provider.create({ taskId: "x", network: { mode: "sideways" } as never }))).toBe(ErrorCode.INVALID_OPTIONS);
    expect(await codeOf(provider.create({ taskId: "x", signal: AbortSignal.abort() }))).toBe(ErrorCode.ABORTED);

    const missingNetwork = scopedProvider({ network: { name: "running-agent-no-such-network" } });
    const networkError = await missingNetwork.provider.create({ taskId: "x" }).catch((caught: unknown) => caught);
    expect(RunningAgentError.isInstance(networkError) && networkError.code).toBe(ErrorCode.SANDBOX_CREATE_FAILED);
    expect((networkError as Error).message).toContain("running-agent-no-such-network");

    const strict = scopedProvider({ network: "host", allowList: "reject" });
    expect(await codeOf(strict.provider.create({ taskId: "x", network: { mode: "allow-list", hosts: ["127.0.0.1"] } }))).toBe(ErrorCode.CAPABILITY_UNSUPPORTED);

    for (const scope of [run, missingNetwork.run, strict.run]) await expectNoContainers(scope);
  });

  it("a network policy of none wins over the provider's network", async () => {
    const { provider, run } = scopedProvider({ network: "host" });
    await using session = await provider.create({ taskId: "x", network: { mode: "none" } });
    expect((await docker.getContainer(session.id).inspect()).HostConfig.NetworkMode).toBe("none");
    await session.destroy();
    await expectNoContainers(run);
  });
});
