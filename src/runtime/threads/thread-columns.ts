import type { SampleValue } from "../../core/sample.js";
import { SampleColumns } from "../../core/sample-columns.js";

/**
 * Column sets crossing from a driver thread to the main thread, many polls per message.
 *
 * Why not post the SampleColumns themselves: structured clone copies the whole ArrayBuffer under a
 * typed-array view, and a poll's columns are views into a 256 KiB slab. So the numbers of every
 * column set in one flush are copied into one fresh buffer, which is transferred (not copied).
 * Tag-name and unit lists are per plan and shared by thousands of polls: a list is sent in full
 * the first time and by a small number once it has been seen twice, so lists made per poll never
 * pile up on the receiving side.
 */

/** One column set in a packed flush. */
export interface PackedEntry {
  /** the driver's slot on its thread */
  id: number;
  /** emit sequence number on that thread, echoed back once the samples are durable */
  seq: number;
  device: string | readonly string[];
  n: number;
  /** a list sent inline, or the number of one defined earlier (in this flush or a previous one) */
  tags: readonly string[] | number;
  units?: readonly (string | undefined)[] | number;
  /** non-numeric values by index */
  other?: [number, SampleValue][];
  reasons?: (string | undefined)[];
}

/** One flush: entries, their numbers in `buf` (nums, then ts, then qualities), list definitions. */
export interface PackedFlush {
  entries: PackedEntry[];
  buf: ArrayBuffer;
  /** new list numbers, defined before any entry uses them */
  lists: [number, readonly (string | undefined)[]][];
}

/** The sending side: packs column sets and numbers shared lists. One per driver thread. */
export class ColumnsPacker {
  private entries: PackedEntry[] = [];
  private cols: SampleColumns[] = [];
  private total = 0;
  private lists: [number, readonly (string | undefined)[]][] = [];
  /** lists seen once (sent inline) or numbered (value > 0) */
  private readonly seen = new WeakMap<object, number>();
  private nextList = 1;

  get pending(): number {
    return this.entries.length;
  }

  add(id: number, seq: number, cols: SampleColumns): void {
    const e: PackedEntry = { id, seq, device: cols.device, n: cols.length, tags: this.list(cols.tags) };
    if (cols.units !== undefined) e.units = this.list(cols.units);
    if (cols.other !== undefined) e.other = [...cols.other];
    if (cols.reasons !== undefined) e.reasons = [...cols.reasons];
    this.entries.push(e);
    this.cols.push(cols);
    this.total += cols.length;
  }

  /** Everything added since the last flush, packed; `buf` is meant to be transferred. */
  flush(): PackedFlush {
    const n = this.total;
    const buf = new ArrayBuffer(17 * n);
    const nums = new Float64Array(buf, 0, n);
    const ts = new Float64Array(buf, 8 * n, n);
    const q = new Uint8Array(buf, 16 * n, n);
    let at = 0;
    for (const c of this.cols) {
      nums.set(c.nums.subarray(0, c.length), at);
      ts.set(c.ts.subarray(0, c.length), at);
      q.set(c.qualities.subarray(0, c.length), at);
      at += c.length;
    }
    const out: PackedFlush = { entries: this.entries, buf, lists: this.lists };
    this.entries = [];
    this.cols = [];
    this.lists = [];
    this.total = 0;
    return out;
  }

  private list<T extends readonly (string | undefined)[]>(l: T): T | number {
    const known = this.seen.get(l);
    if (known === undefined) {
      this.seen.set(l, 0);
      return l;
    }
    if (known > 0) return known;
    const ref = this.nextList++;
    this.seen.set(l, ref);
    this.lists.push([ref, l]);
    return ref;
  }
}

/** The receiving side: turns packed flushes back into column sets. One per driver thread. */
export class ColumnsUnpacker {
  private readonly lists = new Map<number, readonly (string | undefined)[]>();

  /** Calls `each` per entry, in order, with columns over the flush's buffer (no copy). */
  unpack(f: PackedFlush, each: (e: PackedEntry, cols: SampleColumns) => void): void {
    for (const [ref, l] of f.lists) this.lists.set(ref, l);
    let total = 0;
    for (const e of f.entries) total += e.n;
    const nums = new Float64Array(f.buf, 0, total);
    const ts = new Float64Array(f.buf, 8 * total, total);
    const q = new Uint8Array(f.buf, 16 * total, total);
    let at = 0;
    for (const e of f.entries) {
      const tags = this.resolve(e.tags) as readonly string[];
      const units = e.units === undefined ? undefined : this.resolve(e.units);
      const cols = SampleColumns.build(
        e.device, tags,
        nums.subarray(at, at + e.n),
        e.other === undefined ? undefined : new Map(e.other),
        q.subarray(at, at + e.n),
        ts.subarray(at, at + e.n),
        units, e.reasons,
      );
      at += e.n;
      each(e, cols);
    }
  }

  private resolve(l: readonly (string | undefined)[] | number): readonly (string | undefined)[] {
    if (typeof l !== "number") return l;
    const got = this.lists.get(l);
    if (got === undefined) throw new Error(`driver thread: list ${l} used before it was defined`);
    return got;
  }
}
