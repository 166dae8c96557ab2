import type { JournaledSample, Quality, Sample, SampleValue } from "./sample.js";

/** Quality by its code in `SampleColumns.qualities`. */
export const QUALITY_CODES: readonly Quality[] = ["good", "uncertain", "bad"];

export function qualityCode(q: Quality): number {
  return q === "good" ? 0 : q === "uncertain" ? 1 : 2;
}

/**
 * Why columns and slabs: at 200,000 values/s, one object per sample was two thirds of every byte
 * the gateway allocated, and the ones held for a few hundred ms (the journal's cache, writes in
 * flight) were promoted to V8's old generation and left to its major GC. Numbers and timestamps
 * sit in Float64Arrays carved from shared slabs (no box per number and no backing store per
 * column), qualities in bytes, and only the rare non-numeric values in a sparse map.
 *
 * Bytes per slab; a column set takes 17 bytes per sample from it (rounded up to 8).
 */
const SLAB_BYTES = 256 * 1024;
let slab = new ArrayBuffer(SLAB_BYTES);
let slabUsed = 0;

/**
 * Carves `n` doubles, `n` doubles and `n` bytes out of the current slab. A slab is freed once no
 * column carved from it is referenced; the journal's cache holds a few seconds of columns (about
 * 8 MB at 200,000 values/s), so a few dozen slabs are alive at a time.
 */
function carve(n: number): { a: Float64Array; b: Float64Array; q: Uint8Array } {
  const bytes = 16 * n + ((n + 7) & ~7);
  if (bytes > SLAB_BYTES / 4) {
    const own = new ArrayBuffer(bytes);
    return { a: new Float64Array(own, 0, n), b: new Float64Array(own, 8 * n, n), q: new Uint8Array(own, 16 * n, n) };
  }
  const at = reserve(bytes);
  return { a: new Float64Array(slab, at, n), b: new Float64Array(slab, at + 8 * n, n), q: new Uint8Array(slab, at + 16 * n, n) };
}

/** `bytes` (a multiple of 8) of the current slab, a fresh slab when they do not fit; their offset. */
function reserve(bytes: number): number {
  if (slabUsed + bytes > SLAB_BYTES) {
    slab = new ArrayBuffer(SLAB_BYTES);
    slabUsed = 0;
  }
  const at = slabUsed;
  slabUsed += bytes;
  return at;
}

/**
 * One column of `n` doubles from the slabs (zeroed: slab space is never handed out twice), for a
 * producer that fills a numbers column before it builds the columns (the push-body scanner):
 * `ColumnsBuilder` then takes it as is, with no copy.
 */
export function carveDoubles(n: number): Float64Array {
  const bytes = 8 * n;
  if (bytes > SLAB_BYTES / 4) return new Float64Array(n);
  return new Float64Array(slab, reserve(bytes), n);
}

/** `carve` without the numbers: timestamps and qualities for a numbers column carved before. */
function carveTsQ(n: number): { b: Float64Array; q: Uint8Array } {
  const bytes = 8 * n + ((n + 7) & ~7);
  if (bytes > SLAB_BYTES / 4) {
    const own = new ArrayBuffer(bytes);
    return { b: new Float64Array(own, 0, n), q: new Uint8Array(own, 8 * n, n) };
  }
  const at = reserve(bytes);
  return { b: new Float64Array(slab, at, n), q: new Uint8Array(slab, at + 8 * n, n) };
}

/**
 * Samples as columns: the shape samples take between the journal and the outputs (and from a
 * driver into the journal when it builds them this way). Immutable once built: the journal keeps
 * a column set in its cache and hands the same one to every output, so nobody may write into it.
 * Outputs and other consumers read them through sample-reader.ts (`deviceRuns`); the columns
 * themselves are for the fast paths in core, the journal and the MQTT json encoder.
 */
export class SampleColumns {
  readonly length: number;
  /** the one device of every sample (the usual case: one poll of one device), else per sample */
  readonly device: string | readonly string[];
  readonly tags: readonly string[];
  /** numeric values; where `other` has an entry, that entry is the value instead */
  readonly nums: Float64Array;
  /** the non-numeric values (strings, booleans, null) by index; undefined when there are none */
  readonly other: ReadonlyMap<number, SampleValue> | undefined;
  /** QUALITY_CODES index per sample */
  readonly qualities: Uint8Array;
  /** source timestamps, ms since the epoch */
  readonly ts: Float64Array;
  /** per-sample unit where any sample has one */
  readonly units: readonly (string | undefined)[] | undefined;
  /** per-sample reason where any sample has one */
  readonly reasons: readonly (string | undefined)[] | undefined;

  private constructor(
    device: string | readonly string[],
    tags: readonly string[],
    nums: Float64Array,
    other: ReadonlyMap<number, SampleValue> | undefined,
    qualities: Uint8Array,
    ts: Float64Array,
    units: readonly (string | undefined)[] | undefined,
    reasons: readonly (string | undefined)[] | undefined,
  ) {
    this.length = tags.length;
    this.device = device;
    this.tags = tags;
    this.nums = nums;
    this.other = other;
    this.qualities = qualities;
    this.ts = ts;
    this.units = units;
    this.reasons = reasons;
  }

  /** Copies `samples` into columns; the caller may reuse them afterwards. */
  static fromSamples(samples: readonly Sample[]): SampleColumns {
    const n = samples.length;
    const tags = new Array<string>(n);
    const { a: nums, b: ts, q: qualities } = carve(n);
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
    return new SampleColumns(devices ?? first, tags, nums, other, qualities, ts, units, reasons);
  }

  /**
   * Columns over the given arrays, kept as given (not copied): for ColumnsBuilder and for column
   * sets rebuilt after crossing threads. The caller guarantees equal lengths.
   */
  static build(
    device: string | readonly string[], tags: readonly string[], nums: Float64Array, other: ReadonlyMap<number, SampleValue> | undefined,
    qualities: Uint8Array, ts: Float64Array, units: readonly (string | undefined)[] | undefined, reasons: readonly (string | undefined)[] | undefined,
  ): SampleColumns {
    return new SampleColumns(device, tags, nums, other, qualities, ts, units, reasons);
  }

  deviceAt(i: number): string {
    const d = this.device;
    return typeof d === "string" ? d : d[i]!;
  }

  valueAt(i: number): SampleValue {
    const other = this.other;
    return other !== undefined && other.has(i) ? other.get(i)! : this.nums[i]!;
  }

  qualityAt(i: number): Quality {
    return QUALITY_CODES[this.qualities[i]!]!;
  }

  unitAt(i: number): string | undefined {
    return this.units?.[i];
  }

  reasonAt(i: number): string | undefined {
    return this.reasons?.[i];
  }

  /** Sample `i` as an object (same property order as the frame decoder's), with position `pos`. */
  sample(i: number, pos: number): JournaledSample {
    const s: JournaledSample = {
      device: this.deviceAt(i),
      tag: this.tags[i]!,
      value: this.valueAt(i),
      quality: this.qualityAt(i),
      ts: this.ts[i]!,
      pos,
    };
    const unit = this.unitAt(i);
    if (unit !== undefined) s.unit = unit;
    const reason = this.reasonAt(i);
    if (reason !== undefined) s.reason = reason;
    return s;
  }

  /** Every sample as an object, without positions. */
  toSamples(): Sample[] {
    const out = new Array<Sample>(this.length);
    for (let i = 0; i < this.length; i++) {
      const { pos: _pos, ...s } = this.sample(i, 0);
      out[i] = s;
    }
    return out;
  }
}

/**
 * Fills up to `capacity` samples of one device in place, for a driver that builds its samples as
 * columns: values, qualities and timestamps go straight into the typed arrays, so a poll makes no
 * object per value. `done` names the tags and hands the columns over; the builder is not used
 * again after that.
 */
export class ColumnsBuilder {
  readonly nums: Float64Array;
  readonly ts: Float64Array;
  readonly qualities: Uint8Array;
  private other: Map<number, SampleValue> | undefined;
  private units: (string | undefined)[] | undefined;
  private reasons: (string | undefined)[] | undefined;

  /**
   * `nums`: a numbers column of at least `capacity` entries filled before (see `carveDoubles`),
   * taken as the columns' own instead of a fresh one; the caller writes into it no more.
   */
  constructor(
    readonly device: string,
    readonly capacity: number,
    nums?: Float64Array,
  ) {
    if (nums !== undefined) {
      if (nums.length < capacity) throw new RangeError(`${nums.length} numbers for ${capacity} samples`);
      const c = carveTsQ(capacity);
      this.nums = nums.length === capacity ? nums : nums.subarray(0, capacity);
      this.ts = c.b;
      this.qualities = c.q;
      return;
    }
    const c = carve(capacity);
    this.nums = c.a;
    this.ts = c.b;
    this.qualities = c.q;
  }

  /** Sample `i`, any value. Numbers may also be written straight into `nums`, `ts` and `qualities`. */
  set(i: number, value: SampleValue, quality: number, ts: number): void {
    if (typeof value === "number") this.nums[i] = value;
    else (this.other ??= new Map()).set(i, value);
    this.qualities[i] = quality;
    this.ts[i] = ts;
  }

  setUnit(i: number, unit: string): void {
    (this.units ??= new Array<string | undefined>(this.capacity))[i] = unit;
  }

  setReason(i: number, reason: string): void {
    (this.reasons ??= new Array<string | undefined>(this.capacity))[i] = reason;
  }

  /**
   * The first `tags.length` samples as columns. `tags` (and `units`, when given: per-sample units
   * that replace any `setUnit`) are kept as given, not copied: pass lists that never change, such
   * as a device's configured tag names in poll order, so thousands of polls share them.
   */
  done(tags: readonly string[], units?: readonly (string | undefined)[]): SampleColumns {
    const n = tags.length;
    if (n > this.capacity) throw new RangeError(`${n} tags for ${this.capacity} samples`);
    const cut = n < this.capacity;
    const ownUnits = this.units;
    return SampleColumns.build(
      this.device,
      tags,
      cut ? this.nums.subarray(0, n) : this.nums,
      this.other,
      cut ? this.qualities.subarray(0, n) : this.qualities,
      cut ? this.ts.subarray(0, n) : this.ts,
      units ?? (ownUnits && cut ? ownUnits.slice(0, n) : ownUnits),
      this.reasons && cut ? this.reasons.slice(0, n) : this.reasons,
    );
  }
}

/**
 * A run of positions in one column set: positions `firstPos … firstPos + count - 1` are the
 * column set's samples `from … from + count - 1`.
 */
export interface SampleRun {
  readonly cols: SampleColumns;
  readonly from: number;
  readonly count: number;
  readonly firstPos: number;
}

/**
 * What a journal read hands an output: samples in position order, as runs over column sets
 * (usually one run per poll of one device). Positions increase strictly; they are contiguous
 * within a run. Outputs read it with `deviceRuns` (sample-reader.ts).
 */
export class SampleBatch {
  readonly length: number;

  constructor(readonly runs: readonly SampleRun[]) {
    let n = 0;
    for (const r of runs) n += r.count;
    this.length = n;
  }

  static readonly EMPTY = new SampleBatch([]);

  /** A batch of the given samples (tests, tools and the disk path build it this way). */
  static of(samples: readonly JournaledSample[]): SampleBatch {
    const runs: SampleRun[] = [];
    let start = 0;
    for (let i = 1; i <= samples.length; i++) {
      if (i < samples.length && samples[i]!.pos === samples[i - 1]!.pos + 1) continue;
      runs.push({ cols: SampleColumns.fromSamples(samples.slice(start, i)), from: 0, count: i - start, firstPos: samples[start]!.pos });
      start = i;
    }
    return new SampleBatch(runs);
  }

  /** Position of the last sample; undefined for an empty batch. */
  get lastPos(): number | undefined {
    const r = this.runs[this.runs.length - 1];
    return r === undefined ? undefined : r.firstPos + r.count - 1;
  }

  /** Every sample as an object, in order. */
  toArray(): JournaledSample[] {
    const out = new Array<JournaledSample>(this.length);
    let k = 0;
    for (const r of this.runs) for (let j = 0; j < r.count; j++) out[k++] = r.cols.sample(r.from + j, r.firstPos + j);
    return out;
  }
}
