import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isFloorgateError } from "../../src/core/errors.js";
import { createLogger } from "../../src/core/logger.js";
import type { JournaledSample, Quality, SampleValue } from "../../src/core/sample.js";
import { SampleBatch } from "../../src/core/sample-columns.js";
import type { OutputContext, OutputSession } from "../../src/core/output.js";
import type { InfluxOutputConfig } from "../../src/outputs/influx/config.js";
import { createInfluxOutput, type InfluxOutputOptions } from "../../src/outputs/influx/influx-output.js";
import { NULL_FIELD_SUFFIX } from "../../src/outputs/influx/points.js";
import { startInfluxd, rowsOf, type InfluxServer } from "../helpers/influxdb.js";
import { freePort } from "../helpers/ports.js";
import { outputConformance, type ReceivedSample } from "./output-conformance.js";

/**
 * The InfluxDB 1.x output against Debian's influxd (1.x), started once per describe on free
 * loopback ports: the output conformance suite, then what spec §6 "influx" says lands where, and
 * how refused points are counted.
 */
const log = createLogger({ level: process.env.FLOORGATE_TEST_LOG ?? "silent" });
const ctx = (): OutputContext => ({ signal: new AbortController().signal, log });
const FAST: InfluxOutputOptions = { connectTimeoutMs: 1500, writeTimeoutMs: 1500 };

function cfgFor(url: string, database: string, over: Partial<InfluxOutputConfig> = {}): InfluxOutputConfig {
  return { type: "influx", name: "historian", url, database, maxBatch: 5000, ...over };
}

const collator = new Intl.Collator("en", { numeric: true });

/**
 * Every sample of `device` InfluxDB holds, back from its rows: one per non-null field of a row
 * (`<tag>:null` = true is a sample without a value). InfluxDB orders by time; samples with the same
 * time come back by tag name (it keeps no arrival order within a timestamp).
 */
async function readBack(server: InfluxServer, db: string, device: string): Promise<(ReceivedSample & { gateway: unknown })[]> {
  const rows = rowsOf(await server.query(`SELECT * FROM "${device}"`, db));
  const out: (ReceivedSample & { gateway: unknown; tagOrder: string })[] = [];
  for (const row of rows) {
    for (const [col, v] of Object.entries(row)) {
      if (["time", "gateway", "quality", "unit"].includes(col) || v === null || v === undefined) continue;
      const isNull = col.endsWith(NULL_FIELD_SUFFIX);
      const tag = isNull ? col.slice(0, -NULL_FIELD_SUFFIX.length) : col;
      const s: ReceivedSample & { gateway: unknown; tagOrder: string } = {
        device, tag, value: isNull ? null : (v as SampleValue), quality: row.quality as Quality, ts: row.time as number, gateway: row.gateway, tagOrder: tag,
      };
      if (typeof row.unit === "string") s.unit = row.unit;
      out.push(s);
    }
  }
  out.sort((a, b) => a.ts - b.ts || collator.compare(a.tagOrder, b.tagOrder));
  return out.map(({ tagOrder: _t, ...s }) => s);
}

// ---------------------------------------------------------------------------------------------
outputConformance("influx (InfluxDB 1.x)", async () => {
  const server = await startInfluxd();
  const db = "conformance";
  const deadPort = await freePort();
  return {
    output: () => createInfluxOutput(cfgFor(server.url, db), { id: "gw" }, FAST),
    deadOutput: () => createInfluxOutput(cfgFor(`http://127.0.0.1:${deadPort}`, db), { id: "gw" }, FAST),
    connectTimeoutMs: FAST.connectTimeoutMs!,
    writeTimeoutMs: FAST.writeTimeoutMs!,
    stop: () => server.kill(),
    start: () => server.start(),
    pause: () => server.pause(),
    resume: () => server.resume(),
    received: async (device) => (await readBack(server, db, device)).map(({ gateway: _g, ...s }) => s),
    teardown: () => server.dispose(),
  };
});

// ---------------------------------------------------------------------------------------------
describe("influx output against InfluxDB 1.x", () => {
  let server: InfluxServer;
  const sessions: OutputSession[] = [];
  let pos = 1;
  const open = async (db: string, over: Partial<InfluxOutputConfig> = {}): Promise<OutputSession> => {
    const s = await createInfluxOutput(cfgFor(server.url, db, over), { id: "line3-edge" }, FAST).connect(ctx());
    sessions.push(s);
    return s;
  };
  const batchOf = (samples: Omit<JournaledSample, "pos">[]): SampleBatch => SampleBatch.of(samples.map((s) => ({ ...s, pos: pos++ })));

  beforeAll(async () => { server = await startInfluxd(); });
  afterAll(async () => {
    await Promise.allSettled(sessions.map((s) => s.close()));
    await server?.dispose();
  });

  it("creates the database when missing; points land with fields, tags and ms timestamps as spec §6 says", async () => {
    const before = rowsOf(await server.query("SHOW DATABASES")).map((r) => r.name);
    expect(before).not.toContain("plant");
    const s = await open("plant");
    expect(rowsOf(await server.query("SHOW DATABASES")).map((r) => r.name)).toContain("plant");
    const t0 = Date.UTC(2026, 10, 21, 8, 0, 0, 120);
    const r = await s.write(batchOf([
      { device: "press-1", tag: "spindle_rpm", value: 1234.5, quality: "good", ts: t0, unit: "rpm" },
      { device: "press-1", tag: "part_count", value: 17, quality: "good", ts: t0 },
      { device: "press-1", tag: "door_open", value: true, quality: "uncertain", ts: t0 + 1 },
      { device: "press-1", tag: "state", value: "RUNNING, \"auto\" \\ mode", quality: "good", ts: t0 + 2 },
      { device: "press-1", tag: "temp_c", value: null, quality: "bad", ts: t0 + 3, unit: "deg C", reason: "timeout" },
      { device: "oven-2", tag: "zone1_temp", value: 181.25, quality: "good", ts: t0 + 999, unit: "m/s,=x" },
    ]));
    expect(r).toEqual({ dropped: [] });
    const press = rowsOf(await server.query('SELECT * FROM "press-1" ORDER BY time', "plant"));
    expect(press).toEqual([
      { time: t0, gateway: "line3-edge", quality: "good", unit: null, door_open: null, part_count: 17, spindle_rpm: null, state: null, "temp_c:null": null },
      { time: t0, gateway: "line3-edge", quality: "good", unit: "rpm", door_open: null, part_count: null, spindle_rpm: 1234.5, state: null, "temp_c:null": null },
      { time: t0 + 1, gateway: "line3-edge", quality: "uncertain", unit: null, door_open: true, part_count: null, spindle_rpm: null, state: null, "temp_c:null": null },
      { time: t0 + 2, gateway: "line3-edge", quality: "good", unit: null, door_open: null, part_count: null, spindle_rpm: null, state: "RUNNING, \"auto\" \\ mode", "temp_c:null": null },
      { time: t0 + 3, gateway: "line3-edge", quality: "bad", unit: "deg C", door_open: null, part_count: null, spindle_rpm: null, state: null, "temp_c:null": true },
    ]);
    // Numbers are always floats: an integer reading and a fractional one share the field.
    const keys = rowsOf(await server.query('SHOW FIELD KEYS FROM "press-1"', "plant"));
    expect(Object.fromEntries(keys.map((k) => [k.fieldKey, k.fieldType]))).toEqual({
      door_open: "boolean", part_count: "float", spindle_rpm: "float", state: "string", "temp_c:null": "boolean",
    });
    const r2 = await s.write(batchOf([{ device: "press-1", tag: "part_count", value: 17.5, quality: "good", ts: t0 + 10 }]));
    expect(r2).toEqual({ dropped: [] });
    const oven = rowsOf(await server.query('SELECT * FROM "oven-2"', "plant"));
    expect(oven).toEqual([{ time: t0 + 999, gateway: "line3-edge", quality: "good", unit: "m/s,=x", zone1_temp: 181.25 }]);
    // The spec's Grafana query works as written.
    const mean = rowsOf(await server.query(`SELECT mean("spindle_rpm") FROM "press-1" WHERE quality='good'`, "plant"));
    expect(mean[0]!.mean).toBe(1234.5);
  });

  it("a type conflict in the middle of a batch: the good points are stored, the bad ones counted with the reason, the write resolves", async () => {
    const s = await open("conflict");
    const t0 = Date.UTC(2026, 10, 21, 9);
    await s.write(batchOf([{ device: "agv-17", tag: "battery", value: 80, quality: "good", ts: t0 }]));
    const samples: Omit<JournaledSample, "pos">[] = Array.from({ length: 200 }, (_, i) => ({
      device: "agv-17", tag: "battery", value: i === 97 || i === 98 || i === 150 ? "LOW" : 79 - i / 10, quality: "good" as const, ts: t0 + 1 + i,
    }));
    const r = await s.write(batchOf(samples));
    expect(r.dropped).toHaveLength(1);
    expect(r.dropped[0]).toMatchObject({ count: 3, code: "type_conflict" });
    expect(r.dropped[0]!.reason).toMatch(/field type conflict: input field "battery" on measurement "agv-17" is type string, already exists as type float/);
    const rows = rowsOf(await server.query('SELECT "battery" FROM "agv-17"', "conflict"));
    expect(rows).toHaveLength(1 + 197);
    expect(rows.map((row) => row.time)).toEqual([t0, ...samples.map((x, i) => (typeof x.value === "number" ? t0 + 1 + i : null)).filter((t) => t !== null)]);
    // The session goes on.
    expect(await s.write(batchOf([{ device: "agv-17", tag: "battery", value: 60, quality: "good", ts: t0 + 1000 }]))).toEqual({ dropped: [] });
  });

  it("points beyond the retention policy are counted as beyond_retention, the others stored, each exactly", async () => {
    await server.query('CREATE DATABASE "short"');
    await server.query('CREATE RETENTION POLICY "hour" ON "short" DURATION 1h REPLICATION 1 SHARD DURATION 1h');
    const s = await open("short", { retentionPolicy: "hour" });
    const now = Date.now();
    const old = now - 3 * 3_600_000;
    const samples: Omit<JournaledSample, "pos">[] = [
      ...Array.from({ length: 5 }, (_, i) => ({ device: "old", tag: "v", value: i, quality: "good" as const, ts: old + i })),
      ...Array.from({ length: 7 }, (_, i) => ({ device: "new", tag: "v", value: i, quality: "good" as const, ts: now - 1000 + i })),
      // the same field as a string near the cutoff: InfluxDB's answer for the mixed write would hide one of the two reasons
      { device: "new", tag: "v", value: "x", quality: "good" as const, ts: now - 500 },
    ];
    await s.write(batchOf([{ device: "new", tag: "v", value: 1, quality: "good", ts: now - 2000 }]));
    const r = await s.write(batchOf(samples));
    const by = Object.fromEntries(r.dropped.map((d) => [d.code, d.count]));
    expect(by).toEqual({ beyond_retention: 5, type_conflict: 1 });
    expect(rowsOf(await server.query('SELECT count("v") FROM "hour"."new"', "short"))[0]!.count).toBe(8);
    expect(rowsOf(await server.query('SELECT count("v") FROM "hour"."old"', "short"))).toEqual([]);
  });

  it("connect refuses a retention policy the database does not have, for good (OUTPUT_REJECTED)", async () => {
    const err = await createInfluxOutput(cfgFor(server.url, "plant", { retentionPolicy: "nope" }), { id: "g" }, FAST).connect(ctx()).then(() => null, (e: unknown) => e);
    expect(isFloorgateError(err, "OUTPUT_REJECTED"), String(err)).toBe(true);
    expect(String((err as Error).message)).toMatch(/no retention policy "nope".*has: autogen/);
  });

  it("a database dropped under a running session: the write rejects (session lost), the next session creates it again", async () => {
    const s = await open("dropped");
    await server.query('DROP DATABASE "dropped"');
    const err = await s.write(batchOf([{ device: "d", tag: "v", value: 1, quality: "good", ts: Date.UTC(2026, 0, 1) }])).then(() => null, (e: unknown) => e);
    expect(isFloorgateError(err, "OUTPUT_UNAVAILABLE"), String(err)).toBe(true);
    expect(String((err as Error).message)).toMatch(/404.*database not found/);
    await expect(s.lost).resolves.toBeInstanceOf(Error);
    const s2 = await open("dropped");
    expect(await s2.write(batchOf([{ device: "d", tag: "v", value: 1, quality: "good", ts: Date.UTC(2026, 0, 1) }]))).toEqual({ dropped: [] });
  });
});
