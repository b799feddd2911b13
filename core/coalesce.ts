// Runs a task one at a time, coalescing the calls that come while it runs:
// however many there are, one more run follows the current one. So every
// call is covered by a run that started after it, and a burst of changes
// (a start storm, a reconciliation) costs two runs, not one per change.

/** A task run one at a time; see the head of this file. */
export class Coalesced {
  private running: Promise<void> | undefined;
  private again = false;

  /** `task` does one run (and handles its own errors); `more()` false stops the loop early (a shutdown). */
  constructor(
    private readonly task: () => Promise<void>,
    private readonly more: () => boolean = () => true,
  ) {}

  /** Runs the task, or asks for one more run after the current one; resolves when a run that started after this call is done. */
  run(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.task();
      } while (this.again && this.more());
    })().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** True while a run is going on. */
  get busy(): boolean {
    return this.running !== undefined;
  }

  /** Resolves when no run is going on (at once when none is). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }
}
