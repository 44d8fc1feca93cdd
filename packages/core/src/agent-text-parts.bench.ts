import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { bench, describe } from "vitest";
import { AgentTextParts } from "./agent-text-parts.js";
import { EventLog } from "./event-log.js";
import type { AgentTaskEvent } from "./events.js";
import { Redactor } from "./redactor.js";

// What a task's event log holds for one long streamed answer: the events kept as they come (the
// baseline) against AgentTextParts. Prints the retained heap of each side; the bench times them.
// `pnpm vitest bench --run src/agent-text-parts.bench.ts`
setFlagsFromString("--expose-gc");
const collectGarbage = runInNewContext("gc") as () => void;

function fillLog(deltaCount: number, shared: boolean): EventLog<AgentTaskEvent> {
  const redactor = new Redactor(["sk-bench-secret-0123456789"]);
  const parts = new AgentTextParts();
  const log = new EventLog<AgentTaskEvent>();
  let text = "";
  for (let index = 0; index < deltaCount; index++) {
    // Prose-like deltas: short words, now and then a URL (as agents write them).
    const delta = index % 50 === 0 ? `see https://example.test/docs/${index} ` : `then edits file ${index} of the repo, `.padEnd(40, " ");
    text += delta;
    const event = redactor.redact({ type: "agent.text", partId: "prt_answer", delta, text, taskId: "bench", at: Date.now() } as AgentTaskEvent);
    log.push(event.type === "agent.text" && shared ? parts.share(event) : event);
  }
  return log;
}

function retainedMiB(deltaCount: number, shared: boolean): string {
  collectGarbage();
  const before = process.memoryUsage().heapUsed;
  const log = fillLog(deltaCount, shared);
  collectGarbage();
  const after = process.memoryUsage().heapUsed;
  if (log.items.length !== deltaCount) throw new Error("lost events");
  return ((after - before) / 1024 / 1024).toFixed(1);
}

for (const deltaCount of [500, 2_500]) {
  console.log(
    `${deltaCount} deltas of 40 characters (${((deltaCount * 40) / 1024).toFixed(0)} KiB of text), heap kept by the event log: ` +
      `${retainedMiB(deltaCount, false)} MiB as they come, ${retainedMiB(deltaCount, true)} MiB shared`,
  );
}

describe("event log with 2,500 agent.text deltas", () => {
  bench("events as they come (baseline)", () => void fillLog(2_500, false), { iterations: 3 });
  bench("AgentTextParts", () => void fillLog(2_500, true), { iterations: 3 });
});
