import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Quality, Sample } from "../../src/core/sample.js";
import { ColumnsBuilder, SampleColumns } from "../../src/core/sample-columns.js";
import { ColumnsPacker, ColumnsUnpacker, type PackedFlush } from "../../src/runtime/threads/thread-columns.js";

const sampleArb = (device: fc.Arbitrary<string>) => fc.record({
  device,
  tag: fc.string({ minLength: 1, maxLength: 8 }),
  value: fc.oneof(fc.double(), fc.integer(), fc.boolean(), fc.string(), fc.constant(null)),
  quality: fc.constantFrom<Quality>("good", "uncertain", "bad"),
  ts: fc.integer({ min: 0, max: 4_102_444_800_000 }),
  unit: fc.option(fc.string({ maxLength: 4 }), { nil: undefined }),
  reason: fc.option(fc.string({ maxLength: 6 }), { nil: undefined }),
}).map((s) => {
  const out: Sample = { device: s.device, tag: s.tag, value: s.value, quality: s.quality, ts: s.ts };
  if (s.unit !== undefined) out.unit = s.unit;
  if (s.reason !== undefined) out.reason = s.reason;
  return out;
});

/** What crosses the thread boundary: structured clone, with the buffer moved, as postMessage does. */
function cross(f: PackedFlush): PackedFlush {
  return structuredClone(f, { transfer: [f.buf] });
}

describe("ColumnsPacker / ColumnsUnpacker", () => {
  it("give back every column set, sample for sample, across flushes of any size", () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(sampleArb(fc.constantFrom("a", "b")), { maxLength: 20 }), { minLength: 1, maxLength: 30 }),
        fc.array(fc.boolean(), { minLength: 30, maxLength: 30 }),
        (sets, flushAfter) => {
          const packer = new ColumnsPacker();
          const unpacker = new ColumnsUnpacker();
          const got: { id: number; seq: number; samples: Sample[] }[] = [];
          const drain = (): void => {
            unpacker.unpack(cross(packer.flush()), (e, cols) => got.push({ id: e.id, seq: e.seq, samples: cols.toSamples() }));
          };
          sets.forEach((samples, i) => {
            packer.add(i % 3, i + 1, SampleColumns.fromSamples(samples));
            if (flushAfter[i]) drain();
          });
          drain();
          expect(got.map((g) => g.seq)).toEqual(sets.map((_, i) => i + 1));
          got.forEach((g, i) => {
            expect(g.id).toBe(i % 3);
            expect(g.samples).toEqual(SampleColumns.fromSamples(sets[i]!).toSamples());
          });
        },
      ),
    );
  });

  it("sends a shared tag list in full at most twice, then by number, and keeps it shared on arrival", () => {
    const tags = Array.from({ length: 100 }, (_, i) => `r${i}`);
    const units = tags.map((_, i) => (i % 2 === 0 ? "bar" : undefined));
    const poll = (v: number): SampleColumns => {
      const b = new ColumnsBuilder("press-1", 100);
      for (let i = 0; i < 100; i++) { b.nums[i] = v + i; b.qualities[i] = 0; b.ts[i] = 1000 + v; }
      return b.done(tags, units);
    };
    const packer = new ColumnsPacker();
    const unpacker = new ColumnsUnpacker();
    const arrived: SampleColumns[] = [];
    let inlineLists = 0;
    for (let round = 0; round < 5; round++) {
      for (let k = 0; k < 4; k++) packer.add(0, round * 4 + k, poll(round * 4 + k));
      const f = cross(packer.flush());
      inlineLists += f.entries.filter((e) => typeof e.tags !== "number").length;
      unpacker.unpack(f, (_e, cols) => arrived.push(cols));
    }
    expect(inlineLists).toBe(1); // the first poll; from the second on, a number
    expect(arrived).toHaveLength(20);
    const numbered = arrived.slice(1);
    for (const c of numbered) expect(c.tags).toBe(numbered[0]!.tags);
    for (const c of numbered) expect(c.units).toBe(numbered[0]!.units);
    expect(arrived[19]!.toSamples()[7]).toEqual({ device: "press-1", tag: "r7", value: 26, quality: "good", ts: 1019 });
    expect(arrived[19]!.unitAt(4)).toBe("bar");
  });

  it("copies only each column set's own numbers, never the slab they were carved from", () => {
    const packer = new ColumnsPacker();
    packer.add(0, 1, SampleColumns.fromSamples([{ device: "d", tag: "t", value: 1, quality: "good", ts: 5 }]));
    expect(packer.flush().buf.byteLength).toBe(17);
  });
});
