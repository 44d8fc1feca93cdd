// The orchestrating Node process's memory with N tasks in flight: N runAgentTask calls at once on
// the local sandbox (bubblewrap), the real OpenCode, the offline scripted model with a fixed delay
// per answer (so that the tasks overlap), the local Git host. OpenCode starts go through the
// default start admission (as many at once as the machine has cores). Prints figures, asserts nothing.
//   pnpm build && pnpm bench:in-flight [--tasks 16] [--model-delay-ms 15000]
// It loads the built packages (dist), as an app in production would, not the TypeScript sources.
// The machine is shared: the figures say what this process held, not how fast the tasks ran.
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs, promisify } from "node:util";
import { createLocalGitHost, createLocalSandbox, runAgentTask } from "@running-agent/core";
import { createTestRepository, startOfflineModel } from "@running-agent/core/offline";

const { values } = parseArgs({ options: { tasks: { type: "string", default: "16" }, "model-delay-ms": { type: "string", default: "15000" } } });
const taskCount = Number(values.tasks);
const delayMs = Number(values["model-delay-ms"]);
const mib = (bytes: number) => `${(bytes / 1048576).toFixed(0)} MiB`;

// This script runs under tsx (a TypeScript loader an app would not have): what it costs alone, to tell apart.
const rssOf = async (args: string[]) => Number((await promisify(execFile)(process.execPath, [...args, "--input-type=module", "-e", "console.log(process.memoryUsage().rss)"], { cwd: import.meta.dirname })).stdout);
const loaderRss = (await rssOf(["--import", "tsx"])) - (await rssOf([]));
const folder = await mkdtemp(join(tmpdir(), "tasks-in-flight-"));
const model = await startOfflineModel({ delayMs });
const files: Record<string, string> = { "README.md": "# In flight\n" };
for (let index = 0; index < 200; index++) files[`src/file-${index}.ts`] = `export const value${index} = ${index};\n`;
const repository = await createTestRepository(files, { parent: folder });

global.gc?.();
const baseline = process.memoryUsage();
let inFlight = 0;
let inAgent = 0;
// Peaks, and the figures at the moment the most tasks were in their agent phase at once.
const peak = { rss: 0, heapUsed: 0, external: 0, arrayBuffers: 0, inAgent: 0, rssAtMostInAgent: 0 };
const rssWhileAllInFlight: number[] = [];
const sample = () => {
  const now = process.memoryUsage();
  peak.rss = Math.max(peak.rss, now.rss);
  peak.heapUsed = Math.max(peak.heapUsed, now.heapUsed);
  peak.external = Math.max(peak.external, now.external);
  peak.arrayBuffers = Math.max(peak.arrayBuffers, now.arrayBuffers);
  if (inAgent > peak.inAgent) Object.assign(peak, { inAgent, rssAtMostInAgent: now.rss });
  else if (inAgent === peak.inAgent) peak.rssAtMostInAgent = Math.max(peak.rssAtMostInAgent, now.rss);
  if (inFlight === taskCount) rssWhileAllInFlight.push(now.rss);
};
const timer = setInterval(sample, 100);

const sandbox = createLocalSandbox({ tempDirectory: folder });
const gitHost = createLocalGitHost();
const started = performance.now();
const results = await Promise.allSettled(
  Array.from({ length: taskCount }, async (_, index) => {
    inFlight++;
    try {
      return await runAgentTask({
        repo: repository.path,
        task: `Note ${index}`,
        sandbox,
        gitHost,
        model: model.model,
        onEvent: (event) => {
          if (event.type !== "phase" || event.phase !== "agent") return;
          if (event.status === "started") inAgent++;
          else if (event.status === "completed" || event.status === "failed") inAgent--;
          sample();
        },
      });
    } finally {
      inFlight--;
    }
  }),
);
const wallMs = performance.now() - started;
clearInterval(timer);
sample();

const failed = results.filter((result) => result.status === "rejected");
const median = (list: number[]) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)] ?? 0;
console.log(`${taskCount} tasks at once, local sandbox (bubblewrap), scripted model answering after ${delayMs} ms; load average ${loadavg().map((value) => value.toFixed(1)).join(" ")} at the end`);
console.log(`  finished: ${taskCount - failed.length} of ${taskCount} in ${(wallMs / 1000).toFixed(1)} s${failed.length > 0 ? `; failed: ${failed.map((result) => (result as PromiseRejectedResult).reason?.code ?? String((result as PromiseRejectedResult).reason)).join(", ")}` : ""}`);
console.log(`  this process before the tasks: RSS ${mib(baseline.rss)}, heap used ${mib(baseline.heapUsed)}; of the RSS, tsx (the bench's TypeScript loader) alone costs ${mib(loaderRss)}`);
console.log(`  peak RSS ${mib(peak.rss)}, ${mib(peak.rss - loaderRss)} without tsx (target < 150 MiB), heap used ${mib(peak.heapUsed)}, external ${mib(peak.external)}, array buffers ${mib(peak.arrayBuffers)}`);
console.log(`  RSS with all ${taskCount} in flight: median ${mib(median(rssWhileAllInFlight))} over ${rssWhileAllInFlight.length} samples`);
console.log(`  most tasks in their agent phase at once: ${peak.inAgent}, RSS then ${mib(peak.rssAtMostInAgent)}`);

await model.close();
await repository.remove();
await rm(folder, { recursive: true, force: true });
