import { describe, expect, it } from "vitest";
import { AgentTextParts } from "./agent-text-parts.js";
import type { AgentTextEvent } from "./events.js";

const textEvent = (partId: string, delta: string, text: string): AgentTextEvent => ({ type: "agent.text", partId, delta, text, taskId: "t", at: 1 });

describe("AgentTextParts", () => {
  it("each kept event still reads the text it carried, through JSON, spreads and equality", () => {
    const parts = new AgentTextParts();
    const kept: AgentTextEvent[] = [];
    let text = "";
    for (const delta of ["Reading the repository. ", "Found greet.py; ", "adding a farewell function", "."]) {
      text += delta;
      kept.push(parts.share(textEvent("p1", delta, text)));
    }
    expect(kept.map((event) => event.text)).toEqual([
      "Reading the repository. ",
      "Reading the repository. Found greet.py; ",
      "Reading the repository. Found greet.py; adding a farewell function",
      "Reading the repository. Found greet.py; adding a farewell function.",
    ]);
    expect(JSON.parse(JSON.stringify(kept[1]))).toEqual(textEvent("p1", "Found greet.py; ", "Reading the repository. Found greet.py; "));
    expect({ ...kept[0] }).toEqual(textEvent("p1", "Reading the repository. ", "Reading the repository. "));
    expect(kept[2]).toEqual(textEvent("p1", "adding a farewell function", "Reading the repository. Found greet.py; adding a farewell function"));
    expect(structuredClone(kept[3]!).text).toBe(text);
    // Events stay as writable as any other: a consumer may replace the text it shows.
    kept[0]!.text = "mine";
    expect(kept[0]!.text).toBe("mine");
    expect(kept[1]!.text).toBe("Reading the repository. Found greet.py; ");
  });

  it("a text that does not extend the part's previous one leaves earlier events as they were", () => {
    const parts = new AgentTextParts();
    const first = parts.share(textEvent("p1", "The key is sk-12", "The key is sk-12"));
    // The next delta completes a secret, so the redacted whole text no longer starts with the previous one.
    const second = parts.share(textEvent("p1", "345678", "The key is [REDACTED]"));
    const third = parts.share(textEvent("p1", " and more", "The key is [REDACTED] and more"));
    const replaced = parts.share(textEvent("p1", "Short", "Short"));
    expect([first.text, second.text, third.text, replaced.text]).toEqual(["The key is sk-12", "The key is [REDACTED]", "The key is [REDACTED] and more", "Short"]);
  });

  it("keeps parts apart", () => {
    const parts = new AgentTextParts();
    const a = parts.share(textEvent("a", "alpha", "alpha"));
    const b = parts.share(textEvent("b", "beta", "beta"));
    const a2 = parts.share(textEvent("a", " two", "alpha two"));
    expect([a.text, b.text, a2.text]).toEqual(["alpha", "beta", "alpha two"]);
  });
});
