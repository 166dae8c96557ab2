/**
 * The MQTT json telemetry encoder as it was before payloads became Buffers: the oracle that
 * test/outputs/mqtt-json-format.test.ts checks `TelemetryEncoder` against, and the baseline of
 * bench/json-encode.ts. Simple on purpose; never optimise it. Its output is what JSON.stringify of
 * the spec object gives (spec §6).
 */
import type { Quality, Sample, SampleValue } from "../../src/core/sample.js";

const QUALITY: Record<Quality, string> = { good: '"good"', uncertain: '"uncertain"', bad: '"bad"' };

/** JSON for a non-integer value; NaN and ±Infinity have no JSON form and travel as null. */
function encodeValue(v: SampleValue): string {
  switch (typeof v) {
    case "number":
      return Number.isFinite(v) ? String(v) : "null";
    case "boolean":
      return v ? "true" : "false";
    case "string":
      return JSON.stringify(v);
    default:
      return "null";
  }
}

/**
 * Copied verbatim from src/outputs/mqtt/json-format.ts before payloads became Buffers.
 * Builds telemetry payloads by string concatenation (several times faster than JSON.stringify of an
 * object graph at 500 samples per message). Per sample only three pieces are joined: the tag's
 * cached `{"tag":…,"value":` prefix, the value, and a `,"quality":…,"ts":…}` suffix cached for the
 * last (quality, ts, unit) — a poll gives every sample of a message the same ts and quality, and
 * tag names repeat every poll. The result is what JSON.stringify of the spec object gives.
 */
export class StringTelemetryEncoder {
  private readonly gatewayHead: string;
  /** tag → `{"tag":"…","value":` */
  private readonly prefixes = new Map<string, string>();
  /** device / unit → its JSON string */
  private readonly strings = new Map<string, string>();
  private sufTs = Number.NaN;
  private sufQuality = "";
  private sufUnit: string | undefined = undefined;
  private suffix = "";

  constructor(gatewayId: string) {
    this.gatewayHead = `{"gateway":${JSON.stringify(gatewayId)},"device":`;
  }

  /** Bounded: tag/unit/device names are a fixed set from config and pushing devices. */
  private str(s: string): string {
    let enc = this.strings.get(s);
    if (enc === undefined) {
      if (this.strings.size >= 50_000) this.strings.clear();
      enc = JSON.stringify(s);
      this.strings.set(s, enc);
    }
    return enc;
  }

  private prefixOf(tag: string): string {
    let p = this.prefixes.get(tag);
    if (p === undefined) {
      if (this.prefixes.size >= 50_000) this.prefixes.clear();
      p = `{"tag":${JSON.stringify(tag)},"value":`;
      this.prefixes.set(tag, p);
    }
    return p;
  }

  /** RFC 3339, ms, UTC; an invalid time (should never reach the journal) travels as null. */
  private suffixFor(quality: Quality, ms: number, unit: string | undefined): string {
    this.sufTs = ms;
    this.sufQuality = quality;
    this.sufUnit = unit;
    const d = new Date(ms);
    const ts = Number.isNaN(d.getTime()) ? "null" : `"${d.toISOString()}"`;
    this.suffix = `,"quality":${QUALITY[quality] ?? JSON.stringify(quality)},"ts":${ts}${unit === undefined ? "" : `,"unit":${this.str(unit)}`}}`;
    return this.suffix;
  }

  encode(msg: { device: string; batch: number; samples: readonly Sample[] }): string {
    let out = `${this.gatewayHead}${this.str(msg.device)},"batch":${msg.batch},"samples":[`;
    const samples = msg.samples;
    for (let i = 0; i < samples.length; i++) {
      const s = samples[i]!;
      const prefix = this.prefixOf(s.tag);
      const suffix = s.ts === this.sufTs && s.quality === this.sufQuality && s.unit === this.sufUnit ? this.suffix : this.suffixFor(s.quality, s.ts, s.unit);
      const v = s.value;
      const value = typeof v === "number" && Number.isFinite(v) ? "" + v : encodeValue(v);
      out += (i === 0 ? prefix : "," + prefix) + value + suffix;
    }
    return out + "]}";
  }
}
