/**
 * Where each frame of one segment starts and which positions it holds, so `read(after)` finds
 * its bytes with a binary search instead of a scan. Typed arrays keep it at 20 bytes per frame.
 */
export class FrameIndex {
  private offsets = new Float64Array(64);
  private firsts = new Float64Array(64);
  private counts = new Uint32Array(64);
  length = 0;

  push(offset: number, firstPos: number, count: number): void {
    if (this.length === this.offsets.length) this.grow();
    this.offsets[this.length] = offset;
    this.firsts[this.length] = firstPos;
    this.counts[this.length] = count;
    this.length++;
  }

  offset(i: number): number {
    return this.offsets[i]!;
  }

  firstPos(i: number): number {
    return this.firsts[i]!;
  }

  count(i: number): number {
    return this.counts[i]!;
  }

  /** Index of the first frame whose last position is ≥ pos, or `length` when none. */
  findFrom(pos: number): number {
    let lo = 0;
    let hi = this.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.firsts[mid]! + this.counts[mid]! - 1 >= pos) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  private grow(): void {
    const n = this.offsets.length * 2;
    const o = new Float64Array(n);
    o.set(this.offsets);
    this.offsets = o;
    const f = new Float64Array(n);
    f.set(this.firsts);
    this.firsts = f;
    const c = new Uint32Array(n);
    c.set(this.counts);
    this.counts = c;
  }
}
