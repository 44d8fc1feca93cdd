import { describe, expect, it } from "vitest";
import { EventLog } from "./event-log.js";

describe("EventLog", () => {
  it("gives every reader all items from the first, including ones pushed before it started", async () => {
    const log = new EventLog<number>();
    log.push(1);
    const early = (async () => {
      const seen: number[] = [];
      for await (const item of log) seen.push(item);
      return seen;
    })();
    log.push(2);
    await new Promise((resolve) => setTimeout(resolve, 5));
    log.push(3);
    log.close();
    const late: number[] = [];
    for await (const item of log) late.push(item);
    expect(await early).toEqual([1, 2, 3]);
    expect(late).toEqual([1, 2, 3]);
  });

  it("ignores pushes after close and ends waiting readers", async () => {
    const log = new EventLog<string>();
    const reader = (async () => {
      const seen: string[] = [];
      for await (const item of log) seen.push(item);
      return seen;
    })();
    log.close();
    log.push("late");
    expect(await reader).toEqual([]);
  });
});
