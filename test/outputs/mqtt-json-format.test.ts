import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FloorgateError } from "../../src/core/errors.js";
import type { JournaledSample, Quality } from "../../src/core/sample.js";
import { classifyConnectError } from "../../src/outputs/mqtt/client.js";
import {
  TelemetryEncoder,
  deviceStatusPayload,
  gatewayStatusPayload,
  planMessages,
} from "../../src/outputs/mqtt/json-format.js";

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
        const msgs = planMessages(batch, maxBatch);
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
        const msgs = planMessages(batch, maxBatch);
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
    expect(planMessages([], 500)).toEqual([]);
  });
});

describe("TelemetryEncoder", () => {
  it("produces exactly what JSON.stringify of the spec object would (non-finite numbers as null, -0 as 0)", () => {
    fc.assert(
      fc.property(batchArb, fc.string(), (batch, gw) => {
        const enc = new TelemetryEncoder(gw);
        for (const m of planMessages(batch, 7)) {
          const expected = {
            gateway: gw,
            device: m.device,
            batch: m.batch,
            samples: m.samples.map((s) => ({
              tag: s.tag,
              // JSON has no NaN/Infinity (null) and no -0 (0), exactly like JSON.stringify.
              value: typeof s.value === "number" ? (Number.isFinite(s.value) ? s.value + 0 : null) : s.value,
              quality: s.quality,
              ts: new Date(s.ts).toISOString(),
              ...(s.unit !== undefined ? { unit: s.unit } : {}),
            })),
          };
          const text = enc.encode(m);
          expect(JSON.parse(text)).toEqual(expected);
        }
      }),
    );
  });

  it("writes -0 and large numbers as valid JSON", () => {
    const enc = new TelemetryEncoder("gw");
    const text = enc.encode({ device: "d", batch: 1, samples: [
      { device: "d", tag: "a", value: -0, quality: "good", ts: 0, pos: 0 },
      { device: "d", tag: "b", value: 1e300, quality: "good", ts: 0, pos: 1 },
    ] });
    expect(JSON.parse(text).samples.map((s: { value: number }) => s.value)).toEqual([0, 1e300]);
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
