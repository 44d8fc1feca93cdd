/**
 * An append-only list of events that any number of readers iterate, each from the first event,
 * waiting for new ones until the log is closed. Servers attach late readers (an SSE client that
 * connects mid-task) and still see everything.
 */
export class EventLog<T> implements AsyncIterable<T> {
  /** Every event so far, in order. */
  readonly items: T[] = [];
  #closed = false;
  #waiters: Array<() => void> = [];

  /** True once {@link close} was called: no more events come. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Appends an event and wakes every waiting reader; ignored once closed. */
  push(item: T): void {
    if (this.#closed) return;
    this.items.push(item);
    this.#wake();
  }

  /** Ends the log: readers finish after the last event. */
  close(): void {
    this.#closed = true;
    this.#wake();
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  /** Every event from the first, then each new one as it comes, until the log is closed. */
  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    let index = 0;
    for (;;) {
      while (index < this.items.length) yield this.items[index++] as T;
      if (this.#closed) return;
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }
}
