/**
 * The pure parts of the Sparkplug B format: seq and bdSeq counters, the metric table (aliases,
 * datatypes, births), value/quality mapping, STATE payloads, and DDATA/DBIRTH round trips through
 * Eclipse Tahu's decoder.
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import * as sparkplugPayload from "sparkplug-payload";
import type { Quality, SampleValue } from "../../src/core/sample.js";
import { SampleBatch } from "../../src/core/sample-columns.js";
import {
  BdSeq, MetricTable, REBIRTH_ALIAS, SeqCounter, datatypeOf, isDeadState, isNewerState, parseHostState,
  qualityCode, qualityOfCode, sparkplugTopic, stateTopic,
} from "../../src/outputs/mqtt/sparkplug-model.js";
import { encodeDBirth, encodeDData, encodeNBirth, isRebirthRequest } from "../../src/outputs/mqtt/sparkplug-payloads.js";

const codec = sparkplugPayload.get("spBv1.0")!;
const qualities: Quality[] = ["good", "uncertain", "bad"];

describe("seq and bdSeq", () => {
  it("seq: NBIRTH 0, then +1 per message modulo 256, for any number of messages and rebirths", () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 700 }), { minLength: 1, maxLength: 5 }), (sessions) => {
      const c = new SeqCounter();
      for (const n of sessions) {
        const got = [c.birth()];
        for (let i = 1; i <= n; i++) got.push(c.next());
        if (got.some((s, i) => s !== i % 256)) expect(got).toEqual(got.map((_, i) => i % 256));
      }
    }));
  });

  it("bdSeq: 0, 1, … 255, 0 across connections", () => {
    const b = new BdSeq();
    const got = Array.from({ length: 600 }, () => b.next());
    expect(got).toEqual(Array.from({ length: 600 }, (_, i) => i % 256));
  });
});

describe("values, qualities, states and topics", () => {
  it("numbers are Double, booleans Boolean, strings String; null keeps the known type", () => {
    fc.assert(fc.property(fc.oneof(fc.double(), fc.boolean(), fc.string(), fc.constant(null)), fc.constantFrom("Double", "Boolean", "String", undefined), (v, known) => {
      const t = datatypeOf(v, known as "Double" | undefined);
      if (v === null) expect(t).toBe(known ?? "Double");
      else expect(t).toBe({ number: "Double", boolean: "Boolean", string: "String" }[typeof v as "number"]);
    }));
  });

  it("quality codes round-trip and read any OPC DA code by its class", () => {
    for (const q of qualities) expect(qualityOfCode(qualityCode(q))).toBe(q);
    expect(qualityOfCode(undefined)).toBe("good");
    expect(qualityOfCode(0xd8)).toBe("good");
    expect(qualityOfCode(0x44)).toBe("uncertain");
    expect(qualityOfCode(0x18)).toBe("bad");
  });

  it("offline, error and disabled devices are dead; connecting and online are not", () => {
    expect(["offline", "error", "disabled", "connecting", "online"].map((s) => isDeadState(s as "online"))).toEqual([true, true, true, false, false]);
  });

  it("topics", () => {
    expect(sparkplugTopic("plant", "NBIRTH", "edge")).toBe("spBv1.0/plant/NBIRTH/edge");
    expect(sparkplugTopic("plant", "DDATA", "edge", "press-1")).toBe("spBv1.0/plant/DDATA/edge/press-1");
    expect(stateTopic("scada")).toBe("spBv1.0/STATE/scada");
  });

  it("STATE: Sparkplug 3.0 JSON and the legacy strings; anything else is null", () => {
    const b = (s: string): Buffer => Buffer.from(s);
    expect(parseHostState(b('{"online":true,"timestamp":1700000000000}'))).toEqual({ online: true, timestamp: 1700000000000 });
    expect(parseHostState(b('{"online":false}'))).toEqual({ online: false });
    expect(parseHostState(b("ONLINE"))).toEqual({ online: true });
    expect(parseHostState(b(" OFFLINE\n"))).toEqual({ online: false });
    for (const bad of ["", "maybe", "{}", '{"online":"yes"}', "[true]", "null", "{"]) expect(parseHostState(b(bad)), bad).toBeNull();
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      const r = parseHostState(bytes);
      expect(r === null || typeof r.online === "boolean").toBe(true);
    }));
  });

  it("a STATE older than the newest seen is stale; untimed ones always count", () => {
    expect(isNewerState({ online: false, timestamp: 5 }, 10)).toBe(false);
    expect(isNewerState({ online: false, timestamp: 10 }, 10)).toBe(true);
    expect(isNewerState({ online: true }, 10)).toBe(true);
    expect(isNewerState({ online: true, timestamp: 1 }, undefined)).toBe(true);
  });
});

describe("metric table", () => {
  const sample = fc.record({
    device: fc.constantFrom("a", "b", "c"),
    tag: fc.constantFrom("t1", "t2", "t3", "t4"),
    value: fc.oneof(fc.double({ noNaN: true }), fc.boolean(), fc.string({ maxLength: 4 }), fc.constant(null)),
    unit: fc.constantFrom(undefined, "rpm", "degC"),
  });

  it("aliases are unique across the node, stable, never the rebirth alias; observe says when a birth is out of date", () => {
    fc.assert(fc.property(fc.array(sample, { maxLength: 80 }), (samples) => {
      const t = new MetricTable();
      const seen = new Map<string, { alias: number; type: string; unit: string | undefined }>();
      for (const s of samples) {
        const key = `${s.device}/${s.tag}`;
        const before = seen.get(key);
        const changed = t.observe(s.device, s.tag, s.value, "good", 0, s.unit);
        const def = t.get(s.device, s.tag)!;
        const expectChange = before === undefined || before.unit !== s.unit || (s.value !== null && datatypeOf(s.value) !== before.type);
        expect(changed).toBe(expectChange);
        if (before) expect(def.alias).toBe(before.alias);
        seen.set(key, { alias: def.alias, type: def.type, unit: def.unit });
      }
      const aliases = [...seen.values()].map((d) => d.alias);
      expect(new Set(aliases).size).toBe(aliases.length);
      expect(aliases).not.toContain(REBIRTH_ALIAS);
    }));
  });
});

describe("payloads through Tahu's decoder", () => {
  it("DDATA carries alias, value, ts, quality and is_historical per sample; DBIRTH every metric with name, type and unit", () => {
    fc.assert(fc.property(
      fc.array(fc.record({
        tag: fc.constantFrom("x", "y", "z"),
        value: fc.oneof(fc.double({ noNaN: true }), fc.constant(null)),
        quality: fc.constantFrom(...qualities),
        ts: fc.integer({ min: 0, max: 2 ** 42 }),
      }), { minLength: 1, maxLength: 30 }),
      fc.integer({ min: -1, max: 40 }),
      (rows, historicalUpTo) => {
        const t = new MetricTable();
        const batch = SampleBatch.of(rows.map((r, i) => ({ device: "d", ...r, value: r.value as SampleValue, unit: r.tag === "x" ? "rpm" : undefined, pos: i })).map((s) => (s.unit === undefined ? (({ unit: _u, ...rest }) => rest)(s) : s)));
        for (const r of batch.toArray()) t.observe("d", r.tag, r.value, r.quality, r.ts, r.unit);
        const birth = codec.decodePayload(encodeDBirth(7, t.metrics("d"), 1));
        expect(Number(birth.seq)).toBe(7);
        expect(birth.metrics!.map((m) => [m.name, m.type, Number(m.alias)])).toEqual(t.metrics("d").map((d) => [d.name, "Double", d.alias]));
        for (const m of birth.metrics!) expect(m.properties?.engUnit?.value).toBe(m.name === "x" ? "rpm" : undefined);
        const data = codec.decodePayload(encodeDData(8, "d", batch.runs, t, historicalUpTo, 2));
        expect(Number(data.seq)).toBe(8);
        expect(data.metrics!.map((m) => ({
          alias: Number(m.alias), name: m.name, value: m.value, ts: Number(m.timestamp), hist: m.isHistorical === true,
          q: m.properties?.Quality === undefined ? "good" : qualityOfCode(Number(m.properties.Quality.value)),
        }))).toEqual(rows.map((r, i) => ({
          alias: t.get("d", r.tag)!.alias, name: undefined, value: r.value, ts: r.ts, hist: i <= historicalUpTo, q: r.quality,
        })));
        // the table now holds each metric's latest value, for the next birth
        for (const tag of new Set(rows.map((r) => r.tag))) {
          const last = [...rows].reverse().find((r) => r.tag === tag)!;
          expect(t.get("d", tag)!.value).toBe(last.value);
        }
      },
    ));
  });

  it("NBIRTH: seq 0, bdSeq Int64, Node Control/Rebirth false with the rebirth alias", () => {
    const p = codec.decodePayload(encodeNBirth(42, 1000));
    expect(Number(p.seq)).toBe(0);
    expect(p.metrics!.map((m) => [m.name, m.type, m.type === "Int64" ? Number(m.value) : m.value, m.alias == null ? null : Number(m.alias)]))
      .toEqual([["bdSeq", "Int64", 42, null], ["Node Control/Rebirth", "Boolean", false, REBIRTH_ALIAS]]);
  });

  it("NCMD: a rebirth by name or by alias; false, other metrics or garbage are not one", () => {
    const enc = (metrics: Parameters<typeof codec.encodePayload>[0]["metrics"]): Uint8Array => codec.encodePayload({ timestamp: 1, metrics });
    expect(isRebirthRequest(enc([{ name: "Node Control/Rebirth", type: "Boolean", value: true }]))).toBe(true);
    expect(isRebirthRequest(enc([{ alias: REBIRTH_ALIAS, type: "Boolean", value: true }]))).toBe(true);
    expect(isRebirthRequest(enc([{ name: "Node Control/Rebirth", type: "Boolean", value: false }]))).toBe(false);
    expect(isRebirthRequest(enc([{ name: "Node Control/Next Server", type: "Boolean", value: true }]))).toBe(false);
    expect(() => isRebirthRequest(Buffer.from("not protobuf at all"))).toThrow();
  });
});
