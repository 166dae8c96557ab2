import { describe, it, expect } from "vitest";
import type { Sample } from "../../src/core/sample.js";
import { FrameColumns, RecentFrames } from "../../src/journal/recent-frames.js";

const mk = (device: string, tag: string, value: Sample["value"], extra: Partial<Sample> = {}): Sample =>
  ({ device, tag, value, quality: "good", ts: 1_700_000_000_123, ...extra });

describe("FrameColumns", () => {
  it("gives back each sample as given, with its position, for mixed devices, values and optional fields", () => {
    const input: Sample[] = [
      mk("a", "t1", 1.5, { unit: "bar" }),
      mk("a", "t2", true),
      mk("b", "t3", "text", { quality: "bad", reason: "modbus exception 2", ts: 5 }),
      mk("a", "t4", null, { quality: "uncertain" }),
      mk("a", "t5", -0),
    ];
    const cols = new FrameColumns(input);
    expect(cols.length).toBe(5);
    const out = input.map((_, i) => cols.sample(i, 10 + i));
    expect(out).toEqual(input.map((s, i) => ({ ...s, pos: 10 + i })));
    expect(Object.is(out[4]!.value, -0)).toBe(true);
    expect("unit" in out[1]!).toBe(false);
    expect("reason" in out[0]!).toBe(false);
    expect(cols.tsAt(2)).toBe(5);
  });

  it("does not see later changes to the caller's objects", () => {
    const s = mk("a", "t", 1);
    const cols = new FrameColumns([s]);
    s.value = 2;
    expect(cols.sample(0, 1).value).toBe(1);
  });
});

describe("RecentFrames", () => {
  const frame = (n: number, tagBase: number): FrameColumns =>
    new FrameColumns(Array.from({ length: n }, (_, i) => mk("d", `t${tagBase + i}`, tagBase + i)));

  it("reads across frames from any covered position, up to max, and evicts the oldest over budget", () => {
    const c = new RecentFrames(10);
    c.add(1, frame(4, 1));
    c.add(5, frame(4, 5));
    c.add(9, frame(4, 9)); // 12 > 10: frame 1..4 goes
    expect(c.covers(4)).toBe(false);
    expect(c.covers(5)).toBe(true);
    expect(c.covers(12)).toBe(true);
    expect(c.covers(13)).toBe(false);
    const out: ReturnType<FrameColumns["sample"]>[] = [];
    c.read(7, 4, out);
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
