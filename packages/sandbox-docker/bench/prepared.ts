// Benchmark (not a test): call -> first model request of one task in four ways, side by side, on the
// local sandbox (bubblewrap) and on Docker, with a setup command that takes real time (it writes and
// packs a few thousand files, as an install would):
//   cold                  a new sandbox, the repository placed, the setup run, OpenCode started meanwhile
//   warm pool             a pooled sandbox (OpenCode started and warmed ahead), the repository placed, the setup run
//   prepared              a new sandbox from the prepared state (Docker: the committed image; local: a copy), no setup
//   warm pool + prepared  a pooled sandbox started from the prepared state: nothing placed, no setup, no server start
//   moved base            a new sandbox from a state one commit behind (a source file changed since): the
//                         host fetches that commit, compares, brings in the change; no setup
//   pnpm bench:prepared [--runs 3] [--files 5000] [--skip-docker]
// Runs alternate between the five in one process; both pools are ready before each call (as a server's
// pool is between jobs), so that no refill runs beside the call measured. Needs bubblewrap, and for
// Docker a running engine and the default image (scripts/docker-images.sh). Host networking, the
// scripted model and the local Git host, on loopback.
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  createLocalGitHost,
  createLocalSandbox,
  createPreparedStateCache,
  createSandboxPool,
  prepareRepository,
  runAgentTask,
  type AgentTaskEvent,
  type PreparedRepository,
  type SandboxPool,
  type SandboxProvider,
} from "@running-agent/core";
import { createTestRepository, startScriptedModelServer, type ScriptedTurn } from "@running-agent/core/offline";
import { createDockerPreparedStateCache, createDockerSandbox } from "../src/index.js";

const { values } = parseArgs({ options: { runs: { type: "string", default: "3" }, files: { type: "string", default: "5000" }, "skip-docker": { type: "boolean", default: false } } });
const runs = Math.max(1, Number(values.runs));
const files = Math.max(1, Number(values.files));
const SETUP = `mkdir -p .deps && i=0; while [ $i -lt ${files} ]; do echo "export const v$i = $i;" > .deps/m$i.js; i=$((i+1)); done && tar -czf .deps/bundle.tgz .deps/*.js`;
const API_KEY = "bench-prepared-key-0123456789";

const MODES = ["cold", "warm pool", "prepared", "warm pool + prepared", "moved base"] as const;
type Mode = (typeof MODES)[number];

interface Sample {
  sandbox: number;
  clone: number;
  setup: number;
  firstModelRequest: number;
  total: number;
  setupRan: boolean;
  pooled: boolean;
  movedBase: boolean;
}

const repositoryFiles = Object.fromEntries([["package-lock.json", '{"lockfileVersion":3}\n'], [".gitignore", ".deps/\n"], ...Array.from({ length: 200 }, (_, index) => [`src/file-${index}.js`, `export const n = ${index};\n`])]);

// One model for every task and pool: a pooled server is started for one model config.
const requestTimes: number[] = [];
const answer: ScriptedTurn = () => {
  requestTimes.push(performance.now());
  return { text: "Nothing to change." };
};
await using model = await startScriptedModelServer({ apiKey: API_KEY, script: Array.from({ length: 400 }, () => answer) });
const modelConfig = { provider: "openai-compatible" as const, model: "scripted", baseURL: model.url, apiKey: API_KEY };

async function once(repoPath: string, sandbox: SandboxProvider): Promise<Sample> {
  if ("whenReady" in sandbox) await (sandbox as SandboxPool).whenReady();
  const events: AgentTaskEvent[] = [];
  const called = performance.now();
  await runAgentTask({ repo: repoPath, task: "Look at the repository", model: modelConfig, sandbox, gitHost: createLocalGitHost(), setupCommands: [SETUP], onEvent: (event) => events.push(event) });
  const total = performance.now() - called;
  const phase = (name: string) => {
    const done = events.find((event) => event.type === "phase" && event.phase === name && event.status === "completed");
    return done && "durationMs" in done ? (done.durationMs ?? 0) : 0;
  };
  const firstRequest = requestTimes.find((at) => at > called) ?? Number.NaN;
  return {
    sandbox: phase("sandbox"),
    clone: phase("clone"),
    setup: phase("setup"),
    firstModelRequest: firstRequest - called,
    total,
    setupRan: !events.some((event) => event.type === "log" && event.message.startsWith("Started from the prepared state")),
    pooled: events.some((event) => event.type === "sandbox" && event.pooled === true),
    movedBase: events.some((event) => event.type === "log" && / and brought it to [0-9a-f]{12}: 1 file brought in, 0 removed;/.test(event.message)),
  };
}

const median = (numbers: number[]) => [...numbers].sort((a, b) => a - b)[Math.floor(numbers.length / 2)]!;

/**
 * The five ways for one provider kind: `plain` keeps no states, `withStates` keeps the head's, and
 * `behind` keeps only the state of the commit before it (`moveBase` makes the head move one commit).
 */
async function measure(label: string, repoPath: string, plain: SandboxProvider, withStates: SandboxProvider, behind: SandboxProvider, moveBase: () => Promise<void>): Promise<void> {
  const before: PreparedRepository = await prepareRepository({ repo: repoPath, sandbox: behind, gitHost: createLocalGitHost(), setupCommands: [SETUP] });
  await moveBase();
  const prepared: PreparedRepository = await prepareRepository({ repo: repoPath, sandbox: withStates, gitHost: createLocalGitHost(), setupCommands: [SETUP] });
  if (prepared.commit === before.commit) throw new Error("the base did not move");
  const pools = {
    warm: createSandboxPool(plain, { size: 1, model: modelConfig }),
    preparedWarm: createSandboxPool(withStates, { size: 1, model: modelConfig, prepared }),
  };
  const ways: Record<Mode, SandboxProvider> = { cold: plain, "warm pool": pools.warm, prepared: withStates, "warm pool + prepared": pools.preparedWarm, "moved base": behind };
  const samples = Object.fromEntries(MODES.map((mode) => [mode, [] as Sample[]])) as Record<Mode, Sample[]>;
  try {
    await Promise.all([pools.warm.whenReady(), pools.preparedWarm.whenReady()]);
    for (let run = 0; run < runs; run++) {
      for (const mode of MODES) {
        // Both pools refilled first: a replacement starting in the background would take the CPU from whichever way runs next.
        await Promise.all([pools.warm.whenReady(), pools.preparedWarm.whenReady()]);
        samples[mode].push(await once(repoPath, ways[mode]));
      }
    }
  } finally {
    await Promise.all([pools.warm.close(), pools.preparedWarm.close()]);
  }
  const wrong = MODES.filter((mode) =>
    samples[mode].some((sample) => sample.setupRan !== (mode === "cold" || mode === "warm pool") || sample.pooled !== mode.startsWith("warm pool") || sample.movedBase !== (mode === "moved base")),
  );
  if (wrong.length > 0) throw new Error(`${label}: a run did not go the way it names (${wrong.join(", ")})`);

  const rows: Array<[string, keyof Sample]> = [
    ["sandbox (pooled: take; prepared: + host clone)", "sandbox"],
    ["clone (place; local prepared: copy; moved: + delta)", "clone"],
    ["setup", "setup"],
    ["call -> first model request", "firstModelRequest"],
    ["total", "total"],
  ];
  const medians = (field: keyof Sample) => MODES.map((mode) => median(samples[mode].map((sample) => sample[field] as number)));
  console.log(`\n${label}: setup writing and packing ${files} files, 200-file repository, ${runs} runs each, medians (ms)`);
  console.log(`preparing the state ahead (prepareRepository: clone, setup, keep): ${prepared.durationMs.toFixed(0)}`);
  console.log(["step".padEnd(52), ...MODES.map((mode) => mode.padStart(mode.length < 9 ? 9 : mode.length))].join(" "));
  for (const [name, field] of rows) console.log([name.padEnd(52), ...medians(field).map((value, index) => value.toFixed(0).padStart(Math.max(9, MODES[index]!.length)))].join(" "));
  const first = medians("firstModelRequest");
  console.log(["call -> first model request / cold".padEnd(52), ...first.map((value, index) => `${((value / first[0]!) * 100).toFixed(0)}%`.padStart(Math.max(9, MODES[index]!.length)))].join(" "));
  console.log(["call -> first model request / prepared".padEnd(52), ...first.map((value, index) => `${((value / first[2]!) * 100).toFixed(0)}%`.padStart(Math.max(9, MODES[index]!.length)))].join(" "));
  const clones = medians("clone");
  const setups = medians("setup");
  const placedAndSetUp = MODES.map((_, index) => clones[index]! + setups[index]!);
  console.log(`clone + setup saved per task by the prepared state: ${(placedAndSetUp[0]! - placedAndSetUp[2]!).toFixed(0)} ms (cold -> prepared), ${(placedAndSetUp[1]! - placedAndSetUp[3]!).toFixed(0)} ms (warm pool -> warm pool + prepared)`);
}

await using repo = await createTestRepository(repositoryFiles);
const cacheDirectory = await mkdtemp(join(tmpdir(), "running-agent-bench-prepared-"));
// Each measure moves the base one commit (a source file, no setup input), so that `behind` is one commit behind.
let moves = 0;
const moveBase = async () => void (await repo.commit({ "src/file-0.js": `export const n = ${++moves};\n` }));
try {
  const local = (folder: string) => createLocalSandbox({ preparedStates: createPreparedStateCache({ directory: join(cacheDirectory, folder) }) });
  await measure("local sandbox (bubblewrap)", repo.path, createLocalSandbox(), local("head"), local("behind"), moveBase);
} finally {
  await rm(cacheDirectory, { recursive: true, force: true });
}
if (!values["skip-docker"]) {
  const cache = createDockerPreparedStateCache({ name: `bench-${randomUUID().slice(0, 8)}` });
  const behind = createDockerPreparedStateCache({ name: `bench-behind-${randomUUID().slice(0, 8)}` });
  try {
    await measure("Docker (host networking)", repo.path, createDockerSandbox({ network: "host" }), createDockerSandbox({ network: "host", preparedStates: cache }), createDockerSandbox({ network: "host", preparedStates: behind }), moveBase);
  } finally {
    await cache.close();
    await behind.close();
  }
}
