/**
 * Data change notifications to the journal, as columns. A Publish response brings up to
 * thousands of notifications at once (every monitored item, and each item's queued values); they
 * are decoded straight into column buffers, without a Sample object per value, and handed to the
 * journal as one SampleColumns per turn of the event loop.
 *
 * Why: at 100,000 notifications/s a Sample object per value, the array around it, and the
 * journal's copy of those objects into columns were a sixth of the gateway's CPU on top of
 * node-opcua's own decoding (bench/opcua.ts).
 */
import type { DataValue } from "node-opcua";
import { ColumnsBuilder, type SampleColumns } from "../../src/core/sample-columns.js";
import type { SampleValue } from "../../src/core/sample.js";
import { decodeInto, type Decoded } from "./values.js";

/** Starting room; the buffers grow by doubling and keep their size for the next batches. */
const INITIAL = 1024;
/** A batch is handed over at this many values even within one turn (bounds one SampleColumns). */
export const MAX_BATCH = 65_536;

export class NotificationColumns {
  private n = 0;
  /**
   * The previous batch's tag list, and whether this batch repeats it so far. A subscription whose
   * items all change at the same rate sends them in the same order every publish: handing the
   * same list again lets the journal, the live view and the normalizer recognise it by identity
   * (as they do a poller's fixed tag list) and spares a list per batch that the journal's cache
   * would keep for seconds.
   */
  private last: readonly string[] = [];
  private same = true;
  /** this batch's own tag list, once it differs from `last` */
  private tags: string[] | undefined;
  private nums = new Float64Array(INITIAL);
  private ts = new Float64Array(INITIAL);
  private qualities = new Uint8Array(INITIAL);
  private other: Map<number, SampleValue> | undefined;
  private units: (string | undefined)[] | undefined;
  private reasons: (string | undefined)[] | undefined;
  private scheduled = false;
  private readonly d: Decoded = { value: null, quality: "good", ts: 0, reason: undefined };

  /**
   * @param device the device every value belongs to
   * @param hand receives each batch, in order; called from `flush` or a setImmediate after `add`
   */
  constructor(private readonly device: string, private readonly hand: (cols: SampleColumns) => void) {}

  /** Adds the sample of one DataValue (decoded as `sampleOf` does); handed over on the next turn of the loop. */
  add(tag: string, dv: DataValue, now: number, unit: string | undefined): void {
    const d = this.d;
    decodeInto(d, dv, now);
    let i = this.n;
    if (i === this.nums.length) this.grow();
    if (i === MAX_BATCH) { this.flush(); i = 0; }
    if (this.same) {
      if (this.last[i] !== tag) {
        this.same = false;
        this.tags = this.last.slice(0, i);
        this.tags.push(tag);
      }
    } else this.tags!.push(tag);
    const v = d.value;
    if (typeof v === "number") this.nums[i] = v;
    else (this.other ??= new Map()).set(i, v);
    this.ts[i] = d.ts;
    this.qualities[i] = d.quality === "good" ? 0 : d.quality === "uncertain" ? 1 : 2;
    if (unit !== undefined) (this.units ??= [])[i] = unit;
    if (d.reason !== undefined) (this.reasons ??= [])[i] = d.reason;
    this.n = i + 1;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => { this.scheduled = false; this.flush(); });
    }
  }

  /** Hands over what was added so far (nothing when empty). The scheduled flush then finds nothing. */
  flush(): void {
    const n = this.n;
    if (n === 0) return;
    const b = new ColumnsBuilder(this.device, n);
    b.nums.set(this.nums.subarray(0, n));
    b.ts.set(this.ts.subarray(0, n));
    b.qualities.set(this.qualities.subarray(0, n));
    const other = this.other;
    if (other) for (const [i, v] of other) b.set(i, v, this.qualities[i]!, this.ts[i]!);
    const reasons = this.reasons;
    if (reasons) reasons.forEach((r, i) => { if (r !== undefined) b.setReason(i, r); });
    const units = this.units;
    if (units) units.length = n; // sparse up to n: `done` keeps it as the per-sample unit list
    const tags = this.same ? (n === this.last.length ? this.last : this.last.slice(0, n)) : this.tags!;
    this.last = tags;
    this.same = true;
    this.tags = undefined;
    this.other = undefined;
    this.units = undefined;
    this.reasons = undefined;
    this.n = 0;
    this.hand(b.done(tags, units));
  }

  private grow(): void {
    const size = Math.min(2 * this.nums.length, MAX_BATCH);
    if (size === this.nums.length) return;
    const nums = new Float64Array(size); nums.set(this.nums); this.nums = nums;
    const ts = new Float64Array(size); ts.set(this.ts); this.ts = ts;
    const q = new Uint8Array(size); q.set(this.qualities); this.qualities = q;
  }
}
