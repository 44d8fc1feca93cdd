import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { AgentTaskEvent } from "@running-agent/core";
import { startApiServer } from "./api-server.js";
import { createGatedTaskRunner } from "./gated-task-runner.js";
import { logLinesOf } from "./job-views.js";
import { readServerSentEvents } from "./read-server-sent-events.js";
import { StoredEventEncoder } from "@running-agent/jobs";

/** Text events as core sends them: each carries its delta and the part's whole text so far. */
function textEvents(partId: string, deltas: string[], start = ""): AgentTaskEvent[] {
  let text = start;
  return deltas.map((delta) => {
    text += delta;
    return { type: "agent.text", partId, delta, text, taskId: "t", at: 0 };
  });
}

describe("StoredEventEncoder", () => {
  it("leaves the text out of deltas that continue it, and keeps it where core replaced the part's text", () => {
    const encoder = new StoredEventEncoder([]);
    const replaced: AgentTaskEvent = { type: "agent.text", partId: "a", delta: "Rewritten.", text: "Rewritten.", taskId: "t", at: 0 };
    const events = [...textEvents("a", ["Hel", "lo"]), ...textEvents("b", ["Other ", "part"]), replaced, ...textEvents("a", [" More."], "Rewritten.")];
    const stored = events.map((event) => encoder.encode(event));
    expect(stored.map((event) => (event.type === "agent.text" ? event.text : "-"))).toEqual([undefined, undefined, undefined, undefined, "Rewritten.", undefined]);
    expect(logLinesOf(stored)).toEqual(["00:00:00.000 agent: Rewritten. More.", "00:00:00.000 agent: Other part"]);
  });

  it("keeps the redacted text when a secret straddles two deltas, so the log never spells it", () => {
    const secret = "sk-live-0123456789abcdef";
    const encoder = new StoredEventEncoder([secret]);
    const stored = textEvents("a", ["The key is sk-live-0123", "456789abcdef, done."]).map((event) => encoder.encode(event));
    expect(stored[1]).toMatchObject({ text: "The key is [REDACTED], done." });
    expect(logLinesOf(stored)).toEqual(["00:00:00.000 agent: The key is [REDACTED], done."]);
  });
});

describe("a job's streamed agent text", () => {
  let directory: string;
  beforeEach(async () => {
    directory = await mkdtemp(join(tmpdir(), "http-api-text-"));
  });
  afterEach(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it("is stored and streamed in space that grows linearly, and the log still shows the whole text", async () => {
    const runner = createGatedTaskRunner();
    const databasePath = join(directory, "jobs.db");
    await using server = await startApiServer({ databasePath, runTask: runner.runTask });
    const submitted = await fetch(`${server.url}/submit`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ repo_url: "/srv/repo.git", task: "Explain at length" }) });
    const jobId = ((await submitted.json()) as { job_id: string }).job_id;
    const [task] = await runner.waitForTasks(1);

    // 500 deltas of 200 characters: the old way stored the growing text on each, about 25 MB.
    const deltas = Array.from({ length: 500 }, (_, index) => `${String(index).padStart(4, "0")} ${"lorem ipsum ".repeat(17)}`.slice(0, 200));
    const finalText = deltas.join("");
    for (const { taskId: _taskId, at: _at, ...input } of textEvents("long-answer", deltas)) task!.emit(input);
    task!.finish({ status: "completed" });

    const streamed = await readServerSentEvents(`${server.url}/jobs/${jobId}/events`);
    expect(streamed.at(-1)).toMatchObject({ event: "end", data: { status: "completed" } });
    // The server holds the database's lock: what it stored is read through its store (each event is stored as this JSON).
    const storedBytes = (await server.store.events(jobId)).reduce((sum, stored) => sum + JSON.stringify(stored.event).length, 0);
    const streamedBytes = streamed.filter((event) => event.event === "agent-event").reduce((sum, event) => sum + JSON.stringify(event.data).length, 0);
    expect(storedBytes).toBeLessThan(3 * finalText.length);
    expect(streamedBytes).toBeLessThan(3 * finalText.length);

    // Counted, not compared with toContain: a failure would print 100 kB of text.
    const result = (await (await fetch(`${server.url}/result/${jobId}`)).json()) as { logs: string[] };
    expect(result.logs.filter((line) => line.endsWith(` agent: ${finalText}`)).length).toBe(1);
    const streamedLines = logLinesOf(streamed.filter((event) => event.event === "agent-event").map((event) => event.data));
    expect(streamedLines.filter((line) => line.endsWith(` agent: ${finalText}`)).length).toBe(1);
  });
});
