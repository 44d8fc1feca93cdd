import type { AgentTextEvent } from "./events.js";

/** One text part's newest text; every kept event of the part reads its own text as a prefix of it. */
interface TextGeneration {
  latest: string;
}

/**
 * Keeps the `agent.text` events of a task in memory in space linear in the text.
 *
 * Each event carries the part's whole text so far. Kept as it is, a part streamed in n deltas
 * holds n copies of growing prefixes (2,500 deltas of 40 characters: about 120 MiB for 98 KiB of
 * text). Here a kept event holds only its length; its `text` is read as a prefix of the part's
 * newest text, which the next event replaces as long as it extends it. A text that does not extend
 * the previous one (the part was replaced, or a secret completed by the new delta was redacted)
 * starts a new generation, so earlier events still read exactly what they carried.
 */
export class AgentTextParts {
  readonly #generations = new Map<string, TextGeneration>();

  /** The same event, with `text` read from the part's shared text (an enumerable getter, so JSON and spreads see it). */
  share(event: AgentTextEvent): AgentTextEvent {
    const text = event.text;
    let generation = this.#generations.get(event.partId);
    if (generation && text.length >= generation.latest.length && text.slice(0, generation.latest.length) === generation.latest) {
      generation.latest = text;
    } else {
      generation = { latest: text };
      this.#generations.set(event.partId, generation);
    }
    const shared = generation;
    const length = text.length;
    const { text: _carried, ...rest } = event;
    return Object.defineProperty(rest, "text", {
      enumerable: true,
      configurable: true,
      get: () => shared.latest.slice(0, length),
      // A consumer that assigns a text of its own gets a plain property, as on any other event.
      set(this: object, value: string) {
        Object.defineProperty(this, "text", { value, writable: true, enumerable: true, configurable: true });
      },
    }) as AgentTextEvent;
  }
}
