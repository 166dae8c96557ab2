import { describe, expect, it } from "vitest";
import { InfluxDB, type IPoint } from "influx";
import { SampleBatch, SampleColumns } from "../../src/core/sample-columns.js";
import type { JournaledSample } from "../../src/core/sample.js";
import { buildPoints, quoteFieldString, type TagSetCache } from "../../src/outputs/influx/points.js";
import { dropReason, errorText, parseRefusal } from "../../src/outputs/influx/refusal.js";
import { groupByWindow, parseGoDuration, windowStart } from "../../src/outputs/influx/shard-groups.js";

/** The line protocol the `influx` package makes of `points` (no I/O: its pool is replaced). */
function lineProtocol(points: IPoint[]): string {
  const influx = new InfluxDB({ host: "127.0.0.1", database: "d" });
  let body = "";
  (influx as unknown as { _pool: { discard(o: { body: string }): Promise<void> } })._pool = {
    discard: (o) => { body = o.body; return Promise.resolve(); },
  };
  void influx.writePoints(points, { precision: "ms" });
  return body;
}

const t0 = Date.UTC(2026, 10, 21, 8, 0, 0, 120);

describe("influx points (spec §6 influx)", () => {
  it("one line per sample: measurement = device, gateway/quality/unit tags, a float/boolean/string field, ms time", () => {
    const samples: JournaledSample[] = [
      { device: "press-1", tag: "spindle_rpm", value: 1234.5, quality: "good", ts: t0, unit: "rpm", pos: 1 },
      { device: "press-1", tag: "part_count", value: 17, quality: "good", ts: t0, pos: 2 },
      { device: "press-1", tag: "door_open", value: false, quality: "uncertain", ts: t0 + 1, pos: 3 },
      { device: "press-1", tag: "state", value: 'say "hi" \\ there', quality: "good", ts: t0 + 2, pos: 4 },
      { device: "oven-2", tag: "temp", value: null, quality: "bad", ts: t0 + 3.7, unit: "deg C,=\nx", reason: "timeout", pos: 5 },
      { device: "oven-2", tag: "nan", value: Number.NaN, quality: "bad", ts: 0, unit: "", pos: 6 },
      { device: "oven-2", tag: "big", value: 1e21, quality: "good", ts: t0, pos: 7 },
    ];
    const { points, ts } = buildPoints(SampleBatch.of(samples), "line3-edge", new Map());
    expect(ts).toEqual([t0, t0, t0 + 1, t0 + 2, t0 + 3, 0, t0]);
    expect(lineProtocol(points).split("\n")).toEqual([
      `press-1,gateway=line3-edge,quality=good,unit=rpm spindle_rpm=1234.5 ${t0}`,
      `press-1,gateway=line3-edge,quality=good part_count=17 ${t0}`,
      `press-1,gateway=line3-edge,quality=uncertain door_open=false ${t0 + 1}`,
      `press-1,gateway=line3-edge,quality=good state="say \\"hi\\" \\\\ there" ${t0 + 2}`,
      `oven-2,gateway=line3-edge,quality=bad,unit=deg\\ C\\,\\=\\ x temp:null=true ${t0 + 3}`,
      "oven-2,gateway=line3-edge,quality=bad nan:null=true 0",
      `oven-2,gateway=line3-edge,quality=good big=1e+21 ${t0}`,
    ]);
  });

  it("a string with \\' keeps its backslash (the package's own escaper would double it)", () => {
    const { points } = buildPoints(SampleBatch.of([{ device: "d", tag: "s", value: "it\\'s", quality: "good", ts: 5, pos: 1 }]), "g", new Map());
    expect(lineProtocol(points)).toBe(`d,gateway=g,quality=good s="it\\\\'s" 5`);
    expect(quoteFieldString('a"b\\c')).toBe('"a\\"b\\\\c"');
  });

  it("reads runs that start inside shared columns and columns of several devices, in journal order", () => {
    const cols = SampleColumns.fromSamples([
      { device: "a", tag: "x", value: 1, quality: "good", ts: 10 },
      { device: "b", tag: "y", value: 2, quality: "good", ts: 11 },
      { device: "a", tag: "z", value: 3, quality: "good", ts: 12 },
    ]);
    const batch = new SampleBatch([{ cols, from: 1, count: 2, firstPos: 41 }]);
    const { points } = buildPoints(batch, "g", new Map());
    expect(points.map((p) => [p.measurement, Object.keys(p.fields!)[0], p.timestamp])).toEqual([["b", "y", 11], ["a", "z", 12]]);
  });

  it("shares one frozen tag set per quality and unit", () => {
    const cache: TagSetCache = new Map();
    const s = (i: number, unit?: string): JournaledSample => ({ device: "d", tag: `t${i}`, value: i, quality: "good", ts: i, pos: i + 1, ...(unit ? { unit } : {}) });
    const { points } = buildPoints(SampleBatch.of([s(0, "rpm"), s(1, "rpm"), s(2), s(3)]), "g", cache);
    expect(points[0]!.tags).toBe(points[1]!.tags);
    expect(points[2]!.tags).toBe(points[3]!.tags);
    expect(points[0]!.tags).not.toBe(points[2]!.tags);
    expect(Object.isFrozen(points[0]!.tags)).toBe(true);
    expect([...cache.get("good")!.keys()]).toEqual(["rpm", ""]);
  });
});

describe("InfluxDB 1.x refusals", () => {
  it("reads a partial write: count, reason class, InfluxDB's words", () => {
    const body = '{"error":"partial write: field type conflict: input field \\"x\\" on measurement \\"m\\" is type string, already exists as type float dropped=2"}\n';
    expect(parseRefusal(400, body)).toEqual({
      partial: true, dropped: 2, reason: "type_conflict",
      text: 'partial write: field type conflict: input field "x" on measurement "m" is type string, already exists as type float dropped=2',
    });
    expect(parseRefusal(400, '{"error":"partial write: points beyond retention policy dropped=1"}')).toMatchObject({ partial: true, dropped: 1, reason: "beyond_retention" });
    expect(parseRefusal(400, `{"error":"partial write: unable to parse 'm x== 5001': invalid boolean dropped=0"}`)).toMatchObject({ partial: true, dropped: 0, reason: "refused" });
    expect(parseRefusal(400, '{"error":"partial write: max-values-per-tag limit exceeded (100000/100000): measurement=\\"m\\" tag=\\"t\\" value=\\"v\\" dropped=4"}')).toMatchObject({ partial: true, dropped: 4, reason: "series_limit" });
  });

  it("reads a whole refusal and a too-large body", () => {
    expect(parseRefusal(400, `{"error":"unable to parse 'm x=NaN 5000': invalid number"}`)).toEqual({ partial: false, dropped: "all", reason: "refused", text: "unable to parse 'm x=NaN 5000': invalid number" });
    expect(parseRefusal(413, "")).toMatchObject({ partial: false, dropped: "all", reason: "refused", text: "request entity too large" });
    expect(errorText("<html>bad gateway</html>")).toBe("<html>bad gateway</html>");
    expect(dropReason("max series per database exceeded: x")).toBe("series_limit");
  });
});

describe("shard group windows", () => {
  it("parses InfluxDB's Go durations", () => {
    expect(parseGoDuration("168h0m0s")).toBe(7 * 86_400_000);
    expect(parseGoDuration("1h0m0s")).toBe(3_600_000);
    expect(parseGoDuration("30m0s")).toBe(1_800_000);
    expect(parseGoDuration("0s")).toBe(0);
    expect(parseGoDuration("1h30m")).toBe(5_400_000);
    expect(parseGoDuration("forever")).toBeUndefined();
  });

  it("places windows as Go's Truncate does: days at midnight UTC, weeks on Mondays", () => {
    const day = 86_400_000;
    expect(windowStart(Date.UTC(2026, 10, 21, 8), day)).toBe(Date.UTC(2026, 10, 21));
    // 2026-11-21 is a Saturday: its 7-day shard group started on Monday 2026-11-16.
    expect(windowStart(Date.UTC(2026, 10, 21, 8), 7 * day)).toBe(Date.UTC(2026, 10, 16));
    expect(windowStart(Date.UTC(2026, 10, 16), 7 * day)).toBe(Date.UTC(2026, 10, 16));
    expect(windowStart(-1, day)).toBe(-day);
  });

  it("groups by window only when a write spans several, keeping order inside each", () => {
    const h = 3_600_000;
    expect(groupByWindow([1, 2, 3], h)).toBeUndefined();
    expect(groupByWindow([1, 2], undefined)).toBeUndefined();
    expect(groupByWindow([h - 1, h, 5, h + 7, 2 * h], h)).toEqual([[0, 2], [1, 3], [4]]);
  });
});
