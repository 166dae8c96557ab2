import type { JournaledSample, Quality, SampleValue } from "../../core/sample.js";

/**
 * One telemetry message of the json format (spec §6): samples of one device, at most `maxBatch`,
 * in journal order. `batch` is the journal position of its last sample.
 */
export interface TelemetryMessage {
  device: string;
  batch: number;
  samples: JournaledSample[];
}

/**
 * Splits a write into messages: grouped by device (journal order kept inside each group), each group
 * cut into chunks of at most `maxBatch`, ordered by their last position. Publishing in this order makes
 * `batch` strictly increase across messages, and across writes too because every write starts after
 * the previous one ended, so a consumer can drop replayed duplicates by `batch` alone.
 */
export function planMessages(batch: readonly JournaledSample[], maxBatch: number): TelemetryMessage[] {
  const limit = Math.max(1, Math.floor(maxBatch));
  const byDevice = new Map<string, JournaledSample[]>();
  for (const s of batch) {
    const group = byDevice.get(s.device);
    if (group) group.push(s);
    else byDevice.set(s.device, [s]);
  }
  const out: TelemetryMessage[] = [];
  for (const [device, group] of byDevice) {
    for (let i = 0; i < group.length; i += limit) {
      const samples = group.length <= limit ? group : group.slice(i, i + limit);
      out.push({ device, batch: samples[samples.length - 1]!.pos, samples });
    }
  }
  if (byDevice.size > 1) out.sort((a, b) => a.batch - b.batch);
  return out;
}

const QUALITY: Record<Quality, string> = { good: '"good"', uncertain: '"uncertain"', bad: '"bad"' };

/** JSON for a value; NaN and ±Infinity have no JSON form and travel as null. */
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
 * Builds telemetry payloads by string concatenation (several times faster than JSON.stringify of an
 * object graph at 500 samples per message), with the last timestamp's ISO form and encoded strings
 * cached: a poll cycle gives many samples the same `ts`, tag and unit names repeat every message.
 */
export class TelemetryEncoder {
  private lastTs = Number.NaN;
  private lastIso = "";
  private readonly strings = new Map<string, string>();
  private readonly gatewayJson: string;

  constructor(gatewayId: string) {
    this.gatewayJson = JSON.stringify(gatewayId);
  }

  /** RFC 3339, ms, UTC; an invalid time (should never reach the journal) travels as null. */
  private ts(ms: number): string {
    if (ms !== this.lastTs) {
      this.lastTs = ms;
      const d = new Date(ms);
      this.lastIso = Number.isNaN(d.getTime()) ? "null" : `"${d.toISOString()}"`;
    }
    return this.lastIso;
  }

  private str(s: string): string {
    let enc = this.strings.get(s);
    if (enc === undefined) {
      // Bounded: tag/unit/device names are a fixed set from config and pushing devices.
      if (this.strings.size >= 50_000) this.strings.clear();
      enc = JSON.stringify(s);
      this.strings.set(s, enc);
    }
    return enc;
  }

  encode(msg: TelemetryMessage): string {
    let out = `{"gateway":${this.gatewayJson},"device":${this.str(msg.device)},"batch":${msg.batch},"samples":[`;
    const samples = msg.samples;
    for (let i = 0; i < samples.length; i++) {
      const s = samples[i]!;
      out += `${i === 0 ? "" : ","}{"tag":${this.str(s.tag)},"value":${encodeValue(s.value)},"quality":${QUALITY[s.quality] ?? JSON.stringify(s.quality)},"ts":${this.ts(s.ts)}`;
      out += s.unit === undefined ? "}" : `,"unit":${this.str(s.unit)}}`;
    }
    return out + "]}";
  }
}

/** Retained `{topicPrefix}/status` payloads. The will carries no ts: it is fixed before the session starts. */
export function gatewayStatusPayload(online: boolean, ts?: number): string {
  return ts === undefined ? JSON.stringify({ online }) : JSON.stringify({ online, ts: new Date(ts).toISOString() });
}

/** Retained `{topicPrefix}/{deviceId}/status` payload. */
export function deviceStatusPayload(state: string, ts: number, error: string | null): string {
  return JSON.stringify({ state, ts: new Date(ts).toISOString(), error });
}

export function telemetryTopic(prefix: string, device: string): string {
  return `${prefix}/${device}/telemetry`;
}

export function gatewayStatusTopic(prefix: string): string {
  return `${prefix}/status`;
}

export function deviceStatusTopic(prefix: string, device: string): string {
  return `${prefix}/${device}/status`;
}
