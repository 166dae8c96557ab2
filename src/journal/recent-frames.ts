import type { JournaledSample, Quality, Sample, SampleValue } from "../core/sample.js";

/**
 * One append's samples as columns. Why: the cache keeps about half a second of samples, long
 * enough for V8 to promote whatever it holds to the old generation; one object per sample held
 * there was most of the gateway's old-generation churn (and of its major GCs) at 200,000
 * values/s. Columns are sized once (no growth by push): timestamps and numeric values in
 * Float64Arrays (off the JS heap, no box per number), qualities in bytes, and only the rare
 * non-numeric values in a sparse array. The samples a read hands out are built fresh and die young.
 */
const QUALITIES: readonly Quality[] = ["good", "uncertain", "bad"];

export class FrameColumns {
  readonly length: number;
  /** the one device of every sample (the usual case: one poll of one device), else per sample */
  private readonly device: string | string[];
  private readonly tags: string[];
  /** numeric values; where `other` has an entry, that entry is the value instead */
  private readonly nums: Float64Array;
  private readonly other: Map<number, SampleValue> | undefined;
  private readonly qualities: Uint8Array;
  private readonly ts: Float64Array;
  private readonly units: (string | undefined)[] | undefined;
  private readonly reasons: (string | undefined)[] | undefined;

  constructor(samples: readonly Sample[]) {
    const n = samples.length;
    this.length = n;
    const tags = new Array<string>(n);
    const nums = new Float64Array(n);
    const qualities = new Uint8Array(n);
    const ts = new Float64Array(n);
    let other: Map<number, SampleValue> | undefined;
    let units: (string | undefined)[] | undefined;
    let reasons: (string | undefined)[] | undefined;
    const first = n > 0 ? samples[0]!.device : "";
    let devices: string[] | undefined;
    for (let i = 0; i < n; i++) {
      const s = samples[i]!;
      if (devices) devices[i] = s.device;
      else if (s.device !== first) {
        devices = new Array<string>(n).fill(first);
        devices[i] = s.device;
      }
      tags[i] = s.tag;
      const v = s.value;
      if (typeof v === "number") nums[i] = v;
      else (other ??= new Map()).set(i, v);
      const q = s.quality;
      qualities[i] = q === "good" ? 0 : q === "uncertain" ? 1 : 2;
      ts[i] = s.ts;
      if (s.unit !== undefined) (units ??= new Array<string | undefined>(n))[i] = s.unit;
      if (s.reason !== undefined) (reasons ??= new Array<string | undefined>(n))[i] = s.reason;
    }
    this.device = devices ?? first;
    this.tags = tags;
    this.nums = nums;
    this.other = other;
    this.qualities = qualities;
    this.ts = ts;
    this.units = units;
    this.reasons = reasons;
  }

  tsAt(i: number): number {
    return this.ts[i]!;
  }

  /** A fresh sample for index `i` at position `pos`; same property order as the frame decoder's. */
  sample(i: number, pos: number): JournaledSample {
    const d = this.device;
    const other = this.other;
    const s: JournaledSample = {
      device: typeof d === "string" ? d : d[i]!,
      tag: this.tags[i]!,
      value: other !== undefined && other.has(i) ? other.get(i)! : this.nums[i]!,
      quality: QUALITIES[this.qualities[i]!]!,
      ts: this.ts[i]!,
      pos,
    };
    const unit = this.units?.[i];
    if (unit !== undefined) s.unit = unit;
    const reason = this.reasons?.[i];
    if (reason !== undefined) s.reason = reason;
    return s;
  }
}

interface CachedFrame {
  firstPos: number;
  cols: FrameColumns;
}

/**
 * The most recently made-durable frames, as columns, covering one contiguous run of positions up
 * to the newest. Live forwarders read right behind the writer, so they are served from here
 * without touching the disk or decoding anything.
 */
export class RecentFrames {
  private frames: CachedFrame[] = [];
  private head = 0;
  private total = 0;

  /** `budget`: samples kept (about 32 bytes each in columns) */
  constructor(private readonly budget: number) {}

  add(firstPos: number, cols: FrameColumns): void {
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
   * Samples from `start` on, at most `max`, in an array sized once (a read of thousands of
   * samples would otherwise regrow it a dozen times). The caller checked `covers`.
   */
  readNew(start: number, max: number): JournaledSample[] {
    const last = this.frames[this.frames.length - 1]!;
    const n = Math.max(0, Math.min(max, last.firstPos + last.cols.length - start));
    const out = new Array<JournaledSample>(n);
    let k = 0;
    for (let i = this.frameIndexOf(start); i < this.frames.length && k < n; i++) {
      const f = this.frames[i]!;
      const from = Math.max(0, start - f.firstPos);
      const take = Math.min(f.cols.length - from, n - k);
      for (let j = 0; j < take; j++) out[k++] = f.cols.sample(from + j, f.firstPos + from + j);
    }
    return out;
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

  /** Appends samples from `start` on to `out` until it holds `max` (caller checked `covers`). */
  read(start: number, max: number, out: JournaledSample[]): void {
    for (let i = this.frameIndexOf(start); i < this.frames.length && out.length < max; i++) {
      const f = this.frames[i]!;
      const from = Math.max(0, start - f.firstPos);
      const take = Math.min(f.cols.length - from, max - out.length);
      for (let k = 0; k < take; k++) out.push(f.cols.sample(from + k, f.firstPos + from + k));
    }
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
