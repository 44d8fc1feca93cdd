import { describe, expect, it } from "vitest";
import type { AgentTaskEvent, AgentTaskEventInput } from "@running-agent/core";
import { EventNarrator } from "./event-narrator.js";

const stamp = (input: AgentTaskEventInput): AgentTaskEvent => ({ ...input, taskId: "t", at: 0 }) as AgentTaskEvent;

describe("EventNarrator", () => {
  it("condenses agent text to one line per message and tool calls to one line when they finish", () => {
    const narrator = new EventNarrator();
    const lines = [
      stamp({ type: "phase", phase: "agent", status: "started" }),
      stamp({ type: "agent.text", partId: "p1", delta: "Reading ", text: "Reading " }),
      stamp({ type: "agent.text", partId: "p1", delta: "the file.\n", text: "Reading the file.\n" }),
      stamp({ type: "agent.tool", callId: "c1", tool: "read", status: "pending" }),
      stamp({ type: "agent.tool", callId: "c1", tool: "read", status: "running", title: "src/math.ts" }),
      stamp({ type: "agent.tool", callId: "c1", tool: "read", status: "completed", title: "src/math.ts" }),
      stamp({ type: "agent.tool", callId: "c2", tool: "bash", status: "error", title: "npm test", output: "exit 1\nfailed" }),
      stamp({ type: "agent.text", partId: "p2", delta: "Done.", text: "Done." }),
      stamp({ type: "phase", phase: "agent", status: "completed", durationMs: 4200 }),
      stamp({ type: "phase", phase: "commit", status: "skipped" }),
    ].flatMap((event) => narrator.narrate(event));
    expect(lines).toEqual([
      { kind: "agent", text: "Reading the file." },
      { kind: "tool", text: "read src/math.ts" },
      { kind: "tool-error", text: "bash npm test: exit 1 failed" },
      { kind: "agent", text: "Done." },
      { kind: "completed", text: "agent 4.2s" },
      { kind: "skipped", text: "commit skipped" },
    ]);
    expect(narrator.phase).toBe("agent");
  });

  it("tracks the phase and the current activity for the status line", () => {
    const narrator = new EventNarrator();
    narrator.narrate(stamp({ type: "phase", phase: "setup", status: "started" }));
    narrator.narrate(stamp({ type: "command.output", command: "npm ci", stream: "stdout", text: "added 3 packages\n" }));
    expect(narrator.phase).toBe("setup");
    expect(narrator.activity).toBe("npm ci");
    expect(narrator.flush()).toEqual([]);
  });

  it("keeps escape sequences from the agent and commands out of the terminal", () => {
    const narrator = new EventNarrator();
    const lines = [
      ...narrator.narrate(stamp({ type: "command.output", command: "x", stream: "stdout", text: "\u001b[31mred\u001b[0m \u001b]0;title\u0007ok\n" })),
      ...narrator.narrate(stamp({ type: "agent.text", partId: "p", delta: "", text: "clear\u001b[2J screen\u0008" })),
      ...narrator.flush(),
    ];
    expect(lines.map((line) => line.text)).toEqual(["red ok", "clear screen"]);
    expect(JSON.stringify(lines)).not.toMatch(/\\u001b|\\u0007|\\b/);
  });

  it("reports each connection the sandbox's network policy refused", () => {
    const narrator = new EventNarrator();
    const lines = [
      ...narrator.narrate(stamp({ type: "network.blocked", host: "registry.example.test", port: 443, method: "CONNECT", reason: "registry.example.test is not on the allow-list" })),
      ...narrator.narrate(stamp({ type: "network.blocked", host: "::1", port: 80, method: "GET", reason: "::1 is a loopback, link-local, private or reserved address" })),
    ];
    expect(lines).toEqual([
      { kind: "warning", text: "network blocked: registry.example.test:443 (registry.example.test is not on the allow-list)" },
      { kind: "warning", text: "network blocked: [::1]:80 (::1 is a loopback, link-local, private or reserved address)" },
    ]);
  });

  it("cuts long lines", () => {
    const narrator = new EventNarrator();
    narrator.narrate(stamp({ type: "agent.text", partId: "p", delta: "", text: "x".repeat(1000) }));
    const [line] = narrator.flush();
    expect(Array.from(line!.text)).toHaveLength(240);
    expect(line!.text.endsWith("…")).toBe(true);
  });
});
