// A set of addresses ordered by a time, for holds (by their end) and free
// addresses (by release time). Times mostly arrive in increasing order, so
// entries are appended to a sorted array; removals are lazy (an entry is live
// only while its sequence number is the address's current one) and the array
// is compacted when more than half of it is dead.

type Entry = [time: number, hex: string, seq: number];

/** Addresses ordered by (time, address). */
export class TimeQueue {
  private readonly live = new Map<string, { time: number; seq: number }>();
  private entries: Entry[] = [];
  private head = 0;
  private seq = 0;

  get size(): number {
    return this.live.size;
  }

  has(hex: string): boolean {
    return this.live.has(hex);
  }

  get(hex: string): number | undefined {
    return this.live.get(hex)?.time;
  }

  /** Sets (or moves) an address to a time. */
  set(hex: string, time: number): void {
    if (this.live.get(hex)?.time === time) return;
    const entry: Entry = [time, hex, ++this.seq];
    this.live.set(hex, { time, seq: entry[2] });
    const last = this.entries[this.entries.length - 1];
    if (!last || before(last, entry)) {
      this.entries.push(entry);
    } else {
      let lo = this.head;
      let hi = this.entries.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (before(this.entries[mid]!, entry)) lo = mid + 1;
        else hi = mid;
      }
      this.entries.splice(lo, 0, entry);
    }
    this.maybeCompact();
  }

  delete(hex: string): void {
    if (this.live.delete(hex)) this.maybeCompact();
  }

  /** The earliest address. */
  first(): string | undefined {
    this.skipDead();
    return this.entries[this.head]?.[1];
  }

  /** Up to limit addresses with time <= until, earliest first. */
  upTo(until: number, limit: number): string[] {
    const out: string[] = [];
    this.skipDead();
    for (let i = this.head; i < this.entries.length && out.length < limit; i++) {
      const entry = this.entries[i]!;
      if (entry[0] > until) break;
      if (this.isLive(entry)) out.push(entry[1]);
    }
    return out;
  }

  /** How many addresses have time <= until: reads the entries up to until, not the whole queue. */
  countUpTo(until: number): number {
    let n = 0;
    for (let i = this.head; i < this.entries.length; i++) {
      const entry = this.entries[i]!;
      if (entry[0] > until) break;
      if (this.isLive(entry)) n++;
    }
    return n;
  }

  /** Every live entry as [address, time], in order. */
  *[Symbol.iterator](): IterableIterator<[string, number]> {
    for (let i = this.head; i < this.entries.length; i++) {
      const entry = this.entries[i]!;
      if (this.isLive(entry)) yield [entry[1], entry[0]];
    }
  }

  private isLive(entry: Entry): boolean {
    return this.live.get(entry[1])?.seq === entry[2];
  }

  private skipDead(): void {
    while (this.head < this.entries.length && !this.isLive(this.entries[this.head]!)) this.head++;
  }

  private maybeCompact(): void {
    const span = this.entries.length - this.head;
    if (span > 64 && span > 2 * this.live.size) {
      this.entries = this.entries.slice(this.head).filter((e) => this.isLive(e));
      this.head = 0;
    }
  }
}

function before(a: Entry, b: Entry): boolean {
  return a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);
}
