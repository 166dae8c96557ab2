// InfluxDB down for a while and back, while MQTT carries on (field note "Influx down 30 min while
// MQTT is up: MQTT lag stays under 1 s", shortened): one journal, two forwarders (the runtime's own)
// — an MQTT json output to Mosquitto and the influx output to influxd — and samples appended at a
// steady 2,000/s. influxd is SIGKILLed for OUTAGE_MS and started again on its data. Pass: every
// MQTT sample arrives within 1 s of its append, before, during and after the outage; the influx
// output shows offline during it, then drains; every sample is in InfluxDB exactly once with its
// value and time.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt, { type MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../src/core/logger.js";
import type { Sample } from "../../src/core/sample.js";
import type { Journal } from "../../src/journal/journal.js";
import { openJournal } from "../../src/journal/segment-journal.js";
import { createInfluxOutput } from "../../src/outputs/influx/influx-output.js";
import { createMqttJsonOutput } from "../../src/outputs/mqtt/json-output.js";
import { Forwarder } from "../../src/runtime/forwarding/forwarder.js";
import { Metrics } from "../../src/runtime/status/metrics.js";
import { startInfluxd, rowsOf, type InfluxServer } from "../helpers/influxdb.js";
import { startMosquitto, type MosquittoBroker } from "../helpers/mosquitto.js";

const RATE = 2_000;
const TICK_MS = 20;
const PER_TICK = (RATE * TICK_MS) / 1000;
const BEFORE_MS = 1_500;
const OUTAGE_MS = 4_000;
const AFTER_MS = 1_500;
const TAGS = 10;
const log = createLogger({ level: process.env.FLOORGATE_TEST_LOG ?? "silent" });

describe("influx output: InfluxDB down for a while and back, MQTT carrying on", () => {
  let influx: InfluxServer;
  let broker: MosquittoBroker;
  let dir: string;
  let journal: Journal;
  let sub: MqttClient;
  const abort = new AbortController();
  const runs: Promise<void>[] = [];

  beforeAll(async () => {
    [influx, broker] = await Promise.all([startInfluxd(), startMosquitto()]);
    dir = await mkdtemp(join(tmpdir(), "fg-influx-outage-"));
    journal = await openJournal({ dir, maxBytes: 256 * 1024 * 1024, overflow: "drop-oldest", fsync: "batch", fsyncIntervalMs: 10, outputs: ["cloud", "historian"] });
  });
  afterAll(async () => {
    abort.abort();
    await Promise.allSettled(runs);
    sub?.end(true);
    await journal?.close();
    await Promise.allSettled([influx?.dispose(), broker?.dispose()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("every sample lands in InfluxDB once; MQTT lag stays under 1 s throughout", async () => {
    const appendedAt = new Map<number, number>();
    const mqttLatency: number[] = [];
    let mqttSamples = 0;
    sub = mqtt.connect(broker.url, { reconnectPeriod: 0, clientId: `outage-sub-${process.pid}` });
    sub.on("error", () => {});
    sub.on("message", (_t, payload) => {
      const now = performance.now();
      const msg = JSON.parse(payload.toString()) as { samples: { value: number }[] };
      for (const s of msg.samples) {
        mqttSamples++;
        mqttLatency.push(now - appendedAt.get(s.value)!);
      }
    });
    await new Promise<void>((resolve, reject) => { sub.once("connect", () => resolve()); sub.once("close", () => reject(new Error("subscriber could not connect"))); });
    await sub.subscribeAsync("fg/outage/+/telemetry", { qos: 1 });

    const metrics = new Metrics({ deviceStates: () => [], journal: () => ({ bytes: 0, records: 0, segments: 0, lag: {}, torn: 0, writable: true }), outputsUp: () => ({}), samplesIn: () => [] });
    const cloud = new Forwarder(
      createMqttJsonOutput({ type: "mqtt", name: "cloud", url: broker.url, clientId: `outage-gw-${process.pid}`, format: "json", topicPrefix: "fg/outage", qos: 1, maxBatch: 500 }, { id: "gw" }),
      journal, metrics, log,
    );
    const historian = new Forwarder(
      createInfluxOutput({ type: "influx", name: "historian", url: influx.url, database: "outage", maxBatch: 5000 }, { id: "gw" }, { connectTimeoutMs: 2000, writeTimeoutMs: 3000 }),
      journal, metrics, log, { maxBackoffMs: 1000 },
    );
    runs.push(cloud.run(abort.signal), historian.run(abort.signal));

    const t0 = Date.UTC(2026, 10, 21, 8);
    let seq = 0;
    const start = performance.now();
    const states = new Set<string>();
    let killedAt = 0;
    let restarted = false;
    const phases = { killed: false };
    while (performance.now() - start < BEFORE_MS + OUTAGE_MS + AFTER_MS) {
      const due = start + Math.floor((seq / PER_TICK) + 1) * TICK_MS;
      const batch: Sample[] = [];
      const now = performance.now();
      for (let i = 0; i < PER_TICK; i++, seq++) {
        appendedAt.set(seq, now);
        batch.push({ device: `line-${seq % 2}`, tag: `t${seq % TAGS}`, value: seq, quality: "good", ts: t0 + seq });
      }
      await journal.append(batch);
      const elapsed = performance.now() - start;
      if (!phases.killed && elapsed >= BEFORE_MS) {
        phases.killed = true;
        await influx.kill();
        killedAt = performance.now();
      } else if (phases.killed && !restarted && performance.now() - killedAt >= OUTAGE_MS) {
        restarted = true;
        await influx.start();
      }
      if (phases.killed && !restarted) states.add(historian.health().state);
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    const total = seq;
    expect(restarted).toBe(true);
    // The historian noticed the outage.
    expect([...states].some((s) => s === "offline" || s === "connecting")).toBe(true);

    // Both drain; nothing dropped.
    const deadline = Date.now() + 20_000;
    while ((journal.cursor("historian") < total || journal.cursor("cloud") < total) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(journal.cursor("cloud")).toBe(total);
    expect(journal.cursor("historian")).toBe(total);
    expect(historian.health()).toMatchObject({ state: "online", dropped: 0, lag: 0 });

    // MQTT: every sample, each within 1 s of its append (p100), outage or not.
    const mqttDeadline = Date.now() + 5000;
    while (mqttSamples < total && Date.now() < mqttDeadline) await new Promise((r) => setTimeout(r, 20));
    expect(mqttSamples).toBe(total);
    const sorted = [...mqttLatency].sort((a, b) => a - b);
    const p99 = sorted[Math.floor(sorted.length * 0.99)]!;
    const max = sorted[sorted.length - 1]!;
    console.log(`influx outage ${OUTAGE_MS} ms, ${total} samples at ${RATE}/s: MQTT latency p99 ${p99.toFixed(0)} ms, max ${max.toFixed(0)} ms; historian reconnects ${await metrics.registry.getSingleMetricAsString("floorgate_output_reconnects_total").then((t) => /output="historian"} (\d+)/.exec(t)?.[1] ?? "0")}`);
    expect(max).toBeLessThan(1000);

    // InfluxDB: every sample exactly once, with its value and time.
    const got = new Map<number, number>();
    for (const device of ["line-0", "line-1"]) {
      for (const row of rowsOf(await influx.query(`SELECT * FROM "${device}"`, "outage"))) {
        for (let k = 0; k < TAGS; k++) {
          const v = row[`t${k}`];
          if (typeof v === "number") {
            expect(got.has(v), `sample ${v} twice`).toBe(false);
            got.set(v, row.time as number);
          }
        }
      }
    }
    expect(got.size).toBe(total);
    for (const [v, time] of got) if (time !== t0 + v) throw new Error(`sample ${v} at ${time}, expected ${t0 + v}`);
  }, 60_000);
});
