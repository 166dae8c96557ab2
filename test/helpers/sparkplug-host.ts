/**
 * A Sparkplug B host application for tests: subscribes to `spBv1.0/#` with MQTT.js, decodes every
 * payload with Eclipse Tahu's `sparkplug-payload` (the decoder a real host uses, not ours), and
 * reads what arrived back as samples (aliases resolved through the latest DBIRTH). It also publishes
 * what a host publishes: its STATE and NCMD rebirth requests.
 */
import mqtt, { type MqttClient } from "mqtt";
import * as sparkplugPayload from "sparkplug-payload";
import type { UMetric } from "sparkplug-payload/lib/sparkplugbpayload.js";
import { collect, type Collector } from "./mqtt-sub.js";

const codec = sparkplugPayload.get("spBv1.0")!;

export interface SpMetric {
  name?: string;
  alias?: number;
  type: string;
  value: unknown;
  timestamp?: number;
  isHistorical?: boolean;
  properties: Record<string, unknown>;
}

export interface SpMessage {
  topic: string;
  verb: string;
  group: string;
  node: string;
  device?: string;
  seq?: number;
  timestamp?: number;
  metrics: SpMetric[];
  qos: number;
  /** arrival order at the host */
  arrival: number;
}

export interface HostSample {
  device: string;
  tag: string;
  value: unknown;
  quality: "good" | "uncertain" | "bad";
  ts: number;
  unit?: string;
  historical: boolean;
}

/** Long (protobuf uint64) → number. */
function num(v: unknown): number | undefined {
  if (v === undefined || v === null) return undefined;
  return typeof v === "number" ? v : Number(String(v));
}

function metricOf(m: UMetric): SpMetric {
  const props: Record<string, unknown> = {};
  for (const [k, p] of Object.entries(m.properties ?? {})) props[k] = typeof p.value === "object" && p.value !== null ? num(p.value) : p.value;
  const out: SpMetric = { type: m.type, value: m.type === "Int64" || m.type === "UInt64" ? num(m.value) : m.value, properties: props };
  if (m.name != null) out.name = m.name;
  if (m.alias != null) out.alias = num(m.alias)!;
  if (m.timestamp != null) out.timestamp = num(m.timestamp)!;
  if (m.isHistorical != null) out.isHistorical = m.isHistorical;
  return out;
}

export class SparkplugHost {
  /** decoded form of each collected message, by index (null: not an edge node's message) */
  private readonly decoded: (SpMessage | null)[] = [];

  private constructor(
    private sub: Collector,
    private pub: MqttClient,
    readonly url: string,
  ) {}

  static async start(url: string): Promise<SparkplugHost> {
    const sub = await collect(url, "spBv1.0/#");
    const pub = await mqtt.connectAsync(url, { reconnectPeriod: 0, clientId: `sp-host-pub-${process.pid}-${Math.random().toString(36).slice(2)}` });
    pub.on("error", () => {});
    return new SparkplugHost(sub, pub, url);
  }

  /** Every Sparkplug message from edge nodes (STATE and commands left out), decoded, in arrival order. */
  messages(node?: string): SpMessage[] {
    const raw = this.sub.messages;
    for (let i = this.decoded.length; i < raw.length; i++) {
      const m = raw[i]!;
      const parts = m.topic.split("/");
      if (parts[1] === "STATE" || parts[2] === "NCMD" || parts[2] === "DCMD") { this.decoded.push(null); continue; }
      const p = codec.decodePayload(m.payload);
      const msg: SpMessage = {
        topic: m.topic, group: parts[1]!, verb: parts[2]!, node: parts[3]!,
        metrics: (p.metrics ?? []).map(metricOf), qos: m.qos, arrival: m.seq,
      };
      if (parts[4] !== undefined) msg.device = parts[4];
      if (p.seq != null) msg.seq = num(p.seq)!;
      if (p.timestamp != null) msg.timestamp = num(p.timestamp)!;
      this.decoded.push(msg);
    }
    return this.decoded.filter((m): m is SpMessage => m !== null && (node === undefined || m.node === node));
  }

  /** Resolves once `cond` holds over the decoded messages, re-checked on each arrival. */
  async until(cond: (msgs: SpMessage[]) => boolean, timeoutMs = 15_000): Promise<SpMessage[]> {
    await this.sub.until(() => cond(this.messages()), timeoutMs);
    return this.messages();
  }

  /**
   * The DDATA samples of `device` (all nodes), tags resolved from aliases through the DBIRTH that
   * preceded each DDATA, units from the birth's `engUnit`, quality from the `Quality` property.
   * Throws when a DDATA uses an alias no earlier DBIRTH of the device announced.
   */
  samples(device: string): HostSample[] {
    const births = new Map<number, { name: string; unit?: string }>();
    const out: HostSample[] = [];
    for (const m of this.messages()) {
      if (m.device !== device) continue;
      if (m.verb === "DBIRTH") {
        births.clear();
        for (const x of m.metrics) {
          const unit = x.properties.engUnit;
          births.set(x.alias!, typeof unit === "string" ? { name: x.name!, unit } : { name: x.name! });
        }
      } else if (m.verb === "DDATA") {
        for (const x of m.metrics) {
          if (x.name !== undefined) throw new Error(`DDATA on ${m.topic} names metric ${x.name}: aliases only after birth`);
          const b = births.get(x.alias!);
          if (!b) throw new Error(`DDATA on ${m.topic} uses alias ${x.alias} that no DBIRTH announced`);
          const q = num(x.properties.Quality);
          const s: HostSample = {
            device, tag: b.name, value: x.value,
            quality: q === undefined || q >= 192 ? "good" : q >= 64 ? "uncertain" : "bad",
            ts: x.timestamp!, historical: x.isHistorical === true,
          };
          if (b.unit !== undefined) s.unit = b.unit;
          out.push(s);
        }
      }
    }
    return out;
  }

  /** Publishes the host's STATE (retained, as a host does). */
  async state(hostId: string, payload: string): Promise<void> {
    await this.pub.publishAsync(`spBv1.0/STATE/${hostId}`, payload, { qos: 1, retain: true });
  }

  /** Asks edge node `node` of `group` for a rebirth (NCMD Node Control/Rebirth = true, by name). */
  async rebirth(group: string, node: string): Promise<void> {
    const payload = codec.encodePayload({ timestamp: Date.now(), metrics: [{ name: "Node Control/Rebirth", type: "Boolean", value: true }] });
    await this.pub.publishAsync(`spBv1.0/${group}/NCMD/${node}`, Buffer.from(payload), { qos: 0 });
  }

  /** Publishes raw bytes on a topic (bad input cases). */
  async raw(topic: string, payload: string | Buffer, retain = false): Promise<void> {
    await this.pub.publishAsync(topic, payload, { qos: 1, retain });
  }

  /** After a broker restart: subscribe and connect the publisher again (messages kept). */
  async reconnect(): Promise<void> {
    await this.sub.reconnect();
    this.pub.end(true);
    this.pub = await mqtt.connectAsync(this.url, { reconnectPeriod: 0, clientId: `sp-host-pub-${process.pid}-${Math.random().toString(36).slice(2)}` });
    this.pub.on("error", () => {});
  }

  async close(): Promise<void> {
    await this.sub.close();
    await this.pub.endAsync(true);
  }
}

/**
 * Breaks of Sparkplug's seq rule in one node's message stream: NBIRTH has seq 0; every DBIRTH,
 * NDATA, DDATA and DDEATH after it the previous seq + 1 modulo 256; NDEATH has none. Empty when
 * the stream follows the rule.
 */
export function seqViolations(msgs: readonly SpMessage[]): string[] {
  const bad: string[] = [];
  let expect: number | undefined;
  for (const m of msgs) {
    if (m.verb === "NDEATH") {
      if (m.seq !== undefined) bad.push(`#${m.arrival} NDEATH carries seq ${m.seq}`);
      expect = undefined;
      continue;
    }
    if (m.verb === "NBIRTH") {
      if (m.seq !== 0) bad.push(`#${m.arrival} NBIRTH seq ${m.seq}, not 0`);
      expect = 1;
      continue;
    }
    if (expect === undefined) { bad.push(`#${m.arrival} ${m.verb} before any NBIRTH`); continue; }
    if (m.seq !== expect) bad.push(`#${m.arrival} ${m.verb} ${m.device ?? ""} seq ${m.seq}, expected ${expect}`);
    expect = ((m.seq ?? expect) + 1) & 255;
  }
  return bad;
}

/** The bdSeq metric of an NBIRTH or NDEATH. */
export function bdSeqOf(m: SpMessage): number | undefined {
  const v = m.metrics.find((x) => x.name === "bdSeq")?.value;
  return typeof v === "number" ? v : undefined;
}
