// Benchmark (not a test): where the time of one task goes, cold (a new sandbox per task) vs warm
// (a sandbox pool) vs the hand-run floor (the same primitives run by hand in the same process: the
// same bubblewrap flags or container image, the same OpenCode config, git CLI for clone and push),
// for the local sandbox (bubblewrap) and Docker (the default policy enforced: `none` networking and
// the egress proxy's relays; the floor uses host networking). Also OpenCode's own log between
// its start and the first model request, and the memory of one idle pooled sandbox.
//   pnpm bench:start [--runs 5] [--skip-docker] [--skip-local] [--trace]
// Each run's cold/floor ratios are printed with their median: OpenCode's own start and first request vary by
// a second between runs, in ours and in the floor alike, so one run's ratio says little on its own.
// --trace prints, for the last cold Docker task, every Engine round trip and phase on one timeline.
// Everything on loopback: the scripted model, the local Git host, a 20-file repository.
import { spawn, execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify, parseArgs } from "node:util";
import { createOpencodeClient } from "@opencode-ai/sdk/v2/client";
import { createLocalGitHost, createLocalSandbox, createSandboxPool, runAgentTask, type AgentTaskEvent, type SandboxPoolEvent, type SandboxProvider, type SandboxSession } from "@running-agent/core";
import { resolveModel } from "@running-agent/core";
// The floor reuses the core's own flags and config, so that only the orchestration differs.
import {
  bubblewrapArguments,
  buildOpencodeConfig,
  buildOpencodeEnv,
  opencodeFolders,
  preSeededArchive,
  readSystemLayout,
  resolveOpencodeBinary,
  sandboxAccounts,
  SANDBOX_OPENCODE_BINARY,
  SANDBOX_SCRATCH,
  SANDBOX_WORKDIR,
} from "@running-agent/core/hand-run";
import { createTestRepository, startScriptedModelServer, workingDirectoryOf, type ScriptedModelServer, type TestRepository } from "@running-agent/core/offline";
import Dockerode from "dockerode";
import { createDockerSandbox } from "../src/index.js";
import { DEFAULT_IMAGE } from "../src/default-image.js";

const run = promisify(execFile);
const { values } = parseArgs({
  options: { runs: { type: "string", default: "5" }, "skip-docker": { type: "boolean", default: false }, "skip-local": { type: "boolean", default: false }, trace: { type: "boolean", default: false } },
});
const RUNS = Math.max(1, Number(values.runs));
const API_KEY = "bench-start-key-0123456789";
const KEY_ENV = "RUNNING_AGENT_MODEL_API_KEY";
const FILES = Object.fromEntries(Array.from({ length: 20 }, (_, index) => [`src/module-${index}.ts`, `export const value${index} = ${index};\n`.repeat(20)]));

/** Spans of one task, in ms. Absent where a span does not apply. */
type Spans = Partial<Record<SpanName, number>>;
const SPANS = [
  "validate",
  "sandbox",
  "clone",
  "callToSpawn",
  "opencodeStart",
  "opencodeHidden",
  "readyToFirstRequest",
  "callToFirstRequest",
  "agentToFirstRequest",
  "firstRequestToAgentEnd",
  "lastRequestToAgentEnd",
  "agent",
  "collectCommitPush",
  "teardown",
  "afterAgent",
  "total",
  "totalOutsideOpencodeStart",
  "totalOutsideOpencode",
] as const;
type SpanName = (typeof SPANS)[number];
const SPAN_LABELS: Record<SpanName, string> = {
  validate: "validate (options, repository, branch)",
  sandbox: "sandbox open (pooled: take)",
  clone: "clone + place the repository",
  callToSpawn: "call -> OpenCode spawned",
  opencodeStart: "OpenCode spawn -> ready line",
  opencodeHidden: "  of it hidden behind clone + setup",
  readyToFirstRequest: "OpenCode ready -> first model request",
  callToFirstRequest: "call -> first model request",
  agentToFirstRequest: "agent phase start -> first model request",
  firstRequestToAgentEnd: "first model request -> agent phase end",
  lastRequestToAgentEnd: "  of it: last model request -> agent end",
  agent: "agent phase (whole)",
  collectCommitPush: "collect + commit + push + PR",
  teardown: "teardown",
  afterAgent: "agent phase end -> done",
  total: "total",
  totalOutsideOpencodeStart: "total minus OpenCode spawn -> ready",
  totalOutsideOpencode: "total minus spawn -> last model request",
};

function scriptedModel(): Promise<ScriptedModelServer> {
  return startScriptedModelServer({
    apiKey: API_KEY,
    script: [
      (request) => ({ toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/src/module-0.ts`, content: "export const value0 = 'changed';\n" } }] }),
      { text: "Changed module 0." },
    ],
  });
}

const modelOf = (model: ScriptedModelServer) => ({ provider: "openai-compatible" as const, model: "scripted", baseURL: model.url, apiKey: API_KEY });

/** Marks the OpenCode server's spawn and ready line of sessions made by `inner`. */
function marking(inner: SandboxProvider, marks: Map<string, number>): SandboxProvider {
  const wrapped: SandboxProvider = Object.create(inner);
  wrapped.create = async (options) => {
    const session = await inner.create(options);
    return new Proxy(session, {
      get(target, key, receiver) {
        if (key !== "spawn") {
          const value = Reflect.get(target, key, receiver);
          return typeof value === "function" ? value.bind(target) : value;
        }
        const spawnMarked: SandboxSession["spawn"] = (command, spawnOptions = {}) => {
          if (!command.includes("serve")) return target.spawn(command, spawnOptions);
          marks.set("serve.spawn", Date.now());
          return target.spawn(command, {
            ...spawnOptions,
            onStdout: (chunk) => {
              if (!marks.has("serve.ready") && Buffer.from(chunk).toString().includes("listening on")) marks.set("serve.ready", Date.now());
              spawnOptions.onStdout?.(chunk);
            },
          });
        };
        return spawnMarked;
      },
    });
  };
  return wrapped;
}

/** One task through runAgentTask; spans from its phase events and the model's first request. */
async function traceTask(repo: TestRepository, sandbox: SandboxProvider, model: ScriptedModelServer, marks: Map<string, number>, timeline?: Timeline): Promise<Spans> {
  const events: AgentTaskEvent[] = [];
  const called = Date.now();
  if (timeline) {
    timeline.startedAt = called;
    timeline.events = events;
  }
  const result = await runAgentTask({ repo: repo.path, task: "Change module 0", model: modelOf(model), sandbox, gitHost: createLocalGitHost(), onEvent: (event) => events.push(event) });
  if (result.status !== "completed") throw new Error(`the task ended ${result.status}`);
  const at = (phase: string, status: string) => events.find((event) => event.type === "phase" && event.phase === phase && event.status === status)?.at;
  const firstRequest = model.chatRequests[0]!.receivedAt;
  const span = (from: number | undefined, to: number | undefined) => (from === undefined || to === undefined ? undefined : to - from);
  const spans: Spans = {
    validate: result.timings.validate,
    sandbox: result.timings.sandbox,
    clone: result.timings.clone,
    callToFirstRequest: firstRequest - called,
    agentToFirstRequest: span(at("agent", "started"), firstRequest),
    agent: result.timings.agent,
    collectCommitPush: (result.timings.collect ?? 0) + (result.timings.commit ?? 0) + (result.timings.push ?? 0) + (result.timings["pull-request"] ?? 0),
    teardown: result.timings.teardown,
    total: result.timings.total,
  };
  const spawned = marks.get("serve.spawn");
  const ready = marks.get("serve.ready");
  const agentStarted = at("agent", "started");
  const agentEnded = at("agent", "completed");
  if (agentEnded !== undefined) {
    spans.firstRequestToAgentEnd = agentEnded - firstRequest;
    spans.lastRequestToAgentEnd = agentEnded - model.chatRequests.at(-1)!.receivedAt;
    spans.afterAgent = called + spans.total! - agentEnded;
  }
  if (spawned !== undefined && ready !== undefined) {
    spans.callToSpawn = spawned - called;
    spans.opencodeStart = ready - spawned;
    spans.readyToFirstRequest = firstRequest - ready;
    spans.totalOutsideOpencodeStart = spans.total! - spans.opencodeStart;
    // What OpenCode itself does (start, first request, the agent's steps with the model) is the same binary and config in both.
    spans.totalOutsideOpencode = spans.total! - (model.chatRequests.at(-1)!.receivedAt - spawned);
    if (agentStarted !== undefined) spans.opencodeHidden = Math.max(0, Math.min(ready, agentStarted) - spawned);
  }
  return spans;
}

/** The same work by hand with the local sandbox's primitives: folders, git CLI, bwrap + opencode serve, the SDK. */
async function localFloor(repo: TestRepository, model: ScriptedModelServer, logLines?: string[]): Promise<Spans> {
  const started = Date.now();
  const root = await mkdtemp(join(tmpdir(), "running-agent-floor-"));
  const hostWorkspace = join(root, "workspace");
  const hostScratch = join(root, "scratch");
  let server: ReturnType<typeof spawn> | undefined;
  try {
    await mkdir(hostWorkspace);
    await mkdir(hostScratch);
    const accounts = sandboxAccounts();
    await writeFile(join(root, "passwd"), accounts.passwd);
    await writeFile(join(root, "group"), accounts.group);
    const sandboxDone = Date.now();
    await run("git", ["clone", "-q", "--depth", "1", "--no-local", `file://${repo.path}`, hostWorkspace]);
    const cloneDone = Date.now();
    await untar(await preSeededArchive(), join(hostScratch, "opencode"));
    const port = await freePort();
    const password = randomBytes(12).toString("hex");
    const resolved = resolveModel(modelOf(model));
    const env = buildOpencodeEnv({ folders: opencodeFolders(SANDBOX_SCRATCH), config: buildOpencodeConfig(resolved, KEY_ENV), allowRepoAgentConfig: false, serverPassword: password });
    const args = bubblewrapArguments({
      system: readSystemLayout(),
      hostWorkspace,
      hostScratch,
      hostPasswd: join(root, "passwd"),
      hostGroup: join(root, "group"),
      hostOpencodeBinary: resolveOpencodeBinary()!,
      cwd: SANDBOX_WORKDIR,
      disableUserns: true,
    });
    const serverArgs = [SANDBOX_OPENCODE_BINARY, "serve", "--hostname", "127.0.0.1", "--port", String(port), ...(logLines ? ["--print-logs", "--log-level", "DEBUG"] : [])];
    const spawnedAt = Date.now();
    server = spawn("bwrap", [...args, "--", ...serverArgs], {
      env: { PATH: "/usr/local/bin:/usr/bin:/bin", HOME: SANDBOX_SCRATCH, LANG: "C.UTF-8", ...env, [KEY_ENV]: API_KEY },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    const readyAt = await untilReady(server, logLines);
    const headers = { authorization: `Basic ${Buffer.from(`opencode:${password}`).toString("base64")}` };
    const firstRequest = await promptAndWait(`http://127.0.0.1:${port}`, headers, SANDBOX_WORKDIR, resolved.opencodeProviderId, model, logLines);
    const agentDone = Date.now();
    process.kill(-server.pid!, "SIGKILL");
    await commitAndPush(hostWorkspace, "floor");
    const pushDone = Date.now();
    await rm(root, { recursive: true, force: true });
    const done = Date.now();
    return floorSpans({ started, sandboxDone, cloneDone, spawnedAt, readyAt, firstRequest, lastRequest: model.chatRequests.at(-1)!.receivedAt, agentDone, pushDone, done });
  } finally {
    if (server?.pid) {
      try {
        process.kill(-server.pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
    await rm(root, { recursive: true, force: true });
  }
}

/** The same work by hand with the docker CLI: run, tar in, exec opencode serve, the SDK, tar out, git CLI on the host. */
async function dockerFloor(repo: TestRepository, model: ScriptedModelServer, image: string): Promise<Spans> {
  const started = Date.now();
  const host = await mkdtemp(join(tmpdir(), "running-agent-floor-"));
  let container = "";
  let server: ReturnType<typeof spawn> | undefined;
  try {
    container = (await run("docker", ["run", "-d", "--rm", "--init", "--network", "host", "--entrypoint", "sleep", image, "3600"])).stdout.trim();
    await run("docker", ["exec", container, "mkdir", "-p", "/workspace", "/var/tmp/running-agent"]);
    const sandboxDone = Date.now();
    await run("git", ["clone", "-q", "--depth", "1", "--no-local", `file://${repo.path}`, host]);
    await pipeShell(`tar -C '${host}' -c . | docker exec -i ${container} tar -x -C /workspace`);
    const cloneDone = Date.now();
    await pipeInto(await preSeededArchive(), ["docker", "exec", "-i", container, "sh", "-c", "mkdir -p /var/tmp/running-agent/opencode && tar -x -C /var/tmp/running-agent/opencode"]);
    const port = await freePort();
    const password = randomBytes(12).toString("hex");
    const resolved = resolveModel(modelOf(model));
    const env = buildOpencodeEnv({ folders: opencodeFolders("/var/tmp/running-agent"), config: buildOpencodeConfig(resolved, KEY_ENV), allowRepoAgentConfig: false, serverPassword: password });
    const all = { ...env, [KEY_ENV]: API_KEY };
    const spawnedAt = Date.now();
    // -e NAME passes the value from this process's environment: nothing secret in argv.
    server = spawn("docker", ["exec", "-i", "-w", "/workspace", ...Object.keys(all).flatMap((name) => ["-e", name]), container, "opencode", "serve", "--hostname", "127.0.0.1", "--port", String(port)], {
      env: { ...process.env, ...all },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const readyAt = await untilReady(server);
    const headers = { authorization: `Basic ${Buffer.from(`opencode:${password}`).toString("base64")}` };
    const firstRequest = await promptAndWait(`http://127.0.0.1:${port}`, headers, "/workspace", resolved.opencodeProviderId, model);
    const agentDone = Date.now();
    await pipeShell(`docker exec ${container} tar -c -C /workspace --exclude=./.git . | tar -x -C '${host}'`);
    await commitAndPush(host, "docker-floor");
    const pushDone = Date.now();
    await run("docker", ["rm", "-f", container]);
    container = "";
    await rm(host, { recursive: true, force: true });
    const done = Date.now();
    return floorSpans({ started, sandboxDone, cloneDone, spawnedAt, readyAt, firstRequest, lastRequest: model.chatRequests.at(-1)!.receivedAt, agentDone, pushDone, done });
  } finally {
    server?.kill("SIGKILL");
    if (container) await run("docker", ["rm", "-f", container]).catch(() => undefined);
    await rm(host, { recursive: true, force: true });
  }
}

/** A floor's spans from its marks (epoch ms), in the order the floor passes them. */
function floorSpans(marks: Record<"started" | "sandboxDone" | "cloneDone" | "spawnedAt" | "readyAt" | "firstRequest" | "lastRequest" | "agentDone" | "pushDone" | "done", number>): Spans {
  return {
    sandbox: marks.sandboxDone - marks.started,
    clone: marks.cloneDone - marks.sandboxDone,
    opencodeStart: marks.readyAt - marks.spawnedAt,
    callToSpawn: marks.spawnedAt - marks.started,
    readyToFirstRequest: marks.firstRequest - marks.readyAt,
    callToFirstRequest: marks.firstRequest - marks.started,
    agentToFirstRequest: marks.firstRequest - marks.cloneDone,
    firstRequestToAgentEnd: marks.agentDone - marks.firstRequest,
    lastRequestToAgentEnd: marks.agentDone - marks.lastRequest,
    afterAgent: marks.done - marks.agentDone,
    agent: marks.agentDone - marks.cloneDone,
    collectCommitPush: marks.pushDone - marks.agentDone,
    teardown: marks.done - marks.pushDone,
    total: marks.done - marks.started,
    totalOutsideOpencodeStart: marks.done - marks.started - (marks.readyAt - marks.spawnedAt),
    totalOutsideOpencode: marks.done - marks.started - (marks.lastRequest - marks.spawnedAt),
  };
}

async function commitAndPush(dir: string, prefix: string): Promise<void> {
  const git = (...args: string[]) => run("git", ["-c", "user.name=Bench", "-c", "user.email=bench@example.invalid", "-C", dir, ...args]);
  await git("add", "-A");
  await git("commit", "-q", "-m", "bench");
  await git("push", "-q", "origin", `HEAD:refs/heads/${prefix}-${randomBytes(4).toString("hex")}`);
}

function untilReady(server: ReturnType<typeof spawn>, logLines?: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    let text = "";
    server.stdout!.on("data", (chunk: Buffer) => {
      text += chunk.toString();
      if (text.includes("opencode server listening on")) resolve(Date.now());
    });
    server.stderr!.on("data", (chunk: Buffer) => logLines?.push(...chunk.toString().split("\n").filter(Boolean)));
    server.once("exit", (code) => reject(new Error(`opencode exited with ${code}: ${text}`)));
  });
}

/** Subscribes, creates a session, prompts, and waits for idle; returns when the model got the first request. */
async function promptAndWait(baseUrl: string, headers: Record<string, string>, directory: string, providerID: string, model: ScriptedModelServer, logLines?: string[]): Promise<number> {
  const client = createOpencodeClient({ baseUrl, directory, headers });
  const stream = new AbortController();
  const subscription = await client.event.subscribe(undefined, { signal: stream.signal, sseMaxRetryAttempts: 1 });
  const events = subscription.stream[Symbol.asyncIterator]();
  await events.next();
  logLines?.push(`timestamp=${new Date().toISOString()} message="(bench) session.create sent"`);
  const session = await client.session.create({ title: "bench" });
  logLines?.push(`timestamp=${new Date().toISOString()} message="(bench) prompt sent"`);
  await client.session.promptAsync({ sessionID: session.data!.id, model: { providerID, modelID: "scripted" }, parts: [{ type: "text", text: "Change module 0" }] });
  for (;;) {
    const next = await events.next();
    if (next.done) throw new Error("the event stream ended");
    const event = next.value as { type: string; properties?: { sessionID?: string } };
    if (event.type === "session.idle" && event.properties?.sessionID === session.data!.id) break;
  }
  stream.abort();
  return model.chatRequests[0]!.receivedAt;
}

function pipeShell(command: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("sh", ["-c", command], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`${command}: ${stderr}`))));
  });
}

function pipeInto(input: Uint8Array, command: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command[0]!, command.slice(1), { stdio: ["pipe", "ignore", "inherit"] });
    child.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`${command.join(" ")} exited ${code}`))));
    child.stdin.end(Buffer.from(input));
  });
}

async function untar(archive: Uint8Array, into: string): Promise<void> {
  await mkdir(into, { recursive: true });
  await pipeInto(archive, ["tar", "-x", "-C", into]);
}

async function freePort(): Promise<number> {
  const { createServer } = await import("node:net");
  return new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

/** Proportional memory (PSS) of processes, in MiB, from /proc (needs read access to them). */
async function pssMiB(pids: number[]): Promise<number> {
  let kib = 0;
  for (const pid of pids) {
    const rollup = await readFile(`/proc/${pid}/smaps_rollup`, "utf8").catch(() => "");
    kib += Number(/^Pss:\s+(\d+)/m.exec(rollup)?.[1] ?? 0);
  }
  return kib / 1024;
}

async function pidsWhere(matches: (pid: string) => Promise<boolean>): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir("/proc")) if (/^\d+$/.test(entry) && (await matches(entry))) pids.push(Number(entry));
  return pids;
}

const localSessionPids = (id: string) =>
  pidsWhere(async (pid) => (await readFile(`/proc/${pid}/environ`).catch(() => Buffer.alloc(0))).includes(Buffer.from(`\0RUNNING_AGENT_SESSION=${id}\0`)) || false);
const containerPids = (id: string) => pidsWhere(async (pid) => (await readFile(`/proc/${pid}/cgroup`, "utf8").catch(() => "")).includes(id));

/** What one cold task did, for --trace: the Engine's round trips (from dockerode's modem) and the loop's events. */
interface Timeline {
  startedAt: number;
  calls: Array<{ method: string; path: string; at: number; ms: number }>;
  events: AgentTaskEvent[];
  /** When the scripted model got each request. */
  modelRequests?: number[];
  /** OpenCode's spawn and ready line (see {@link marking}). */
  marks?: Map<string, number>;
}

/** A Dockerode client whose every request is recorded in `timeline` (until its answer, or the hijacked stream, arrives). */
function tracedDocker(timeline: Timeline): Dockerode {
  const docker = new Dockerode();
  const modem = docker.modem as unknown as { dial(options: { method?: string; path?: string }, callback: (error: unknown, data: unknown) => void): void };
  const dial = modem.dial.bind(modem);
  modem.dial = (options, callback) => {
    const at = Date.now();
    dial(options, (error, data) => {
      timeline.calls.push({ method: options.method ?? "GET", path: (options.path ?? "").replace(/\?.*$/, "").replace(/[0-9a-f]{64}/g, (id) => id.slice(0, 8)), at, ms: Date.now() - at });
      callback(error, data);
    });
  };
  return docker;
}

function printTimeline(timeline: Timeline): void {
  console.log("\nOne cold Docker task, ms after the call (Engine round trips: start +duration; phases and logs):");
  const rows: Array<[number, string]> = timeline.calls.map((call) => [call.at - timeline.startedAt, `  engine +${String(call.ms).padStart(4)}  ${call.method} ${call.path}`]);
  for (const event of timeline.events) {
    if (event.type === "phase" && event.status !== "skipped") rows.push([event.at - timeline.startedAt, `  phase ${event.phase} ${event.status}${"durationMs" in event && event.durationMs !== undefined ? ` (${Math.round(event.durationMs)} ms)` : ""}`]);
    else if (event.type === "log") rows.push([event.at - timeline.startedAt, `  log ${event.message.slice(0, 70)}`]);
    else if (event.type.startsWith("agent.") && event.type !== "agent.text") rows.push([event.at - timeline.startedAt, `  ${event.type}`]);
    else if (event.type === "network.blocked") rows.push([event.at - timeline.startedAt, `  network.blocked ${event.method ?? ""} ${event.host}:${event.port} (${event.reason})`]);
  }
  (timeline.modelRequests ?? []).forEach((at, index) => rows.push([at - timeline.startedAt, `  model request ${index + 1}`]));
  for (const [mark, at] of timeline.marks ?? []) rows.push([at - timeline.startedAt, `  ${mark === "serve.spawn" ? "OpenCode spawn asked" : "OpenCode ready line"}`]);
  for (const [at, text] of rows.sort((a, b) => a[0] - b[0])) console.log(`${String(at).padStart(6)}${text}`);
}

const median = (numbers: number[]) => [...numbers].sort((a, b) => a - b)[Math.floor(numbers.length / 2)]!;

interface Column {
  name: string;
  samples: Spans[];
}

function printTable(title: string, columns: Column[], floorName: string): void {
  console.log(`\n${title}: median of ${RUNS} run(s), ms; ratios against the hand-run floor`);
  const floor = columns.find((column) => column.name === floorName)!;
  const header = ["span".padEnd(42), ...columns.map((column) => column.name.padStart(9)), ...columns.filter((column) => column !== floor).map((column) => `${column.name}/floor`.padStart(12))];
  console.log(`  ${header.join(" ")}`);
  for (const span of SPANS) {
    const medians = columns.map((column) => {
      const present = column.samples.map((sample) => sample[span]).filter((value): value is number => value !== undefined);
      return present.length > 0 ? median(present) : undefined;
    });
    const floorValue = medians[columns.indexOf(floor)];
    const cells = medians.map((value) => (value === undefined ? "-" : String(Math.round(value))).padStart(9));
    const ratios = columns
      .filter((column) => column !== floor)
      .map((column) => {
        const value = medians[columns.indexOf(column)];
        return (value === undefined || floorValue === undefined || floorValue === 0 ? "-" : `${(value / floorValue).toFixed(2)}x`).padStart(12);
      });
    console.log(`  ${SPAN_LABELS[span].padEnd(42)} ${[...cells, ...ratios].join(" ")}`);
  }
  const cold = columns.find((column) => column.name === "cold");
  const warm = columns.find((column) => column.name === "warm");
  if (cold && warm) {
    const coldFirst = median(cold.samples.map((sample) => sample.callToFirstRequest!));
    const warmFirst = median(warm.samples.map((sample) => sample.callToFirstRequest!));
    console.log(`  call -> first model request: cold ${Math.round(coldFirst)} ms, warm ${Math.round(warmFirst)} ms (warm = ${((100 * warmFirst) / coldFirst).toFixed(1)}% of cold)`);
  }
  if (cold) {
    // Each run's cold and floor ran back to back, so their ratio shares that moment's load; the medians above may not.
    for (const span of ["total", "totalOutsideOpencode"] as const) {
      const ratios = cold.samples.map((sample, index) => sample[span]! / floor.samples[index]![span]!);
      console.log(`  ${SPAN_LABELS[span]}, cold/floor of each run: ${ratios.map((ratio) => `${ratio.toFixed(2)}x`).join(" ")} (median ${median(ratios).toFixed(2)}x)`);
    }
    // The critical path of each run, cold beside floor: where a run's ratio comes from.
    const path: SpanName[] = ["callToSpawn", "opencodeStart", "readyToFirstRequest", "firstRequestToAgentEnd", "afterAgent", "total"];
    console.log(`  each run, cold | floor (ms): ${path.map((span) => SPAN_LABELS[span]).join("; ")}`);
    cold.samples.forEach((sample, index) => {
      const row = (spans: Spans) => path.map((span) => String(Math.round(spans[span] ?? Number.NaN)).padStart(6)).join("");
      console.log(`    run ${index + 1} (${index % 2 === 0 ? "cold first" : "floor first"}): ${row(sample)} | ${row(floor.samples[index]!)}`);
    });
  }
}

/** cold, floor and warm in each run (cold and floor back to back, in turns first), so that the machine's load hits all three alike. */
async function compare(
  title: string,
  provider: (timeline?: Timeline) => SandboxProvider,
  floor: (repo: TestRepository, model: ScriptedModelServer) => Promise<Spans>,
  pidsOf: (id: string) => Promise<number[]>,
  trace = false,
): Promise<void> {
  await using repo = await createTestRepository(FILES);
  const columns: Column[] = [
    { name: "cold", samples: [] },
    { name: "warm", samples: [] },
    { name: "floor", samples: [] },
  ];
  let idleMiB: number | undefined;
  let timeline: Timeline | undefined;
  const coldTask = async () => {
    await using model = await scriptedModel();
    const marks = new Map<string, number>();
    timeline = trace ? { startedAt: 0, calls: [], events: [] } : undefined;
    columns[0]!.samples.push(await traceTask(repo, marking(provider(timeline), marks), model, marks, timeline));
    if (timeline) {
      timeline.modelRequests = model.chatRequests.map((request) => request.receivedAt);
      timeline.marks = marks;
    }
  };
  const floorTask = async () => {
    await using model = await scriptedModel();
    columns[2]!.samples.push(await floor(repo, model));
  };
  for (let index = 0; index < RUNS; index++) {
    // Cold and floor back to back, in turns first, so that their ratio shares the moment's load and neither always goes first.
    if (index % 2 === 0) {
      await coldTask();
      await floorTask();
    } else {
      await floorTask();
      await coldTask();
    }
    {
      await using model = await scriptedModel();
      const events: SandboxPoolEvent[] = [];
      const pool = createSandboxPool(provider(), { model: modelOf(model), onEvent: (event) => events.push(event) });
      try {
        await pool.whenReady();
        if (idleMiB === undefined) {
          const ready = events.find((event) => event.type === "ready");
          if (ready?.type === "ready") idleMiB = await pssMiB(await pidsOf(ready.sandboxId));
        }
        columns[1]!.samples.push(await traceTask(repo, pool, model, new Map()));
      } finally {
        await pool.close();
      }
    }
  }
  printTable(title, columns, "floor");
  if (idleMiB !== undefined) console.log(`  one idle pooled sandbox (OpenCode started and warmed): ${Math.round(idleMiB)} MiB PSS`);
  if (timeline) printTimeline(timeline);
}

/** OpenCode's DEBUG log on a fresh server, from the prompt to the first model request. */
async function opencodeTrace(): Promise<void> {
  await using repo = await createTestRepository(FILES);
  await using model = await scriptedModel();
  const lines: string[] = [];
  await localFloor(repo, model, lines);
  const milestones = [
    "(bench) session.create sent",
    "(bench) prompt sent",
    "creating instance",
    "bootstrapping",
    "step=0",
    "shell tool using shell",
    "project copy refresh started",
    "booting location services",
    "message=stream ",
    "llm runtime selected",
  ];
  const stamp = (line: string) => Date.parse(/timestamp=(\S+)/.exec(line)?.[1] ?? "");
  const prompt = stamp(lines.find((line) => line.includes("(bench) session.create sent")) ?? "");
  console.log("\nOpenCode's own log (DEBUG), first session on a fresh server (hand-run, bubblewrap); ms after session.create was sent:");
  for (const milestone of milestones) {
    const line = lines.find((candidate) => candidate.includes(milestone));
    if (line) console.log(`  ${String(stamp(line) - prompt).padStart(6)}  ${milestone.replace("message=", "").trim()}`);
  }
  console.log(`  ${String(model.chatRequests[0]!.receivedAt - prompt).padStart(6)}  first model request (seen by the model)`);
}

if (!values["skip-local"]) {
  await opencodeTrace();
  await compare("Local sandbox (bubblewrap)", () => createLocalSandbox(), localFloor, localSessionPids);
}
if (!values["skip-docker"]) {
  const image = DEFAULT_IMAGE;
  await compare(
    "Docker sandbox (default policy, egress proxy relays; floor: host networking)",
    (timeline) => createDockerSandbox({ network: "host", ...(timeline ? { docker: tracedDocker(timeline) } : {}) }),
    (repo, model) => dockerFloor(repo, model, image),
    containerPids,
    values.trace,
  );
}
