/**
 * Sparkplug B payloads (protobuf, through Eclipse Tahu's `sparkplug-payload`): NBIRTH, NDEATH,
 * DBIRTH, DDATA, DDEATH, and reading an NCMD. Values and qualities map as sparkplug-model.ts says.
 */
import * as sparkplugPayload from "sparkplug-payload";
import type { UMetric, UPayload, UPropertyValue } from "sparkplug-payload/lib/sparkplugbpayload.js";
import type { SampleRun } from "../../core/sample-columns.js";
import type { Quality, SampleValue } from "../../core/sample.js";
import {
  QUALITY_PROPERTY, REBIRTH_ALIAS, REBIRTH_METRIC, UNIT_PROPERTY, datatypeOf, qualityCode,
  type MetricDef, type MetricTable,
} from "./sparkplug-model.js";

const codec = sparkplugPayload.get("spBv1.0");
if (codec === null) throw new Error("sparkplug-payload has no spBv1.0 codec");
const { encodePayload, decodePayload } = codec;
export { decodePayload };

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function bdSeqMetric(bdSeq: number): UMetric {
  return { name: "bdSeq", type: "Int64", value: bdSeq };
}

/** NBIRTH: seq 0, the connection's bdSeq and the `Node Control/Rebirth` metric hosts write to. */
export function encodeNBirth(bdSeq: number, now: number): Buffer {
  return toBuffer(encodePayload({
    timestamp: now,
    seq: 0,
    metrics: [
      { ...bdSeqMetric(bdSeq), timestamp: now },
      { name: REBIRTH_METRIC, alias: REBIRTH_ALIAS, type: "Boolean", value: false, timestamp: now },
    ],
  }));
}

/** NDEATH: the bdSeq of the connection it ends, no seq (the MQTT will, and what a graceful close publishes). */
export function encodeNDeath(bdSeq: number, now: number): Buffer {
  return toBuffer(encodePayload({ timestamp: now, metrics: [bdSeqMetric(bdSeq)] }));
}

function qualityProps(q: Quality, unit: string | undefined): Record<string, UPropertyValue> | undefined {
  if (q === "good" && unit === undefined) return undefined;
  const props: Record<string, UPropertyValue> = {};
  if (q !== "good") props[QUALITY_PROPERTY] = { type: "Int32", value: qualityCode(q) };
  if (unit !== undefined) props[UNIT_PROPERTY] = { type: "String", value: unit };
  return props;
}

/** A birth metric; NaN and ±Infinity travel as they are (protobuf doubles carry them; json sends null). */
function birthMetric(d: MetricDef): UMetric {
  const m: UMetric = { name: d.name, alias: d.alias, type: d.type, value: valueAs(d.value, d.type), timestamp: d.ts };
  const props = qualityProps(d.quality, d.unit);
  if (props) m.properties = props;
  return m;
}

/** A value whose type differs from the birth's (possible only inside one message) travels as null. */
function valueAs(v: SampleValue, type: UMetric["type"]): SampleValue {
  return v === null || datatypeOf(v) === type ? v : null;
}

/** DBIRTH: every metric of the device with name, alias, datatype, unit and current value. */
export function encodeDBirth(seq: number, metrics: readonly MetricDef[], now: number): Buffer {
  return toBuffer(encodePayload({ timestamp: now, seq, metrics: metrics.map(birthMetric) }));
}

/** DDEATH: the device stopped delivering. */
export function encodeDDeath(seq: number, now: number): Buffer {
  return toBuffer(encodePayload({ timestamp: now, seq }));
}

/**
 * DDATA of one device's samples (journal order): alias only (no name), datatype, value, source
 * timestamp, quality when not good, `is_historical` for samples at or before `historicalUpTo` (the
 * journal position that was newest when the session went live). Records each value as the metric's
 * latest. Every sample's metric must be known to `table` (`observe` first).
 */
export function encodeDData(seq: number, device: string, runs: readonly SampleRun[], table: MetricTable, historicalUpTo: number, now: number): Buffer {
  const metrics: UMetric[] = [];
  for (const run of runs) {
    const cols = run.cols;
    for (let k = 0; k < run.count; k++) {
      const i = run.from + k;
      const tag = cols.tags[i]!;
      const def = table.get(device, tag)!;
      const value = cols.valueAt(i);
      const quality = cols.qualityAt(i);
      const ts = cols.ts[i]!;
      const m: UMetric = { alias: def.alias, type: def.type, value: valueAs(value, def.type), timestamp: ts };
      if (run.firstPos + k <= historicalUpTo) m.isHistorical = true;
      if (quality !== "good") m.properties = { [QUALITY_PROPERTY]: { type: "Int32", value: qualityCode(quality) } };
      metrics.push(m);
      table.record(def, value, quality, ts);
    }
  }
  return toBuffer(encodePayload({ timestamp: now, seq, metrics }));
}

/**
 * Whether an NCMD asks for a rebirth: a `Node Control/Rebirth` metric (by name, or by the alias the
 * NBIRTH gave it) set to true. Throws on a payload that is not Sparkplug B protobuf.
 */
export function isRebirthRequest(payload: Uint8Array): boolean {
  const p: UPayload = decodePayload(payload);
  for (const m of p.metrics ?? []) {
    const byName = m.name === REBIRTH_METRIC;
    const byAlias = m.name == null && m.alias != null && Number(m.alias) === REBIRTH_ALIAS;
    if ((byName || byAlias) && m.value === true) return true;
  }
  return false;
}
