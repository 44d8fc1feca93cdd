import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { connect, createServer, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { agentError, ErrorCode } from "../errors.js";
import type { AgentTaskEventInput } from "../events.js";
import { createLocalSandbox } from "../sandbox-local/local-sandbox.js";
import type { SandboxExecOptions, SandboxExecResult, SandboxProvider, SandboxSession } from "../spec/sandbox-spec.js";
import { expectRunningAgentError } from "../testing/expect-running-agent-error.js";
import { startScriptedModelServer, type ScriptedModelServer, type ScriptedModelServerOptions } from "../testing/scripted-model-server.js";
import { resolveModel, type ResolvedModel } from "./model-resolution.js";
import { runOpencodeAgent, type AgentRunInput, type AgentRunOutput } from "./opencode-engine.js";
import { opencodeFolders, preSeededConfigEntries } from "./opencode-config.js";

const KEY_ENV = "RUNNING_AGENT_MODEL_API_KEY";
/**
 * The run's time limit where a test waits for something else (an answer, a request, the end):
 * only a bound that ends a stuck run inside the test's own 120 s, never what a test waits for. A
 * loaded machine can take over 40 s just to start the server, so a tighter limit would race it.
 */
const SAFETY_NET_MS = 100_000;

/** Host processes whose argv contains `serve ... --port <port>` (the OpenCode server of one run). */
function serverProcesses(port: number): Array<{ pid: string; argv: string[]; environ: string[] }> {
  const found: Array<{ pid: string; argv: string[]; environ: string[] }> = [];
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      const portIndex = argv.indexOf("--port");
      if (!argv.includes("serve") || portIndex < 0 || argv[portIndex + 1] !== String(port)) continue;
      // bwrap's own process carries the same argv; the server is the one that is OpenCode itself.
      if (!/opencode$/.test(argv[0] ?? "")) continue;
      found.push({ pid, argv, environ: readFileSync(`/proc/${pid}/environ`, "utf8").split("\0") });
    } catch {
      // The process ended while we looked.
    }
  }
  return found;
}

/**
 * Waits (up to 15 s, the suite's poll limit) until no server process of the run is left. A bubblewrap
 * sandbox's inner processes can outlive `bwrap` itself by a moment while the namespace is torn down,
 * and a loaded machine can stretch that moment.
 */
async function serverGone(port: number): Promise<boolean> {
  for (let waited = 0; waited < 15_000; waited += 100) {
    if (serverProcesses(port).length === 0) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return serverProcesses(port).length === 0;
}

async function portIsClosed(port: number): Promise<boolean> {
  return fetch(`http://127.0.0.1:${port}/`).then(
    () => false,
    () => true,
  );
}

interface Harness {
  provider: SandboxProvider;
  session: SandboxSession;
  model: ScriptedModelServer;
  resolved: ResolvedModel;
  key: string;
  port: number;
  events: AgentTaskEventInput[];
  run(overrides?: Partial<AgentRunInput>): Promise<AgentRunOutput>;
}

const open: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of open.splice(0).reverse()) await close();
});

async function harness(options: {
  isolation: "bubblewrap" | "none";
  model: ScriptedModelServerOptions;
  resolved?: (url: string, key: string) => ResolvedModel;
  /** The key the sandbox holds, when it differs from the one the model server expects. */
  sandboxKey?: string;
}): Promise<Harness> {
  const key = `sk-test-${randomBytes(12).toString("hex")}`;
  const model = await startScriptedModelServer({ apiKey: key, ...options.model });
  open.push(() => model.close());
  const provider = createLocalSandbox({ isolation: options.isolation });
  const session = await provider.create({ taskId: `engine-${randomBytes(4).toString("hex")}`, secrets: { [KEY_ENV]: options.sandboxKey ?? key } });
  open.push(() => session.destroy());
  await session.writeFile("README.md", "# Sample\n");
  for (const command of [
    ["git", "init", "-q"],
    ["git", "add", "-A"],
    ["git", "-c", "user.name=Test", "-c", "user.email=test@example.test", "commit", "-q", "-m", "init"],
  ]) {
    const result = await session.exec(command);
    expect(result.exitCode, result.stderr).toBe(0);
  }
  const resolved =
    options.resolved?.(model.url, key) ?? resolveModel({ provider: "openai-compatible", model: "scripted-model", baseURL: model.url, apiKey: key });
  const port = await session.allocatePort!();
  const events: AgentTaskEventInput[] = [];
  return {
    provider,
    session,
    model,
    resolved,
    key,
    port,
    events,
    run: (overrides = {}) =>
      runOpencodeAgent({
        session,
        opencodeBinary: provider.opencodeBinary ?? "opencode",
        model: resolved,
        apiKeyEnv: KEY_ENV,
        task: "Create hello.txt that says hello.",
        allowRepoAgentConfig: false,
        timeoutMs: SAFETY_NET_MS,
        emit: (event) => events.push(event),
        port,
        ...overrides,
      }),
  };
}

const writeThenAnswer: ScriptedModelServerOptions = {
  script: [
    { toolCalls: [{ name: "write", arguments: { filePath: "hello.txt", content: "hello\n" } }] },
    { text: "Created hello.txt containing a greeting." },
  ],
};

describe.each(["bubblewrap", "none"] as const)("runOpencodeAgent with the real OpenCode binary (local sandbox, isolation: %s)", (isolation) => {
  it("runs the write tool, then ends with the model's text as the summary", async () => {
    const h = await harness({ isolation, model: writeThenAnswer });
    const seenWhileRunning: Array<{ argv: string[]; environ: string[] }> = [];
    let unauthenticated: Promise<number> | undefined;
    const startedAt = Date.now();
    const output = await h.run({
      emit: (event) => {
        h.events.push(event);
        // Look at the live server process once, while it runs.
        if (event.type === "agent.tool" && seenWhileRunning.length === 0) {
          seenWhileRunning.push(...serverProcesses(h.port));
          unauthenticated = fetch(`http://127.0.0.1:${h.port}/session`).then((response) => response.status);
        }
      },
    });

    expect(new TextDecoder().decode(await h.session.readFile("hello.txt"))).toBe("hello\n");
    // The server's start wrote the pre-seeded config folder (which keeps OpenCode from installing its plugin package).
    for (const entry of preSeededConfigEntries().filter((candidate) => candidate.content !== undefined)) {
      expect(new TextDecoder().decode(await h.session.readFile(`${opencodeFolders(h.session.scratchDir).root}/${entry.path}`))).toBe(entry.content);
    }
    expect(output.summary).toBe("Created hello.txt containing a greeting.");
    expect(output.finishReason).toBe("stop");
    expect(output.messages).toBe(3);
    expect(output.usage.inputTokens).toBeGreaterThan(0);
    expect(output.usage.outputTokens).toBeGreaterThan(0);

    const toolEvents = h.events.filter((event) => event.type === "agent.tool" && event.tool === "write");
    expect(toolEvents.map((event) => event.type === "agent.tool" && event.status)).toEqual(["pending", "running", "completed"]);
    const completed = toolEvents.at(-1)!;
    expect(completed.type === "agent.tool" && completed.input).toEqual({ filePath: "hello.txt", content: "hello\n" });
    expect(h.events).toContainEqual({ type: "agent.file", path: "hello.txt" });
    const texts = h.events.filter((event) => event.type === "agent.text");
    expect(texts.length).toBeGreaterThan(1);
    expect(texts.map((event) => (event.type === "agent.text" ? event.delta : "")).join("")).toBe(output.summary);
    // The prompt itself is never reported as agent text.
    expect(texts.some((event) => event.type === "agent.text" && event.text.includes("Create hello.txt"))).toBe(false);
    const lastUsage = h.events.filter((event) => event.type === "agent.usage").at(-1);
    expect(lastUsage?.type === "agent.usage" && lastUsage.usage).toEqual(output.usage);

    // The model saw the task and the key, sent as a bearer token.
    expect(h.model.chatRequests).toHaveLength(2);
    for (const request of h.model.chatRequests) expect(request.headers.authorization).toBe(`Bearer ${h.key}`);
    expect(JSON.stringify(h.model.chatRequests[0]!.body.messages)).toContain("Create hello.txt that says hello.");
    const toolResult = h.model.chatRequests[1]!.body.messages.find((message: { role: string }) => message.role === "tool");
    expect(toolResult.tool_call_id).toBe("call_0_0");

    // The key is in neither the server's argv nor its config, only in the secret env var.
    expect(seenWhileRunning).toHaveLength(1);
    const live = seenWhileRunning[0]!;
    expect(live.argv.join(" ")).not.toContain(h.key);
    const config = live.environ.find((entry) => entry.startsWith("OPENCODE_CONFIG_CONTENT="))!;
    expect(config).toContain(`{env:${KEY_ENV}}`);
    expect(config).not.toContain(h.key);
    expect(live.environ).toContain(`${KEY_ENV}=${h.key}`);
    expect(live.environ).toContain("OPENCODE_DISABLE_PROJECT_CONFIG=1");

    // The server wants the run's password: other local processes cannot drive it.
    expect(await unauthenticated).toBe(401);

    // Nothing is left running.
    expect(await serverGone(h.port)).toBe(true);
    expect(await portIsClosed(h.port)).toBe(true);

    console.log(
      `[figures] isolation=${isolation} serverStartMs=${output.serverStartMs} firstModelRequestMs(engine)=${output.firstModelRequestMs} ` +
        `firstModelRequestMs(model server)=${h.model.chatRequests[0]!.receivedAt - startedAt} totalMs=${Date.now() - startedAt}`,
    );
  });
});

describe("runOpencodeAgent: failures end the run and leave nothing running (bubblewrap)", () => {
  it("a model that answers 500 forever is retried until our timeout ends it with AGENT_TIMEOUT", async () => {
    const h = await harness({ isolation: "bubblewrap", model: { afterScript: { status: 500 } } });
    // Time is up once the model has failed twice and OpenCode has said it retries: an event, not a
    // guessed span (on a loaded machine the server's start alone took longer than 40 s).
    const timeUp = new AbortController();
    let retried = () => {};
    const retryReported = new Promise<void>((resolve) => (retried = resolve));
    void Promise.all([h.model.waitForChatRequests(2), retryReported]).then(() => timeUp.abort());
    const error = await expectRunningAgentError(
      h.run({
        timeoutMs: 3_600_000,
        timeoutSignal: timeUp.signal,
        emit: (event) => {
          h.events.push(event);
          if (event.type === "agent.retry" && event.attempt >= 1) retried();
        },
      }),
    );
    expect(error.code).toBe(ErrorCode.AGENT_TIMEOUT);
    expect(error.phase).toBe("agent");
    // The message says why it never finished: the model kept failing.
    expect(error.message).toContain("Scripted error 500");
    expect(h.model.chatRequests.length).toBeGreaterThanOrEqual(2);
    expect(h.events.some((event) => event.type === "agent.retry" && event.attempt >= 1)).toBe(true);
    expect(await serverGone(h.port)).toBe(true);
    expect(await portIsClosed(h.port)).toBe(true);
  });

  it("an abort while the model hangs ends the run with ABORTED", async () => {
    const h = await harness({ isolation: "bubblewrap", model: { script: [{ hang: true }] } });
    const controller = new AbortController();
    void h.model.waitForChatRequests(1).then(
      () => controller.abort(),
      () => undefined,
    );
    const error = await expectRunningAgentError(h.run({ signal: controller.signal }));
    expect(error.code).toBe(ErrorCode.ABORTED);
    expect(error.phase).toBe("agent");
    expect(h.model.chatRequests).toHaveLength(1);
    expect(await serverGone(h.port)).toBe(true);
    expect(await portIsClosed(h.port)).toBe(true);
  });

  it("an already aborted signal starts nothing", async () => {
    const h = await harness({ isolation: "bubblewrap", model: {} });
    const controller = new AbortController();
    controller.abort();
    const error = await expectRunningAgentError(h.run({ signal: controller.signal }));
    expect(error.code).toBe(ErrorCode.ABORTED);
    expect(await serverGone(h.port)).toBe(true);
    expect(h.model.requests).toHaveLength(0);
  });

  it("a model 400 fails at once with MODEL_ERROR carrying the provider's message", async () => {
    const h = await harness({
      isolation: "bubblewrap",
      model: { afterScript: { status: 400, body: { error: { message: "max_tokens is too large: 999999", type: "invalid_request_error" } } } },
    });
    const error = await expectRunningAgentError(h.run());
    expect(error.code).toBe(ErrorCode.MODEL_ERROR);
    expect(error.message).toContain("max_tokens is too large: 999999");
    expect(error.details?.statusCode).toBe(400);
    // Not retried.
    expect(h.model.chatRequests).toHaveLength(1);
    expect(await serverGone(h.port)).toBe(true);
  });

  it("a wrong API key surfaces as MODEL_ERROR (401) without the key in the message", async () => {
    const h = await harness({
      isolation: "bubblewrap",
      model: {},
      sandboxKey: "sk-wrong-key",
      resolved: (url) => resolveModel({ provider: "openai-compatible", model: "scripted-model", baseURL: url, apiKey: "sk-wrong-key" }),
    });
    const error = await expectRunningAgentError(h.run());
    expect(error.code).toBe(ErrorCode.MODEL_ERROR);
    expect(error.details?.statusCode).toBe(401);
    expect(error.message).not.toContain("sk-wrong-key");
    expect(h.model.requests[0]!.headers.authorization).toBe("Bearer sk-wrong-key");
  });

  it("bad input (timeout, key variable name) is refused before anything starts", async () => {
    const h = await harness({ isolation: "none", model: {} });
    for (const timeoutMs of [0, -1, Number.NaN]) expect((await expectRunningAgentError(h.run({ timeoutMs }))).code).toBe(ErrorCode.INVALID_OPTIONS);
    expect((await expectRunningAgentError(h.run({ apiKeyEnv: "BAD NAME=x" }))).code).toBe(ErrorCode.INVALID_OPTIONS);
    expect(serverProcesses(h.port)).toEqual([]);
    expect(h.model.requests).toHaveLength(0);
  });

  it("a binary that is not there fails with AGENT_START_FAILED", async () => {
    const h = await harness({ isolation: "none", model: {} });
    const error = await expectRunningAgentError(h.run({ opencodeBinary: "/nonexistent/opencode" }));
    expect(error.code).toBe(ErrorCode.AGENT_START_FAILED);
  });

  it("a server that never gets ready fails with AGENT_START_FAILED after startTimeoutMs, AGENT_TIMEOUT when the run's time is up first, ABORTED on abort, and is stopped", async () => {
    const h = await harness({ isolation: "none", model: {} });
    // A stand-in server that prints something, but never the ready line, and keeps running.
    const fakeServer = `${h.session.scratchDir}/never-ready.sh`;
    // Its sleep carries the port ($5) so that a leftover is easy to find.
    await h.session.writeFile(fakeServer, '#!/bin/sh\necho "starting $*"\nsleep "600.$5"\n', { mode: 0o755 });
    const stillRunning = () =>
      readdirSync("/proc").some((pid) => {
        try {
          const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8");
          return /^\d+$/.test(pid) && (argv.includes(`--port\0${h.port}\0`) || argv.includes(`sleep\0${600}.${h.port}\0`));
        } catch {
          return false;
        }
      });
    const slow = await expectRunningAgentError(h.run({ opencodeBinary: fakeServer, startTimeoutMs: 1000 }));
    expect(slow.code).toBe(ErrorCode.AGENT_START_FAILED);
    expect(slow.message).toContain("did not become ready within 1000 ms");
    expect(slow.message).toContain(`starting serve --hostname 127.0.0.1 --port ${h.port}`);
    expect(stillRunning()).toBe(false);
    const late = await expectRunningAgentError(h.run({ opencodeBinary: fakeServer, startTimeoutMs: 60_000, timeoutMs: 1000 }));
    expect(late.code).toBe(ErrorCode.AGENT_TIMEOUT);
    expect(stillRunning()).toBe(false);
    const aborted = await expectRunningAgentError(h.run({ opencodeBinary: fakeServer, signal: AbortSignal.timeout(500) }));
    expect(aborted.code).toBe(ErrorCode.ABORTED);
    expect(stillRunning()).toBe(false);
  });

  it("a server that exits before it is ready fails with AGENT_START_FAILED and its output", async () => {
    const h = await harness({ isolation: "none", model: {} });
    // `git serve` exits at once with a usage message: a stand-in for a broken binary.
    const error = await expectRunningAgentError(h.run({ opencodeBinary: "git" }));
    expect(error.code).toBe(ErrorCode.AGENT_START_FAILED);
    expect(error.message).toContain("exited before it was ready");
    expect(error.message).toMatch(/git/);
  });
});

const BUILT_IN_PROVIDERS = [
  { provider: "google", model: "gemini-2.5-pro", basePath: "/v1beta", path: "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse", keyHeader: "x-goog-api-key", keyPrefix: "" },
  { provider: "anthropic", model: "claude-sonnet-4-5", basePath: "/v1", path: "/v1/messages", keyHeader: "x-api-key", keyPrefix: "" },
  { provider: "openai", model: "gpt-5", basePath: "/v1", path: "/v1/responses", keyHeader: "authorization", keyPrefix: "Bearer " },
] as const;

describe("runOpencodeAgent when its server dies mid-task", () => {
  /** The harness's session, with the engine's no-op (`true`) answered by `answer` instead. */
  function withNoOp(session: SandboxSession, answer: (attempt: number) => Promise<SandboxExecResult>): { session: SandboxSession; noOps: () => number } {
    let noOps = 0;
    const wrapped = new Proxy(session, {
      get(target, property) {
        if (property === "exec") {
          return (command: string[], options?: SandboxExecOptions) => {
            if (command.length === 1 && command[0] === "true") return answer(++noOps);
            return target.exec(command, options);
          };
        }
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    return { session: wrapped, noOps: () => noOps };
  }

  function killServerOnFirstRequest(h: Harness): void {
    void h.model.waitForChatRequests(1).then(
      () => {
        for (const server of serverProcesses(h.port)) process.kill(Number(server.pid), "SIGKILL");
      },
      () => undefined,
    );
  }

  it("asks the sandbox why with a no-op, again while the no-op fails, and passes on the sandbox's typed answer", async () => {
    const h = await harness({ isolation: "none", model: { script: [{ hang: true }] } });
    // What a Docker Engine answers while a killed container goes away, then what its provider says once it knows.
    const { session, noOps } = withNoOp(h.session, async (attempt) => {
      if (attempt < 3) return { exitCode: 126, stdout: "task 44ab2474 not found: not found\r\n", stderr: "" };
      throw agentError(ErrorCode.SANDBOX_TERMINATED, "The sandbox was stopped from outside.");
    });
    killServerOnFirstRequest(h);
    const error = await expectRunningAgentError(h.run({ session }));
    expect(error.code).toBe(ErrorCode.SANDBOX_TERMINATED);
    expect(error.phase).toBe("agent");
    expect(error.message).toMatch(/stopped from outside.*the OpenCode server exited with code/);
    expect(noOps()).toBe(3);
    expect(await serverGone(h.port)).toBe(true);
  });

  it("a sandbox that still runs commands leaves AGENT_FAILED with the server's exit; one that never answers clearly is not asked forever", async () => {
    const h = await harness({ isolation: "none", model: { script: [{ hang: true }] } });
    const healthy = withNoOp(h.session, () => h.session.exec(["true"]));
    killServerOnFirstRequest(h);
    const error = await expectRunningAgentError(h.run({ session: healthy.session }));
    expect(error.code).toBe(ErrorCode.AGENT_FAILED);
    expect(error.message).toContain("The OpenCode server exited unexpectedly");
    expect(healthy.noOps()).toBe(1);

    const h2 = await harness({ isolation: "none", model: { script: [{ hang: true }] } });
    const broken = withNoOp(h2.session, async () => ({ exitCode: 126, stdout: "", stderr: "" }));
    killServerOnFirstRequest(h2);
    const second = await expectRunningAgentError(h2.run({ session: broken.session }));
    expect(second.code).toBe(ErrorCode.AGENT_FAILED);
    expect(broken.noOps()).toBeGreaterThan(1);
    expect(broken.noOps()).toBeLessThanOrEqual(10);
  });
});

describe("runOpencodeAgent with a built-in provider (offline, no download)", () => {
  it.each(BUILT_IN_PROVIDERS)("$provider: OpenCode's bundled SDK calls the configured endpoint with the key from {env:...}", async (built) => {
    const h = await harness({
      isolation: "bubblewrap",
      // The scripted server does not speak these protocols; the request is what this test is about.
      model: { apiKey: undefined },
      resolved: (url, key) => resolveModel({ provider: built.provider, model: built.model, apiKey: key, baseURL: url.replace(/\/v1$/, built.basePath) }),
    });
    const controller = new AbortController();
    void (async () => {
      while (h.model.requests.length === 0 && !controller.signal.aborted) await new Promise((resolve) => setTimeout(resolve, 50));
      controller.abort();
    })();
    const error = await expectRunningAgentError(h.run({ signal: controller.signal, timeoutMs: SAFETY_NET_MS }));
    expect([ErrorCode.ABORTED, ErrorCode.MODEL_ERROR]).toContain(error.code);
    const request = h.model.requests[0]!;
    expect(request.path).toBe(built.path);
    expect(request.headers[built.keyHeader]).toBe(`${built.keyPrefix}${h.key}`);
    // Nothing was downloaded: no package cache, and the pre-seeded plugin folder is still empty.
    const listing = await h.session.exec(["ls", "-A", `${h.session.scratchDir}/opencode/cache/opencode`, `${h.session.scratchDir}/opencode/config/opencode/node_modules`]);
    expect(listing.stdout).not.toContain("packages");
    expect(listing.stdout.trim().split("\n").filter((line) => line !== "" && !line.endsWith(":"))).toEqual(["bin"]);
    expect(await serverGone(h.port)).toBe(true);
  });
});

describe("runOpencodeAgent with a model id OpenCode's catalogue does not know", () => {
  it("fails with INVALID_MODEL and a hint, and works once limits declare the model", async () => {
    const h = await harness({
      isolation: "bubblewrap",
      model: { apiKey: undefined },
      resolved: (url, key) => resolveModel({ provider: "google", model: "gemini-nonexistent-9", apiKey: key, baseURL: url.replace(/\/v1$/, "/v1beta") }),
    });
    const unknown = await expectRunningAgentError(h.run({ timeoutMs: SAFETY_NET_MS }));
    expect(unknown.code).toBe(ErrorCode.INVALID_MODEL);
    expect(unknown.message).toContain("Model not found: google/gemini-nonexistent-9");
    expect(unknown.message).toContain("limits");
    expect(h.model.requests).toHaveLength(0);

    const limits = { context: 1_000_000, output: 65_536 };
    const declared = resolveModel({ provider: "google", model: "gemini-nonexistent-9", apiKey: h.key, baseURL: h.model.url.replace(/\/v1$/, "/v1beta"), limits });
    const controller = new AbortController();
    void (async () => {
      while (h.model.requests.length === 0 && !controller.signal.aborted) await new Promise((resolve) => setTimeout(resolve, 50));
      controller.abort();
    })();
    await expectRunningAgentError(h.run({ model: declared, signal: controller.signal, timeoutMs: SAFETY_NET_MS }));
    expect(h.model.requests[0]!.path).toBe("/v1beta/models/gemini-nonexistent-9:streamGenerateContent?alt=sse");
    expect(await serverGone(h.port)).toBe(true);
  });
});

/** A loopback TCP proxy in front of the OpenCode server whose connections a test can cut. */
async function startCuttableProxy(targetPort: number) {
  const sockets = new Set<Socket>();
  let downUntil = 0;
  let connections = 0;
  const requestLines: string[] = [];
  const server = createServer((client) => {
    if (Date.now() < downUntil) {
      client.destroy();
      return;
    }
    connections += 1;
    // The request lines the client sends (the engine's requests are small: the text of each connection is kept whole).
    let sent = "";
    client.on("data", (chunk: Buffer) => {
      sent += chunk.toString("latin1");
      // A request line may follow the previous request's body directly.
      const requestLine = /((?:GET|POST|PUT|PATCH|DELETE) \/\S*) HTTP\/1\.1\r\n/;
      for (let line = requestLine.exec(sent); line; line = requestLine.exec(sent)) {
        requestLines.push(line[1]!);
        sent = sent.slice(line.index + line[0].length);
      }
    });
    const upstream = connect(targetPort, "127.0.0.1");
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      socket.on("error", () => undefined);
    }
    client.pipe(upstream).pipe(client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    get connections() {
      return connections;
    },
    /** Method and path of each HTTP request sent through the proxy, in order. */
    requestLines,
    /** Drops every open connection and refuses new ones for `downMs`. */
    cut(downMs: number) {
      downUntil = Date.now() + downMs;
      for (const socket of sockets) socket.destroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** `session` whose exposed ports the host reaches through a {@link startCuttableProxy} each, handed to `onProxy`. */
function behindProxy(session: SandboxSession, onProxy: (proxy: Awaited<ReturnType<typeof startCuttableProxy>>) => void): SandboxSession {
  return new Proxy(session, {
    get(target, property) {
      if (property === "exposePort") {
        return async (port: number) => {
          const proxy = await startCuttableProxy(port);
          onProxy(proxy);
          return { url: proxy.url };
        };
      }
      const value = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

describe("runOpencodeAgent when the event stream drops (no replay in SSE)", () => {
  it("reconnects, re-reads the session, reports what it missed, and notices that the run ended meanwhile", async () => {
    let proxy: Awaited<ReturnType<typeof startCuttableProxy>> | undefined;
    const h = await harness({
      isolation: "bubblewrap",
      model: {
        script: [
          // Each answer is given while the connection to OpenCode is down, so its events are lost.
          () => {
            proxy!.cut(1500);
            return { toolCalls: [{ name: "write", arguments: { filePath: "notes.md", content: "# Notes\n" } }] };
          },
          () => {
            proxy!.cut(1500);
            return { text: "Added notes.md while the stream was down." };
          },
        ],
      },
    });
    open.push(async () => proxy?.close());
    const session = behindProxy(h.session, (made) => (proxy = made));
    const output = await h.run({ session, timeoutMs: SAFETY_NET_MS });

    expect(output.summary).toBe("Added notes.md while the stream was down.");
    expect(new TextDecoder().decode(await h.session.readFile("notes.md"))).toBe("# Notes\n");
    // The second cut usually lands while the first is still down, so one reconnect or more.
    expect(h.events.filter((event) => event.type === "log" && event.message.includes("reconnected")).length).toBeGreaterThanOrEqual(1);
    expect(proxy!.connections).toBeGreaterThan(3);
    expect(h.events.some((event) => event.type === "agent.tool" && event.tool === "write" && event.status === "completed")).toBe(true);
    const text = h.events
      .filter((event) => event.type === "agent.text")
      .map((event) => (event.type === "agent.text" ? event.delta : ""))
      .join("");
    expect(text).toBe(output.summary);
    expect(output.usage.inputTokens).toBeGreaterThan(0);
    expect(await serverGone(h.port)).toBe(true);
  });
});

describe("runOpencodeAgent's end", () => {
  it("reads the session's messages once, when it goes idle with the answer, and returns them", async () => {
    let proxy: Awaited<ReturnType<typeof startCuttableProxy>> | undefined;
    const h = await harness({ isolation: "bubblewrap", model: writeThenAnswer });
    open.push(async () => proxy?.close());
    const session = behindProxy(h.session, (made) => (proxy = made));
    const output = await h.run({ session });
    expect(output.summary).toBe("Created hello.txt containing a greeting.");
    expect(output.messages).toBe(3);
    expect(output.usage.outputTokens).toBeGreaterThan(0);
    const lastUsage = h.events.filter((event) => event.type === "agent.usage").at(-1);
    expect(lastUsage?.type === "agent.usage" && lastUsage.usage).toEqual(output.usage);
    // OpenCode signals the idle twice; one read serves the check and the result.
    expect(proxy!.requestLines.filter((line) => /^GET \/session\/[^/?]+\/message(\?|$)/.test(line))).toHaveLength(1);
  });
});

const AGENTS_MARKER = "repo-agents-md-marker-7f3a";

/** A repo that configures the agent: instructions in AGENTS.md and an ask rule for bash. */
async function writeRepoAgentConfig(session: SandboxSession): Promise<void> {
  await session.writeFile("AGENTS.md", `Always mention ${AGENTS_MARKER}.\n`);
  // Agent-level rules come after the global ones, so this one survives our config when the repo's config is allowed.
  await session.writeFile("opencode.json", JSON.stringify({ agent: { build: { permission: { bash: "ask" } } } }));
}

describe("runOpencodeAgent never waits for a human", () => {
  it("answers permission asks and denied tools (.env read, a path outside the repo, the question tool) without blocking", async () => {
    const h = await harness({
      isolation: "bubblewrap",
      model: {
        script: [
          { toolCalls: [{ name: "read", arguments: { filePath: ".env" } }] },
          { toolCalls: [{ name: "read", arguments: { filePath: "/etc/hostname" } }] },
          { toolCalls: [{ name: "question", arguments: { questions: [{ question: "Which file?", header: "File", options: [{ label: "a", description: "a" }] }] } }] },
          { text: "Finished without help." },
        ],
      },
    });
    await h.session.writeFile(".env", "TOKEN=not-for-the-agent\n");
    const output = await h.run({ timeoutMs: SAFETY_NET_MS });
    expect(output.summary).toBe("Finished without help.");
    const tools = h.events.filter((event) => event.type === "agent.tool" && (event.status === "completed" || event.status === "error"));
    // Every tool call reached an end state: the .env read is allowed (no ask), the path outside the
    // repo is refused, and the question tool is not offered at all.
    expect(tools.map((event) => event.type === "agent.tool" && [event.tool, event.status])).toEqual([
      ["read", "completed"],
      ["read", "error"],
      ["invalid", "completed"],
    ]);
    expect(tools[2]!.type === "agent.tool" && tools[2]!.output).toContain("unavailable tool 'question'");
    expect(h.model.chatRequests).toHaveLength(4);
  });

  it("rejects a permission ask that a repo's own config (allowed by the caller) sets up, and goes on", async () => {
    const h = await harness({
      isolation: "bubblewrap",
      model: {
        script: [{ toolCalls: [{ name: "bash", arguments: { command: "echo from-bash > bash.txt", description: "write a file" } }] }, { text: "Tried bash." }],
      },
    });
    await writeRepoAgentConfig(h.session);
    const output = await h.run({ allowRepoAgentConfig: true, timeoutMs: SAFETY_NET_MS });
    expect(h.model.chatRequests[0]!.rawBody).toContain(AGENTS_MARKER);
    expect(output.summary).toBe("Tried bash.");
    expect(h.events).toContainEqual({ type: "log", level: "warn", message: 'OpenCode asked for the "bash" permission; denied (the run is unattended).' });
    const bash = h.events.filter((event) => event.type === "agent.tool" && event.tool === "bash").at(-1);
    expect(bash?.type === "agent.tool" && bash.status).toBe("error");
    await expect(h.session.readFile("bash.txt")).rejects.toThrow();
  });
});

describe("runOpencodeAgent ignores the repo's own agent config by default", () => {
  it("neither AGENTS.md nor the repo's opencode.json reaches the agent", async () => {
    const h = await harness({
      isolation: "bubblewrap",
      model: { script: [{ toolCalls: [{ name: "bash", arguments: { command: "echo from-bash > bash.txt", description: "write a file" } }] }, { text: "Ran bash." }] },
    });
    await writeRepoAgentConfig(h.session);
    const output = await h.run({ timeoutMs: SAFETY_NET_MS });
    expect(output.summary).toBe("Ran bash.");
    for (const request of h.model.chatRequests) expect(request.rawBody).not.toContain(AGENTS_MARKER);
    expect(h.events.some((event) => event.type === "log" && event.level === "warn")).toBe(false);
    expect(new TextDecoder().decode(await h.session.readFile("bash.txt"))).toBe("from-bash\n");
  });
});
