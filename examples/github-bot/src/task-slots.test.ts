import { describe, expect, it } from "vitest";
import { TaskSlots } from "./task-slots.js";

describe("TaskSlots", () => {
  it("lets `limit` tasks run and queues the rest in order", async () => {
    const slots = new TaskSlots(2);
    const first = slots.tryAcquire()!;
    const second = await slots.acquire();
    expect(slots.tryAcquire()).toBeUndefined();
    const order: string[] = [];
    const third = slots.acquire().then((release) => (order.push("third"), release));
    const fourth = slots.acquire().then((release) => (order.push("fourth"), release));
    expect(slots.running).toBe(2);
    first();
    first(); // releasing twice frees one slot only
    const releaseThird = await third;
    expect(order).toEqual(["third"]);
    expect(slots.running).toBe(2);
    second();
    await fourth;
    expect(order).toEqual(["third", "fourth"]);
    releaseThird();
    expect(slots.running).toBe(1);
  });

  it("drops a waiter whose signal aborts, and serves the next one", async () => {
    const slots = new TaskSlots(1);
    const release = slots.tryAcquire()!;
    const controller = new AbortController();
    const cancelled = slots.acquire(controller.signal);
    const next = slots.acquire();
    controller.abort(new Error("shutting down"));
    await expect(cancelled).rejects.toThrow("shutting down");
    release();
    await next;
    expect(slots.running).toBe(1);
  });

  it("rejects a limit that is not a positive integer", () => {
    expect(() => new TaskSlots(0)).toThrow(TypeError);
    expect(() => new TaskSlots(1.5)).toThrow(TypeError);
  });
});
