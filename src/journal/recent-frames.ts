import type { JournaledSample } from "../core/sample.js";

interface CachedFrame {
  firstPos: number;
  samples: JournaledSample[];
}

/**
 * The most recently made-durable frames, decoded, covering one contiguous run of positions up to
 * the newest. Live forwarders read right behind the writer, so they are served from here without
 * touching the disk or decoding anything.
 */
export class RecentFrames {
  private frames: CachedFrame[] = [];
  private head = 0;
  private total = 0;

  constructor(private readonly budget: number) {}

  add(firstPos: number, samples: JournaledSample[]): void {
    if (this.budget <= 0) return;
    const last = this.frames[this.frames.length - 1];
    // Keep the run contiguous; a gap (never expected) restarts the cache.
    if (last && last.firstPos + last.samples.length !== firstPos) this.clear();
    this.frames.push({ firstPos, samples });
    this.total += samples.length;
    while (this.total > this.budget && this.head < this.frames.length - 1) {
      this.total -= this.frames[this.head]!.samples.length;
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
    return pos >= first.firstPos && pos < last.firstPos + last.samples.length;
  }

  /** Appends samples from `start` on to `out` until it holds `max` (caller checked `covers`). */
  read(start: number, max: number, out: JournaledSample[]): void {
    let lo = this.head;
    let hi = this.frames.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.frames[mid]!.firstPos <= start) lo = mid;
      else hi = mid - 1;
    }
    for (let i = lo; i < this.frames.length && out.length < max; i++) {
      const f = this.frames[i]!;
      const from = Math.max(0, start - f.firstPos);
      const take = Math.min(f.samples.length - from, max - out.length);
      for (let k = 0; k < take; k++) out.push(f.samples[from + k]!);
    }
  }

  /** Forgets positions below `pos` (their segment was deleted). */
  dropBefore(pos: number): void {
    while (this.head < this.frames.length) {
      const f = this.frames[this.head]!;
      if (f.firstPos + f.samples.length > pos) break;
      this.total -= f.samples.length;
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
