// How much a job's streamed agent text costs to store, the old way (every agent.text event with
// the part's whole text so far) against the new way (StoredEventEncoder: deltas only).
// `pnpm bench [deltas] [characters per delta]`; prints a table, asserts nothing.
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import Database from "better-sqlite3";
import type { AgentTaskEvent } from "@running-agent/core";
import { logLinesOf } from "../src/job-views.js";
import { openSqliteJobStore, redactSecrets, StoredEventEncoder, type StoredAgentEvent } from "@running-agent/jobs";

const deltaCount = Number(process.argv[2] ?? 2000);
const deltaLength = Number(process.argv[3] ?? 40);
// The queue redacts with the API key and the job's token; two secrets of realistic length.
const secrets = ["api-key-0123456789abcdef", "ghp_0123456789abcdefghijklmnopqrstuvwxyz"];

function agentTextEvents(): AgentTaskEvent[] {
  let text = "";
  return Array.from({ length: deltaCount }, (_, index) => {
    const delta = `${index} ${"the agent explains its change ".repeat(Math.ceil(deltaLength / 30))}`.slice(0, deltaLength);
    text += delta;
    return { type: "agent.text", partId: "prt_answer", delta, text, taskId: "job", at: Date.now() };
  });
}

interface Measurement {
  storedBytes: number;
  fileBytes: number;
  appendMs: number;
  logMs: number;
  finalTextOk: boolean;
}

async function measure(encode: (event: AgentTaskEvent) => StoredAgentEvent, events: AgentTaskEvent[], folder: string, name: string): Promise<Measurement> {
  const path = join(folder, `${name}.db`);
  const store = openSqliteJobStore({ path });
  const { job } = await store.submit({ spec: { repo: "/srv/repo.git", task: "Explain" } });
  await store.claim("bench-worker", 1, 600_000);
  const appendStart = performance.now();
  for (const [index, event] of events.entries()) await store.appendEvents("bench-worker", job.id, [{ seq: index + 1, event: encode(event) }]);
  const appendMs = performance.now() - appendStart;
  // What GET /result does: read the job's events back and build its log.
  const logStart = performance.now();
  const lines = logLinesOf((await store.events(job.id)).map((stored) => stored.event as StoredAgentEvent));
  const logMs = performance.now() - logStart;
  await store.close();
  const database = new Database(path);
  const storedBytes = (database.prepare("SELECT SUM(LENGTH(event_json)) AS bytes FROM agent_job_events").get() as { bytes: number }).bytes;
  database.pragma("wal_checkpoint(TRUNCATE)");
  database.close();
  const finalText = (events.at(-1) as { text: string }).text;
  return { storedBytes, fileBytes: statSync(path).size, appendMs, logMs, finalTextOk: lines.length === 1 && lines[0]!.endsWith(`agent: ${finalText}`) };
}

const folder = mkdtempSync(join(tmpdir(), "agent-text-bench-"));
try {
  const events = agentTextEvents();
  const deltaBytes = events.reduce((sum, event) => sum + (event as { delta: string }).delta.length, 0);
  // The queue's per-event path before: redact the whole event, store it as it came.
  const old = await measure((event) => JSON.parse(redactSecrets(JSON.stringify(event), secrets)) as AgentTaskEvent, events, folder, "old");
  const encoder = new StoredEventEncoder(secrets);
  const current = await measure((event) => encoder.encode(event), events, folder, "new");

  const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;
  const ms = (value: number) => `${value.toFixed(1)} ms`;
  console.log(`${deltaCount} agent.text deltas of ${deltaLength} characters (${kib(deltaBytes)} of text), Node ${process.version}`);
  console.table({
    "old (text on every event)": { "event JSON stored": kib(old.storedBytes), "database file": kib(old.fileBytes), "× text": (old.storedBytes / deltaBytes).toFixed(1), "append all": ms(old.appendMs), "read + log": ms(old.logMs), "log has final text": old.finalTextOk },
    "new (deltas only)": { "event JSON stored": kib(current.storedBytes), "database file": kib(current.fileBytes), "× text": (current.storedBytes / deltaBytes).toFixed(1), "append all": ms(current.appendMs), "read + log": ms(current.logMs), "log has final text": current.finalTextOk },
  });
} finally {
  rmSync(folder, { recursive: true, force: true });
}
