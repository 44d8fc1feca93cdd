import { getEventListeners } from "node:events";
import { describe, expect, it } from "vitest";
import { OutputBuffer } from "./local-task.js";

describe("OutputBuffer", () => {
  it("serves reads from any offset, waits for new bytes, and ends empty", async () => {
    const buffer = new OutputBuffer();
    const signal = new AbortController().signal;
    buffer.push(Buffer.from("hello "));
    expect((await buffer.read(0, signal))?.toString()).toBe("hello ");
    const waiting = buffer.read(6, signal);
    buffer.push(Buffer.from("world"));
    expect((await waiting)?.toString()).toBe("world");
    expect((await buffer.read(2, signal))?.toString()).toBe("llo world");
    buffer.end();
    expect(await buffer.read(11, signal)).toBeUndefined();
  });

  it("leaves no abort listener behind on a long-lived stream's signal, and an abort ends a waiting read", async () => {
    const buffer = new OutputBuffer();
    const controller = new AbortController();
    let offset = 0;
    for (let chunk = 0; chunk < 50; chunk++) {
      const waiting = buffer.read(offset, controller.signal);
      buffer.push(Buffer.from("x"));
      offset += (await waiting)!.length;
    }
    expect(offset).toBe(50);
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
    const waiting = buffer.read(offset, controller.signal);
    controller.abort();
    expect(await waiting).toBeUndefined();
  });
});
