/**
 * The pure parts of the Sparkplug B format (spec §6 "sparkplug-b"): sequence numbers, the edge
 * node's metric table (aliases, datatypes, units and the last value of every metric), the mapping
 * of Floorgate's values and qualities onto Sparkplug's, topics and the primary host's STATE
 * payloads. No I/O here: sparkplug-payloads.ts encodes, sparkplug-output.ts publishes.
 */
import type { DeviceState, Quality, SampleValue } from "../../core/sample.js";

export const SPARKPLUG_NAMESPACE = "spBv1.0";

/** Message types an edge node publishes (NCMD and STATE are only received). */
export type SparkplugVerb = "NBIRTH" | "NDEATH" | "NDATA" | "DBIRTH" | "DDEATH" | "DDATA";

/** `spBv1.0/{group}/{verb}/{edgeNode}[/{device}]` */
export function sparkplugTopic(group: string, verb: SparkplugVerb | "NCMD", edgeNode: string, device?: string): string {
  return device === undefined
    ? `${SPARKPLUG_NAMESPACE}/${group}/${verb}/${edgeNode}`
    : `${SPARKPLUG_NAMESPACE}/${group}/${verb}/${edgeNode}/${device}`;
}

/** `spBv1.0/STATE/{hostId}`: where a Sparkplug 3.0 primary host application announces itself. */
export function stateTopic(hostId: string): string {
  return `${SPARKPLUG_NAMESPACE}/STATE/${hostId}`;
}

/**
 * The `seq` of one Sparkplug session: NBIRTH carries 0, every later message of the session
 * (DBIRTH, NDATA, DDATA, DDEATH) the next number, wrapping from 255 to 0. The NDEATH carries none.
 */
export class SeqCounter {
  private n = 0;

  /** The NBIRTH's seq (0); the next message gets 1. */
  birth(): number {
    this.n = 1;
    return 0;
  }

  next(): number {
    const s = this.n;
    this.n = (s + 1) & 255;
    return s;
  }
}

/**
 * The birth/death sequence number: one per MQTT connection, 0–255 wrapping. The value taken for a
 * connection goes into its NDEATH will and into every NBIRTH published on it, so a host can tell
 * which session a death ends. Kept per output for the process' life (not persisted: a restarted
 * gateway starts at 0 again, which hosts accept because the broker delivers the old connection's
 * will before the new connection's NBIRTH when the same client id takes over).
 */
export class BdSeq {
  private n = 0;

  /** The bdSeq of a new connection. */
  next(): number {
    const s = this.n;
    this.n = (s + 1) & 255;
    return s;
  }
}

/** The Sparkplug datatypes samples travel as. */
export type SparkplugType = "Double" | "Boolean" | "String";

/**
 * A sample value's Sparkplug datatype. Numbers are always Double (a tag whose readings are
 * sometimes whole numbers would otherwise flip between Int64 and Double and need a rebirth each
 * time); a null keeps the metric's known type, or Double when none is known yet.
 */
export function datatypeOf(value: SampleValue, known?: SparkplugType): SparkplugType {
  switch (typeof value) {
    case "number": return "Double";
    case "boolean": return "Boolean";
    case "string": return "String";
    default: return known ?? "Double";
  }
}

/** The metric property that carries quality, with OPC DA's codes (Ignition's convention). */
export const QUALITY_PROPERTY = "Quality";
/** The metric property that carries the engineering unit, in births (Ignition's `engUnit`). */
export const UNIT_PROPERTY = "engUnit";

const QUALITY_TO_CODE: Record<Quality, number> = { good: 192, uncertain: 64, bad: 0 };

/** OPC DA quality code of a quality: good 192, uncertain 64, bad 0. */
export function qualityCode(q: Quality): number {
  return QUALITY_TO_CODE[q];
}

/** The quality of an OPC DA code (its two top bits: 11 good, 01 uncertain, 00 bad); no property means good. */
export function qualityOfCode(code: number | undefined): Quality {
  if (code === undefined) return "good";
  const cls = code & 0xc0;
  return cls === 0xc0 ? "good" : cls === 0x40 ? "uncertain" : "bad";
}

/** Device states in which the device has a DDEATH: it is not delivering (unreachable, failing, switched off). */
export function isDeadState(state: DeviceState): boolean {
  return state === "offline" || state === "error" || state === "disabled";
}

/** The node control metric hosts write to ask for a rebirth; alias 0 in the NBIRTH, device metrics from 1. */
export const REBIRTH_METRIC = "Node Control/Rebirth";
export const REBIRTH_ALIAS = 0;

/** One metric of a device as its last DBIRTH announced it, with its latest value. */
export interface MetricDef {
  readonly name: string;
  /** unique within the edge node, kept for the process' life */
  readonly alias: number;
  type: SparkplugType;
  unit: string | undefined;
  /** latest value sent (or, before any, the first one seen), for births */
  value: SampleValue;
  quality: Quality;
  ts: number;
}

/**
 * The edge node's metrics: per device, per tag, the alias, datatype and unit its DBIRTH
 * announces, and the latest value (a birth carries the current value of every metric). Aliases
 * are unique across the node (Sparkplug requires it) and never reused, so a host may keep its
 * alias map across rebirths. Grows with the distinct (device, tag) pairs the gateway sees, which
 * the config and the ingest's admitted devices bound.
 */
export class MetricTable {
  private readonly devices = new Map<string, Map<string, MetricDef>>();
  private nextAlias = REBIRTH_ALIAS + 1;

  /** Devices with at least one metric, in the order first seen. */
  deviceIds(): IterableIterator<string> {
    return this.devices.keys();
  }

  has(device: string): boolean {
    return this.devices.has(device);
  }

  /** The device's metrics in the order first seen (its DBIRTH's metrics). */
  metrics(device: string): MetricDef[] {
    const m = this.devices.get(device);
    return m ? [...m.values()] : [];
  }

  get(device: string, tag: string): MetricDef | undefined {
    return this.devices.get(device)?.get(tag);
  }

  /**
   * Takes note of one sample about to be sent. Returns true when the device's birth no longer
   * describes it: a tag not announced yet, a non-null value of another datatype, or another unit.
   * A new or retyped metric takes this sample as its birth value.
   */
  observe(device: string, tag: string, value: SampleValue, quality: Quality, ts: number, unit: string | undefined): boolean {
    let m = this.devices.get(device);
    if (!m) {
      m = new Map();
      this.devices.set(device, m);
    }
    const def = m.get(tag);
    if (!def) {
      m.set(tag, { name: tag, alias: this.nextAlias++, type: datatypeOf(value), unit, value, quality, ts });
      return true;
    }
    let changed = false;
    if (value !== null && datatypeOf(value) !== def.type) {
      def.type = datatypeOf(value);
      def.value = value;
      def.quality = quality;
      def.ts = ts;
      changed = true;
    }
    if (unit !== def.unit) {
      def.unit = unit;
      changed = true;
    }
    return changed;
  }

  /** The latest value sent for a metric `observe` knows. */
  record(def: MetricDef, value: SampleValue, quality: Quality, ts: number): void {
    def.value = value;
    def.quality = quality;
    def.ts = ts;
  }
}

/** A primary host's announcement on its STATE topic. */
export interface HostState {
  online: boolean;
  /** ms since the epoch (Sparkplug 3.0 payloads); absent in the legacy string form */
  timestamp?: number;
}

/**
 * Parses a STATE payload: Sparkplug 3.0's JSON `{"online":true,"timestamp":…}` or the legacy
 * (2.2) strings `ONLINE` / `OFFLINE`. Null for anything else (bad input: the caller logs it).
 */
export function parseHostState(payload: Uint8Array): HostState | null {
  const text = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString("utf8").trim();
  if (/^online$/i.test(text)) return { online: true };
  if (/^offline$/i.test(text)) return { online: false };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return null;
  }
  if (parsed === null || typeof parsed !== "object") return null;
  const o = parsed as { online?: unknown; timestamp?: unknown };
  if (typeof o.online !== "boolean") return null;
  const out: HostState = { online: o.online };
  if (typeof o.timestamp === "number" && Number.isFinite(o.timestamp)) out.timestamp = o.timestamp;
  return out;
}

/**
 * Whether a STATE message is news: Sparkplug 3.0 hosts stamp each one, and one older than the
 * newest already seen (a stale retained message, a will overtaking a newer birth) is ignored.
 */
export function isNewerState(next: HostState, lastTimestamp: number | undefined): boolean {
  return next.timestamp === undefined || lastTimestamp === undefined || next.timestamp >= lastTimestamp;
}

/**
 * What an edge node keeps across its MQTT connections: the bdSeq counter, the metric table
 * (aliases stay the same for the process' life) and the latest state of each device.
 */
export class EdgeNode {
  readonly bdSeq = new BdSeq();
  readonly metrics = new MetricTable();
  readonly deviceStates = new Map<string, DeviceState>();
  /** the newest STATE timestamp seen from the primary host, across connections (older ones are stale) */
  lastStateTs: number | undefined;
  constructor(readonly group: string, readonly id: string) {}

  isDead(device: string): boolean {
    const s = this.deviceStates.get(device);
    return s !== undefined && isDeadState(s);
  }
}
