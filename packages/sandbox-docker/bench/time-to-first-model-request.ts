// Benchmark (not a test): how long from the runAgentTask call to the agent's first model request
// with the Docker sandbox, with the container start and the OpenCode start broken out.
//   pnpm bench [--runs 3] [--compare-local]
// --compare-local also times core's local sandbox (bubblewrap) on the same machine, for reference.
// Needs a running engine and the default image (pnpm build-image). Docker runs twice: under the
// default policy, enforced (`none` networking, the egress proxy's relays, the model through the
// proxy), and with network "open" on host networking; the scripted model and the local Git host
// are on loopback.
import { parseArgs } from "node:util";
import { createLocalGitHost, createLocalSandbox, runAgentTask, type AgentTaskEvent, type SandboxNetworkPolicy, type SandboxProvider, type SandboxSession } from "@running-agent/core";
import { createTestRepository, startScriptedModelServer } from "@running-agent/core/offline";
import { createDockerSandbox } from "../src/index.js";

const { values } = parseArgs({ options: { runs: { type: "string", default: "3" }, "compare-local": { type: "boolean", default: false } } });
const runs = Math.max(1, Number(values.runs));

interface Sample {
  untilSandboxCall: number;
  containerStart: number;
  untilServerSpawn: number;
  opencodeStart: number;
  untilFirstModelRequest: number;
  total: number;
}

/** Wraps the provider to time `create` (container start) and the OpenCode server's spawn and ready line. */
function timedProvider(inner: SandboxProvider, marks: Map<string, number>): SandboxProvider {
  return {
    specificationVersion: inner.specificationVersion,
    providerId: inner.providerId,
    ...(inner.opencodeBinary ? { opencodeBinary: inner.opencodeBinary } : {}),
    // The network flags decide how the core opens the sandbox (egress proxy or not): pass them on.
    ...(inner.egressProxy !== undefined ? { egressProxy: inner.egressProxy } : {}),
    ...(inner.listenHostname !== undefined ? { listenHostname: inner.listenHostname } : {}),
    ...(inner.reachesHostLoopback !== undefined ? { reachesHostLoopback: inner.reachesHostLoopback } : {}),
    validate: (options) => inner.validate!(options),
    async create(options) {
      marks.set("create.start", performance.now());
      const session = await inner.create(options);
      marks.set("create.end", performance.now());
      return new Proxy(session, {
        get(target, key, receiver) {
          if (key !== "spawn") {
            const value = Reflect.get(target, key, receiver);
            return typeof value === "function" ? value.bind(target) : value;
          }
          const spawn: SandboxSession["spawn"] = (command, spawnOptions = {}) => {
            if (!command.includes("serve")) return target.spawn(command, spawnOptions);
            marks.set("serve.spawn", performance.now());
            return target.spawn(command, {
              ...spawnOptions,
              onStdout: (chunk) => {
                if (!marks.has("serve.ready") && Buffer.from(chunk).toString().includes("listening on")) marks.set("serve.ready", performance.now());
                spawnOptions.onStdout?.(chunk);
              },
            });
          };
          return spawn;
        },
      });
    },
  };
}

async function once(makeProvider: () => SandboxProvider, network: SandboxNetworkPolicy | undefined): Promise<Sample> {
  await using repo = await createTestRepository({ "README.md": "# bench\n" });
  const marks = new Map<string, number>();
  await using model = await startScriptedModelServer({ script: [{ text: "Nothing to change." }] });
  const provider = timedProvider(makeProvider(), marks);
  const events: AgentTaskEvent[] = [];
  void model.waitForChatRequests(1, { timeoutMs: 300_000 }).then(
    () => marks.set("model.first", performance.now()),
    () => undefined,
  );
  const called = performance.now();
  await runAgentTask({
    repo: repo.path,
    task: "Look at the README",
    model: { provider: "openai-compatible", model: "scripted", baseURL: model.url, apiKey: "k" },
    sandbox: provider,
    gitHost: createLocalGitHost(),
    ...(network ? { network } : {}),
    onEvent: (event) => events.push(event),
  });
  const ended = performance.now();
  const mark = (name: string) => {
    const value = marks.get(name);
    if (value === undefined) throw new Error(`no ${name} mark`);
    return value;
  };
  return {
    untilSandboxCall: mark("create.start") - called,
    containerStart: mark("create.end") - mark("create.start"),
    untilServerSpawn: mark("serve.spawn") - mark("create.end"),
    opencodeStart: mark("serve.ready") - mark("serve.spawn"),
    untilFirstModelRequest: mark("model.first") - mark("serve.ready"),
    total: mark("model.first") - called,
  };
}

const rows: Array<[string, keyof Sample]> = [
  ["call -> sandbox create (validation, clone on the host)", "untilSandboxCall"],
  ["sandbox start (docker: create + start + prepare exec)", "containerStart"],
  ["repo into the sandbox, OpenCode setup, until serve spawns", "untilServerSpawn"],
  ["OpenCode start (spawn -> ready line)", "opencodeStart"],
  ["ready -> first model request", "untilFirstModelRequest"],
  ["TOTAL call -> first model request", "total"],
];
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function report(title: string, makeProvider: () => SandboxProvider, network?: SandboxNetworkPolicy): Promise<void> {
  const samples: Sample[] = [];
  for (let index = 0; index < runs; index++) samples.push(await once(makeProvider, network));
  console.log(`${title}, ${runs} run(s); milliseconds (median, then each run)`);
  for (const [label, key] of rows) {
    const values = samples.map((sample) => sample[key]);
    console.log(`  ${label.padEnd(62)} ${String(Math.round(median(values))).padStart(7)}   [${values.map((value) => Math.round(value)).join(", ")}]`);
  }
}

await report("Docker sandbox, default policy enforced (none networking, egress proxy relays)", () => createDockerSandbox({ network: "host" }));
await report('Docker sandbox, network "open" (host networking)', () => createDockerSandbox({ network: "host" }), "open");
if (values["compare-local"]) await report("Local sandbox (reference)", () => createLocalSandbox());
