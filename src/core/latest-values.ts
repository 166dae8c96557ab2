import type { Quality, Sample, SampleValue } from "./sample.js";
import type { SampleColumns } from "./sample-columns.js";
import { isoTs } from "./sample.js";
import type { TagValue } from "./status.js";

const QUALITIES: readonly Quality[] = ["good", "uncertain", "bad"];
const NO_F64 = new Float64Array(0);
const NO_U8 = new Uint8Array(0);

/**
 * The latest value per tag of one device, in columns instead of one retained Sample per tag.
 * Why: a Sample kept for a whole poll period outlives V8's young generation and is promoted, so
 * at 200,000 values/s the live view alone fed the old-generation collector 200,000 objects a
 * second. Numbers go into a Float64Array (no allocation per update); other values, units and
 * reasons are references to strings the sample already carried.
 */
export class LatestValues {
  private readonly slots = new Map<string, number>();
  private readonly tags: string[] = [];
  // Empty until the first value: a pushing device is admitted (and gets its entry) before it has
  // sent anything, and tens of thousands of entries with unused buffers would cost for nothing.
  private num = NO_F64;
  private ts = NO_F64;
  private quality = NO_U8;
  /** non-numeric values; `undefined` where the value is the number in `num` */
  private readonly other: (SampleValue | undefined)[] = [];
  private readonly units: (string | undefined)[] = [];

  get size(): number {
    this.flush();
    return this.tags.length;
  }

  /** slot after the one last written: polls repeat the same tag order, so this usually hits */
  private hint = 0;

  set(s: Sample): void {
    this.flush();
    let i: number | undefined = this.hint;
    if (this.tags[i] !== s.tag) i = this.slots.get(s.tag);
    if (i === undefined) {
      i = this.tags.length;
      if (i === this.num.length) this.grow();
      this.slots.set(s.tag, i);
      this.tags.push(s.tag);
      this.other.push(undefined);
      this.units.push(undefined);
    }
    const v = s.value;
    if (typeof v === "number") {
      this.num[i] = v;
      if (this.other[i] !== undefined) this.other[i] = undefined;
    } else {
      this.other[i] = v;
    }
    this.ts[i] = s.ts;
    this.quality[i] = s.quality === "good" ? 0 : s.quality === "uncertain" ? 1 : 2;
    if (this.units[i] !== s.unit) this.units[i] = s.unit;
    this.hint = i + 1;
  }

  /**
   * Columns not yet copied into the slots. Why: a device's polls hand over the same tag list
   * every time, and each poll supersedes the previous one whole; keeping the newest column set
   * and copying it only when read (or when a poll of another shape comes) makes the live view's
   * tap one assignment per poll instead of a hundred slot updates.
   */
  private pending: SampleColumns | undefined;

  /** `set` for every sample of `cols` (all of this device). */
  setColumns(cols: SampleColumns): void {
    const p = this.pending;
    if (p !== undefined && p.tags !== cols.tags) this.copy(p);
    this.pending = cols;
  }

  private flush(): void {
    const p = this.pending;
    if (p === undefined) return;
    this.pending = undefined;
    this.copy(p);
  }

  private copy(cols: SampleColumns): void {
    const tags = cols.tags;
    const nums = cols.nums;
    const tsCol = cols.ts;
    const qualities = cols.qualities;
    const other = cols.other;
    const units = cols.units;
    let hint = this.hint;
    for (let k = 0; k < cols.length; k++) {
      const tag = tags[k]!;
      let i: number | undefined = hint;
      if (this.tags[i] !== tag) i = this.slots.get(tag);
      if (i === undefined) {
        i = this.tags.length;
        if (i === this.num.length) this.grow();
        this.slots.set(tag, i);
        this.tags.push(tag);
        this.other.push(undefined);
        this.units.push(undefined);
      }
      if (other !== undefined && other.has(k)) this.other[i] = other.get(k);
      else {
        this.num[i] = nums[k]!;
        if (this.other[i] !== undefined) this.other[i] = undefined;
      }
      this.ts[i] = tsCol[k]!;
      this.quality[i] = qualities[k]!;
      const unit = units === undefined ? undefined : units[k];
      if (this.units[i] !== unit) this.units[i] = unit;
      hint = i + 1;
    }
    this.hint = hint;
  }

  /** One tag's latest value; undefined when the tag has never been seen. */
  get(tag: string): TagValue | undefined {
    this.flush();
    const i = this.slots.get(tag);
    return i === undefined ? undefined : this.at(i);
  }

  /** Every tag's latest value, in the order tags were first seen. */
  list(): TagValue[] {
    this.flush();
    const out: TagValue[] = [];
    for (let i = 0; i < this.tags.length; i++) out.push(this.at(i));
    return out;
  }

  private at(i: number): TagValue {
    const o = this.other[i];
    const t: TagValue = { tag: this.tags[i]!, value: o === undefined ? this.num[i]! : o, quality: QUALITIES[this.quality[i]!]!, ts: isoTs(this.ts[i]!) };
    const unit = this.units[i];
    if (unit !== undefined) t.unit = unit;
    return t;
  }

  private grow(): void {
    const n = Math.max(16, this.num.length * 2);
    const num = new Float64Array(n); num.set(this.num); this.num = num;
    const ts = new Float64Array(n); ts.set(this.ts); this.ts = ts;
    const q = new Uint8Array(n); q.set(this.quality); this.quality = q;
  }
}
