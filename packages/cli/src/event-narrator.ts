import { stripVTControlCharacters } from "node:util";
import type { AgentTaskEvent, Phase } from "@running-agent/core";

/** What a narrated line is about; the terminal display picks a symbol and a color from it. */
export type NarrationKind = "completed" | "failed" | "skipped" | "warning" | "info" | "tool" | "tool-error" | "agent" | "output";

/** One line worth keeping on screen. */
export interface NarrationLine {
  kind: NarrationKind;
  text: string;
}

/** Longest agent message or tool output kept on one line. */
const MAX_LINE = 240;

/**
 * Turns the task's event stream into a few condensed lines: phases as they end, tool calls as
 * they finish, each agent message once it is complete (not every delta), warnings and command
 * output. Also tracks the current phase and activity for a status line.
 */
export class EventNarrator {
  /** The phase running now. */
  phase: Phase | undefined;
  /** What the agent is doing right now, in a few words. */
  activity = "";
  private agentText: { partId: string; text: string } | undefined;

  /** The lines this event adds (possibly none). */
  narrate(event: AgentTaskEvent): NarrationLine[] {
    const lines = event.type === "agent.text" ? [] : this.flush();
    switch (event.type) {
      case "phase":
        if (event.status === "started") {
          this.phase = event.phase;
          this.activity = "";
        } else if (event.status === "completed") {
          lines.push({ kind: "completed", text: `${event.phase} ${formatDuration(event.durationMs ?? 0)}` });
        } else if (event.status === "skipped") {
          lines.push({ kind: "skipped", text: `${event.phase} skipped` });
        } else {
          // The message follows once, in the closing "Error:" line (result-report.ts).
          lines.push({ kind: "failed", text: `${event.phase} failed: ${event.error?.code ?? "ERROR"}` });
        }
        break;
      case "warning":
        lines.push({ kind: "warning", text: cut(`${event.code}: ${event.message}`, 1000) });
        break;
      case "log":
        if (event.level !== "debug") lines.push({ kind: event.level === "info" ? "info" : "warning", text: cut(event.message, 1000) });
        break;
      case "sandbox":
        lines.push({ kind: "info", text: cut(`sandbox ${event.provider} ${event.sandboxId}${event.isolated ? "" : " (not isolated)"}`) });
        break;
      case "network.blocked": {
        const destination = `${event.host.includes(":") ? `[${event.host}]` : event.host}:${event.port}`;
        lines.push({ kind: "warning", text: cut(`network blocked: ${destination} (${event.reason})`, 1000) });
        break;
      }
      case "command.output":
        for (const line of event.text.split("\n")) {
          if (line.trim() !== "") lines.push({ kind: "output", text: cut(line) });
        }
        this.activity = cut(event.command, 60);
        break;
      case "agent.text":
        if (this.agentText && this.agentText.partId !== event.partId) lines.push(...this.flush());
        this.agentText = { partId: event.partId, text: event.text };
        this.activity = cut(oneLine(event.text).split(" ").slice(-12).join(" "), 80);
        break;
      case "agent.tool": {
        const label = event.title ? `${event.tool} ${oneLine(event.title)}` : event.tool;
        this.activity = cut(label, 80);
        if (event.status === "completed") lines.push({ kind: "tool", text: cut(label) });
        if (event.status === "error") lines.push({ kind: "tool-error", text: cut(`${label}: ${oneLine(event.output ?? "failed")}`) });
        break;
      }
      case "agent.retry":
        lines.push({ kind: "warning", text: cut(`model call failed, retry ${event.attempt}: ${oneLine(event.message)}`) });
        break;
      case "changes":
        lines.push({ kind: "info", text: cut(describeChanges(event.files), 1000) });
        break;
      case "checks.chosen":
        lines.push({ kind: "info", text: cut(event.checks.length > 0 ? `checks: ${event.checks.map((check) => `${check.name} (${check.command})`).join(", ")}` : `checks: ${event.reasons.join("; ")}`, 1000) });
        break;
      case "check.started":
        this.activity = cut(`check ${event.name}: ${event.command}`, 80);
        break;
      case "check.completed":
        lines.push({ kind: event.passed ? "completed" : "failed", text: cut(`check ${event.name} ${event.passed ? "passed" : event.timedOut ? "timed out" : `failed (exit ${event.exitCode})`} ${formatDuration(event.durationMs)}`) });
        break;
      case "fix-round":
        lines.push({ kind: "warning", text: cut(`fix round ${event.round} of ${event.maxFixRounds}: ${event.failing.join(", ")} failing`) });
        break;
      case "agent.message":
        lines.push({ kind: "info", text: cut(`follow-up: ${oneLine(event.text)}`) });
        break;
      case "branch.pushed":
        lines.push({ kind: "info", text: cut(`pushed ${event.branch} at ${event.commit.slice(0, 7)}`) });
        break;
      case "change-request":
        lines.push({ kind: "info", text: cut(`pull request #${event.number} ${event.created ? "opened" : "updated"}: ${event.url}`, 1000) });
        break;
      case "agent.file":
      case "agent.usage":
        break;
    }
    return lines;
  }

  /** The agent message in progress, as a line; call when the stream ends. */
  flush(): NarrationLine[] {
    const pending = this.agentText;
    this.agentText = undefined;
    const text = pending ? oneLine(pending.text) : "";
    return text === "" ? [] : [{ kind: "agent", text: cut(text) }];
  }
}

function describeChanges(files: readonly { path: string; status: string }[]): string {
  if (files.length === 0) return "no changes";
  const names = files.slice(0, 5).map((file) => `${file.status} ${file.path}`);
  return `${files.length} file${files.length === 1 ? "" : "s"} changed: ${names.join(", ")}${files.length > 5 ? ", ..." : ""}`;
}

/** `1.2s`, `42s`, `3m05s`. */
export function formatDuration(milliseconds: number): string {
  if (milliseconds < 10_000) return `${(milliseconds / 1000).toFixed(1)}s`;
  const seconds = Math.round(milliseconds / 1000);
  if (seconds < 60) return `${seconds}s`;
  return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, "0")}s`;
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}

/** Agent and command output is untrusted: no escape sequence reaches the terminal. */
function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return stripVTControlCharacters(text).replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, "");
}

/** Cuts to `limit` characters (by code point) with an ellipsis. */
export function cut(text: string, limit = MAX_LINE): string {
  const clean = printable(text);
  const characters = Array.from(clean);
  return characters.length <= limit ? clean : `${characters.slice(0, limit - 1).join("")}…`;
}
