import fc from "fast-check";
import { describe, it, expect } from "vitest";
import { ColumnsBuilder, SampleColumns } from "../../src/core/sample-columns.js";
import { Normalizer, applyScale, unscale, type TagRules } from "../../src/runtime/pipeline/normalize.js";
import type { Sample } from "../../src/core/sample.js";

const rules = (m: Record<string, Partial<TagRules>>): Map<string, TagRules> =>
  new Map(Object.entries(m).map(([k, r]) => [k, { scale: 1, offset: 0, ...r } as TagRules]));

const sample = (tag: string, value: Sample["value"], extra: Partial<Sample> = {}): Sample =>
  ({ device: "d1", tag, value, quality: "good", ts: 1_700_000_000_000, ...extra });

describe("Normalizer pass-through", () => {
  it("hands on the very same object when nothing changes (scale 1, offset 0, no deadband)", () => {
    const n = new Normalizer(rules({ a: {}, b: { unit: "mm" } }));
    const a = sample("a", 5);
    const b = sample("b", 7, { unit: "mm" });
    const out = n.apply([a, b]);
    expect(out).toHaveLength(2);
    expect(out[0]).toBe(a);
    expect(out[1]).toBe(b);
  });

  it("copies (never mutates) when scaling or a configured unit changes the sample", () => {
    const n = new Normalizer(rules({ t: { scale: 0.1, offset: 2, unit: "°C" }, u: { unit: "bar" } }));
    const t = sample("t", 234);
    const u = sample("u", 1);
    const out = n.apply([t, u]);
    expect(out[0]).toEqual({ device: "d1", tag: "t", value: 25.4, quality: "good", ts: t.ts, unit: "°C" });
    expect(out[1]).toEqual({ ...u, unit: "bar" });
    expect(t).toEqual(sample("t", 234));
    expect(u.unit).toBeUndefined();
  });

  it("passes samples of tags without rules unchanged", () => {
    const n = new Normalizer(new Map());
    const s = sample("x", "text");
    expect(n.apply([s])[0]).toBe(s);
  });

  it("keeps bad samples' reasons and units", () => {
    const n = new Normalizer(rules({ t: { scale: 2, unit: "V" } }));
    const out = n.apply([sample("t", null, { quality: "bad", reason: "timeout: x" })]);
    expect(out[0]).toMatchObject({ value: null, quality: "bad", reason: "timeout: x", unit: "V" });
  });
});

describe("Normalizer deadband", () => {
  it("suppresses good numeric changes below the deadband, in engineering units", () => {
    const n = new Normalizer(rules({ p: { scale: 0.5, deadband: 1 } }));
    const pass = (raw: number): boolean => n.apply([sample("p", raw)]).length === 1;
    expect(pass(10)).toBe(true); // first reading: 5
    expect(pass(11)).toBe(false); // 5.5: change 0.5 < 1
    expect(pass(12)).toBe(true); // 6: change 1 from the last PASSED value (5)
    expect(pass(13)).toBe(false); // 6.5
  });

  it("always passes a quality change and the first good value after a bad one", () => {
    const n = new Normalizer(rules({ p: { deadband: 10 } }));
    expect(n.apply([sample("p", 1)])).toHaveLength(1);
    expect(n.apply([sample("p", null, { quality: "bad", reason: "r" })])).toHaveLength(1);
    expect(n.apply([sample("p", 1)])).toHaveLength(1);
    expect(n.apply([sample("p", 2)])).toHaveLength(0);
    expect(n.apply([sample("p", 2, { quality: "uncertain" })])).toHaveLength(1);
  });

  it("does not filter tags without a deadband even when values repeat", () => {
    const n = new Normalizer(rules({ p: {} }));
    for (let i = 0; i < 3; i++) expect(n.apply([sample("p", 1)])).toHaveLength(1);
  });
});

describe("scaling helpers", () => {
  it("applyScale trims binary noise and unscale inverts it", () => {
    const r = { scale: 0.1, offset: 0 } as TagRules;
    expect(applyScale(234, r)).toBe(23.4);
    expect(unscale(23.4, r)).toBe(234);
    expect(applyScale(true, r)).toBe(true);
  });
});

describe("Normalizer.forTags", () => {
  const tags = [{ name: "t", scale: 0.5, offset: 0, deadband: 1 }];
  const s = (device: string, value: number): Sample => ({ device, tag: "t", value, quality: "good", ts: 1 });

  it("applies the list's rules and keeps deadband memory per device", () => {
    const a = Normalizer.forTags(tags);
    const b = Normalizer.forTags(tags);
    expect(a.apply([s("a", 10)]).map((x) => x.value)).toEqual([5]);
    // a's last value does not suppress b's first reading, nor b's a's change
    expect(b.apply([s("b", 10)]).map((x) => x.value)).toEqual([5]);
    expect(a.apply([s("a", 11)])).toEqual([]); // 5.5 is within the deadband of 5
    expect(b.apply([s("b", 14)]).map((x) => x.value)).toEqual([7]);
  });
});

describe("Normalizer pass-through list", () => {
  it("hands on the very array when no rule scales, bands or adds a unit", () => {
    const n = Normalizer.forTags([{ name: "a", scale: 1, offset: 0 }, { name: "b", scale: 1, offset: 0 }]);
    const batch = [sample("a", 1), sample("b", 2), sample("unknown", 3)];
    expect(n.apply(batch)).toBe(batch);
  });

  it("does not pass through when one tag of the list has a unit", () => {
    const n = Normalizer.forTags([{ name: "a", scale: 1, offset: 0 }, { name: "b", scale: 1, offset: 0, unit: "°C" }]);
    const out = n.apply([sample("a", 1), sample("b", 2)]);
    expect(out.map((s) => s.unit)).toEqual([undefined, "°C"]);
  });
});

describe("Normalizer.applyColumns", () => {
  const TAGS = ["t0", "t1", "t2", "t3", "t4"];
  const ruleArb = fc.record({
    scale: fc.oneof(fc.constant(1), fc.constantFrom(0.1, 2, -0.5, 1e-3)),
    offset: fc.oneof(fc.constant(0), fc.constantFrom(-40, 2.5)),
    deadband: fc.option(fc.constantFrom(0.5, 1, 10), { nil: undefined }),
    unit: fc.option(fc.constantFrom("°C", "bar"), { nil: undefined }),
  });
  const sampleArb = (tag: string): fc.Arbitrary<Sample> =>
    fc.record({
      value: fc.oneof(fc.integer({ min: -100, max: 100 }), fc.double({ noNaN: true, min: -1e6, max: 1e6 }), fc.constant(null), fc.constant("on"), fc.boolean()),
      quality: fc.constantFrom<Sample["quality"]>("good", "good", "good", "uncertain", "bad"),
      ts: fc.integer({ min: 0, max: 2e12 }),
      unit: fc.option(fc.constant("mm"), { nil: undefined, freq: 4 }),
      reason: fc.option(fc.constant("modbus exception 2"), { nil: undefined, freq: 4 }),
    }).map((r) => {
      const s: Sample = { device: "dev", tag, value: r.value, quality: r.quality, ts: r.ts };
      if (r.unit !== undefined) s.unit = r.unit;
      if (r.reason !== undefined) s.reason = r.reason;
      return s;
    });
  const pollArb = fc.subarray(TAGS, { minLength: 1 }).chain((tags) => fc.tuple(...tags.map(sampleArb)));

  it("gives sample for sample what apply gives, deadband memory included, over sequences of polls", () => {
    fc.assert(
      fc.property(fc.array(ruleArb, { minLength: 5, maxLength: 5 }), fc.boolean(), fc.array(pollArb, { minLength: 1, maxLength: 12 }), (rs, sparse, polls) => {
        // Some tags may have no rule at all.
        const m = new Map<string, TagRules>(TAGS.flatMap((t, i) => (sparse && i % 2 ? [] : [[t, rs[i]!] as const])));
        const byObjects = new Normalizer(m);
        const byColumns = new Normalizer(m);
        for (const poll of polls) {
          const want = byObjects.apply(poll);
          const got = byColumns.applyColumns(SampleColumns.fromSamples(poll)).toSamples();
          expect(got).toEqual(want);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("keeps a poller's shared tag list when nothing is suppressed and never changes the input columns", () => {
    const n = new Normalizer(rules({ a: { scale: 0.1, unit: "°C" }, b: { deadband: 5 } }));
    const tags = ["a", "b"];
    const poll = (a: number, bv: number): SampleColumns => {
      const w = new ColumnsBuilder("d1", 2);
      w.set(0, a, 0, 1);
      w.set(1, bv, 0, 1);
      return w.done(tags);
    };
    const first = poll(234, 10);
    const out = n.applyColumns(first);
    expect(out.tags).toBe(tags);
    expect(out.toSamples().map((s) => [s.tag, s.value, s.unit])).toEqual([["a", 23.4, "°C"], ["b", 10, undefined]]);
    expect(first.nums[0]).toBe(234);
    const second = n.applyColumns(poll(235, 12)); // b moved 2 < 5: suppressed
    expect(second.tags).toEqual(["a"]);
    expect(second.toSamples()[0]!.value).toBe(23.5);
    expect(second.units).toEqual(["°C"]);
  });
});
