import type { SampleColumns, SampleRun } from "../core/sample-columns.js";

interface CachedFrame {
  firstPos: number;
  cols: SampleColumns;
}

/**
 * The most recently made-durable frames, as columns (why: see SampleColumns), covering one
 * contiguous run of positions up to the newest. Live forwarders read right behind the writer, so
 * they are served from here without touching the disk or decoding anything.
 */
export class RecentFrames {
  private frames: CachedFrame[] = [];
  private head = 0;
  private total = 0;

  /** `budget`: samples kept (about 17 bytes each in columns) */
  constructor(private readonly budget: number) {}

  add(firstPos: number, cols: SampleColumns): void {
    if (this.budget <= 0) return;
    const last = this.frames[this.frames.length - 1];
    // Keep the run contiguous; a gap (never expected) restarts the cache.
    if (last && last.firstPos + last.cols.length !== firstPos) this.clear();
    this.frames.push({ firstPos, cols });
    this.total += cols.length;
    while (this.total > this.budget && this.head < this.frames.length - 1) {
      this.total -= this.frames[this.head]!.cols.length;
      this.frames[this.head] = undefined as unknown as CachedFrame;
      this.head++;
    }
    this.compact();
  }

  /** Whether position `pos` is held here. */
  covers(pos: number): boolean {
    const first = this.frames[this.head];
    if (!first) return false;
    const last = this.frames[this.frames.length - 1]!;
    return pos >= first.firstPos && pos < last.firstPos + last.cols.length;
  }

  /**
   * Runs from `start` on, at most `max` samples in all: the cached column sets themselves, shared
   * with every reader, never copied. The caller checked `covers`.
   */
  readRuns(start: number, max: number, out: SampleRun[]): number {
    let k = 0;
    for (let i = this.frameIndexOf(start); i < this.frames.length && k < max; i++) {
      const f = this.frames[i]!;
      const from = Math.max(0, start - f.firstPos);
      const count = Math.min(f.cols.length - from, max - k);
      out.push({ cols: f.cols, from, count, firstPos: f.firstPos + from });
      k += count;
    }
    return k;
  }

  /** The index in `frames` of the frame holding `pos` (caller checked `covers`). */
  private frameIndexOf(pos: number): number {
    let lo = this.head;
    let hi = this.frames.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.frames[mid]!.firstPos <= pos) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Forgets positions below `pos` (their segment was deleted). */
  dropBefore(pos: number): void {
    while (this.head < this.frames.length) {
      const f = this.frames[this.head]!;
      if (f.firstPos + f.cols.length > pos) break;
      this.total -= f.cols.length;
      this.frames[this.head] = undefined as unknown as CachedFrame;
      this.head++;
    }
    // A frame straddling `pos` cannot exist: frames never span segments.
    this.compact();
  }

  clear(): void {
    this.frames = [];
    this.head = 0;
    this.total = 0;
  }

  private compact(): void {
    if (this.head === this.frames.length) this.clear();
    else if (this.head > 1024 && this.head * 2 > this.frames.length) {
      this.frames = this.frames.slice(this.head);
      this.head = 0;
    }
  }
}
