// A standing condition (a broken network config) is met again at every
// reconciliation; logging it each time buries everything else. Its line is
// written when the condition appears or changes, then at most once per
// interval while it stands.

export class RepeatLimit {
  private readonly last = new Map<string, number>();

  constructor(
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Of the conditions standing now (`current`, complete), those to log. A
   * condition no longer among them is forgotten: if it comes back, it is new.
   */
  due(current: Iterable<string>): string[] {
    const now = this.now();
    const seen = new Set<string>();
    const out: string[] = [];
    for (const key of current) {
      if (seen.has(key)) continue;
      seen.add(key);
      const at = this.last.get(key);
      if (at === undefined || now - at >= this.intervalMs) {
        this.last.set(key, now);
        out.push(key);
      }
    }
    for (const key of this.last.keys()) if (!seen.has(key)) this.last.delete(key);
    return out;
  }
}
