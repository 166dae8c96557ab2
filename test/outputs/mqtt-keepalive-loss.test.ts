// The MQTT output's connection dying by MQTT.js's keepalive timeout with many publishes in flight
// (a benchmark found it: 10,000 devices pushing while Mosquitto fell behind). MQTT.js's
// onKeepaliveTimeout runs `_flush`, which calls each in-flight publish's callback with an error;
// a session that ended the client from inside that callback (`client.end(true)`) ran `_flush` again
// inside the first, and the outer loop read an entry just deleted: "Cannot read properties of
// undefined (reading 'cb')", uncaught, and the gateway exited. Real parts: Mosquitto SIGSTOPped
// (until every thread is stopped) for longer than the output's keepalive, a real journal and the
// runtime's forwarder. Pass: nothing thrown or rejected unhandled, the session is reported lost,
// and once the broker runs again every sample reaches a subscriber (at least once).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as sparkplugPayload from "sparkplug-payload";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../src/core/logger.js";
import type { Sample } from "../../src/core/sample.js";
import type { Journal } from "../../src/journal/journal.js";
import { openJournal } from "../../src/journal/segment-journal.js";
import type { Output } from "../../src/core/output.js";
import { createMqttJsonOutput } from "../../src/outputs/mqtt/json-output.js";
import { createMqttSparkplugOutput } from "../../src/outputs/mqtt/sparkplug-output.js";
import type { MqttOutputConfig } from "../../src/outputs/mqtt/config.js";
import { Forwarder } from "../../src/runtime/forwarding/forwarder.js";
import { Metrics } from "../../src/runtime/status/metrics.js";
import { startMosquitto, type MosquittoBroker } from "../helpers/mosquitto.js";
import { collect, type Collector } from "../helpers/mqtt-sub.js";

const DEVICES = 300;
const spCodec = sparkplugPayload.get("spBv1.0")!;
const log = createLogger({ level: process.env.FLOORGATE_TEST_LOG ?? "silent" });
/** keepalive 1 s: MQTT.js declares the link dead ≤ 1.5 s after its last PINGRESP; the progress watchdog (60 s) never gets there first */
const TIMING = { keepaliveS: 1, writeTimeoutMs: 60_000, connectTimeoutMs: 2_000, closeTimeoutMs: 1_000 };

async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface Case {
  format: "json" | "sparkplug-b";
  topic: string;
  output(cfg: MqttOutputConfig): Output;
  /** the (device, value) pairs in one received message */
  samplesOf(topic: string, payload: Buffer): [string, number][];
}

const CASES: Case[] = [
  {
    format: "json",
    topic: "fg/ka/+/telemetry",
    output: (cfg) => createMqttJsonOutput(cfg, { id: "gw" }, TIMING),
    samplesOf: (_topic, payload) => {
      const m = JSON.parse(payload.toString("utf8")) as { device: string; samples: { value: number }[] };
      return m.samples.map((s) => [m.device, s.value]);
    },
  },
  {
    format: "sparkplug-b",
    topic: "spBv1.0/g/DDATA/gw/+",
    output: (cfg) => createMqttSparkplugOutput(cfg, { id: "gw", group: "g" }, TIMING),
    samplesOf: (topic, payload) => {
      const device = topic.split("/")[4]!;
      return (spCodec.decodePayload(payload).metrics ?? []).map((m) => [device, Number(m.value)]);
    },
  },
];

describe("mqtt output: keepalive timeout with publishes in flight", () => {
  let broker: MosquittoBroker;
  let dir: string;
  const journals: Journal[] = [];
  const collectors: Collector[] = [];
  const abort = new AbortController();
  const runs: Promise<void>[] = [];
  const uncaught: unknown[] = [];
  const unhandled: unknown[] = [];
  const onUncaught = (err: unknown): void => { uncaught.push(err); };
  const onUnhandled = (reason: unknown): void => { unhandled.push(reason); };

  beforeAll(async () => {
    process.on("uncaughtException", onUncaught);
    process.on("unhandledRejection", onUnhandled);
    // no cap on the subscriber's queue: the resend after the outage comes in one burst
    broker = await startMosquitto({ extraConfig: ["max_queued_messages 0"] });
    dir = await mkdtemp(join(tmpdir(), "fg-mqtt-keepalive-"));
  });
  afterAll(async () => {
    abort.abort();
    broker?.resume();
    await Promise.allSettled(runs);
    await Promise.allSettled(collectors.map((c) => c.close()));
    await Promise.allSettled(journals.map((j) => j.close()));
    await broker?.dispose();
    if (dir) await rm(dir, { recursive: true, force: true });
    process.off("uncaughtException", onUncaught);
    process.off("unhandledRejection", onUnhandled);
  });

  for (const c of CASES) {
    it(`${c.format}: the session is lost, not the process; every sample arrives once the broker is back`, async () => {
      uncaught.length = 0;
      unhandled.length = 0;
      const journal = await openJournal({ dir: join(dir, c.format), maxBytes: 64 * 1024 * 1024, overflow: "drop-oldest", fsync: "batch", fsyncIntervalMs: 10, outputs: ["cloud"] });
      journals.push(journal);
      const got = new Set<string>();
      const sub = await collect(broker.url, c.topic);
      collectors.push(sub);
      const seen = (): number => {
        got.clear();
        for (const m of sub.messages) for (const [d, v] of c.samplesOf(m.topic, m.payload)) got.add(`${d}/${v}`);
        return got.size;
      };

      const metrics = new Metrics({ deviceStates: () => [], journal: () => ({ bytes: 0, records: 0, segments: 0, lag: {}, torn: 0, writable: true }), outputsUp: () => ({}), samplesIn: () => [] });
      const cfg: MqttOutputConfig = { type: "mqtt", name: "cloud", url: broker.url, clientId: `ka-${c.format}-${process.pid}`, format: c.format, topicPrefix: "fg/ka", qos: 1, maxBatch: 500 };
      const fwd = new Forwarder(c.output(cfg), journal, metrics, log, { initialBackoffMs: 100, maxBackoffMs: 500 });
      runs.push(fwd.run(abort.signal));

      let value = 0;
      const round = (): Sample[] => {
        const ts = Date.UTC(2026, 10, 21, 8) + value;
        return Array.from({ length: DEVICES }, (_, i) => ({ device: `dev-${i}`, tag: "t", value: value++, quality: "good" as const, ts }));
      };
      // A session that works: one sample per device delivered.
      await journal.append(round());
      await sub.until(() => seen() >= DEVICES, 15_000);

      // Hung broker: one write over every device, DEVICES publishes awaiting their PUBACK.
      broker.pause();
      try {
        await journal.append(round());
        // MQTT.js's keepalive timeout ends the connection: its `_flush` fails every publish in flight
        await until(() => fwd.health().state !== "online", 10_000, "the forwarder reports the session lost");
        expect(fwd.health().error).toMatch(/^OUTPUT_UNAVAILABLE: .*publish failed: Connection closed/);
      } finally {
        broker.resume();
      }

      // The runtime reconnects and resends from its cursor: every sample of both rounds arrives.
      await sub.until(() => seen() >= 2 * DEVICES, 20_000);
      await until(() => journal.cursor("cloud") === journal.stats().newestPos, 10_000, "the cursor reaches the journal head");
      expect(fwd.health().state).toBe("online");
      expect(uncaught.map((e) => (e instanceof Error ? e.stack : String(e)))).toEqual([]);
      expect(unhandled).toEqual([]);
    });
  }
});
