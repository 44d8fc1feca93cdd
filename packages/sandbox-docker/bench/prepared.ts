// Benchmark (not a test): a Docker task that starts from a prepared state (a committed image) against a
// cold one (a new container from the base image, the repository placed, the setup run), with a setup
// command that takes real time (it writes and packs a few thousand files, as an install would).
//   pnpm bench:prepared [--runs 3] [--files 20000]
// OpenCode starts while the repository is placed and set up, so a setup shorter than OpenCode's start is
// hidden in a cold task; the default setup is long enough not to be. Runs alternate cold / prepared in one process. Needs a running engine and the default image
// (scripts/docker-images.sh). Host networking, the scripted model and the local Git host, on loopback.
import { randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import { createLocalGitHost, runAgentTask, type AgentTaskEvent, type SandboxProvider } from "@running-agent/core";
import { createTestRepository, startScriptedModelServer } from "@running-agent/core/offline";
import { createDockerPreparedStateCache, createDockerSandbox } from "../src/index.js";

const { values } = parseArgs({ options: { runs: { type: "string", default: "3" }, files: { type: "string", default: "20000" } } });
const runs = Math.max(1, Number(values.runs));
const files = Math.max(1, Number(values.files));
const SETUP = `mkdir -p .deps && i=0; while [ $i -lt ${files} ]; do echo "export const v$i = $i;" > .deps/m$i.js; i=$((i+1)); done && tar -czf .deps/bundle.tgz .deps/*.js`;

interface Sample {
  sandbox: number;
  clone: number;
  setup: number;
  untilAgentPhase: number;
  firstModelRequest: number;
  total: number;
  setupRan: boolean;
}

const repositoryFiles = Object.fromEntries([["package-lock.json", '{"lockfileVersion":3}\n'], [".gitignore", ".deps/\n"], ...Array.from({ length: 200 }, (_, index) => [`src/file-${index}.js`, `export const n = ${index};\n`])]);

async function once(repoPath: string, sandbox: SandboxProvider): Promise<Sample> {
  await using model = await startScriptedModelServer({ script: [{ text: "Nothing to change." }] });
  let firstRequest = 0;
  void model.waitForChatRequests(1, { timeoutMs: 600_000 }).then(
    () => (firstRequest = performance.now()),
    () => undefined,
  );
  const events: AgentTaskEvent[] = [];
  let agentPhase = 0;
  const called = performance.now();
  await runAgentTask({
    repo: repoPath,
    task: "Look at the repository",
    model: { provider: "openai-compatible", model: "scripted", baseURL: model.url, apiKey: "k" },
    sandbox,
    gitHost: createLocalGitHost(),
    setupCommands: [SETUP],
    onEvent: (event) => {
      events.push(event);
      if (event.type === "phase" && event.phase === "agent" && event.status === "started") agentPhase = performance.now();
    },
  });
  const total = performance.now() - called;
  const phase = (name: string) => {
    const done = events.find((event) => event.type === "phase" && event.phase === name && event.status === "completed");
    return done && "durationMs" in done ? (done.durationMs ?? 0) : 0;
  };
  const setupRan = !events.some((event) => event.type === "log" && event.message.startsWith("Started from the prepared state"));
  return { sandbox: phase("sandbox"), clone: phase("clone"), setup: phase("setup"), untilAgentPhase: agentPhase - called, firstModelRequest: firstRequest - called, total, setupRan };
}

const median = (numbers: number[]) => [...numbers].sort((a, b) => a - b)[Math.floor(numbers.length / 2)]!;

await using repo = await createTestRepository(repositoryFiles);
const cache = createDockerPreparedStateCache({ name: `bench-${randomUUID().slice(0, 8)}` });
const cold = createDockerSandbox({ network: "host" });
const prepared = createDockerSandbox({ network: "host", preparedStates: cache });
try {
  // Prepares the state once (timed too: the first task on a key pays the setup and the commit).
  const preparing = await once(repo.path, prepared);
  const samples: { cold: Sample[]; prepared: Sample[] } = { cold: [], prepared: [] };
  for (let run = 0; run < runs; run++) {
    samples.cold.push(await once(repo.path, cold));
    samples.prepared.push(await once(repo.path, prepared));
  }
  if (samples.prepared.some((sample) => sample.setupRan) || samples.cold.some((sample) => !sample.setupRan)) throw new Error("a prepared run ran the setup, or a cold one did not");
  const rows: Array<[string, keyof Sample]> = [
    ["sandbox (prepared: + host clone)", "sandbox"],
    ["clone (place files)", "clone"],
    ["setup", "setup"],
    ["call -> agent phase (setup done)", "untilAgentPhase"],
    ["call -> first model request", "firstModelRequest"],
    ["total", "total"],
  ];
  console.log(`Docker, setup writing and packing ${files} files, 200-file repository, ${runs} runs each, medians (ms)`);
  console.log(`first task on the key (setup + commit): total ${preparing.total.toFixed(0)}, setup phase ${preparing.setup.toFixed(0)}`);
  console.log(["step".padEnd(34), "cold".padStart(8), "prepared".padStart(9), "prepared/cold".padStart(14)].join(" "));
  for (const [label, field] of rows) {
    const coldMedian = median(samples.cold.map((sample) => sample[field] as number));
    const preparedMedian = median(samples.prepared.map((sample) => sample[field] as number));
    console.log([label.padEnd(34), coldMedian.toFixed(0).padStart(8), preparedMedian.toFixed(0).padStart(9), (coldMedian > 0 ? `${((preparedMedian / coldMedian) * 100).toFixed(0)}%` : "-").padStart(14)].join(" "));
  }
} finally {
  await cache.invalidate();
}
