import { describe, it, expect } from "vitest";
import type { Sample } from "../../src/core/sample.js";
import { ColumnsBuilder, SampleBatch, SampleColumns, type SampleRun } from "../../src/core/sample-columns.js";
import { RecentFrames } from "../../src/journal/recent-frames.js";

const mk = (device: string, tag: string, value: Sample["value"], extra: Partial<Sample> = {}): Sample =>
  ({ device, tag, value, quality: "good", ts: 1_700_000_000_123, ...extra });

describe("SampleColumns", () => {
  it("gives back each sample as given, with its position, for mixed devices, values and optional fields", () => {
    const input: Sample[] = [
      mk("a", "t1", 1.5, { unit: "bar" }),
      mk("a", "t2", true),
      mk("b", "t3", "text", { quality: "bad", reason: "modbus exception 2", ts: 5 }),
      mk("a", "t4", null, { quality: "uncertain" }),
      mk("a", "t5", -0),
    ];
    const cols = SampleColumns.fromSamples(input);
    expect(cols.length).toBe(5);
    const out = input.map((_, i) => cols.sample(i, 10 + i));
    expect(out).toEqual(input.map((s, i) => ({ ...s, pos: 10 + i })));
    expect(Object.is(out[4]!.value, -0)).toBe(true);
    expect("unit" in out[1]!).toBe(false);
    expect("reason" in out[0]!).toBe(false);
    expect(cols.ts[2]).toBe(5);
    expect(cols.deviceAt(2)).toBe("b");
    expect(cols.toSamples()).toEqual(input);
  });

  it("does not see later changes to the caller's objects", () => {
    const s = mk("a", "t", 1);
    const cols = SampleColumns.fromSamples([s]);
    s.value = 2;
    expect(cols.sample(0, 1).value).toBe(1);
  });
});

describe("RecentFrames", () => {
  const frame = (n: number, tagBase: number): SampleColumns =>
    SampleColumns.fromSamples(Array.from({ length: n }, (_, i) => mk("d", `t${tagBase + i}`, tagBase + i)));

  it("reads across frames from any covered position, up to max, and evicts the oldest over budget", () => {
    const c = new RecentFrames(10);
    c.add(1, frame(4, 1));
    c.add(5, frame(4, 5));
    c.add(9, frame(4, 9)); // 12 > 10: frame 1..4 goes
    expect(c.covers(4)).toBe(false);
    expect(c.covers(5)).toBe(true);
    expect(c.covers(12)).toBe(true);
    expect(c.covers(13)).toBe(false);
    const runs: SampleRun[] = [];
    expect(c.readRuns(7, 4, runs)).toBe(4);
    // The cached column sets themselves, not copies: two runs, one per frame.
    expect(runs.map((r) => [r.firstPos, r.from, r.count])).toEqual([[7, 2, 2], [9, 0, 2]]);
    const out = new SampleBatch(runs).toArray();
    expect(out.map((s) => [s.pos, s.tag, s.value])).toEqual([[7, "t7", 7], [8, "t8", 8], [9, "t9", 9], [10, "t10", 10]]);
    c.dropBefore(9);
    expect(c.covers(8)).toBe(false);
    expect(c.covers(9)).toBe(true);
  });

  it("restarts on a gap and holds nothing with a zero budget", () => {
    const c = new RecentFrames(100);
    c.add(1, frame(2, 1));
    c.add(10, frame(2, 10));
    expect(c.covers(1)).toBe(false);
    expect(c.covers(11)).toBe(true);
    const off = new RecentFrames(0);
    off.add(1, frame(2, 1));
    expect(off.covers(1)).toBe(false);
  });
});

describe("SampleBatch", () => {
  it("of() splits runs where positions are not contiguous and gives back every sample in order", () => {
    const samples = [1, 2, 3, 7, 8, 20].map((pos, i) => ({ ...mk(i < 4 ? "a" : "b", `t${i}`, i % 2 ? `s${i}` : i), pos }));
    const b = SampleBatch.of(samples);
    expect(b.length).toBe(6);
    expect(b.lastPos).toBe(20);
    expect(b.runs.map((r) => [r.firstPos, r.count])).toEqual([[1, 3], [7, 2], [20, 1]]);
    expect(b.toArray()).toEqual(samples);
    expect(SampleBatch.EMPTY.lastPos).toBeUndefined();
  });

  it("columns a driver fills in place keep the given tag list, carry every field and are cut to the tags named", () => {
    const tags = ["a", "b", "c"];
    const w = new ColumnsBuilder("dev", 4);
    w.set(0, 1.5, 0, 100);
    w.set(1, "on", 1, 101);
    w.set(2, null, 2, 102);
    w.setUnit(0, "bar");
    w.setReason(2, "modbus exception 2");
    w.set(3, 99, 0, 103); // beyond the tags named at done(): cut off
    const cols = w.done(tags);
    expect(cols.tags).toBe(tags);
    expect(cols.length).toBe(3);
    expect(cols.nums.length).toBe(3);
    expect(cols.toSamples()).toEqual([
      { device: "dev", tag: "a", value: 1.5, quality: "good", ts: 100, unit: "bar" },
      { device: "dev", tag: "b", value: "on", quality: "uncertain", ts: 101 },
      { device: "dev", tag: "c", value: null, quality: "bad", ts: 102, reason: "modbus exception 2" },
    ]);
  });

  it("column sets carved from one slab stay independent", () => {
    const many = Array.from({ length: 500 }, (_, k) => SampleColumns.fromSamples([mk("d", "t", k, { ts: k })]));
    many.forEach((c, k) => {
      expect(c.nums[0]).toBe(k);
      expect(c.ts[0]).toBe(k);
    });
  });
});

describe("ColumnsBuilder", () => {
  it("uses a shared unit list as given, in place of per-sample units", () => {
    const tags = ["a", "b"];
    const units = ["bar", undefined];
    const w = new ColumnsBuilder("d", 2);
    w.set(0, 1, 0, 5);
    w.set(1, 2, 0, 5);
    const cols = w.done(tags, units);
    expect(cols.units).toBe(units);
    expect(cols.toSamples()).toEqual([
      { device: "d", tag: "a", value: 1, quality: "good", ts: 5, unit: "bar" },
      { device: "d", tag: "b", value: 2, quality: "good", ts: 5 },
    ]);
    expect(() => new ColumnsBuilder("d", 1).done(tags)).toThrow(RangeError);
  });
});
