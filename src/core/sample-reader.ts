import type { JournaledSample, Quality, SampleValue } from "./sample.js";
import { QUALITY_CODES, SampleColumns, type SampleBatch, type SampleRun } from "./sample-columns.js";

/**
 * Reading samples out of the journal's batches without touching their columns: for outputs and
 * other consumers that do not need the typed-array fast path (which stays inside core, the
 * journal and the MQTT json encoder). A batch reads as runs of one device at consecutive
 * positions; a run reads sample by sample, by index (no allocation) or by iteration (one object
 * per sample). Reading never changes the batch: the journal hands the same columns to every
 * output.
 *
 *   for (const run of deviceRuns(batch)) {
 *     for (const s of run) send(run.device, s.tag, s.value, s.quality, s.ts, s.unit);
 *   }
 */

/** One sample of a `DeviceRun`: the journaled sample without its device (the run's); `unit` and `reason` are absent where it has none. */
export type ReadSample = Omit<JournaledSample, "device">;

/**
 * Samples of one device at consecutive journal positions `firstPos … firstPos + count - 1`,
 * read by index `k` in `0 … count - 1`. Valid as long as the batch it came from.
 */
export class DeviceRun implements Iterable<ReadSample> {
  constructor(
    private readonly cols: SampleColumns,
    private readonly from: number,
    readonly count: number,
    readonly firstPos: number,
    readonly device: string,
  ) {}

  tag(k: number): string {
    return this.cols.tags[this.from + k]!;
  }

  value(k: number): SampleValue {
    return this.cols.valueAt(this.from + k);
  }

  quality(k: number): Quality {
    return QUALITY_CODES[this.cols.qualities[this.from + k]!]!;
  }

  ts(k: number): number {
    return this.cols.ts[this.from + k]!;
  }

  unit(k: number): string | undefined {
    return this.cols.unitAt(this.from + k);
  }

  reason(k: number): string | undefined {
    return this.cols.reasonAt(this.from + k);
  }

  pos(k: number): number {
    return this.firstPos + k;
  }

  /** Sample `k` with its device, as the journal's `read` gives it. */
  sample(k: number): JournaledSample {
    return this.cols.sample(this.from + k, this.firstPos + k);
  }

  *[Symbol.iterator](): Iterator<ReadSample> {
    for (let k = 0; k < this.count; k++) {
      const s: ReadSample = { tag: this.tag(k), value: this.value(k), quality: this.quality(k), ts: this.ts(k), pos: this.firstPos + k };
      const unit = this.unit(k);
      if (unit !== undefined) s.unit = unit;
      const reason = this.reason(k);
      if (reason !== undefined) s.reason = reason;
      yield s;
    }
  }
}

/**
 * The runs of `input` in journal order, one per stretch of one device: a run over columns of
 * several devices (a push batch never is one; a journal frame written by a tool may be) is split
 * at each change of device. Empty runs are left out. Columns not journaled yet (what a driver
 * emits) read as one run from position 0: `pos` is then the sample's index in them.
 */
export function deviceRuns(input: SampleBatch | readonly SampleRun[] | SampleColumns): DeviceRun[] {
  const runs = input instanceof SampleColumns ? [{ cols: input, from: 0, count: input.length, firstPos: 0 }] : "runs" in input ? input.runs : input;
  const out: DeviceRun[] = [];
  for (const run of runs) {
    splitByDevice(run, (device, piece) => out.push(new DeviceRun(piece.cols, piece.from, piece.count, piece.firstPos, device)));
  }
  return out;
}

/**
 * Calls `each` with every stretch of one device in `run`, in order: `run` itself when its columns
 * have one device, else one piece per change of device. Nothing for an empty run.
 */
export function splitByDevice(run: SampleRun, each: (device: string, piece: SampleRun) => void): void {
  if (run.count <= 0) return;
  const d = run.cols.device;
  if (typeof d === "string") {
    each(d, run);
    return;
  }
  let a = run.from;
  const end = run.from + run.count;
  for (let i = a + 1; i <= end; i++) {
    if (i < end && d[i] === d[a]) continue;
    each(d[a]!, i - a === run.count ? run : { cols: run.cols, from: a, count: i - a, firstPos: run.firstPos + (a - run.from) });
    a = i;
  }
}
