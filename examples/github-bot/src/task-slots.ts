/**
 * A bound on how many tasks run at once. Waiters are served first come, first served; a
 * waiter whose signal aborts leaves the line.
 */
export class TaskSlots {
  private used = 0;
  private readonly waiting: Array<{ grant: () => void }> = [];

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new TypeError(`The task limit must be a positive integer, not ${String(limit)}.`);
  }

  /** Tasks running now. */
  get running(): number {
    return this.used;
  }

  /** Takes a slot when one is free; returns its release function, or undefined. */
  tryAcquire(): (() => void) | undefined {
    if (this.used >= this.limit || this.waiting.length > 0) return undefined;
    this.used += 1;
    return this.releaser();
  }

  /** Waits for a slot. Rejects with the signal's reason when it aborts first. */
  acquire(signal?: AbortSignal): Promise<() => void> {
    const now = this.tryAcquire();
    if (now) return Promise.resolve(now);
    return new Promise((resolve, reject) => {
      const entry = {
        grant: () => {
          signal?.removeEventListener("abort", onAbort);
          this.used += 1;
          resolve(this.releaser());
        },
      };
      const onAbort = () => {
        const index = this.waiting.indexOf(entry);
        if (index >= 0) this.waiting.splice(index, 1);
        reject(signal?.reason);
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiting.push(entry);
    });
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used -= 1;
      this.waiting.shift()?.grant();
    };
  }
}
