import { describe, expect, it } from "vitest";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfigText, type LoadResult } from "../../src/config/load.js";
import type { IngestConfig } from "../../src/config/types.js";
import type { Sample } from "../../src/core/sample.js";
import type { SampleColumns } from "../../src/core/sample-columns.js";
import { createIngest, type IngestSink } from "../../src/ingest/ingest.js";
import { counterValue, fakeClock, newMetrics } from "./helpers.js";

/** Counts what reaches the store, per device: the runtime's per-device state grows from here. */
class CountingSink implements IngestSink {
  readonly devices = new Set<string>();
  stored: Sample[] = [];
  push(device: string, cols: SampleColumns): Promise<void> {
    this.devices.add(device);
    for (const s of cols.toSamples()) this.stored.push(s);
    return Promise.resolve();
  }
}

const cfg = (over: Partial<IngestConfig> = {}): IngestConfig => ({
  http: true, maxPayloadBytes: 1 << 20, ratePerDevice: 200, maxDevices: 20_000,
  devices: [{ id: "sensor-*", token: "glob-token" }, { id: "agv-17", token: "agv-token" }], ...over,
});
const body = (v: unknown) => Buffer.from(JSON.stringify(v));
const messages = (n: number, from = 0) => Array.from({ length: n }, (_, i) => ({ msgId: `m${from + i}`, values: { v: from + i } }));

describe("ingest.maxDevices: per-device state is bounded", () => {
  it("100,000 ids under one glob token: exactly maxDevices are admitted, the rest get 429 too_many_devices, counted", async () => {
    const m = newMetrics();
    const sink = new CountingSink();
    const ing = createIngest(cfg(), sink, m);
    const codes = new Map<number, number>();
    let reasonSeen = "";
    for (let i = 0; i < 100_000; i++) {
      const r = await ing.handle(`sensor-${i}`, "glob-token", body({ values: { v: i } }));
      codes.set(r.status, (codes.get(r.status) ?? 0) + 1);
      if (r.status === 429 && reasonSeen === "") {
        reasonSeen = (r.body as { error: string }).error;
        expect(r.reason).toBe("too_many_devices");
        expect(r.retryAfterSec).toBeGreaterThanOrEqual(1);
      }
    }
    expect(Object.fromEntries(codes)).toEqual({ 202: 19_999, 429: 80_001 });
    expect(reasonSeen).toContain("device limit reached");
    expect(reasonSeen).toContain("20000");
    expect(await counterValue(m.ingestRejects, { reason: "too_many_devices" })).toBe(80_001);
    // The exact id in the config keeps its reserved place however many glob ids came first.
    expect((await ing.handle("agv-17", "agv-token", body({ values: { v: 1 } }))).status).toBe(202);
    expect(ing.stats()).toEqual({ devices: 20_000, rateBuckets: 20_000 });
    expect(ing.devices()).toHaveLength(20_000);
    expect(sink.devices.size).toBe(20_000);
    expect((await m.ingestDevices.get()).values[0]!.value).toBe(20_000);
    // Admitted devices keep pushing; refused ids stay refused (a place frees up only at a restart).
    expect((await ing.handle("sensor-5", "glob-token", body({ values: { v: 1 } }))).status).toBe(202);
    expect((await ing.handle("sensor-99999", "glob-token", body({ values: { v: 1 } }))).status).toBe(429);
    // Nothing per device was made for a refused id: no metric series with its name.
    const dup = await m.ingestDuplicates.get();
    expect(dup.values.length).toBe(0);
  });

  it("bad tokens and bad ids never take a place", async () => {
    const ing = createIngest(cfg({ maxDevices: 3 }), new CountingSink(), newMetrics());
    for (let i = 0; i < 100; i++) {
      expect((await ing.handle(`sensor-${i}`, "wrong", body({ values: { v: 1 } }))).status).toBe(401);
      expect((await ing.handle(`bad id ${i}`, "glob-token", body({ values: { v: 1 } }))).status).toBe(400);
    }
    expect(ing.stats().devices).toBe(0);
    expect((await ing.handle("sensor-a", "glob-token", body({ values: { v: 1 } }))).status).toBe(202);
    expect((await ing.handle("sensor-b", "glob-token", body({ values: { v: 1 } }))).status).toBe(202);
    // the third place is agv-17's
    expect((await ing.handle("sensor-c", "glob-token", body({ values: { v: 1 } }))).status).toBe(429);
    expect((await ing.handle("agv-17", "agv-token", body({ values: { v: 1 } }))).status).toBe(202);
  });
});

describe("ratePerDevice counts messages, a body all or nothing", () => {
  it("a body of 1,000 messages at ratePerDevice 200 is refused whole (429), nothing stored and nothing charged", async () => {
    const c = fakeClock();
    const m = newMetrics();
    const sink = new CountingSink();
    const ing = createIngest(cfg(), sink, m, c.now);
    const big = await ing.handle("sensor-1", "glob-token", body(messages(1000)));
    expect(big.status).toBe(429);
    expect(big.reason).toBe("rate_limited");
    expect((big.body as { error: string }).error).toContain("send at most 200 messages per body");
    expect(big.retryAfterSec).toBeGreaterThanOrEqual(1);
    expect(sink.stored).toHaveLength(0);
    // The refused body took no tokens: the device's full second of 200 messages is still there.
    const ok = await ing.handle("sensor-1", "glob-token", body(messages(200, 1000)));
    expect(ok.status).toBe(202);
    expect(sink.stored).toHaveLength(200);
    // …and now it is spent, one message at a time too.
    expect((await ing.handle("sensor-1", "glob-token", body(messages(1, 2000)))).status).toBe(429);
    expect(await counterValue(m.ingestRejects, { reason: "rate_limited" })).toBe(2);
    expect(ing.device("sensor-1")!.counters.rateLimited).toBe(2);
  });

  it("150 then 100 messages within a second: the second body is refused whole, then fits after the refill", async () => {
    const c = fakeClock();
    const sink = new CountingSink();
    const ing = createIngest(cfg(), sink, newMetrics(), c.now);
    expect((await ing.handle("sensor-1", "glob-token", body(messages(150)))).status).toBe(202);
    const second = await ing.handle("sensor-1", "glob-token", body(messages(100, 150)));
    expect(second.status).toBe(429);
    expect((second.body as { error: string }).error).toContain("100 messages");
    // 50 tokens left, 100 needed at 200/s: a quarter second → Retry-After rounds up to 1 s
    expect(second.retryAfterSec).toBe(1);
    expect(sink.stored).toHaveLength(150);
    c.advance(250);
    expect((await ing.handle("sensor-1", "glob-token", body(messages(100, 150)))).status).toBe(202);
    expect(sink.stored.map((s) => s.value)).toEqual(Array.from({ length: 250 }, (_, i) => i));
  });

  it("a refused body (400, 413) costs one message, so refusals cannot flood either", async () => {
    const c = fakeClock();
    const ing = createIngest(cfg({ ratePerDevice: 3, maxPayloadBytes: 1024 }), new CountingSink(), newMetrics(), c.now);
    expect((await ing.handle("sensor-1", "glob-token", body({ nope: 1 }))).status).toBe(400);
    expect((await ing.handle("sensor-1", "glob-token", Buffer.alloc(2000, 32))).status).toBe(413);
    expect((await ing.handle("sensor-1", "glob-token", body({ nope: 1 }))).status).toBe(400);
    const r = await ing.handle("sensor-1", "glob-token", body({ values: { v: 1 } }));
    expect(r.status).toBe(429);
  });
});

describe("config: ingest.maxDevices", () => {
  const G = "gateway: { id: edge-1, group: plant }\n";
  const parse = (text: string): LoadResult => parseConfigText(G + text, join(tmpdir(), "floorgate.yaml"), {});
  const problems = (r: LoadResult) => (r.ok ? [] : r.problems.map((p) => `${p.path}: ${p.message}`));

  it("defaults to 20,000 and takes a whole number ≥ 1", () => {
    const d = parse("ingest:\n  devices: []\n");
    expect(d.ok && d.config.ingest.maxDevices).toBe(20_000);
    const set = parse("ingest:\n  maxDevices: 500\n");
    expect(set.ok && set.config.ingest.maxDevices).toBe(500);
    for (const bad of ["0", "-1", "1.5", "many", "2000000"]) {
      expect(problems(parse(`ingest:\n  maxDevices: ${bad}\n`)).some((p) => p.startsWith("ingest.maxDevices")), bad).toBe(true);
    }
  });

  it("must leave a place for every exact id in ingest.devices", () => {
    const text = (max: number) => `ingest:\n  maxDevices: ${max}\n  devices:\n    - { id: a-1, token: t1 }\n    - { id: a-2, token: t2 }\n    - { id: "s-*", token: t3 }\n`;
    expect(problems(parse(text(1)))).toEqual([
      "ingest.maxDevices: 1 is less than the 2 exact device ids in ingest.devices; raise it to at least 2",
    ]);
    expect(parse(text(2)).ok).toBe(true);
  });
});
