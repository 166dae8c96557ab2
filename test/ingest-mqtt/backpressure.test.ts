// The listener-wide in-flight cap (ingest.mqtt.maxInFlight) against real parts: MQTT.js devices
// over TCP, the real ingest, and a real segment journal (fsync: always) behind a gate that holds
// every store, as a journal that has fallen far behind would. The listener must stop reading
// sockets near the cap (the devices are slowed down by TCP, not buffered in the gateway), read
// again once the journal catches up, and every PUBACKed message must be in the journal.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MqttClient } from "mqtt";
import type { Sample } from "../../src/core/sample.js";
import { createLogger } from "../../src/core/logger.js";
import { DeviceTable } from "../../src/core/device-table.js";
import { createIngest, type Ingest, type IngestSink } from "../../src/ingest/ingest.js";
import type { RunningListener } from "../../src/ingest/listener.js";
import { startMqttListener } from "../../src/ingest/mqtt/listener.js";
import { openJournal, type SegmentJournal } from "../../src/journal/segment-journal.js";
import { RECEIVE_MAXIMUM } from "../../src/ingest/mqtt/session.js";
import { connectDevice } from "./fixture.js";

const CAP = 40;
const DEVICES = 12;
const PER_DEVICE = 150;
const TOKEN = "bp-token";

/** Counters that keep what they were told, by name and label value. */
function counter(): { inc(labels: Record<string, string | number | undefined>, n?: number): void; get(v: string): number } {
  const m = new Map<string, number>();
  return {
    inc(labels, n = 1) {
      const k = String(Object.values(labels)[0]);
      m.set(k, (m.get(k) ?? 0) + n);
    },
    get: (v) => m.get(v) ?? 0,
  };
}
const gauge = { set: () => undefined };

/** Lets every socket the kernel holds data for be read: a few turns of the event loop's poll phase. */
async function pollTurns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

describe("device MQTT listener: in-flight cap against a journal that falls behind", () => {
  let dir: string;
  let journal: SegmentJournal;
  let listener: RunningListener;
  let ingest: Ingest;
  let table: DeviceTable;
  const listeners: RunningListener[] = [];
  const clients: MqttClient[] = [];
  const disconnects = counter();
  const rejects = counter();
  const pauses = counter();
  // the gate: stores wait here until opened
  let open = false;
  let opened: () => void = () => undefined;
  let gate = new Promise<void>((r) => { opened = r; });
  const closeGate = (): void => {
    open = false;
    gate = new Promise<void>((r) => { opened = r; });
  };
  const openGate = (): void => {
    open = true;
    opened();
  };
  const start = async (maxInFlight: number): Promise<RunningListener> => {
    const l = await startMqttListener(
      { listen: "127.0.0.1:0", host: "127.0.0.1", port: 0, maxConnections: 100, connectsPerSec: 1000, maxInFlight, maxInFlightBytes: 64 * 2 ** 20 },
      { ingest, table, metrics: { ingestRejects: rejects, ingestConnections: gauge, ingestDisconnects: disconnects, ingestPauses: pauses }, log: createLogger({ level: "silent" }) },
    );
    listeners.push(l);
    return l;
  };
  /** Every value the journal holds. */
  const storedValues = async (): Promise<Set<number>> => {
    const stored = new Set<number>();
    for (let after = 0; ;) {
      const batch = await journal.read(after, 10_000);
      if (batch.length === 0) return stored;
      for (const x of batch) stored.add(x.value as number);
      after = batch[batch.length - 1]!.pos;
    }
  };
  let waiting = 0;
  let peak = 0;
  let received = 0;
  const deviceWaiting = new Map<string, number>();
  const devicePeak = new Map<string, number>();

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "floorgate-mqtt-bp-"));
    journal = await openJournal({ dir, maxBytes: 64 * 2 ** 20, overflow: "reject", fsync: "always", fsyncIntervalMs: 5, outputs: [] });
    const sink: IngestSink = {
      async push(device: string, samples: Sample[], msgIds: readonly string[]) {
        received++;
        peak = Math.max(peak, ++waiting);
        const mine = (deviceWaiting.get(device) ?? 0) + 1;
        deviceWaiting.set(device, mine);
        devicePeak.set(device, Math.max(devicePeak.get(device) ?? 0, mine));
        try {
          if (!open) await gate;
          await journal.append(samples, { keys: [...msgIds] });
        } finally {
          waiting--;
          deviceWaiting.set(device, deviceWaiting.get(device)! - 1);
        }
      },
    };
    const counters = { ingestRejects: rejects, ingestDevices: gauge, ingestDuplicates: counter(), ingestClockSkew: counter(), ingestDedupEvictions: counter() };
    table = new DeviceTable({});
    ingest = createIngest({ http: false, maxPayloadBytes: 4096, ratePerDevice: 100_000, maxDevices: 100, devices: [{ id: "bp-*", token: TOKEN }] }, sink, counters, Date.now, { devices: table });
    listener = await start(CAP);
  });
  afterAll(async () => {
    openGate();
    for (const c of clients) await c.endAsync(true).catch(() => undefined);
    for (const l of listeners) await l.close();
    await journal?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("stops reading near the cap while the journal holds, loses nothing PUBACKed once it catches up", async () => {
    const url = `mqtt://127.0.0.1:${listener.port}`;
    for (let i = 0; i < DEVICES; i++) {
      clients.push(await connectDevice(url, { protocolVersion: i % 2 === 0 ? 4 : 5, username: `bp-${i}`, password: TOKEN, clientId: `bp-${i}` }));
    }
    const acked: string[] = [];
    const sent: Promise<void>[] = [];
    let written = 0;
    clients.forEach((c, i) => {
      c.on("packetsend", (p) => { if (p.cmd === "publish") written++; });
      for (let n = 0; n < PER_DEVICE; n++) {
        const msgId = `bp-${i}-${n}`;
        sent.push(c.publishAsync(`devices/bp-${i}/telemetry`, JSON.stringify({ msgId, values: { seq: i * 10_000 + n } }), { qos: 1 }).then(() => { acked.push(msgId); }));
      }
    });
    // Every publish is in the kernel (loopback) once its client wrote it; then the listener has
    // had every chance to read: it must have stopped near the cap.
    while (written < DEVICES * PER_DEVICE) await pollTurns(1);
    await pollTurns(20);
    // Packets of a chunk already read wait in their session, not in the journal's queue: the cap is exact.
    expect(peak).toBe(CAP);
    expect(received).toBe(CAP);
    expect(received).toBeLessThan((DEVICES * PER_DEVICE) / 4);
    expect(acked).toHaveLength(0);

    // The journal catches up: reading resumes below the low-water mark, repeatedly, and the cap holds throughout.
    openGate();
    await Promise.all(sent);
    expect(peak).toBe(CAP);
    expect(Math.max(...devicePeak.values())).toBeLessThanOrEqual(RECEIVE_MAXIMUM);
    expect(acked).toHaveLength(DEVICES * PER_DEVICE);
    expect(received).toBe(DEVICES * PER_DEVICE);

    const stored = await storedValues();
    const missing = acked.filter((id) => {
      const [, dev, n] = id.split("-");
      return !stored.has(Number(dev) * 10_000 + Number(n));
    });
    expect(missing).toEqual([]);
    expect(disconnects.get("timeout")).toBe(0);
  });

  it("holds one connection at RECEIVE_MAXIMUM awaiting the journal when the listener-wide cap is far", async () => {
    closeGate();
    const solo = await start(100_000);
    const c = await connectDevice(`mqtt://127.0.0.1:${solo.port}`, { protocolVersion: 5, username: "bp-solo", password: TOKEN, clientId: "bp-solo" });
    clients.push(c);
    const before = received;
    const N = 300;
    let written = 0;
    c.on("packetsend", (p) => { if (p.cmd === "publish") written++; });
    const sent: Promise<unknown>[] = [];
    for (let n = 0; n < N; n++) sent.push(c.publishAsync("devices/bp-solo/telemetry", JSON.stringify({ msgId: `solo-${n}`, values: { seq: 900_000 + n } }), { qos: 1 }));
    while (written < N) await pollTurns(1);
    await pollTurns(20);
    expect(devicePeak.get("bp-solo")).toBe(RECEIVE_MAXIMUM);
    expect(received - before).toBe(RECEIVE_MAXIMUM);
    openGate();
    await Promise.all(sent);
    expect(devicePeak.get("bp-solo")).toBe(RECEIVE_MAXIMUM);
    const stored = await storedValues();
    expect(Array.from({ length: N }, (_, n) => 900_000 + n).filter((v) => !stored.has(v))).toEqual([]);
  });
});
