// Pass line (field note "Broker down 10 min at 5,000 samples/s"): devices push 5,000 samples/s over
// HTTP (msgIds, each push retried until 202) into the built daemon while Mosquitto is down for
// FG_OUTAGE_S seconds (600 = the field note's 10 minutes; 25 in the suite); ingest goes on at that
// rate before, during and after the outage. Then: 0 acknowledged samples missing at the consumer;
// per device topic, `batch` strictly increasing within each gateway MQTT session, and a repeated
// `batch` only as a replay at the head of a session (after the gateway's live online status), the
// same message as before, above (highest batch seen for that device − the in-flight window); the
// backlog drains at ≥ 2× the ingest rate, measured at the consumer from the broker's restart to the
// arrival of the last sample acknowledged before it, while ingest continues at 5,000 samples/s.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt, { type MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_MAX_IN_FLIGHT, WRITE_MESSAGES } from "../../src/outputs/mqtt/json-output.js";
import { getJson, http, metric, startGateway, type GatewayProcess } from "../helpers/gateway-process.js";
import { startMosquitto, type MosquittoBroker } from "../helpers/mosquitto.js";
import type { TelemetryMessage } from "../helpers/pusher.js";
import { DEVICE_TOKEN, GATEWAY_ID, spineSetup } from "./spine-fixture.js";

const OUTAGE_S = Number(process.env.FG_OUTAGE_S ?? 25);
const RATE = 5_000;
const DEVICES = 10;
const PER_MESSAGE = 50;
/** each device sends one message of PER_MESSAGE samples every INTERVAL_MS: DEVICES × PER_MESSAGE × 1000 / INTERVAL_MS = RATE */
const INTERVAL_MS = (DEVICES * PER_MESSAGE * 1000) / RATE;
const MAX_BATCH = 200;
/**
 * The in-flight window in journal positions: the forwarder keeps at most DEFAULT_MAX_IN_FLIGHT writes
 * of at most MAX_BATCH × WRITE_MESSAGES samples outstanding, and after a lost session resends from its cursor,
 * which is at most that far behind anything the broker has seen.
 */
const WINDOW = DEFAULT_MAX_IN_FLIGHT * MAX_BATCH * WRITE_MESSAGES;
/** a push failing for this long (gateway gone) fails the test instead of retrying forever */
const PUSH_GIVE_UP_MS = 30_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * One 5G device on a fixed schedule: message k (values k·PER_MESSAGE …) is due at t0 + phase + k·INTERVAL_MS;
 * a late message goes out at once, so the average rate holds. Each message is retried with its msgId
 * until 202, so the acknowledged values of a device are always the prefix [0, acked).
 */
class PacedDevice {
  acked = 0;
  readonly sentAt: number[] = [];
  readonly ackedAt: number[] = [];
  readonly statuses = new Map<number, number>();

  constructor(readonly id: string) {}

  async run(base: string, t0: number, phase: number, stop: { now: boolean }): Promise<void> {
    for (let k = 0; !stop.now; k++) {
      const wait = t0 + phase + k * INTERVAL_MS - performance.now();
      if (wait > 0) await sleep(wait);
      if (stop.now) return;
      const first = k * PER_MESSAGE;
      const values: Record<string, number> = {};
      for (let i = 0; i < PER_MESSAGE; i++) values[`s${i}`] = first + i;
      const body = JSON.stringify({ msgId: `${this.id}-${first}`, values });
      this.sentAt[k] = performance.now();
      for (;;) {
        const r = await http("POST", `${base}/api/v1/ingest/${this.id}`, {
          body, headers: { "content-type": "application/json", authorization: `Bearer ${DEVICE_TOKEN}` },
        }).catch(() => ({ status: 0 }));
        this.statuses.set(r.status, (this.statuses.get(r.status) ?? 0) + 1);
        if (r.status === 202) break;
        if (performance.now() - this.sentAt[k]! > PUSH_GIVE_UP_MS) throw new Error(`${this.id}: message ${k} not acknowledged within ${PUSH_GIVE_UP_MS} ms (statuses ${JSON.stringify([...this.statuses])})`);
        await sleep(20);
      }
      this.ackedAt[k] = performance.now();
      this.acked = first + PER_MESSAGE;
    }
  }
}

/** What the consumer knows of one device's topic. */
interface DeviceView {
  /** received[v] = 1 once value v arrived */
  received: Uint8Array;
  /** values [0, prefix) all arrived */
  prefix: number;
  high: number;
  /** the gateway session (count of live online statuses) of this device's last telemetry message, and its batch */
  lastSession: number;
  lastBatch: number;
  /** the session in which this device got a batch above `high` (after that, a repeat is no head-of-session replay) */
  freshSession: number;
  /** batch → "first:count" of the message, to tell a replay of the same message from a different one */
  batches: Map<number, string>;
}

/**
 * The consumer: a persistent MQTT session on the whole gateway tree (so the gateway's live online
 * status, which opens each of its sessions, arrives in order with its telemetry), checking every
 * message as it arrives and keeping counters, not messages (a 10-minute run is millions of samples).
 */
class Consumer {
  private client: MqttClient | null = null;
  readonly views = new Map<string, DeviceView>();
  sessions = 0;
  distinct = 0;
  duplicates = 0;
  replays = 0;
  redeliveries = 0;
  readonly violations: string[] = [];
  maxLagMs = 0;
  maxLagAfterCatchUpMs = 0;
  /** set by the test: first arrivals are counted while draining */
  draining = false;
  drained = 0;
  onMessage: () => void = () => {};

  constructor(private readonly url: string, private readonly devices: Map<string, PacedDevice>, private readonly catchUp: { at: number | null }) {}

  async open(): Promise<void> {
    const c = mqtt.connect(this.url, { reconnectPeriod: 0, connectTimeout: 5000, clean: false, clientId: "fault-backlog-consumer" });
    c.on("error", () => {}); // surfaced through connect/subscribe below
    c.on("message", (topic, payload, packet) => this.handle(topic, payload, packet.retain, packet.dup));
    await new Promise<void>((resolve, reject) => {
      c.once("connect", () => resolve());
      c.once("close", () => reject(new Error(`consumer could not connect to ${this.url}`)));
    });
    await c.subscribeAsync(`floorgate/${GATEWAY_ID}/#`, { qos: 1 });
    this.client = c;
  }

  async reconnect(): Promise<void> {
    this.client?.end(true);
    this.client = null;
    await this.open();
  }

  async close(): Promise<void> {
    const c = this.client;
    this.client = null;
    if (c) await c.endAsync(true);
  }

  private violation(text: string): void {
    if (this.violations.length < 50) this.violations.push(text);
  }

  private handle(topic: string, payload: Buffer, retain: boolean, dup: boolean): void {
    const now = performance.now();
    if (topic === `floorgate/${GATEWAY_ID}/status`) {
      // A retained copy comes with every (re)subscription; only a live one opens a gateway session.
      if (!retain && (JSON.parse(payload.toString()) as { online: boolean }).online) this.sessions++;
      return;
    }
    if (!topic.endsWith("/telemetry")) return;
    const msg = JSON.parse(payload.toString()) as TelemetryMessage;
    const device = this.devices.get(msg.device);
    if (!device) { this.violation(`telemetry for an unknown device ${msg.device}`); return; }
    let v = this.views.get(msg.device);
    if (!v) {
      v = { received: new Uint8Array(1 << 16), prefix: 0, high: 0, lastSession: -1, lastBatch: 0, freshSession: -1, batches: new Map() };
      this.views.set(msg.device, v);
    }
    const values = msg.samples.map((s) => s.value as number);
    const shape = `${values[0]}:${values.length}`;
    if (msg.batch > v.high) {
      if (v.lastSession === this.sessions && msg.batch <= v.lastBatch) this.violation(`${msg.device}: batch ${msg.batch} after ${v.lastBatch} in one session`);
      v.high = msg.batch;
      v.freshSession = this.sessions;
      v.batches.set(msg.batch, shape);
    } else {
      const before = v.batches.get(msg.batch);
      if (before !== shape) this.violation(`${msg.device}: batch ${msg.batch} (${shape}) repeats a number seen with ${before ?? "nothing"}`);
      if (dup) {
        // Mosquitto resending to this consumer after the broker's restart, not the gateway replaying.
        this.redeliveries++;
      } else {
        this.replays++;
        if (v.freshSession === this.sessions) this.violation(`${msg.device}: replayed batch ${msg.batch} after new data in the same session`);
        if (v.lastSession === this.sessions && msg.batch <= v.lastBatch) this.violation(`${msg.device}: replayed batch ${msg.batch} after ${v.lastBatch} in one session`);
        if (msg.batch <= v.high - WINDOW) this.violation(`${msg.device}: replayed batch ${msg.batch} is more than the in-flight window (${WINDOW}) below ${v.high}`);
      }
    }
    if (!dup || msg.batch > v.lastBatch) { v.lastSession = this.sessions; v.lastBatch = msg.batch; }

    for (const value of values) {
      if (value >= v.received.length) {
        const grown = new Uint8Array(Math.max(v.received.length * 2, value + 1));
        grown.set(v.received);
        v.received = grown;
      }
      if (v.received[value]) { this.duplicates++; continue; }
      v.received[value] = 1;
      this.distinct++;
      if (this.draining) this.drained++;
      const k = Math.floor(value / PER_MESSAGE);
      // A sample can reach the consumer before its 202 reaches the device: its lag counts from the send.
      const lag = now - (device.ackedAt[k] ?? device.sentAt[k] ?? now);
      this.maxLagMs = Math.max(this.maxLagMs, lag);
      if (this.catchUp.at !== null && (device.ackedAt[k] ?? 0) > this.catchUp.at) this.maxLagAfterCatchUpMs = Math.max(this.maxLagAfterCatchUpMs, lag);
    }
    while (v.prefix < v.received.length && v.received[v.prefix]) v.prefix++;
    this.onMessage();
  }

  /** every acknowledged sample is here (cheap: runs on every message) */
  complete(devices: readonly PacedDevice[]): boolean {
    return devices.every((d) => (this.views.get(d.id)?.prefix ?? 0) >= d.acked);
  }

  /** acknowledged samples not (yet) at the consumer */
  missing(devices: readonly PacedDevice[]): number {
    let n = 0;
    for (const d of devices) {
      const v = this.views.get(d.id);
      for (let value = 0; value < d.acked; value++) if (!v?.received[value]) n++;
    }
    return n;
  }
}

describe(`fault: MQTT broker down ${OUTAGE_S} s at ${RATE} samples/s`, () => {
  let broker: MosquittoBroker;
  let setup: Awaited<ReturnType<typeof spineSetup>>;
  let gw: GatewayProcess | undefined;
  let consumer: Consumer | undefined;
  const mosquittoDb = mkdtempSync(join(tmpdir(), "floorgate-mosq-db-"));

  beforeAll(async () => {
    // Mosquitto keeps the consumer's session and queue across its restart: what the consumer misses
    // while it resubscribes is then the gateway's fault, not the test's.
    broker = await startMosquitto({
      extraConfig: ["max_queued_messages 0", "max_queued_bytes 0", "persistence true", `persistence_location ${mosquittoDb}/`],
    });
    setup = await spineSetup(broker.url, "maxBytes: 2GiB\n  fsync: batch\n  fsyncIntervalMs: 5", MAX_BATCH);
  });

  afterAll(async () => {
    await gw?.kill();
    await consumer?.close();
    await broker?.dispose();
    await setup?.cleanup();
    rmSync(mosquittoDb, { recursive: true, force: true });
  });

  it("delivers every acknowledged sample, replays only inside the in-flight window, and drains the backlog at ≥ 2× the ingest rate", async () => {
    const devices = Array.from({ length: DEVICES }, (_, i) => new PacedDevice(`dev-${i}`));
    const byId = new Map(devices.map((d) => [d.id, d]));
    const catchUp: { at: number | null } = { at: null };
    const c = new Consumer(broker.url, byId, catchUp);
    consumer = c;
    await c.open();
    gw = await startGateway(setup.configFile, setup.port);
    const base = gw.base;

    const stop = { now: false };
    const t0 = performance.now();
    const pushing = Promise.all(devices.map((d, i) => d.run(base, t0, (i * INTERVAL_MS) / DEVICES, stop)));
    pushing.catch(() => { stop.now = true; });
    const acked = (): number => devices.reduce((n, d) => n + d.acked, 0);
    const waitFor = (cond: () => boolean, timeoutMs: number, what: string): Promise<void> => new Promise((resolve, reject) => {
      const timer = setTimeout(() => { c.onMessage = () => {}; reject(new Error(`${what}: not within ${timeoutMs} ms (${c.missing(devices)} acknowledged samples missing)`)); }, timeoutMs);
      const check = (): void => { if (cond()) { clearTimeout(timer); c.onMessage = () => {}; resolve(); } };
      c.onMessage = check;
      check();
    });

    try {
      // Steady state first: samples flowing end to end.
      await waitFor(() => c.distinct >= 2 * RATE, 30_000, "first samples at the consumer");

      await broker.stop();
      const down = performance.now();
      const ackedAtDown = acked();
      // The outage is the stimulus, not a wait for readiness: it has to last this long.
      await sleep(OUTAGE_S * 1000);
      const restart = performance.now();
      const backlogTarget = devices.map((d) => d.acked);
      const ackedAtRestart = acked();
      const deliveredBefore = c.distinct;
      const backlog = ackedAtRestart - deliveredBefore;
      c.draining = true;
      await broker.start();
      await c.reconnect();
      await waitFor(() => devices.every((d, i) => (c.views.get(d.id)?.prefix ?? 0) >= backlogTarget[i]!), OUTAGE_S * 1000 + 120_000, "backlog drained");
      const caughtUp = performance.now();
      c.draining = false;
      catchUp.at = caughtUp;
      const drained = c.drained;

      // A few more seconds of live traffic after the catch-up, then everything acknowledged must arrive.
      await sleep(3000);
      stop.now = true;
      await pushing;
      const end = performance.now();
      const total = acked();
      await waitFor(() => c.complete(devices), 60_000, "every acknowledged sample at the consumer");

      const ingestRate = total / ((end - t0) / 1000);
      const drainS = (caughtUp - restart) / 1000;
      const drainRate = drained / drainS;
      const text = (await http("GET", `${base}/metrics`)).body;
      const health = await getJson<{ outputs: Record<string, { state: string; lag: number }> }>(`${base}/healthz`);
      const statuses = new Map<number, number>();
      for (const d of devices) for (const [s, n] of d.statuses) statuses.set(s, (statuses.get(s) ?? 0) + n);
      const figures = {
        outageS: Math.round((restart - down) / 100) / 10,
        ingested: total,
        ingestedDuringOutage: ackedAtRestart - ackedAtDown,
        ingestRate: Math.round(ingestRate),
        backlogAtRestart: backlog,
        drainS: Math.round(drainS * 10) / 10,
        drainedSamples: drained,
        drainRate: Math.round(drainRate),
        drainRatio: Math.round((drainRate / ingestRate) * 100) / 100,
        delivered: c.distinct,
        duplicateSamples: c.duplicates,
        replayedMessages: c.replays,
        brokerRedeliveries: c.redeliveries,
        gatewaySessions: c.sessions,
        maxLagS: Math.round(c.maxLagMs / 100) / 10,
        maxLagAfterCatchUpMs: Math.round(c.maxLagAfterCatchUpMs),
        pushStatuses: Object.fromEntries(statuses),
        reconnects: metric(text, "floorgate_output_reconnects_total", { output: "cloud" }),
      };
      console.log(`broker-outage-backlog figures: ${JSON.stringify(figures)}`);

      expect(c.missing(devices)).toBe(0);
      expect(c.distinct).toBe(total);
      expect(c.violations).toEqual([]);
      // The gateway stored each acknowledged sample once (retried msgIds deduplicated).
      expect(metric(text, "floorgate_samples_in_total")).toBe(total);
      // The load was real: 5,000 samples/s held before, during and after the outage.
      expect(ingestRate).toBeGreaterThan(0.9 * RATE);
      expect(figures.ingestedDuringOutage).toBeGreaterThan(0.9 * RATE * OUTAGE_S);
      expect(drainRate, JSON.stringify(figures)).toBeGreaterThanOrEqual(2 * ingestRate);
      expect(health.outputs.cloud!.state).toBe("online");
      expect(c.sessions).toBeGreaterThanOrEqual(2);
    } finally {
      stop.now = true;
      await pushing.catch(() => undefined);
    }
  }, OUTAGE_S * 2000 + 300_000);
});
