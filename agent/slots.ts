// A FIFO semaphore: at most `size` tasks at once, the rest waiting in the
// order they came.

export class Slots {
  private used = 0;
  private readonly queue: Array<() => void> = [];
  private readonly emptied: Array<() => void> = [];

  constructor(private readonly size: number) {}

  /** Tasks running now. */
  get busy(): number {
    return this.used;
  }

  /** Tasks waiting for a slot now. */
  get waiting(): number {
    return this.queue.length;
  }

  /** Runs fn once a slot is free, in arrival order. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.used >= this.size) await new Promise<void>((r) => this.queue.push(r));
    else this.used++;
    try {
      return await fn();
    } finally {
      const next = this.queue.shift();
      if (next) next();
      else {
        this.used--;
        if (this.used === 0) for (const e of this.emptied.splice(0)) e();
      }
    }
  }

  /** Resolves once nothing runs or waits. */
  idle(): Promise<void> {
    if (this.used === 0) return Promise.resolve();
    return new Promise((r) => this.emptied.push(r));
  }
}
