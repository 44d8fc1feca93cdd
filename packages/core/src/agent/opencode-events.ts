import type { Event as OpencodeEvent, Message, Part } from "@opencode-ai/sdk/v2/client";
import type { AgentTaskEventInput, TokenUsage } from "../events.js";

/** Longest tool output or input string an event carries. */
const TOOL_OUTPUT_LIMIT = 4096;
const TOOL_INPUT_STRING_LIMIT = 512;

/** Sum of usage over assistant messages. */
export function emptyUsage(): TokenUsage {
  return { inputTokens: 0, outputTokens: 0, reasoningTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0, cost: 0, costSource: "unknown" };
}

/** Adds up tokens and cost of the assistant messages in a list. */
export function usageOfMessages(messages: Iterable<Message>): TokenUsage {
  const usage = emptyUsage();
  for (const message of messages) {
    if (message.role !== "assistant") continue;
    usage.inputTokens += message.tokens.input;
    usage.outputTokens += message.tokens.output;
    usage.reasoningTokens += message.tokens.reasoning;
    usage.cacheReadTokens += message.tokens.cache.read;
    usage.cacheWriteTokens += message.tokens.cache.write;
    usage.cost += message.cost;
  }
  // OpenCode reports 0 for a model it has no price for: that is not a known cost of 0.
  if (usage.cost > 0) usage.costSource = "opencode";
  return usage;
}

/** Cuts a string to `limit` characters, saying how much was cut. */
export function cutText(text: string, limit = TOOL_OUTPUT_LIMIT): string {
  if (text.length <= limit) return text;
  return `${text.slice(0, limit)}… [${text.length - limit} more characters]`;
}

function cutInput(input: Record<string, unknown>): Record<string, unknown> {
  const cut: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(input)) cut[key] = typeof value === "string" ? cutText(value, TOOL_INPUT_STRING_LIMIT) : value;
  return cut;
}

/** What the mapper learned from an event that matters for ending the run. */
export type SessionSignal =
  | { kind: "busy" }
  | { kind: "retry"; attempt: number; message: string }
  | { kind: "idle" }
  | { kind: "error"; error: NonNullable<Extract<OpencodeEvent, { type: "session.error" }>["properties"]["error"]> | undefined }
  | { kind: "permission"; requestId: string; permission: string }
  | { kind: "question"; requestId: string }
  | { kind: "connected" };

/**
 * Turns OpenCode's server events for one session into the library's agent events. Keeps the state
 * needed for that: message roles (so the user's own prompt is not echoed as agent text), text so
 * far per part, the last status per tool call, and usage per assistant message.
 */
export class OpencodeEventMapper {
  private readonly roles = new Map<string, Message["role"]>();
  private readonly textParts = new Map<string, string>();
  private readonly toolStatus = new Map<string, string>();
  private readonly usageByMessage = new Map<string, Message>();
  private lastUsageKey = "";
  /** When the first assistant step started (the model began answering), ms since the epoch. */
  firstStepAt: number | undefined;

  constructor(
    private readonly sessionId: string,
    private readonly workdir: string,
    private readonly emit: (event: AgentTaskEventInput) => void,
  ) {}

  /** Handles one event; returns a signal when it changes the session's state. */
  handle(event: OpencodeEvent): SessionSignal | undefined {
    switch (event.type) {
      case "server.connected":
        return { kind: "connected" };
      case "message.updated": {
        const info = event.properties.info;
        if (info.sessionID !== this.sessionId) return undefined;
        this.roles.set(info.id, info.role);
        if (info.role === "assistant") this.trackUsage(info);
        return undefined;
      }
      case "message.part.updated":
        if (event.properties.part.sessionID !== this.sessionId) return undefined;
        this.handlePart(event.properties.part);
        return undefined;
      case "message.part.delta": {
        const { sessionID, messageID, partID, field, delta } = event.properties;
        if (sessionID !== this.sessionId || field !== "text" || this.roles.get(messageID) !== "assistant") return undefined;
        const sofar = this.textParts.get(partID);
        if (sofar === undefined) return undefined; // not a text part (e.g. reasoning)
        const text = sofar + delta;
        this.textParts.set(partID, text);
        this.emit({ type: "agent.text", partId: partID, delta, text });
        return undefined;
      }
      case "file.edited":
        this.emit({ type: "agent.file", path: this.relativePath(event.properties.file) });
        return undefined;
      case "session.status": {
        if (event.properties.sessionID !== this.sessionId) return undefined;
        const status = event.properties.status;
        if (status.type === "retry") {
          this.emit({ type: "agent.retry", attempt: status.attempt, message: status.message, nextAt: status.next });
          return { kind: "retry", attempt: status.attempt, message: status.message };
        }
        return { kind: status.type };
      }
      case "session.idle":
        return event.properties.sessionID === this.sessionId ? { kind: "idle" } : undefined;
      case "session.error":
        if (event.properties.sessionID !== undefined && event.properties.sessionID !== this.sessionId) return undefined;
        return { kind: "error", error: event.properties.error };
      case "permission.asked":
        return event.properties.sessionID === this.sessionId
          ? { kind: "permission", requestId: event.properties.id, permission: event.properties.permission }
          : undefined;
      case "question.asked":
        return event.properties.sessionID === this.sessionId ? { kind: "question", requestId: event.properties.id } : undefined;
      default:
        return undefined;
    }
  }

  /** Replays the session's messages after a reconnect, emitting whatever the dropped stream missed. */
  replay(messages: Array<{ info: Message; parts: Part[] }>): void {
    for (const message of messages) {
      this.roles.set(message.info.id, message.info.role);
      if (message.info.role === "assistant") this.trackUsage(message.info);
      for (const part of message.parts) this.handlePart(part);
    }
  }

  private handlePart(part: Part): void {
    if (part.type === "step-start" && this.roles.get(part.messageID) === "assistant") {
      this.firstStepAt ??= Date.now();
      return;
    }
    if (part.type === "text") {
      if (this.roles.get(part.messageID) !== "assistant" || part.synthetic) return;
      const sofar = this.textParts.get(part.id) ?? "";
      this.textParts.set(part.id, part.text.length >= sofar.length ? part.text : sofar);
      if (part.text.length > sofar.length) {
        const delta = part.text.startsWith(sofar) ? part.text.slice(sofar.length) : part.text;
        this.emit({ type: "agent.text", partId: part.id, delta, text: part.text });
      }
      return;
    }
    if (part.type === "tool") {
      const state = part.state;
      if (this.toolStatus.get(part.callID) === state.status) return;
      this.toolStatus.set(part.callID, state.status);
      const title = state.status === "running" || state.status === "completed" ? state.title : undefined;
      const output = state.status === "completed" ? state.output : state.status === "error" ? state.error : undefined;
      this.emit({
        type: "agent.tool",
        callId: part.callID,
        tool: part.tool,
        status: state.status,
        ...(title ? { title } : {}),
        ...(state.status !== "pending" ? { input: cutInput(state.input) } : {}),
        ...(output !== undefined ? { output: cutText(output) } : {}),
      });
    }
  }

  private trackUsage(message: Extract<Message, { role: "assistant" }>): void {
    this.usageByMessage.set(message.id, message);
    const usage = this.usage();
    const key = JSON.stringify(usage);
    if (key === this.lastUsageKey || (usage.inputTokens === 0 && usage.outputTokens === 0 && usage.cost === 0)) return;
    this.lastUsageKey = key;
    this.emit({ type: "agent.usage", usage });
  }

  /** Usage summed over the assistant messages seen so far. */
  usage(): TokenUsage {
    return usageOfMessages(this.usageByMessage.values());
  }

  private relativePath(file: string): string {
    const root = this.workdir.replace(/\/+$/, "");
    return file.startsWith(`${root}/`) ? file.slice(root.length + 1) : file;
  }
}
