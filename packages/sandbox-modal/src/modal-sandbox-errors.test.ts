import { createServer, type Server } from "node:net";
import type { ModalClient, Sandbox } from "modal";
import { ErrorCode, RunningAgentError } from "@running-agent/core";
import { expectRunningAgentError } from "@running-agent/core/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { createModalSandbox, type ModalSandboxSession, type ModalSandboxSettings } from "./index.js";
import { startModalServer, type ModalServer } from "./testing/index.js";

let server: ModalServer;

beforeAll(async () => {
  server = await startModalServer();
});

afterEach(() => {
  server.clearFailures();
  vi.unstubAllEnvs();
});

afterAll(async () => {
  await server?.close();
});

const local = (settings: ModalSandboxSettings = {}) =>
  createModalSandbox({ serverUrl: server.url, tokenId: server.tokenId, tokenSecret: server.tokenSecret, app: "errors", ...settings });

async function codeOf(promise: Promise<unknown>): Promise<string> {
  return (await expectRunningAgentError(promise)).code;
}

function sandboxCount(): number {
  return server.sandboxes().length;
}

describe("bad settings are rejected by the factory, before any I/O", () => {
  const cases: Array<[string, ModalSandboxSettings]> = [
    ["an app name with a space", { app: "my app" }],
    ["a non-positive cpu", { cpu: 0 }],
    ["a negative memory", { memoryMiB: -1 }],
    ["a timeout over 24 hours", { timeoutMs: 25 * 3600 * 1000 }],
    ["an image without tag or id", { image: { registryTag: "" } }],
    ["an image id of the wrong shape", { image: { imageId: "ubuntu" } }],
    ["a relative workdir", { workdir: "workspace" }],
    ["a port out of range", { ports: [70000] }],
    ["a token id without its secret", { tokenId: "ak-x" }],
    ["a network range that is not a CIDR", { network: { allow: ["10.0.0.0/33"] } }],
    ["a server URL that is not http(s)", { serverUrl: "127.0.0.1:1" }],
  ];
  for (const [name, settings] of cases) {
    it(`rejects ${name} with INVALID_OPTIONS`, () => {
      const before = server.calls.length;
      let caught: unknown;
      try {
        createModalSandbox(settings);
      } catch (error) {
        caught = error;
      }
      expect(RunningAgentError.isInstance(caught) && caught.code).toBe(ErrorCode.INVALID_OPTIONS);
      expect(server.calls.length).toBe(before);
    });
  }
});

describe("credentials", () => {
  it("a missing token fails with AUTH_FAILED before anything is created", async () => {
    vi.stubEnv("MODAL_TOKEN_ID", "");
    vi.stubEnv("MODAL_TOKEN_SECRET", "");
    vi.stubEnv("MODAL_CONFIG_PATH", "/nonexistent/modal.toml");
    const before = sandboxCount();
    expect(await codeOf(createModalSandbox({ serverUrl: server.url }).create({ taskId: "t" }))).toBe(ErrorCode.AUTH_FAILED);
    expect(sandboxCount()).toBe(before);
  });

  it("a wrong token secret fails with AUTH_FAILED, in validate() and create()", async () => {
    const before = sandboxCount();
    const provider = createModalSandbox({ serverUrl: server.url, tokenId: server.tokenId, tokenSecret: "as-wrong" });
    expect(await codeOf(provider.validate())).toBe(ErrorCode.AUTH_FAILED);
    expect(await codeOf(provider.create({ taskId: "t" }))).toBe(ErrorCode.AUTH_FAILED);
    expect(sandboxCount()).toBe(before);
  });

  it("a token the server stops accepting fails with AUTH_FAILED", async () => {
    server.injectFailure({ kind: "invalid-token" });
    expect(await codeOf(local().validate())).toBe(ErrorCode.AUTH_FAILED);
  });

  it("tokens from MODAL_TOKEN_ID / MODAL_TOKEN_SECRET are used when none are given", async () => {
    vi.stubEnv("MODAL_TOKEN_ID", server.tokenId);
    vi.stubEnv("MODAL_TOKEN_SECRET", server.tokenSecret);
    await createModalSandbox({ serverUrl: server.url, app: "errors" }).validate();
  });
});

describe("apps and images", () => {
  it("an app that does not exist fails with SANDBOX_UNAVAILABLE when creation is not allowed, and is found once deployed", async () => {
    const provider = local({ app: { name: "not-deployed-yet", createIfMissing: false } });
    const error = await expectRunningAgentError(provider.create({ taskId: "t" }));
    expect(error.code).toBe(ErrorCode.SANDBOX_UNAVAILABLE);
    expect(error.details).toMatchObject({ reason: "app-not-found", app: "not-deployed-yet" });
    server.createApp("not-deployed-yet");
    await provider.validate();
  });

  it("an image id Modal does not have fails with SANDBOX_IMAGE_NOT_FOUND and creates nothing", async () => {
    const before = sandboxCount();
    expect(await codeOf(local({ image: { imageId: "im-DoesNotExist0000000000" } }).create({ taskId: "t" }))).toBe(ErrorCode.SANDBOX_IMAGE_NOT_FOUND);
    expect(sandboxCount()).toBe(before);
  });

  it("a failed image build fails with SANDBOX_IMAGE_BUILD_FAILED carrying the build log", async () => {
    server.injectFailure({ kind: "image-build", log: "E: Unable to locate package no-such-package\n" });
    const before = sandboxCount();
    const provider = local({ image: { registryTag: "debian:bookworm-slim", dockerfileCommands: ["RUN apt-get install -y no-such-package"] } });
    const error = await expectRunningAgentError(provider.create({ taskId: "t" }));
    expect(error.code).toBe(ErrorCode.SANDBOX_IMAGE_BUILD_FAILED);
    expect(error.message).toContain("Unable to locate package no-such-package");
    expect(String(error.details?.log)).toContain("Unable to locate package no-such-package");
    expect(sandboxCount()).toBe(before);
  });

  it("the default image is the registry tag plus the commands that add git and the pinned OpenCode", async () => {
    await using session = await local().create({ taskId: "default-image" });
    const record = server.sandboxes().find((candidate) => candidate.sandboxId === session.id)!;
    const layers = server.images().filter((image) => image.imageId === record.imageId || server.images().some((other) => other.baseImageIds.includes(image.imageId)));
    const commands = layers.flatMap((image) => image.dockerfileCommands).join("\n");
    expect(commands).toContain("FROM node:20-bookworm-slim");
    expect(commands).toContain("git");
    expect(commands).toContain("opencode-linux-x64@1.18.33");
  });
});

describe("capacity, death and tunnels", () => {
  it("a quota error fails with SANDBOX_QUOTA_EXCEEDED and leaves nothing running", async () => {
    server.injectFailure({ kind: "quota" });
    expect(await codeOf(local().create({ taskId: "t" }))).toBe(ErrorCode.SANDBOX_QUOTA_EXCEEDED);
    expect(server.liveSandboxes()).toEqual([]);
  });

  it("a sandbox that dies mid-command fails that command and the next with SANDBOX_TERMINATED", async () => {
    const session = await local().create({ taskId: "dies" });
    try {
      const running = session.exec(["sh", "-c", "echo started; sleep 1000"], {
        onStdout: () => void server.killSandbox(session.id),
      });
      expect(await codeOf(running)).toBe(ErrorCode.SANDBOX_TERMINATED);
      expect(await codeOf(session.exec(["true"]))).toBe(ErrorCode.SANDBOX_TERMINATED);
    } finally {
      await session.destroy();
    }
    expect(server.liveSandboxes()).toEqual([]);
  });

  it("a command stopped by its timeout or an abort rejects only once its tree is killed, even when the kill is slow", async () => {
    const session = (await local().create({ taskId: "slow-kill" })) as ModalSandboxSession;
    // The kill is an exec of its own; holding it back shows whether the rejection waits for it.
    const sandbox = session.modalSandbox as Sandbox;
    const exec = sandbox.exec.bind(sandbox) as (command: string[], options?: unknown) => Promise<unknown>;
    sandbox.exec = (async (command: string[], options?: unknown) => {
      if (command.some((argument) => argument.includes("kill -KILL"))) await new Promise((resolve) => setTimeout(resolve, 800));
      return exec(command, options);
    }) as typeof sandbox.exec;
    const ticking = ["sh", "-c", 'echo started; while :; do echo tick >> "$1"; sleep 0.05; done', "sh"];
    const size = (file: string) => session.readFile(file).then((content) => content.byteLength);
    try {
      expect(await codeOf(session.exec([...ticking, "timed-out"], { timeoutMs: 300 }))).toBe(ErrorCode.SANDBOX_EXEC_TIMEOUT);
      const afterTimeout = await size("timed-out");
      const controller = new AbortController();
      expect(await codeOf(session.exec([...ticking, "aborted"], { signal: controller.signal, onStdout: () => controller.abort() }))).toBe(ErrorCode.ABORTED);
      const afterAbort = await size("aborted");
      await new Promise((resolve) => setTimeout(resolve, 400));
      expect(await size("timed-out"), "the timed-out command wrote after its rejection").toBe(afterTimeout);
      expect(await size("aborted"), "the aborted command wrote after its rejection").toBe(afterAbort);
    } finally {
      await session.destroy();
    }
  });

  it("a sandbox past its own timeout is ended by Modal and then fails with SANDBOX_TERMINATED", async () => {
    const session = await local().create({ taskId: "short-lived", timeoutMs: 1000 });
    try {
      const record = server.sandboxes().find((candidate) => candidate.sandboxId === session.id)!;
      expect(record.definition.timeoutSecs).toBe(1);
      await vi.waitFor(() => expect(record.result?.status).toBe(4), { timeout: 10_000, interval: 100 });
      expect(await codeOf(session.exec(["true"]))).toBe(ErrorCode.SANDBOX_TERMINATED);
    } finally {
      await session.destroy();
    }
  });

  it("a tunnel that never opens fails exposePort with SANDBOX_PORT_UNAVAILABLE", async () => {
    server.injectFailure({ kind: "tunnel-never-opens" });
    const session = await local({ tunnelTimeoutMs: 1000 }).create({ taskId: "no-tunnel" });
    try {
      const port = await session.allocatePort!();
      expect(await codeOf(session.exposePort(port))).toBe(ErrorCode.SANDBOX_PORT_UNAVAILABLE);
    } finally {
      await session.destroy();
    }
    expect(server.liveSandboxes()).toEqual([]);
  });

  it("a port that was not declared at creation fails exposePort with SANDBOX_PORT_UNAVAILABLE", async () => {
    await using session = await local({ ports: [31001] }).create({ taskId: "ports" });
    expect(await codeOf(session.exposePort(31002))).toBe(ErrorCode.SANDBOX_PORT_UNAVAILABLE);
    expect(await session.allocatePort!()).toBe(31001);
    expect(await codeOf(session.allocatePort!())).toBe(ErrorCode.SANDBOX_PORT_UNAVAILABLE);
  });

  it("an aborted create fails with ABORTED and leaves no sandbox behind", async () => {
    const before = sandboxCount();
    expect(await codeOf(local().create({ taskId: "t", signal: AbortSignal.abort() }))).toBe(ErrorCode.ABORTED);
    expect(sandboxCount()).toBe(before);
    const controller = new AbortController();
    const creating = local().create({ taskId: "aborted-midway", signal: controller.signal });
    setTimeout(() => controller.abort(), 0);
    expect(await codeOf(creating)).toBe(ErrorCode.ABORTED);
    // A sandbox the server finished creating after the abort is terminated as soon as it exists.
    await vi.waitFor(() => expect(server.liveSandboxes()).toEqual([]), { timeout: 10_000, interval: 100 });
  });

  it("a secret or env name Modal cannot pass as an environment variable fails with INVALID_OPTIONS before creation", async () => {
    const before = sandboxCount();
    expect(await codeOf(local().create({ taskId: "t", secrets: { "NOT-A-NAME": "x" } }))).toBe(ErrorCode.INVALID_OPTIONS);
    expect(await codeOf(local().create({ taskId: "t", env: { "1BAD": "x" } }))).toBe(ErrorCode.INVALID_OPTIONS);
    expect(sandboxCount()).toBe(before);
  });

  it("a process limit, which Modal does not offer, fails with CAPABILITY_UNSUPPORTED", async () => {
    expect(await codeOf(local().create({ taskId: "t", resources: { pids: 10 } }))).toBe(ErrorCode.CAPABILITY_UNSUPPORTED);
  });
});

describe("what the sandbox is created with", () => {
  it("maps resources, timeouts, network allow-list, tags and secrets onto Modal's create request", async () => {
    const provider = local({ cpu: 0.5, memoryMiB: 512, idleTimeoutMs: 60_500, tags: { team: "infra" } });
    await using session = await provider.create({
      taskId: "mapped",
      resources: { cpu: 2 },
      timeoutMs: 90_000,
      network: { allow: ["10.1.0.0/16", "api.example.test", "127.0.0.1"] },
      labels: { "running-agent.repo": "owner/repo" },
      secrets: { MODEL_KEY: "value-that-must-not-leak" },
    });
    const record = server.sandboxes().find((candidate) => candidate.sandboxId === session.id)!;
    expect(record.definition).toMatchObject({
      resources: { milliCpu: 2000, memoryMb: 512 },
      timeoutSecs: 90,
      idleTimeoutSecs: 61,
      networkAccess: { networkAccessType: 3, allowedCidrs: ["10.1.0.0/16", "127.0.0.1/32"], allowedDomains: ["api.example.test"] },
    });
    expect(record.tags).toMatchObject({ team: "infra", "running-agent.managed": "true", "running-agent.task": "mapped", "running-agent.repo": "owner/repo" });
    expect(record.secretNames).toContain("MODEL_KEY");
    expect(JSON.stringify(record.definition)).not.toContain("value-that-must-not-leak");
    expect((await session.exec(["sh", "-c", 'printf %s "$MODEL_KEY"'])).stdout).toBe("value-that-must-not-leak");
  });

  it('network policy "none" still serves an exposed port to the host through the tunnel', async () => {
    await using blocked = await local().create({ taskId: "offline-server", network: "none" });
    const port = await blocked.allocatePort!();
    const exposed = await blocked.exposePort(port);
    const serverProcess = await blocked.spawn(["node", "-e", `require("http").createServer((q, s) => s.end("inside")).listen(${port}, "127.0.0.1")`]);
    try {
      await vi.waitFor(async () => expect(await (await fetch(exposed.url)).text()).toBe("inside"), { timeout: 20_000, interval: 200 });
    } finally {
      await serverProcess.kill();
    }
  });

  it('network policy "none" blocks the sandbox from the host\'s services; "open" reaches them', async () => {
    const listener: Server = createServer((socket) => socket.on("error", () => undefined).end("hello"));
    await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve));
    const port = (listener.address() as { port: number }).port;
    // Node is part of the local server's image (the host's /usr): a small TCP client.
    const probe = ["node", "-e", `require("net").connect(${port}, "127.0.0.1").on("connect", () => process.exit(0)).on("error", () => process.exit(3))`];
    try {
      await using blocked = await local().create({ taskId: "offline", network: "none" });
      expect((await blocked.exec(probe)).exitCode).toBe(3);
      await using open = await local().create({ taskId: "online", network: "open" });
      expect((await open.exec(probe)).exitCode).toBe(0);
    } finally {
      listener.close();
    }
  });
});

describe("orphans and snapshots", () => {
  it("reapOrphans terminates our tagged sandboxes, respects olderThanMs and leaves other sandboxes alone", async () => {
    const provider = local({ app: "reaping" });
    const first = await provider.create({ taskId: "orphan-1" });
    const second = await provider.create({ taskId: "orphan-2" });
    const client = provider.modalClient() as ModalClient;
    const app = await client.apps.fromName("reaping", { createIfMissing: true });
    const foreignImage = await client.images.fromRegistry("debian:bookworm-slim").build(app);
    const foreign = await client.sandboxes.create(app, foreignImage, { tags: { owner: "someone-else" } });
    try {
      expect(await provider.reapOrphans({ olderThanMs: 3600_000 })).toBe(0);
      expect(await provider.reapOrphans()).toBe(2);
      const live = server.liveSandboxes().map((record) => record.sandboxId);
      expect(live).not.toContain(first.id);
      expect(live).not.toContain(second.id);
      expect(live).toContain(foreign.sandboxId);
    } finally {
      await foreign.terminate();
      await first.destroy();
      await second.destroy();
    }
    expect(server.liveSandboxes()).toEqual([]);
  });

  it("a filesystem snapshot becomes an image id that a later sandbox starts from", async () => {
    const provider = local();
    let imageId: string;
    {
      await using prepared = await provider.create({ taskId: "prepare" });
      await prepared.writeFile("deps/installed.txt", "node_modules would be here");
      imageId = await provider.snapshots!.snapshot(prepared);
    }
    expect(imageId).toMatch(/^im-/);
    expect(server.images().find((image) => image.imageId === imageId)?.snapshotOf).toBeDefined();
    await using restored = await local({ image: { imageId } }).create({ taskId: "from-snapshot" });
    expect(Buffer.from(await restored.readFile("deps/installed.txt")).toString()).toBe("node_modules would be here");
  });
});
