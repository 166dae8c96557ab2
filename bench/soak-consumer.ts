/**
 * The soak's "cloud application": one MQTT client with a persistent session (clean: false, a fixed
 * client id, QoS 1) on the gateway's telemetry topics. It counts every sample it receives per device
 * and value, so at the end it can say which acknowledged samples arrived and how many arrived twice.
 *
 * Keepalive is off, so a SIGSTOPped broker does not make it drop its session; a SIGKILLed one closes
 * the socket and the client reconnects every 200 ms. It subscribes again on every CONNACK without a
 * session (the broker lost it), and records when that happened: a message published in that window
 * is lost by the broker, not by the gateway, and would show as a missing sample.
 */
import mqtt, { type MqttClient } from "mqtt";
import { MODBUS_TAGS } from "./soak-plant.js";
import { ValueCounts } from "./soak-load.js";

interface Telemetry { device?: unknown; batch?: unknown; samples?: { tag?: unknown; value?: unknown; quality?: unknown }[] }

export interface ConsumerStats {
  messages: number;
  samples: number;
  /** messages whose batch was not above the highest seen for their device (replays, at-least-once) */
  replayedMessages: number;
  /** sample arrivals beyond the first of the same (device, value) */
  duplicateSamples: number;
  /** Modbus samples with quality other than good (device offline, restarts) */
  modbusNotGood: number;
  /** Modbus values under the wrong tag (value mod 16 ≠ tag index): must be 0 */
  modbusMisattributed: number;
  /** samples of devices the soak does not know (should be 0) */
  foreign: number;
  connects: number;
  /** CONNACKs without the session after the first: the broker forgot the subscription */
  sessionLost: { atMs: number }[];
}

export class Consumer {
  readonly push = new Map<string, ValueCounts>();
  readonly modbus = new Map<string, ValueCounts>();
  readonly stats: ConsumerStats = {
    messages: 0, samples: 0, replayedMessages: 0, duplicateSamples: 0, modbusNotGood: 0,
    modbusMisattributed: 0, foreign: 0, connects: 0, sessionLost: [],
  };
  lastMessageAt = 0;
  /**
   * The highest `batch` received on any topic. Mosquitto keeps one publisher's order towards one
   * subscriber, and a batch's last message carries the position the gateway's cursor moves to, so
   * once this reaches the cursor of a lag-0 output, everything the output sent has arrived.
   */
  highestBatch = -1;
  private readonly maxBatch = new Map<string, number>();
  private client: MqttClient | null = null;

  constructor(private readonly url: string, private readonly topic: string, private readonly clientId: string, private readonly t0: number) {}

  /** Connects and resolves once the first subscription is acknowledged. */
  async start(): Promise<void> {
    const c = mqtt.connect(this.url, {
      clientId: this.clientId, clean: false, keepalive: 0, reconnectPeriod: 200, connectTimeout: 5000,
      resubscribe: false,
    });
    this.client = c;
    c.on("error", () => {}); // reconnects on its own; connection state is reported through connects
    c.on("message", (_t, payload) => this.onMessage(payload));
    let first = true;
    const subscribed = new Promise<void>((resolve, reject) => {
      c.on("connect", (connack) => {
        this.stats.connects++;
        if (!first && !connack.sessionPresent) this.stats.sessionLost.push({ atMs: Date.now() - this.t0 });
        const wasFirst = first;
        first = false;
        if (!connack.sessionPresent || wasFirst) {
          c.subscribe(this.topic, { qos: 1 }, (err) => {
            if (err && wasFirst) reject(err);
            else if (wasFirst) resolve();
          });
        }
      });
    });
    await subscribed;
  }

  private counts(map: Map<string, ValueCounts>, device: string): ValueCounts {
    let c = map.get(device);
    if (!c) { c = new ValueCounts(); map.set(device, c); }
    return c;
  }

  private onMessage(payload: Buffer): void {
    this.lastMessageAt = Date.now();
    this.stats.messages++;
    let msg: Telemetry;
    try {
      msg = JSON.parse(payload.toString("utf8")) as Telemetry;
    } catch {
      this.stats.foreign++;
      return;
    }
    const device = typeof msg.device === "string" ? msg.device : "";
    const batch = typeof msg.batch === "number" ? msg.batch : -1;
    if (batch > this.highestBatch) this.highestBatch = batch;
    if (batch <= (this.maxBatch.get(device) ?? -1)) this.stats.replayedMessages++;
    else this.maxBatch.set(device, batch);
    const isPush = device.startsWith("push-");
    const isPlc = device.startsWith("plc-");
    for (const s of msg.samples ?? []) {
      this.stats.samples++;
      if (isPush && typeof s.value === "number") {
        if (this.counts(this.push, device).add(s.value) > 0) this.stats.duplicateSamples++;
      } else if (isPlc) {
        if (s.quality !== "good" || typeof s.value !== "number") { this.stats.modbusNotGood++; continue; }
        const tag = typeof s.tag === "string" ? Number(s.tag.slice(1)) : NaN;
        if ((s.value & 15) !== tag || tag >= MODBUS_TAGS) this.stats.modbusMisattributed++;
        if (this.counts(this.modbus, device).add(s.value) > 0) this.stats.duplicateSamples++;
      } else {
        this.stats.foreign++;
      }
    }
  }

  /** Distinct Modbus samples received, all devices. */
  modbusDistinct(): number {
    let n = 0;
    for (const c of this.modbus.values()) for (let v = 0; v < c.size; v++) if (c.get(v) > 0) n++;
    return n;
  }

  async close(): Promise<void> {
    const c = this.client;
    this.client = null;
    if (c) await c.endAsync(true);
  }
}
