import type { AgentTaskEvent, AgentTextEvent } from "@running-agent/core";
import { redactSecrets } from "./redact-secrets.js";

/**
 * `agent.text` as the API stores and streams it: `text` (the part's whole text so far) is left
 * out when it is the part's previous text plus `delta`, which is nearly always; storing it on
 * every delta would grow with the square of the text's length.
 */
export type StoredAgentTextEvent = Omit<AgentTextEvent, "text"> & {
  /** The part's whole text so far, kept only when the previous text plus `delta` would not rebuild it. */
  text?: string;
};

/** A core event as the API stores and streams it: every event as core sent it, but `agent.text` as {@link StoredAgentTextEvent}. */
export type StoredAgentEvent = Exclude<AgentTaskEvent, AgentTextEvent> | StoredAgentTextEvent;

/**
 * Turns one job's events into what the API stores: secrets redacted, agent text reduced to its
 * deltas. `text` stays whenever the deltas alone would not rebuild it: when core replaced a
 * part's text, or when a secret could straddle two deltas (each delta is redacted on its own,
 * so their concatenation could spell a secret that the full text has redacted).
 */
export class StoredEventEncoder {
  private readonly textByPart = new Map<string, string>();
  /** A secret that straddles a delta boundary starts at most this many characters before it. */
  private readonly overlap: number;

  constructor(private readonly secrets: readonly string[]) {
    this.overlap = Math.max(0, ...secrets.map((secret) => secret.length - 1));
  }

  /** Encodes the job's next event (call in the order core emitted them): secrets redacted, `agent.text` reduced to its delta where it can be. */
  encode(event: AgentTaskEvent): StoredAgentEvent {
    if (event.type !== "agent.text") return this.redact(event);
    const previous = this.textByPart.get(event.partId) ?? "";
    this.textByPart.set(event.partId, event.text);
    const { text, ...delta } = event;
    const continues = text === previous + event.delta && !this.straddlesSecret(previous, event.delta);
    return this.redact(continues ? delta : event);
  }

  private straddlesSecret(previous: string, delta: string): boolean {
    if (this.overlap === 0) return false;
    const seam = previous.slice(-this.overlap) + delta;
    return redactSecrets(seam, this.secrets) !== seam;
  }

  private redact<T extends StoredAgentEvent>(event: T): T {
    return JSON.parse(redactSecrets(JSON.stringify(event), this.secrets)) as T;
  }
}
