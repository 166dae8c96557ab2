import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { JournaledSample, Quality } from "../../src/core/sample.js";
import { ColumnsBuilder, qualityCode, SampleBatch, SampleColumns, type SampleRun } from "../../src/core/sample-columns.js";
import { deviceRuns, splitByDevice, type DeviceRun, type ReadSample } from "../../src/core/sample-reader.js";

const sampleArb = fc.record(
  {
    device: fc.constantFrom("press-1", "oven-2", "agv-17"),
    tag: fc.oneof(fc.constantFrom("r0", "r1", "temp"), fc.string({ minLength: 1, maxLength: 8 })),
    value: fc.oneof(fc.double(), fc.integer(), fc.boolean(), fc.string({ maxLength: 6 }), fc.constant(null)),
    quality: fc.constantFrom<Quality>("good", "uncertain", "bad"),
    ts: fc.oneof(fc.integer({ min: 0, max: 4_102_444_800_000 }), fc.double({ noNaN: true })),
    unit: fc.constantFrom("rpm", "°C", ""),
    reason: fc.string({ maxLength: 10 }),
  },
  { requiredKeys: ["device", "tag", "value", "quality", "ts"] },
);

/** Samples with increasing positions, with gaps (a gap starts a new run in SampleBatch.of). */
const journaledArb: fc.Arbitrary<JournaledSample[]> = fc
  .array(fc.tuple(sampleArb, fc.nat(2)), { maxLength: 60 })
  .map((xs) => {
    let pos = 100;
    return xs.map(([s, gap]) => ({ ...s, pos: (pos += 1 + (gap === 2 ? 5 : 0)) }));
  });

/** What iterating the reader gives for a sample: its fields without the device. */
function readForm(s: JournaledSample): ReadSample {
  const { device: _d, ...rest } = s;
  return rest;
}

/** Every sample of every run, by iteration, with its run's device. */
function readAll(runs: readonly DeviceRun[]): JournaledSample[] {
  const out: JournaledSample[] = [];
  for (const run of runs) for (const s of run) out.push({ device: run.device, ...s });
  return out;
}

/** Every sample of every run, by the index accessors. */
function readByIndex(runs: readonly DeviceRun[]): JournaledSample[] {
  const out: JournaledSample[] = [];
  for (const run of runs) {
    for (let k = 0; k < run.count; k++) {
      const s: JournaledSample = { device: run.device, tag: run.tag(k), value: run.value(k), quality: run.quality(k), ts: run.ts(k), pos: run.pos(k) };
      const unit = run.unit(k);
      if (unit !== undefined) s.unit = unit;
      const reason = run.reason(k);
      if (reason !== undefined) s.reason = reason;
      out.push(s);
    }
  }
  return out;
}

/** Runs over one column set of all `samples`, cut at the given offsets: runs that start inside columns. */
function cutRuns(samples: readonly JournaledSample[], cuts: readonly number[]): SampleRun[] {
  const cols = SampleColumns.fromSamples(samples);
  const at = [...new Set(cuts.map((c) => c % (samples.length + 1)))].sort((a, b) => a - b);
  const edges = [0, ...at.filter((c) => c > 0 && c < samples.length), samples.length];
  const runs: SampleRun[] = [];
  for (let i = 0; i + 1 < edges.length; i++) {
    const from = edges[i]!;
    runs.push({ cols, from, count: edges[i + 1]! - from, firstPos: 1 + from });
  }
  return runs;
}

describe("sample reader", () => {
  it("reads back exactly the samples a batch was built from, by iteration and by index", () => {
    fc.assert(
      fc.property(journaledArb, (samples) => {
        const runs = deviceRuns(SampleBatch.of(samples));
        expect(readAll(runs)).toEqual(samples);
        expect(readByIndex(runs)).toEqual(samples);
        expect(runs.flatMap((r) => Array.from({ length: r.count }, (_, k) => r.sample(k)))).toEqual(samples);
      }),
      { numRuns: 300 },
    );
  });

  it("gives runs of one device at consecutive positions, split at every change of device", () => {
    fc.assert(
      fc.property(fc.array(sampleArb, { minLength: 1, maxLength: 60 }), fc.array(fc.nat(), { maxLength: 5 }), (raw, cuts) => {
        const samples = raw.map((s, i): JournaledSample => ({ ...s, pos: 1 + i }));
        const sampleRuns = cutRuns(samples, cuts);
        const runs = deviceRuns(sampleRuns);
        expect(readAll(runs)).toEqual(samples);
        for (const run of runs) {
          expect(run.count).toBeGreaterThan(0);
          for (const s of run) expect(samples[s.pos - 1]!.device).toBe(run.device);
        }
        // maximal within each piece of columns: a run ends where the device changes or the piece ends
        const ends = new Set(sampleRuns.map((r) => r.firstPos + r.count - 1));
        for (let i = 0; i + 1 < runs.length; i++) {
          const last = runs[i]!.firstPos + runs[i]!.count - 1;
          expect(ends.has(last) || runs[i + 1]!.device !== runs[i]!.device).toBe(true);
          expect(runs[i + 1]!.firstPos).toBe(last + 1);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("reads columns a driver built in place, units and reasons included", () => {
    fc.assert(
      fc.property(fc.array(sampleArb, { minLength: 1, maxLength: 40 }), (raw) => {
        const b = new ColumnsBuilder("press-1", raw.length + 3);
        raw.forEach((s, i) => {
          b.set(i, s.value, qualityCode(s.quality), s.ts);
          if (s.unit !== undefined) b.setUnit(i, s.unit);
          if (s.reason !== undefined) b.setReason(i, s.reason);
        });
        const cols = b.done(raw.map((s) => s.tag));
        const [run, ...rest] = deviceRuns([{ cols, from: 0, count: raw.length, firstPos: 7 }]);
        expect(rest).toEqual([]);
        expect(run!.device).toBe("press-1");
        expect([...run!]).toEqual(raw.map((s, i) => readForm({ ...s, device: "press-1", pos: 7 + i })));
      }),
      { numRuns: 200 },
    );
  });

  it("reads columns not journaled yet as one run per device, positions from 0", () => {
    fc.assert(
      fc.property(fc.array(sampleArb, { maxLength: 40 }), (raw) => {
        const runs = deviceRuns(SampleColumns.fromSamples(raw));
        expect(readAll(runs)).toEqual(raw.map((s, i) => ({ ...s, pos: i })));
        expect(runs.length).toBe(raw.filter((s, i) => i === 0 || raw[i - 1]!.device !== s.device).length);
      }),
      { numRuns: 200 },
    );
  });

  it("leaves out empty runs and hands a one-device run over as it is", () => {
    const cols = SampleColumns.fromSamples([{ device: "d", tag: "t", value: 1, quality: "good", ts: 0 }]);
    expect(deviceRuns([{ cols, from: 0, count: 0, firstPos: 5 }])).toEqual([]);
    expect(deviceRuns(SampleBatch.EMPTY)).toEqual([]);
    const run: SampleRun = { cols, from: 0, count: 1, firstPos: 5 };
    const pieces: [string, SampleRun][] = [];
    splitByDevice(run, (d, p) => pieces.push([d, p]));
    expect(pieces).toEqual([["d", run]]);
    expect(pieces[0]![1]).toBe(run);
  });
});
