import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { IngestConfig } from "../../src/config/types.js";
import { FloorgateError } from "../../src/core/errors.js";
import type { Sample, SampleValue } from "../../src/core/sample.js";
import type { SampleColumns } from "../../src/core/sample-columns.js";
import { createLogger } from "../../src/core/logger.js";
import { createIngest, type IngestSink } from "../../src/ingest/ingest.js";
import { counterValue, fakeClock, newMetrics } from "./helpers.js";

/** Stores pushes in memory; each push can be held and then resolved or failed by the test. */
class HoldSink implements IngestSink {
  stored: Sample[] = [];
  hold = false;
  failWith: unknown = undefined;
  held: { samples: Sample[]; release(): void; fail(e: unknown): void }[] = [];
  push(_device: string, cols: SampleColumns): Promise<void> {
    const samples = cols.toSamples();
    if (this.failWith !== undefined) return Promise.reject(this.failWith);
    if (!this.hold) { this.stored.push(...samples); return Promise.resolve(); }
    return new Promise((resolve, reject) => {
      this.held.push({ samples, release: () => { this.stored.push(...samples); resolve(); }, fail: reject });
    });
  }
}

const cfg = (over: Partial<IngestConfig> = {}): IngestConfig => ({
  http: true, maxPayloadBytes: 4096, ratePerDevice: 1000, maxDevices: 20_000,
  devices: [{ id: "agv-*", token: "t" }, { id: "other", token: "o" }], ...over,
});
const body = (v: unknown) => Buffer.from(JSON.stringify(v));
const tick = () => new Promise((r) => setImmediate(r));

describe("ingest (transport-independent)", () => {
  it("202 with samples stamped from the message or gateway time; skew over 5 min replaced and counted", async () => {
    const c = fakeClock();
    const sink = new HoldSink();
    const m = newMetrics();
    const ing = createIngest(cfg(), sink, m, c.now);
    const now = c.now();
    const r = await ing.handle("agv-1", "t", body([
      { values: { a: 1 } },
      { ts: new Date(now - 299_000).toISOString(), values: { b: true } },
      { ts: new Date(now + 301_000).toISOString(), values: { c: "x" } },
      { ts: "1999-01-01T00:00:00Z", values: { d: null } },
    ]));
    expect(r).toEqual({ status: 202, body: { status: "accepted", messages: 4, samples: 4, duplicates: 0 } });
    expect(sink.stored).toEqual([
      { device: "agv-1", tag: "a", value: 1, quality: "good", ts: now },
      { device: "agv-1", tag: "b", value: true, quality: "good", ts: now - 299_000 },
      { device: "agv-1", tag: "c", value: "x", quality: "good", ts: now },
      { device: "agv-1", tag: "d", value: null, quality: "good", ts: now },
    ]);
    expect(await counterValue(m.ingestClockSkew, { device: "agv-1" })).toBe(2);
    const d = ing.device("agv-1")!;
    expect(d.counters).toMatchObject({ pushes: 1, messages: 4, samples: 4, clockSkew: 2 });
    expect(d.lastSampleTs).toBe(new Date(now).toISOString());
  });

  it("auth, id and size refusals are counted by reason", async () => {
    const m = newMetrics();
    const ing = createIngest(cfg({ maxPayloadBytes: 10 }), new HoldSink(), m);
    expect((await ing.handle("agv-1", undefined, body({}))).status).toBe(401);
    expect((await ing.handle("agv-1", "zzz", body({}))).status).toBe(401);
    expect((await ing.handle("agv-1", "o", body({}))).status).toBe(403);
    expect((await ing.handle("bad id", "t", body({}))).status).toBe(400);
    const big = await ing.handle("agv-1", "t", Buffer.alloc(11, 32));
    expect(big).toMatchObject({ status: 413, reason: "too_large" });
    expect(await counterValue(m.ingestRejects, { reason: "unauthorized" })).toBe(2);
    expect(await counterValue(m.ingestRejects, { reason: "forbidden" })).toBe(1);
    expect(await counterValue(m.ingestRejects, { reason: "bad_request" })).toBe(1);
    expect(await counterValue(m.ingestRejects, { reason: "too_large" })).toBe(1);
    // only authenticated devices are listed
    expect(ing.devices().map((d) => d.id)).toEqual(["agv-1"]);
  });

  it("400 lists problems and stores nothing of the body", async () => {
    const sink = new HoldSink();
    const ing = createIngest(cfg(), sink, newMetrics());
    const r = await ing.handle("agv-1", "t", body([{ values: { ok: 1 } }, { values: { x_m: [] } }]));
    expect(r.status).toBe(400);
    expect(r.body).toEqual({ error: "invalid push body", problems: [{ path: "[1].values.x_m", message: "expected number, boolean, string or null, found array" }] });
    expect(sink.stored).toEqual([]);
  });

  it("429 with Retry-After once over the rate", async () => {
    const c = fakeClock();
    const m = newMetrics();
    const ing = createIngest(cfg({ ratePerDevice: 3 }), new HoldSink(), m, c.now);
    const codes = [];
    for (let i = 0; i < 5; i++) codes.push((await ing.handle("agv-1", "t", body({ values: { a: i } }))).status);
    expect(codes).toEqual([202, 202, 202, 429, 429]);
    const r = await ing.handle("agv-1", "t", body({ values: { a: 1 } }));
    expect(r.retryAfterSec).toBeGreaterThanOrEqual(1);
    expect(await counterValue(m.ingestRejects, { reason: "rate_limited" })).toBe(3);
    c.advance(1000);
    expect((await ing.handle("agv-1", "t", body({ values: { a: 1 } }))).status).toBe(202);
    expect(ing.device("agv-1")!.counters.rateLimited).toBe(3);
  });

  it("503 on JOURNAL_FULL and on any other sink failure; the msgId is not remembered", async () => {
    const sink = new HoldSink();
    const m = newMetrics();
    const ing = createIngest(cfg(), sink, m);
    sink.failWith = new FloorgateError("JOURNAL_FULL", "full");
    const r1 = await ing.handle("agv-1", "t", body({ msgId: "m1", values: { a: 1 } }));
    expect(r1).toMatchObject({ status: 503, body: { error: "journal full: retry later" }, reason: "journal_full" });
    sink.failWith = new Error("EIO: disk on fire /secret/path");
    const r2 = await ing.handle("agv-1", "t", body({ msgId: "m1", values: { a: 1 } }));
    expect(r2.status).toBe(503);
    expect(JSON.stringify(r2.body)).not.toContain("secret");
    sink.failWith = undefined;
    const r3 = await ing.handle("agv-1", "t", body({ msgId: "m1", values: { a: 1 } }));
    expect(r3.body).toMatchObject({ samples: 1, duplicates: 0 });
    expect(await counterValue(m.ingestRejects, { reason: "journal_full" })).toBe(1);
    expect(await counterValue(m.ingestRejects, { reason: "journal_error" })).toBe(1);
  });

  it("a repeated msgId is acknowledged and stored once (also within one array)", async () => {
    const sink = new HoldSink();
    const m = newMetrics();
    const ing = createIngest(cfg(), sink, m);
    const a = await ing.handle("agv-1", "t", body([{ msgId: "x", values: { a: 1 } }, { msgId: "x", values: { a: 2 } }]));
    expect(a.body).toMatchObject({ samples: 1, duplicates: 1 });
    const b = await ing.handle("agv-1", "t", body({ msgId: "x", values: { a: 3 } }));
    expect(b).toMatchObject({ status: 202, body: { samples: 0, duplicates: 1 } });
    // same msgId from another device is its own message
    expect((await ing.handle("agv-2", "t", body({ msgId: "x", values: { a: 4 } }))).body).toMatchObject({ samples: 1 });
    expect(sink.stored.map((s) => s.value)).toEqual([1, 4]);
    expect(await counterValue(m.ingestDuplicates, { device: "agv-1" })).toBe(2);
  });

  it("msgIds forgotten early by the dedup cap are counted one by one and logged once", async () => {
    const lines: { msg?: string; count?: number }[] = [];
    const log = createLogger({ level: "warn", destination: { write: (l: string) => { lines.push(JSON.parse(l) as { msg?: string }); } } });
    const m = newMetrics();
    const ing = createIngest(cfg({ dedupMaxEntries: 3 }), new HoldSink(), m, fakeClock().now, { log });
    for (let i = 0; i < 7; i++) expect((await ing.handle(`agv-${i % 2}`, "t", body({ msgId: `m-${i}`, values: { a: i } }))).status).toBe(202);
    // 3 held, then all 3 (one generation) forgotten at the 4th and at the 7th
    expect(await counterValue(m.ingestDedupEvictions, { reason: "total_cap" })).toBe(6);
    const warned = lines.filter((l) => l.msg?.includes("dedup memory cap"));
    expect(warned).toHaveLength(1);
  });

  it("concurrent duplicates in flight are stored once, and only answered after the first is durable", async () => {
    const sink = new HoldSink();
    sink.hold = true;
    const ing = createIngest(cfg(), sink, newMetrics());
    let secondDone = false;
    const first = ing.handle("agv-1", "t", body({ msgId: "dup", values: { a: 1 } }));
    const second = ing.handle("agv-1", "t", body({ msgId: "dup", values: { a: 1 } })).then((r) => { secondDone = true; return r; });
    for (let i = 0; i < 5; i++) await tick();
    expect(sink.held).toHaveLength(1);
    expect(secondDone).toBe(false);
    sink.held[0]!.release();
    expect((await first).body).toMatchObject({ samples: 1, duplicates: 0 });
    expect((await second).body).toMatchObject({ samples: 0, duplicates: 1 });
    expect(sink.stored).toHaveLength(1);
  });

  it("when the first attempt fails, the waiting duplicate stores the message itself", async () => {
    const sink = new HoldSink();
    sink.hold = true;
    const ing = createIngest(cfg(), sink, newMetrics());
    const first = ing.handle("agv-1", "t", body({ msgId: "m", values: { a: 1 } }));
    const second = ing.handle("agv-1", "t", body({ msgId: "m", values: { a: 1 } }));
    for (let i = 0; i < 5; i++) await tick();
    sink.held[0]!.fail(new FloorgateError("JOURNAL_IO", "io"));
    expect((await first).status).toBe(503);
    for (let i = 0; i < 5; i++) await tick();
    expect(sink.held).toHaveLength(2);
    sink.held[1]!.release();
    expect((await second)).toMatchObject({ status: 202, body: { samples: 1, duplicates: 0 } });
    expect(sink.stored).toHaveLength(1);
  });

  it("crossed in-flight msgIds ([x,y] and [y,x]) do not deadlock", async () => {
    const sink = new HoldSink();
    sink.hold = true;
    const ing = createIngest(cfg(), sink, newMetrics());
    const p1 = ing.handle("agv-1", "t", body([{ msgId: "x", values: { a: 1 } }, { msgId: "y", values: { b: 1 } }]));
    const p2 = ing.handle("agv-1", "t", body([{ msgId: "y", values: { b: 1 } }, { msgId: "x", values: { a: 1 } }]));
    for (let i = 0; i < 5; i++) await tick();
    expect(sink.held).toHaveLength(1); // p1 claimed both, p2 only waits
    sink.held[0]!.release();
    expect((await p1).body).toMatchObject({ samples: 2, duplicates: 0 });
    expect((await p2).body).toMatchObject({ samples: 0, duplicates: 2 });
  });

  it("a sink that throws synchronously is a 503, not a crash", async () => {
    const sink: IngestSink = { push() { throw new Error("sync boom"); } };
    const ing = createIngest(cfg(), sink, newMetrics());
    expect((await ing.handle("agv-1", "t", body({ values: { a: 1 } }))).status).toBe(503);
  });

  it("property: samples built as columns are one per value in body order, stamped and deduplicated as before, whether the sink reads them as samples or keeps the columns", async () => {
    /** a sink that keeps the columns, as the gateway's does */
    class ColumnsSink implements IngestSink {
      sets: SampleColumns[] = [];
      msgIds: string[] = [];
      push(_device: string, cols: SampleColumns, msgIds: readonly string[]): Promise<void> {
        this.sets.push(cols);
        this.msgIds.push(...msgIds);
        return Promise.resolve();
      }
    }
    const value = fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer(), fc.boolean(), fc.constant(null), fc.string({ maxLength: 8 }));
    const msg = fc.record({
      msgId: fc.option(fc.constantFrom("a", "b", "c", "d", "e"), { nil: undefined }),
      skew: fc.option(fc.integer({ min: -400_000, max: 400_000 }), { nil: undefined }),
      values: fc.dictionary(fc.stringMatching(/^[A-Za-z0-9_.-]{1,6}$/), value, { minKeys: 1, maxKeys: 6 }),
    });
    await fc.assert(fc.asyncProperty(fc.array(fc.array(msg, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 4 }), async (bodies) => {
      const c = fakeClock();
      const now = c.now();
      const plain = new HoldSink();
      const cols = new ColumnsSink();
      const a = createIngest(cfg(), plain, newMetrics(), c.now);
      const b = createIngest(cfg(), cols, newMetrics(), c.now);
      const seen = new Set<string>();
      const want: Sample[] = [];
      const wantIds: string[] = [];
      for (const msgs of bodies) {
        const wire = msgs.map((m) => ({ ...(m.msgId !== undefined && { msgId: m.msgId }), ...(m.skew !== undefined && { ts: new Date(now + m.skew).toISOString() }), values: m.values }));
        let samples = 0;
        let duplicates = 0;
        for (const m of JSON.parse(JSON.stringify(wire)) as { msgId?: string; ts?: string; values: Record<string, SampleValue> }[]) {
          if (m.msgId !== undefined) {
            if (seen.has(m.msgId)) { duplicates++; continue; }
            seen.add(m.msgId);
            wantIds.push(m.msgId);
          }
          const sent = m.ts === undefined ? now : Date.parse(m.ts);
          const ts = Math.abs(sent - now) > 300_000 ? now : sent;
          for (const [tag, v] of Object.entries(m.values)) want.push({ device: "agv-1", tag, value: v, quality: "good", ts });
          samples += Object.keys(m.values).length;
        }
        const reply = { status: 202, body: { status: "accepted", messages: msgs.length, samples, duplicates } };
        expect(await a.handle("agv-1", "t", body(wire))).toEqual(reply);
        expect(await b.handle("agv-1", "t", body(wire))).toEqual(reply);
      }
      expect(plain.stored).toStrictEqual(want);
      expect(cols.sets.flatMap((s) => s.toSamples())).toStrictEqual(want);
      expect(cols.msgIds).toEqual(wantIds);
      for (const set of cols.sets) {
        expect(set.device).toBe("agv-1");
        for (let i = 0; i < set.length; i++) expect(set.other?.has(i) ?? false).toBe(typeof set.valueAt(i) !== "number");
      }
    }), { numRuns: 200 });
  });
});
