import ora, { type Ora } from "ora";
import { createColors } from "picocolors";
import type { AgentTaskEvent } from "@running-agent/core";
import { cut, EventNarrator, formatDuration, type NarrationKind, type NarrationLine } from "./event-narrator.js";

/** A stream the display writes to (process.stderr in the CLI). */
export interface DisplayStream {
  /** Writes text as is (the display adds its own newlines); the return value is ignored. */
  write(text: string): boolean;
  /** True for a terminal: unless `TERM=dumb`, the display then keeps one live status line; otherwise it writes plain lines. */
  isTTY?: boolean;
  /** The terminal's width in characters, to cut the status line to; 80 when unknown. */
  columns?: number;
}

/** Shows a task's progress while it runs. */
export interface ProgressDisplay {
  /** Shows an event. */
  event(event: AgentTaskEvent): void;
  /** Shows a line from the CLI itself (e.g. "cancelling"). */
  note(text: string): void;
  /** Ends the display: flushes pending text and removes the status line. Idempotent. */
  stop(): void;
}

/** How to show progress: a live status line, plain lines, JSON lines, or nothing. */
export type DisplayMode = "terminal" | "plain" | "json-lines";

/**
 * Picks the display for a stream: JSON lines with `--json`, a live status line on a terminal,
 * plain lines otherwise (a pipe, a file, or `TERM=dumb`).
 */
export function chooseDisplayMode(stream: DisplayStream, json: boolean, env: NodeJS.ProcessEnv): DisplayMode {
  if (json) return "json-lines";
  return stream.isTTY === true && env.TERM !== "dumb" ? "terminal" : "plain";
}

/** Creates the display for a mode. */
export function createProgressDisplay(mode: DisplayMode, stream: DisplayStream, env: NodeJS.ProcessEnv): ProgressDisplay {
  switch (mode) {
    case "json-lines":
      return new JsonLinesDisplay(stream);
    case "plain":
      return new PlainDisplay(stream);
    case "terminal":
      return new TerminalDisplay(stream, env.NO_COLOR === undefined || env.NO_COLOR === "");
  }
}

/** Every event as one JSON line, for programs. */
class JsonLinesDisplay implements ProgressDisplay {
  constructor(private readonly stream: DisplayStream) {}
  event(event: AgentTaskEvent): void {
    this.stream.write(`${JSON.stringify(event)}\n`);
  }
  note(): void {}
  stop(): void {}
}

const PLAIN_PREFIX: Record<NarrationKind, string> = {
  completed: "done",
  failed: "FAILED",
  skipped: "skip",
  warning: "warning",
  info: "info",
  tool: "tool",
  "tool-error": "tool error",
  agent: "agent",
  output: "output",
};

/** One line per step, no colors or cursor movement: for logs and pipes. */
class PlainDisplay implements ProgressDisplay {
  private readonly narrator = new EventNarrator();
  private readonly started = Date.now();
  private stopped = false;

  constructor(private readonly stream: DisplayStream) {}

  event(event: AgentTaskEvent): void {
    if (event.type === "phase" && event.status === "started") this.write(`[${this.elapsed()}] ${event.phase}...`);
    for (const line of this.narrator.narrate(event)) this.print(line);
  }
  note(text: string): void {
    this.write(`[${this.elapsed()}] ${text}`);
  }
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const line of this.narrator.flush()) this.print(line);
  }
  private print(line: NarrationLine): void {
    this.write(`[${this.elapsed()}] ${PLAIN_PREFIX[line.kind]}: ${line.text}`);
  }
  private write(text: string): void {
    this.stream.write(`${text}\n`);
  }
  private elapsed(): string {
    return formatDuration(Date.now() - this.started).padStart(6);
  }
}

/** A spinner with the phase, the time and the current activity, updated in place; finished steps scroll above it. */
class TerminalDisplay implements ProgressDisplay {
  private readonly narrator = new EventNarrator();
  private readonly colors: ReturnType<typeof createColors>;
  private readonly spinner: Ora;
  private readonly started = Date.now();
  private readonly ticker: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly stream: DisplayStream,
    color: boolean,
  ) {
    this.colors = createColors(color);
    // The CLI handles Ctrl+C itself, so ora must leave stdin alone.
    this.spinner = ora({ stream: withColumns(stream), isEnabled: true, discardStdin: false, color: "cyan", text: "starting" }).start();
    this.ticker = setInterval(() => this.refresh(), 1000);
    this.ticker.unref();
  }

  event(event: AgentTaskEvent): void {
    const lines = this.narrator.narrate(event);
    if (lines.length > 0) this.print(lines);
    this.refresh();
  }
  note(text: string): void {
    this.print([{ kind: "warning", text }]);
  }
  stop(): void {
    if (this.stopped) return;
    const lines = this.narrator.flush();
    if (lines.length > 0) this.print(lines);
    this.stopped = true;
    clearInterval(this.ticker);
    this.spinner.stop();
  }

  private print(lines: NarrationLine[]): void {
    if (this.stopped) return;
    this.spinner.clear();
    for (const line of lines) this.stream.write(`${this.decorate(line)}\n`);
    this.spinner.render();
  }

  private refresh(): void {
    if (this.stopped) return;
    const { colors } = this;
    const phase = this.narrator.phase ?? "starting";
    const elapsed = formatDuration(Date.now() - this.started);
    const width = Math.max(20, (this.stream.columns || 80) - phase.length - elapsed.length - 8);
    const activity = this.narrator.activity ? ` ${colors.dim(cut(this.narrator.activity, width))}` : "";
    this.spinner.text = `${colors.bold(phase)} ${colors.dim(elapsed)}${activity}`;
  }

  private decorate(line: NarrationLine): string {
    const { colors } = this;
    switch (line.kind) {
      case "completed":
        return `${colors.green("✔")} ${line.text}`;
      case "failed":
        return `${colors.red("✖")} ${colors.red(line.text)}`;
      case "skipped":
        return colors.dim(`- ${line.text}`);
      case "warning":
        return `${colors.yellow("!")} ${colors.yellow(line.text)}`;
      case "info":
        return `${colors.cyan("i")} ${line.text}`;
      case "tool":
        return colors.dim(`  → ${line.text}`);
      case "tool-error":
        return `  ${colors.red("→")} ${colors.dim(line.text)}`;
      case "agent":
        return `  ${colors.italic(line.text)}`;
      case "output":
        return colors.dim(`  │ ${line.text}`);
    }
  }
}

/**
 * A terminal that reports no size (0 columns, e.g. a pseudo terminal nobody sized) would make
 * ora count infinitely many lines to clear; such a terminal is taken as 80 columns wide.
 */
function withColumns(stream: DisplayStream): NodeJS.WritableStream {
  return new Proxy(stream, {
    get(target, property) {
      if (property === "columns") return target.columns || 80;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  }) as unknown as NodeJS.WritableStream;
}
