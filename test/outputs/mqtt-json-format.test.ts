import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FloorgateError } from "../../src/core/errors.js";
import type { JournaledSample, Quality, SampleValue } from "../../src/core/sample.js";
import { classifyConnectError } from "../../src/outputs/mqtt/client.js";
import {
  TelemetryEncoder,
  type TelemetryMessage,
  deviceStatusPayload,
  gatewayStatusPayload,
  planMessages,
} from "../../src/outputs/mqtt/json-format.js";
import { SampleBatch } from "../../src/core/sample-columns.js";
import { StringTelemetryEncoder } from "../oracles/json-encoder.js";

/** A message over the given samples, as the planner would make it from the journal's columns. */
const M = (device: string, batch: number, samples: readonly JournaledSample[]): TelemetryMessage => ({ device, batch, runs: SampleBatch.of(samples).runs });
/** A message's samples as objects. */
const samplesOf = (m: TelemetryMessage): JournaledSample[] => new SampleBatch(m.runs).toArray();
/** planMessages over samples given as objects, with each message's samples as objects. */
const plan = (batch: readonly JournaledSample[], maxBatch: number): { device: string; batch: number; samples: JournaledSample[] }[] =>
  planMessages(SampleBatch.of(batch), maxBatch).map((m) => ({ device: m.device, batch: m.batch, samples: samplesOf(m) }));

const sampleArb = fc.record({
  device: fc.constantFrom("press-1", "oven-2", "agv-17", "d"),
  tag: fc.string({ minLength: 1, maxLength: 12 }),
  value: fc.oneof(fc.double(), fc.integer(), fc.boolean(), fc.string(), fc.constant(null)),
  quality: fc.constantFrom<Quality>("good", "uncertain", "bad"),
  ts: fc.integer({ min: 0, max: 4_102_444_800_000 }),
  unit: fc.option(fc.string({ maxLength: 6 }), { nil: undefined }),
});

const batchArb = fc
  .tuple(fc.array(sampleArb, { maxLength: 60 }), fc.integer({ min: 0, max: 1e9 }), fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 60, maxLength: 60 }))
  .map(([ss, start, gaps]) => {
    let pos = start;
    return ss.map((s, i): JournaledSample => {
      pos += gaps[i]!;
      const out: JournaledSample = { device: s.device, tag: s.tag, value: s.value, quality: s.quality, ts: s.ts, pos };
      if (s.unit !== undefined) out.unit = s.unit;
      return out;
    });
  });

describe("planMessages", () => {
  it("keeps every sample once, one device and at most maxBatch per message, journal order per device, batch = last pos, strictly increasing", () => {
    fc.assert(
      fc.property(batchArb, fc.integer({ min: 1, max: 10 }), (batch, maxBatch) => {
        const msgs = plan(batch, maxBatch);
        expect(msgs.flatMap((m) => m.samples).length).toBe(batch.length);
        for (const m of msgs) {
          expect(m.samples.length).toBeGreaterThanOrEqual(1);
          expect(m.samples.length).toBeLessThanOrEqual(maxBatch);
          expect(m.samples.every((s) => s.device === m.device)).toBe(true);
          expect(m.batch).toBe(m.samples[m.samples.length - 1]!.pos);
        }
        for (let i = 1; i < msgs.length; i++) expect(msgs[i]!.batch).toBeGreaterThan(msgs[i - 1]!.batch);
        for (const dev of new Set(batch.map((s) => s.device))) {
          const want = batch.filter((s) => s.device === dev).map((s) => s.pos);
          const got = msgs.filter((m) => m.device === dev).flatMap((m) => m.samples.map((s) => s.pos));
          expect(got).toEqual(want);
        }
        // Full chunks first: only a device's last chunk may be short.
        for (const dev of new Set(msgs.map((m) => m.device))) {
          const sizes = msgs.filter((m) => m.device === dev).map((m) => m.samples.length);
          expect(sizes.slice(0, -1).every((n) => n === maxBatch)).toBe(true);
        }
      }),
    );
  });

  it("gives each device's run in batch order when every device appears in one run (one poll per append)", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 30 }), { minLength: 1, maxLength: 8 }), fc.integer({ min: 1, max: 12 }), (runs, maxBatch) => {
        let pos = 100;
        const batch: JournaledSample[] = runs.flatMap((len, r) =>
          Array.from({ length: len }, (_, k): JournaledSample => ({ device: `dev${r}`, tag: `t${k}`, value: k, quality: "good", ts: 0, pos: pos++ })));
        const msgs = plan(batch, maxBatch);
        // reference: the devices in order, each cut into chunks of maxBatch
        const want = runs.flatMap((len, r) => Array.from({ length: Math.ceil(len / maxBatch) }, (_, c) => {
          const samples = batch.filter((s) => s.device === `dev${r}`).slice(c * maxBatch, (c + 1) * maxBatch);
          return { device: `dev${r}`, batch: samples[samples.length - 1]!.pos, samples };
        }));
        expect(msgs).toEqual(want);
      }),
    );
  });

  it("returns nothing for an empty write", () => {
    expect(planMessages(SampleBatch.EMPTY, 500)).toEqual([]);
  });
});

/** The spec §6 message object; JSON.stringify itself turns NaN/±Infinity into null and -0 into 0. */
function specObject(gateway: string, m: TelemetryMessage): unknown {
  return {
    gateway,
    device: m.device,
    batch: m.batch,
    samples: samplesOf(m).map((s) => {
      const ms = new Date(s.ts).getTime();
      return {
        tag: s.tag,
        value: s.value,
        quality: s.quality,
        ts: Number.isNaN(ms) ? null : new Date(ms).toISOString(),
        ...(s.unit !== undefined ? { unit: s.unit } : {}),
      };
    }),
  };
}

const expectedBytes = (gateway: string, m: TelemetryMessage): Buffer => Buffer.from(JSON.stringify(specObject(gateway, m)));

/** Characters JSON must escape or that take 2, 3 or 4 UTF-8 bytes, lone surrogates included. */
const nastyChar = fc.oneof(
  fc.constantFrom('"', "\\", "\n", "\r", "\t", "\b", "\f", "\u0000", "\u001f", "\u007f", "/", "é", "ß", "€", "中", "😀", "👍🏽", "\u2028", "\ufeff", "\ud800", "\udfff"),
  fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
  fc.string({ unit: "grapheme-composite", minLength: 1, maxLength: 1 }),
  fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 1 }),
);
const nastyString = (maxLength: number, minLength = 0): fc.Arbitrary<string> => fc.string({ unit: nastyChar, minLength, maxLength });

/** Numbers at the edges of the integer fast path and of String(number)'s notations. */
const edgeNumber = fc.constantFrom(
  0, -0, 1, -1, 9, 10, 99, 100, 65535, -32768, 2 ** 31 - 1, 2 ** 31, -(2 ** 31), -(2 ** 31) - 1, 2 ** 32, 4294967295,
  2 ** 53 - 1, -(2 ** 53 - 1), 2 ** 53, 2 ** 53 + 2, 1e20, 1e21, -1e21, 123456789012345680000, 1e300, Number.MAX_VALUE,
  Number.MIN_VALUE, -Number.MIN_VALUE, 1e-7, 0.1, -0.5, 1 / 3, Math.PI, NaN, Infinity, -Infinity,
);
const valueArb: fc.Arbitrary<SampleValue> = fc.oneof(
  fc.integer({ min: 0, max: 65535 }),
  fc.integer(),
  fc.maxSafeInteger(),
  fc.double(),
  fc.float().map((f) => Math.fround(f)),
  edgeNumber,
  fc.boolean(),
  fc.constant(null),
  nastyString(20),
);
const tsArb = fc.oneof(
  fc.integer({ min: 0, max: 4_102_444_800_000 }),
  fc.constantFrom(-62_198_755_200_000, 253_402_300_800_000, 8.64e15, 8.64e15 + 1, -8.64e15, NaN, 1.5),
);

const messageArb: fc.Arbitrary<TelemetryMessage> = fc
  .record({
    device: nastyString(16, 1),
    batch: fc.oneof(fc.nat(), fc.maxSafeInteger()),
    sharedTs: fc.option(tsArb, { nil: undefined }),
    samples: fc.array(
      fc.record({
        tag: fc.oneof(fc.integer({ min: 0, max: 99 }).map((i) => `r${i}`), nastyString(12, 1)),
        value: valueArb,
        quality: fc.constantFrom<Quality>("good", "uncertain", "bad"),
        ts: tsArb,
        unit: fc.option(fc.oneof(fc.constantFrom("rpm", "°C", "m³/h"), nastyString(6)), { nil: undefined }),
      }),
      { maxLength: 40 },
    ),
  })
  .map(({ device, batch, sharedTs, samples }) =>
    M(device, batch, samples.map((s, i): JournaledSample => {
      const out: JournaledSample = { device, tag: s.tag, value: s.value, quality: s.quality, ts: sharedTs ?? s.ts, pos: batch - samples.length + i + 1 };
      if (s.unit !== undefined) out.unit = s.unit;
      return out;
    })));

describe("TelemetryEncoder", () => {
  it("gives exactly the bytes of Buffer.from(JSON.stringify(spec object)), message after message on one encoder", () => {
    fc.assert(
      fc.property(nastyString(10), fc.array(messageArb, { minLength: 1, maxLength: 6 }), (gw, msgs) => {
        const enc = new TelemetryEncoder(gw);
        const got = msgs.map((m) => enc.encode(m));
        // Checked only after all were encoded: a payload handed out must never be the reused scratch.
        for (let i = 0; i < msgs.length; i++) expect(got[i]!.equals(expectedBytes(gw, msgs[i]!))).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it("gives the bytes of the string encoder it replaced (test/oracles/json-encoder.ts), message after message", () => {
    fc.assert(
      fc.property(nastyString(10), fc.array(messageArb, { minLength: 1, maxLength: 6 }), (gw, msgs) => {
        const enc = new TelemetryEncoder(gw);
        const oracle = new StringTelemetryEncoder(gw);
        for (const m of msgs) expect(enc.encode(m).equals(Buffer.from(oracle.encode({ device: m.device, batch: m.batch, samples: samplesOf(m) })))).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it("stays exact when timestamps cycle within a message and collide in the suffix cache (an OPC UA publish of queued values)", () => {
    // 1000, 1064 and 1128 share a cache slot; 1001 has its own; NaN and 1.5 never hit.
    const fewTs = fc.constantFrom(1000, 1064, 1128, 1001, NaN, 1.5);
    const sampleArb = fc.record({
      ts: fewTs,
      quality: fc.constantFrom<Quality>("good", "uncertain", "bad"),
      unit: fc.option(fc.constantFrom("rpm", "°C"), { nil: undefined }),
      value: fc.double(),
    });
    fc.assert(
      fc.property(fc.array(fc.array(sampleArb, { minLength: 1, maxLength: 30 }), { minLength: 1, maxLength: 5 }), (msgs) => {
        const enc = new TelemetryEncoder("gw");
        msgs.forEach((samples, k) => {
          const m = M("d", 1000 * (k + 1), samples.map((s, i): JournaledSample => {
            const out: JournaledSample = { device: "d", tag: `t${i}`, value: s.value, quality: s.quality, ts: s.ts, pos: 1000 * k + i };
            if (s.unit !== undefined) out.unit = s.unit;
            return out;
          }));
          expect(enc.encode(m).equals(expectedBytes("gw", m))).toBe(true);
        });
      }),
      { numRuns: 300 },
    );
  });

  it("matches JSON.stringify over planned messages of interleaved devices", () => {
    fc.assert(
      fc.property(batchArb, fc.string(), (batch, gw) => {
        const enc = new TelemetryEncoder(gw);
        for (const m of planMessages(SampleBatch.of(batch), 7)) expect(enc.encode(m).toString("utf8")).toBe(JSON.stringify(specObject(gw, m)));
      }),
    );
  });

  it("grows its scratch for large messages and stays exact afterwards", () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.integer({ min: 0, max: 65535 }), nastyString(200, 100)), { minLength: 300, maxLength: 1200 }),
        fc.integer({ min: 0, max: 4_102_444_800_000 }),
        (values, ts) => {
          const enc = new TelemetryEncoder("gw-ü");
          const big = M("dev😀", values.length, values.map((value, i): JournaledSample => {
            const s: JournaledSample = { device: "dev😀", tag: `r${i % 100}`, value, quality: "good", ts, pos: i + 1 };
            if (i % 3 === 0) s.unit = "°C";
            return s;
          }));
          const small = M("d", 1, [{ device: "d", tag: "r1", value: 7, quality: "bad", ts, pos: 1 }]);
          const a = enc.encode(small);
          const b = enc.encode(big);
          const c = enc.encode(small);
          expect(b.equals(expectedBytes("gw-ü", big))).toBe(true);
          expect(a.equals(expectedBytes("gw-ü", small))).toBe(true);
          expect(c.equals(a)).toBe(true);
          expect(c).not.toBe(a);
        },
      ),
      { numRuns: 20 },
    );
  });

  it("survives a message larger than the scratch it keeps (over 1 MiB) and encodes the next one from a fresh scratch", () => {
    const enc = new TelemetryEncoder("gw");
    const value = "\u4e2d".repeat(5000); // 15,000 UTF-8 bytes
    const huge = M("d", 9, Array.from({ length: 100 }, (_, i) => ({ device: "d", tag: `t${i}`, value, quality: "good" as const, ts: 0, pos: i })));
    const first = enc.encode(huge);
    expect(first.length).toBeGreaterThan(1024 * 1024);
    expect(first.equals(expectedBytes("gw", huge))).toBe(true);
    const next = M("e", 10, [{ device: "e", tag: "t0", value: -12.5, quality: "uncertain", ts: 1, unit: "bar", pos: 10 }]);
    expect(enc.encode(next).toString()).toBe('{"gateway":"gw","device":"e","batch":10,"samples":[{"tag":"t0","value":-12.5,"quality":"uncertain","ts":"1970-01-01T00:00:00.001Z","unit":"bar"}]}');
    expect(first.equals(expectedBytes("gw", huge))).toBe(true);
  });

  it("writes the documented wire form for a poll of uint16 registers", () => {
    const enc = new TelemetryEncoder("line3");
    const ts = Date.UTC(2026, 0, 2, 3, 4, 5, 6);
    const out = enc.encode(M("press-1", 41, [
      { device: "press-1", tag: "r0", value: 0, quality: "good", ts, pos: 40 },
      { device: "press-1", tag: "r1", value: 65535, quality: "good", ts, pos: 41 },
    ]));
    expect(out.toString("utf8")).toBe(
      '{"gateway":"line3","device":"press-1","batch":41,"samples":[' +
        '{"tag":"r0","value":0,"quality":"good","ts":"2026-01-02T03:04:05.006Z"},' +
        '{"tag":"r1","value":65535,"quality":"good","ts":"2026-01-02T03:04:05.006Z"}]}',
    );
  });

  it("writes -0, non-finite and large numbers as valid JSON", () => {
    const enc = new TelemetryEncoder("gw");
    const text = enc.encode(M("d", 1, [
      { device: "d", tag: "a", value: -0, quality: "good", ts: 0, pos: 0 },
      { device: "d", tag: "b", value: 1e300, quality: "good", ts: 0, pos: 1 },
      { device: "d", tag: "c", value: NaN, quality: "good", ts: 0, pos: 2 },
      { device: "d", tag: "e", value: -Infinity, quality: "good", ts: 0, pos: 3 },
      { device: "d", tag: "f", value: -(2 ** 53 - 1), quality: "good", ts: 0, pos: 4 },
    ])).toString();
    expect(JSON.parse(text).samples.map((s: { value: number }) => s.value)).toEqual([0, 1e300, null, null, -(2 ** 53 - 1)]);
  });

  it("with recycle, reuses only slabs whose payloads were all released, and never changes a payload still held", () => {
    // ~9 KB messages: a 1 MiB slab holds about 115, so a few hundred span several slabs.
    const ts = Date.UTC(2026, 10, 21);
    const msg = (i: number): TelemetryMessage =>
      M(`dev-${i % 7}`, i, Array.from({ length: 100 }, (_, k): JournaledSample => ({ device: `dev-${i % 7}`, tag: `r${k}`, value: (i * 100 + k) % 65536, quality: "good", ts: ts + i, pos: i * 100 + k })));
    // Stretches of lags past a slab's worth (~115 messages) keep several slabs partly held at once.
    const stretch = fc.record({ lag: fc.oneof(fc.nat(20), fc.integer({ min: 120, max: 300 })), steps: fc.integer({ min: 50, max: 300 }) });
    const lagsArb = fc.array(stretch, { minLength: 3, maxLength: 6 })
      .map((ss) => ss.flatMap(({ lag, steps }) => Array.from({ length: steps }, () => lag)))
      .filter((lags) => lags.length >= 400);
    fc.assert(
      fc.property(lagsArb, (lags) => {
        const enc = new TelemetryEncoder("gw", true);
        const held: { i: number; p: Buffer; copy: Buffer }[] = [];
        const slabs = new Set<ArrayBufferLike>();
        let released = 0;
        lags.forEach((lag, i) => {
          const p = enc.encode(msg(i));
          slabs.add(p.buffer);
          held.push({ i, p, copy: Buffer.from(p) });
          // Release the oldest payloads, keeping `lag` of them held (in issue order, as PUBACKs come).
          while (held.length > lag) {
            const h = held.shift()!;
            expect(h.p.equals(h.copy)).toBe(true);
            enc.release(h.p);
            released++;
          }
          for (const h of held) expect(h.p.equals(h.copy)).toBe(true);
        });
        for (const h of held) expect(h.p.equals(expectedBytes("gw", msg(h.i)))).toBe(true);
        // Every payload but the last step's `lag` was released (the bound was `> length - 300`,
        // off by one: a run ending in a stretch of lag 300 holds exactly 300).
        expect(held.length).toBeLessThanOrEqual(lags[lags.length - 1]!);
        expect(released).toBe(lags.length - held.length);
        // 400+ payloads of 9 KB are 3.5+ MB; with at most 300 held (2.7 MB), at most four slabs
        // are held or current, and a fifth may wait in the pool.
        expect(slabs.size).toBeLessThanOrEqual(5);
      }),
      { numRuns: 15 },
    );
  });

  it("without recycle, never reuses a slab, release or not", () => {
    const enc = new TelemetryEncoder("gw");
    const seen = new Set<ArrayBufferLike>();
    const value = "x".repeat(9000);
    for (let i = 0; i < 300; i++) {
      const p = enc.encode(M("d", i, [{ device: "d", tag: "t", value, quality: "good", ts: 0, pos: i }]));
      seen.add(p.buffer);
      enc.release(p);
    }
    expect(enc.pooled).toBe(0);
    expect(seen.size).toBeGreaterThanOrEqual(3);
  });

  it("encodes an empty message", () => {
    expect(new TelemetryEncoder("gw").encode(M("d", 3, [])).toString()).toBe('{"gateway":"gw","device":"d","batch":3,"samples":[]}');
  });
});

describe("status payloads", () => {
  it("match spec §6", () => {
    expect(JSON.parse(gatewayStatusPayload(false))).toEqual({ online: false });
    expect(JSON.parse(gatewayStatusPayload(true, Date.UTC(2026, 0, 2, 3, 4, 5, 6)))).toEqual({ online: true, ts: "2026-01-02T03:04:05.006Z" });
    expect(JSON.parse(deviceStatusPayload("error", 0, "all reads failed"))).toEqual({ state: "error", ts: "1970-01-01T00:00:00.000Z", error: "all reads failed" });
  });
});

describe("classifyConnectError", () => {
  const withCode = (code: number | string, message = "x"): Error => Object.assign(new Error(message), { code });
  it("bad credentials, not authorized, bad client id and TLS trust failures are OUTPUT_REJECTED", () => {
    for (const e of [withCode(4), withCode(5), withCode(2), withCode(0x86), withCode(0x87), withCode("DEPTH_ZERO_SELF_SIGNED_CERT"), withCode("ERR_TLS_CERT_ALTNAME_INVALID")]) {
      const f = classifyConnectError(e, "out");
      expect(f.code).toBe("OUTPUT_REJECTED");
      expect(f.cause).toBe(e);
    }
  });
  it("network failures and server-unavailable are OUTPUT_UNAVAILABLE", () => {
    for (const e of [withCode("ECONNREFUSED"), withCode("ECONNRESET"), withCode(3), new Error("closed"), "weird"]) {
      expect(classifyConnectError(e, "out").code).toBe("OUTPUT_UNAVAILABLE");
    }
  });
  it("passes FloorgateErrors through", () => {
    const e = new FloorgateError("OUTPUT_REJECTED", "cannot read");
    expect(classifyConnectError(e, "out")).toBe(e);
  });
});
