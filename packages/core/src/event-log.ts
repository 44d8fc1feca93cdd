/**
 * An append-only list of events that any number of readers iterate, each from the first event,
 * waiting for new ones until the log is closed. Servers attach late readers (an SSE client that
 * connects mid-task) and still see everything.
 */
export class EventLog<T> implements AsyncIterable<T> {
  readonly items: T[] = [];
  #closed = false;
  #waiters: Array<() => void> = [];

  get closed(): boolean {
    return this.#closed;
  }

  push(item: T): void {
    if (this.#closed) return;
    this.items.push(item);
    this.#wake();
  }

  close(): void {
    this.#closed = true;
    this.#wake();
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    let index = 0;
    for (;;) {
      while (index < this.items.length) yield this.items[index++] as T;
      if (this.#closed) return;
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }
}
