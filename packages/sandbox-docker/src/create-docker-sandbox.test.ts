import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { randomInt } from "node:crypto";
import { ErrorCode, packEntries, RunningAgentError } from "@running-agent/core";
import { expectRunningAgentError, gitDaemonPortServer, usePrivateTmpdir } from "@running-agent/core/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDockerSandbox, CREATED_AT_LABEL, MANAGED_LABEL, TASK_ID_LABEL } from "./create-docker-sandbox.js";
import { DEFAULT_IMAGE } from "./default-image.js";
import { docker, expectNoContainers, isHostProcessAlive, scopedProvider, TEST_BASE_IMAGE } from "./test-engine.js";

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

describe("settings.user", () => {
  it("runs every command as 1000:1000; files put in are that user's and writable by it; root's places are not; kill still ends a tree", async () => {
    const { provider, run } = scopedProvider({ user: "1000:1000" });
    const session = await provider.create({ taskId: "non-root" });
    try {
      expect((await session.exec(["sh", "-c", "id -u; id -g"])).stdout).toBe("1000\n1000\n");
      let spawnedOutput = "";
      const spawned = await session.spawn(["id", "-u"], { onStdout: (chunk) => (spawnedOutput += Buffer.from(chunk).toString()) });
      expect(await spawned.exited).toBe(0);
      expect(spawnedOutput).toBe("1000\n");

      // The folders the task gets, and files written into new folders (the Engine itself writes as root).
      await session.writeFile("notes/deep/todo.txt", "first\n");
      await session.writeFile(`${session.scratchDir}/state/tool.json`, "{}");
      // An archive of root's files (uid 0, as packEntries writes them) with a folder that has no entry of its own.
      await session.putArchive("repo", await packEntries([{ path: "src", type: "directory" }, { path: "src/main.py", content: "print(1)\n" }, { path: "lib/util/helpers.py", content: "x = 1\n" }]));
      const owners = await session.exec(["stat", "-c", "%u:%g %n", ".", session.scratchDir, "notes", "notes/deep", "notes/deep/todo.txt", `${session.scratchDir}/state/tool.json`, "repo", "repo/src", "repo/src/main.py", "repo/lib", "repo/lib/util", "repo/lib/util/helpers.py"]);
      expect(owners.exitCode, owners.stderr).toBe(0);
      expect(owners.stdout.trim().split("\n").filter((line) => !line.startsWith("1000:1000 "))).toEqual([]);
      const edits = await session.exec([
        "sh",
        "-c",
        'echo more >> notes/deep/todo.txt && echo y >> repo/lib/util/helpers.py && touch repo/lib/util/new.py notes/deep/new "$1/new" ./top-level && cat notes/deep/todo.txt',
        "sh",
        session.scratchDir,
      ]);
      expect(edits, edits.stderr).toMatchObject({ exitCode: 0, stdout: "first\nmore\n" });

      // Not root: the image's own folders stay closed.
      const intoEtc = await session.exec(["sh", "-c", "echo x > /etc/running-agent-test"]);
      expect(intoEtc.exitCode).not.toBe(0);
      expect(intoEtc.stderr).toMatch(/Permission denied/);
      // No capabilities either (the container runs as root; the exec's user must not inherit root's).
      const capabilities = await session.exec(["grep", "^CapEff", "/proc/self/status"]);
      expect(capabilities.stdout).toMatch(/^CapEff:\s+0+\n$/);

      // A tree of the user's processes is killed from outside by the same user.
      const marker = `${randomInt(100_000, 999_999)}.5`;
      const tree = await session.spawn(["sh", "-c", `sleep ${marker} & sleep ${marker} & echo started; wait`], { onStdout: () => undefined });
      for (let attempt = 0; attempt < 50 && !(await isHostProcessAlive(marker)); attempt++) await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await isHostProcessAlive(marker)).toBe(true);
      await tree.kill();
      expect(await tree.exited).toBeNull();
      expect(await isHostProcessAlive(marker)).toBe(false);
    } finally {
      await session.destroy();
    }
    await expectNoContainers(run);
  });

  it("a user named in the image works and, without a writable home of its own, gets the scratch folder as HOME", async () => {
    const { provider, run } = scopedProvider({ user: "nobody" });
    await using session = await provider.create({ taskId: "named-user" });
    const result = await session.exec(["sh", "-c", 'id -un; echo "$HOME"; touch "$HOME/.written"']);
    expect(result).toMatchObject({ exitCode: 0, stdout: `nobody\n${session.scratchDir}\n` });
    await session.destroy();
    await expectNoContainers(run);
  });

  it("a user the image does not have: SANDBOX_IMAGE_INVALID naming it, nothing left", async () => {
    const { provider, run } = scopedProvider({ user: "ghost-user" });
    const error = await provider.create({ taskId: "x" }).catch((caught: unknown) => caught);
    expect(RunningAgentError.isInstance(error) && error.code).toBe(ErrorCode.SANDBOX_IMAGE_INVALID);
    expect((error as RunningAgentError).details).toMatchObject({ missing: "user", user: "ghost-user" });
    expect((error as Error).message).toContain("ghost-user");
    await expectNoContainers(run);
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

  describe("the socket folders of enforced containers", () => {
    // Only this file's folders: with a cutoff of 0 the reaper must not see other runs' folders.
    usePrivateTmpdir("running-agent-docker-reap-tmp-");

    it("removes a folder that a crashed process left and keeps the one a live container binds", async () => {
      const { provider, run } = scopedProvider();
      const left = join(mkdtempSync(join(tmpdir(), "running-agent-docker-net-")), "ports");
      mkdirSync(left);
      await using live = await provider.create({ taskId: "enforced", network: "none" });
      const folders = () => readdirSync(tmpdir()).filter((name) => name.startsWith("running-agent-docker-net-"));
      expect(folders()).toHaveLength(2);
      // A cutoff of 0 with another provider's labels: the live container stays, so does its folder.
      await scopedProvider().provider.reapOrphans({ olderThanMs: 0 });
      expect(folders()).toHaveLength(1);
      expect(existsSync(dirname(left))).toBe(false);
      expect((await live.exec(["true"])).exitCode).toBe(0);
      await live.destroy();
      expect(folders()).toEqual([]);
      await expectNoContainers(run);
    });
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
      { user: "" },
      { user: "1000:" },
      { user: ":1000" },
      { user: "1000:1000:1000" },
      { user: "agent user" },
      { user: "-agent" },
      { user: "99999999999" },
      { user: 1000 },
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
    expect(() => createDockerSandbox({ user: "1000:1000:1000" })).toThrow(/settings\.user must be .*"1000:1000"/);
    for (const user of ["0", "1000", "1000:1000", "agent", "agent:staff", "build_user$", "1000:docker"]) expect(() => createDockerSandbox({ user })).not.toThrow();
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

    const strict = scopedProvider({ network: "host", egress: "network", allowList: "reject" });
    expect(await codeOf(strict.provider.create({ taskId: "x", network: { allow: ["127.0.0.1"] } }))).toBe(ErrorCode.CAPABILITY_UNSUPPORTED);
    // Enforced through the egress proxy (the default here), an allow-list needs the proxy's socket.
    expect(await codeOf(provider.create({ taskId: "x", network: { allow: ["127.0.0.1"] } }))).toBe(ErrorCode.INVALID_OPTIONS);

    for (const scope of [run, missingNetwork.run, strict.run]) await expectNoContainers(scope);
  });

  it("a network policy of none wins over the provider's network, and an exposed port is still reached through its socket", async () => {
    const { provider, run } = scopedProvider({ network: "host" });
    await using session = await provider.create({ taskId: "x", network: "none" });
    expect((await docker.getContainer(session.id).inspect()).HostConfig.NetworkMode).toBe("none");
    const port = await session.allocatePort!();
    const exposed = await session.exposePort(port);
    await gitDaemonPortServer.prepare!(session, session.workdir);
    const server = await session.spawn(gitDaemonPortServer.command(port, session.workdir));
    await gitDaemonPortServer.probe(exposed);
    // The container's root puts a link to another socket of this machine where the relay's socket was:
    // the host goes on reaching the relay through its own hard link, never the other socket.
    let otherConnections = 0;
    const other = createServer((socket) => {
      otherConnections += 1;
      socket.destroy();
    });
    const otherPath = join(mkdtempSync(join(tmpdir(), "running-agent-other-socket-")), "other.sock");
    await new Promise<void>((resolve) => other.listen(otherPath, resolve));
    try {
      const replaced = await session.exec(["sh", "-c", 'rm -f "$1" && ln -s "$2" "$1"', "sh", `/run/running-agent-ports/${port}.sock`, otherPath]);
      expect(replaced.exitCode, replaced.stderr).toBe(0);
      await gitDaemonPortServer.probe(exposed);
      expect(otherConnections).toBe(0);
    } finally {
      await new Promise<void>((resolve) => other.close(() => resolve()));
      rmSync(dirname(otherPath), { recursive: true, force: true });
    }
    // A port after the first (whose relay started at create) gets a relay of its own when exposed.
    const second = await session.allocatePort!();
    expect(second).not.toBe(port);
    const secondExposed = await session.exposePort(second);
    const secondServer = await session.spawn(gitDaemonPortServer.command(second, session.workdir));
    await gitDaemonPortServer.probe(secondExposed);
    await secondServer.kill();
    await server.kill();
    await session.destroy();
    await expectNoContainers(run);
  });
});

describe("the container's own preparation and the relays of an enforced container", () => {
  usePrivateTmpdir("running-agent-docker-relays-tmp-");
  const socketFolders = () => readdirSync(tmpdir()).filter((name) => name.startsWith("running-agent-docker-net-"));
  const imageOfUser = `running-agent/test-image-user:${process.pid}`;
  const imageWithoutSocat = `running-agent/test-without-socat:${process.pid}`;
  const imageWithoutShell = `running-agent/test-without-shell:${process.pid}`;

  /** Commits the default image after `script` ran in it, with Dockerfile-style `changes`. */
  async function derivedImage(name: string, command: string[], changes: string[] = []): Promise<void> {
    const container = await docker.createContainer({ Image: DEFAULT_IMAGE, Entrypoint: command, HostConfig: { NetworkMode: "none" } });
    await container.start();
    await container.wait();
    await container.commit({ repo: name.split(":")[0], tag: name.split(":")[1], changes });
    await container.remove({ force: true });
  }

  beforeAll(async () => {
    // A non-root user of the image's own, with the task's folders made for it.
    const folders = ["/workspace", "/var/tmp/running-agent", "/run/running-agent"];
    await derivedImage(imageOfUser, ["sh", "-c", `mkdir -p ${folders.join(" ")} && chown 1000:1000 ${folders.join(" ")}`], ["USER 1000:1000"]);
    await derivedImage(imageWithoutSocat, ["rm", "-f", "/usr/bin/socat"]);
    await derivedImage(imageWithoutShell, ["rm", "-f", "/bin/sh"]);
  });
  afterAll(async () => {
    for (const image of [imageOfUser, imageWithoutSocat, imageWithoutShell]) await docker.getImage(image).remove({ force: true }).catch(() => undefined);
  });

  it("an image without /bin/sh: SANDBOX_IMAGE_INVALID naming the shell, nothing left", async () => {
    const { provider, run } = scopedProvider({ image: imageWithoutShell });
    const error = await provider.create({ taskId: "x" }).catch((caught: unknown) => caught);
    if (!RunningAgentError.isInstance(error)) await (error as { destroy?: () => Promise<void> }).destroy?.();
    expect(RunningAgentError.isInstance(error) && error.code).toBe(ErrorCode.SANDBOX_IMAGE_INVALID);
    expect((error as RunningAgentError).details).toMatchObject({ missing: "sh" });
    await expectNoContainers(run);
  });

  it("an image without socat: SANDBOX_IMAGE_INVALID naming socat, from the container's own preparation; no container or socket folder left", async () => {
    const { provider, run } = scopedProvider({ image: imageWithoutSocat });
    const error = await provider.create({ taskId: "x", network: "none" }).catch((caught: unknown) => caught);
    if (!RunningAgentError.isInstance(error)) await (error as { destroy?: () => Promise<void> }).destroy?.();
    expect(RunningAgentError.isInstance(error) && error.code).toBe(ErrorCode.SANDBOX_IMAGE_INVALID);
    expect((error as RunningAgentError).details).toMatchObject({ missing: "socat" });
    await expectNoContainers(run);
    expect(socketFolders()).toEqual([]);
  });

  it("with settings.user: the relays start in the preparation's root step, and the first port is reached from a server of that user", async () => {
    const { provider, run } = scopedProvider({ user: "1000:1000" });
    await using session = await provider.create({ taskId: "x", network: "none" });
    const port = await session.allocatePort!();
    const exposed = await session.exposePort(port);
    await gitDaemonPortServer.prepare!(session, session.workdir);
    const server = await session.spawn(gitDaemonPortServer.command(port, session.workdir));
    await gitDaemonPortServer.probe(exposed);
    expect((await session.exec(["id", "-u"])).stdout.trim()).toBe("1000");
    await server.kill();
    await session.destroy();
    await expectNoContainers(run);
    expect(socketFolders()).toEqual([]);
  });

  it("an image whose user is not root: the relays start as root in an exec of their own, and the first port is reached", async () => {
    const { provider, run } = scopedProvider({ image: imageOfUser });
    await using session = await provider.create({ taskId: "x", network: "none" });
    expect((await session.exec(["id", "-u"])).stdout.trim()).toBe("1000");
    const port = await session.allocatePort!();
    const exposed = await session.exposePort(port);
    await gitDaemonPortServer.prepare!(session, session.workdir);
    const server = await session.spawn(gitDaemonPortServer.command(port, session.workdir));
    await gitDaemonPortServer.probe(exposed);
    await server.kill();
    await session.destroy();
    await expectNoContainers(run);
    expect(socketFolders()).toEqual([]);
  });
});
