/**
 * Positions lost to corruption found at recovery (a bad stretch inside a segment, or a segment
 * that ends early): sorted, disjoint, inclusive ranges. Nearly always empty, so the questions
 * below cost nothing on a healthy journal. Lost positions are never "stored", "delivered" or
 * "lag": each output has them counted once, as corrupt, at recovery.
 */
export class PositionGaps {
  private ranges: { from: number; to: number }[] = [];

  get empty(): boolean {
    return this.ranges.length === 0;
  }

  /** Adds [from, to] (ignored when empty); ranges arrive in position order at recovery. */
  add(from: number, to: number): void {
    if (to < from) return;
    this.ranges.push({ from, to });
    this.ranges.sort((a, b) => a.from - b.from);
  }

  /** Lost positions in (after, upTo]. */
  countIn(after: number, upTo: number): number {
    let n = 0;
    for (const r of this.ranges) {
      const lo = Math.max(r.from, after + 1);
      const hi = Math.min(r.to, upTo);
      if (hi >= lo) n += hi - lo + 1;
    }
    return n;
  }

  /** Forgets ranges wholly before `pos` (their segments are gone). */
  dropBefore(pos: number): void {
    if (this.ranges.length > 0) this.ranges = this.ranges.filter((r) => r.to >= pos);
  }
}
