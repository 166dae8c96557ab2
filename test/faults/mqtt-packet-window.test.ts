import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MqttOutputConfig } from "../../src/outputs/mqtt/config.js";
import { createLogger } from "../../src/core/logger.js";
import type { Sample } from "../../src/core/sample.js";
import type { Journal } from "../../src/journal/journal.js";
import { openJournal } from "../../src/journal/segment-journal.js";
import { PacketIdProvider } from "../../src/outputs/mqtt/client.js";
import { MAX_MESSAGES_IN_FLIGHT, createMqttJsonOutput } from "../../src/outputs/mqtt/json-output.js";
import { Forwarder } from "../../src/runtime/forwarding/forwarder.js";
import { Metrics } from "../../src/runtime/status/metrics.js";
import { startMosquitto, type MosquittoBroker } from "../helpers/mosquitto.js";
import { collect, parseJson, type Collector } from "../helpers/mqtt-sub.js";
import { startAckProxy, type AckProxy } from "../outputs/mqtt-ack-proxy.js";

/**
 * MQTT has 65,535 packet ids and MQTT.js hands them out round-robin without checking which are
 * still awaiting a PUBACK. With thousands of devices one journal batch becomes thousands of messages
 * (one per device), so a window counted in writes let far more publishes be in flight than ids exist.
 * Here a proxy in front of a real Mosquitto withholds every PUBACK while the forwarder drains a
 * backlog over 6,000 devices: the publishes in flight must stop at the message bound, never share an
 * id, and once the PUBACKs flow every sample must arrive and the cursor reach the end.
 */
const DEVICES = 6_000;
const ROUNDS = 3;
const PREFIX = "fg/window";

const metrics = (): Metrics => new Metrics({
  deviceStates: () => [], journal: () => ({ bytes: 0, records: 0, segments: 0, lag: {}, torn: 0, writable: true }),
  outputsUp: () => ({}), samplesIn: () => [],
});

describe("MQTT output: publishes in flight are bounded in messages, not writes", () => {
  let broker: MosquittoBroker;
  let proxy: AckProxy;
  let sub: Collector;
  let dir: string;
  let journal: Journal;

  beforeAll(async () => {
    // The subscriber gets 18,000 messages in a burst: Mosquitto would drop past 1,000 queued.
    broker = await startMosquitto({ extraConfig: ["max_queued_messages 0", "max_queued_bytes 0"] });
    proxy = await startAckProxy(broker.port);
    sub = await collect(broker.url, `${PREFIX}/+/telemetry`);
    dir = await mkdtemp(join(tmpdir(), "fg-window-"));
    journal = await openJournal({ dir, maxBytes: 256 * 1024 * 1024, overflow: "drop-oldest", fsync: "batch", fsyncIntervalMs: 1, outputs: ["cloud"] });
  });

  afterAll(async () => {
    await sub?.close();
    await journal?.close();
    await proxy?.close();
    await broker?.dispose();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("the packet id provider never hands out an id still in flight, and reuses ids round-robin", () => {
    const p = new PacketIdProvider();
    const held = p.allocate()!; // never freed, like a PUBACK the broker withholds
    const seen = new Set<number>([held]);
    let reused = 0;
    for (let n = 0; n < 200_000; n++) {
      const id = p.allocate()!;
      if (id === held) reused++;
      seen.add(id);
      p.deallocate(id);
    }
    expect(reused).toBe(0);
    expect(seen.size).toBe(65_535);
    expect(p.size).toBe(1);
  });

  it("holds at most MAX_MESSAGES_IN_FLIGHT unacknowledged publishes over 6,000 devices, with distinct ids, then delivers everything", async () => {
    // Round-robin over the devices, as a fleet pushing together journals: a 4,000-sample batch
    // holds 4,000 devices, so each write is 4,000 messages and the 18,000-sample backlog (plus 6,000
    // retained device statuses) is 24,000 publishes: a window of 64 writes would send them all.
    for (let r = 0; r < ROUNDS; r++) {
      const batch: Sample[] = [];
      for (let d = 0; d < DEVICES; d++) batch.push({ device: `dev-${d}`, tag: "t", value: r * DEVICES + d, quality: "good", ts: 1_700_000_000_000 + r });
      await journal.append(batch);
    }
    const last = journal.stats().outputs.cloud!.lag;
    expect(last).toBe(DEVICES * ROUNDS);

    const cfg: MqttOutputConfig = {
      type: "mqtt", name: "cloud", url: `mqtt://127.0.0.1:${proxy.port}`, clientId: `fg-window-${process.pid}`,
      format: "json", topicPrefix: PREFIX, qos: 1, maxBatch: 500,
    };
    // The PUBACKs are held for a few seconds below; the watchdog must not end the session meanwhile.
    const output = createMqttJsonOutput(cfg, { id: "gw" }, { writeTimeoutMs: 30_000 });
    const fwd = new Forwarder(output, journal, metrics(), createLogger({ level: process.env.FLOORGATE_TEST_LOG ?? "silent" }));
    for (let d = 0; d < DEVICES; d++) fwd.deviceStatus(`dev-${d}`, "online", null, 1_700_000_000_000);

    // The retained online status is acknowledged (it is part of connecting); every later PUBACK is held.
    proxy.holdAfter(1);
    const abort = new AbortController();
    const running = fwd.run(abort.signal);
    const received = countingSamples(sub);
    try {
      // The window fills to its bound and stops there: wait until it is full, then for quiet.
      await expect.poll(() => proxy.inFlight, { timeout: 30_000, interval: 20 }).toBeGreaterThanOrEqual(MAX_MESSAGES_IN_FLIGHT);
      await expect.poll(() => performance.now() - proxy.lastPublishAt, { timeout: 10_000, interval: 50 }).toBeGreaterThan(750);
      expect(proxy.maxInFlight).toBe(MAX_MESSAGES_IN_FLIGHT);
      expect(MAX_MESSAGES_IN_FLIGHT).toBeLessThan(65_535 / 4);
      expect(proxy.held).toBe(MAX_MESSAGES_IN_FLIGHT);
      expect(proxy.duplicateIds).toBe(0);
      expect(journal.cursor("cloud")).toBe(0);

      proxy.release();
      await sub.until(() => received() >= DEVICES * ROUNDS, 60_000);
      await expect.poll(() => journal.cursor("cloud"), { timeout: 20_000, interval: 20 }).toBe(DEVICES * ROUNDS);
      expect(proxy.maxInFlight).toBe(MAX_MESSAGES_IN_FLIGHT);
      expect(proxy.duplicateIds).toBe(0);
      // the online status, 6,000 device statuses, and one message per device per write (a write of
      // at most 4,000 samples never holds a device twice here)
      expect(proxy.publishes).toBe(1 + DEVICES + DEVICES * ROUNDS);
      const values = new Set<number>();
      for (const m of sub.messages) for (const s of (parseJson(m) as { samples: { value: number }[] }).samples) values.add(s.value);
      expect(values.size).toBe(DEVICES * ROUNDS);
      expect(fwd.health()).toMatchObject({ state: "online", lag: 0, sent: DEVICES * ROUNDS });
    } finally {
      abort.abort();
      await running;
    }
  }, 120_000);
});

/** Samples received so far, counted as messages arrive (each payload parsed once). */
function countingSamples(sub: Collector): () => number {
  let seen = 0;
  let n = 0;
  return () => {
    for (; seen < sub.messages.length; seen++) n += (parseJson(sub.messages[seen]!) as { samples: unknown[] }).samples.length;
    return n;
  };
}
