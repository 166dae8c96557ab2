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
import type { SampleColumns } from "../../src/core/sample-columns.js";
import { createLogger } from "../../src/core/logger.js";
import { DeviceTable } from "../../src/core/device-table.js";
import { createIngest, type Ingest, type IngestSink } from "../../src/ingest/ingest.js";
import type { RunningListener } from "../../src/ingest/listener.js";
import { startMqttListener } from "../../src/ingest/mqtt/listener.js";
import { openJournal, type SegmentJournal } from "../../src/journal/segment-journal.js";
import { RECEIVE_MAXIMUM } from "../../src/ingest/mqtt/session.js";
import { isFloorgateError } from "../../src/core/errors.js";
import { closedByGateway, connectDevice, counter, gauge } from "./fixture.js";

const CAP = 40;
const DEVICES = 12;
const PER_DEVICE = 150;
const TOKEN = "bp-token";

/** Turns the event loop until `ok` holds; fails after 10 s. */
async function until(ok: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within 10 s`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Lets every socket the kernel holds data for be read: a few turns of the event loop's poll phase. */
async function pollTurns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

describe("device MQTT listener: in-flight cap against a journal that falls behind", () => {
  let dir: string;
  let journal: SegmentJournal;
  /** a real journal filled to its cap under `overflow: reject` */
  let fullJournal: SegmentJournal;
  let listener: RunningListener;
  let ingest: Ingest;
  let table: DeviceTable;
  const listeners: RunningListener[] = [];
  const clients: MqttClient[] = [];
  const disconnects = counter();
  const rejects = counter();
  const pauses = counter();
  // the gate: stores wait here until opened (all) or let through a few at a time
  let open = false;
  let held: (() => void)[] = [];
  const closeGate = (): void => {
    open = false;
  };
  const openGate = (): void => {
    open = true;
    for (const r of held.splice(0)) r();
  };
  /** Lets the `n` stores waiting longest through the gate. */
  const letThrough = (n: number): void => {
    for (const r of held.splice(0, n)) r();
  };
  const logLines: string[] = [];
  const start = async (maxInFlight: number, maxInFlightBytes = 64 * 2 ** 20, sweepMs?: number): Promise<RunningListener> => {
    const l = await startMqttListener(
      { listen: "127.0.0.1:0", host: "127.0.0.1", port: 0, maxConnections: 100, connectsPerSec: 1000, maxInFlight, maxInFlightBytes },
      {
        ingest, table, metrics: { ingestRejects: rejects, ingestConnections: gauge, ingestDisconnects: disconnects, ingestPauses: pauses },
        log: createLogger({ level: "info", destination: { write: (line: string) => { logLines.push(line); } } }),
      },
      { quietMs: 100, ...(sweepMs ? { sweepMs } : {}) },
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
  /** the device of every store, in the order they reached the journal's queue */
  const arrivals: string[] = [];
  const deviceWaiting = new Map<string, number>();
  const devicePeak = new Map<string, number>();

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "floorgate-mqtt-bp-"));
    journal = await openJournal({ dir, maxBytes: 64 * 2 ** 20, overflow: "reject", fsync: "always", fsyncIntervalMs: 5, outputs: [] });
    // an output that never reads keeps every segment; filled until not even a one-sample push fits
    fullJournal = await openJournal({ dir: join(dir, "full"), maxBytes: 256 * 1024, segmentBytes: 64 * 1024, overflow: "reject", fsync: "batch", fsyncIntervalMs: 5, outputs: ["cloud"] });
    for (const size of [500, 20, 1]) {
      for (let i = 0; ; i++) {
        const batch = Array.from({ length: size }, (): Sample => ({ device: "bp-full-0", tag: "t", value: 1, quality: "good", ts: Date.now() }));
        if (await fullJournal.append(batch).then(() => false, (err: unknown) => isFloorgateError(err, "JOURNAL_FULL"))) break;
        if (i > 10_000) throw new Error("the journal never filled");
      }
    }
    const sink: IngestSink = {
      async push(device: string, samples: SampleColumns, msgIds: readonly string[]) {
        received++;
        arrivals.push(device);
        peak = Math.max(peak, ++waiting);

        const mine = (deviceWaiting.get(device) ?? 0) + 1;
        deviceWaiting.set(device, mine);
        devicePeak.set(device, Math.max(devicePeak.get(device) ?? 0, mine));
        try {
          if (!open) await new Promise<void>((r) => held.push(r));
          await (device.startsWith("bp-full") ? fullJournal : journal).append(samples, { keys: [...msgIds] });
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
    await fullJournal?.close();
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
    // visible: what awaits the journal, every connection held, one pause counted and logged
    const held = listener.load();
    expect(held).toMatchObject({ inFlightMessages: CAP, paused: true, pausedConnections: DEVICES });
    expect(held.inFlightBytes).toBeGreaterThan(CAP * 20);
    expect(pauses.get("messages")).toBe(1);
    const reachedLines = (): number => logLines.filter((l) => l.includes("reached ingest.mqtt.maxInFlight")).length;
    const caughtUpLines = (): number => logLines.filter((l) => l.includes("the journal caught up")).length;
    expect(reachedLines()).toBe(1);

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
    // resumed a slice at a time: the cap was hit again and again, yet the log has one line each way
    expect(pauses.get("messages")).toBeGreaterThan(5);
    await until(() => !listener.load().paused && caughtUpLines() === 1, "free again, logged once");
    expect(listener.load()).toMatchObject({ inFlightMessages: 0, inFlightBytes: 0, pausedConnections: 0, paused: false });
    expect(reachedLines()).toBe(1);
  });

  it("resumes in slices, round robin: a quarter of the cap stored lets one device in at a time, each in turn", async () => {
    closeGate();
    const rr = await start(CAP);
    const N = 12;
    const url = `mqtt://127.0.0.1:${rr.port}`;
    const devs: MqttClient[] = [];
    for (let i = 0; i < N; i++) devs.push(await connectDevice(url, { protocolVersion: i % 2 === 0 ? 5 : 4, username: `bp-rr-${i}`, password: TOKEN, clientId: `bp-rr-${i}` }));
    clients.push(...devs);
    let written = 0;
    const sent: Promise<unknown>[] = [];
    devs.forEach((c, i) => {
      c.on("packetsend", (p) => { if (p.cmd === "publish") written++; });
      // more than a slice per device for every round below: a device never runs dry
      for (let n = 0; n < 60; n++) sent.push(c.publishAsync(`devices/bp-rr-${i}/telemetry`, JSON.stringify({ msgId: `rr-${i}-${n}`, values: { seq: 500_000 + i * 1000 + n } }), { qos: 1 }));
    });
    while (written < N * 60) await pollTurns(1);
    await pollTurns(20);
    expect(rr.load()).toMatchObject({ inFlightMessages: CAP, paused: true });
    const served: string[] = [];
    for (let round = 0; round < N; round++) {
      const before = arrivals.length;
      letThrough(CAP / 4); // down to RESUME_AT (3/4): room for CAP/4, less than one device's window
      await until(() => arrivals.length >= before + CAP / 4, `round ${round}: the cap filled again`);
      await pollTurns(20);
      expect(arrivals.length, "never past the cap").toBe(before + CAP / 4);
      const from = new Set(arrivals.slice(before));
      expect([...from], `round ${round}: one slice of one device`).toHaveLength(1);
      served.push([...from][0]!);
    }
    expect(new Set(served).size, `every device in turn before any twice: ${served.join(" ")}`).toBe(N);
    openGate();
    await Promise.all(sent);
    expect(peak).toBe(CAP);
  });

  it("holds devices at maxInFlightBytes too: large payloads cannot fill memory", async () => {
    closeGate();
    const payload = (i: number, n: number): string => JSON.stringify({ msgId: `by-${i}-${String(n).padStart(3, "0")}`, values: { seq: 700_000 + i * 1000 + n, pad: "x".repeat(1000) } });
    const P = Buffer.byteLength(payload(0, 0));
    const B = Math.floor(8.5 * P); // the 9th message reaches it
    const byBytes = await start(100_000, B);
    const before = received;
    const devs: MqttClient[] = [];
    for (let i = 0; i < 4; i++) devs.push(await connectDevice(`mqtt://127.0.0.1:${byBytes.port}`, { protocolVersion: 5, username: `bp-by-${i}`, password: TOKEN, clientId: `bp-by-${i}` }));
    clients.push(...devs);
    let written = 0;
    const sent: Promise<unknown>[] = [];
    devs.forEach((c, i) => {
      c.on("packetsend", (p) => { if (p.cmd === "publish") written++; });
      for (let n = 0; n < 20; n++) sent.push(c.publishAsync(`devices/bp-by-${i}/telemetry`, payload(i, n), { qos: 1 }));
    });
    while (written < 80) await pollTurns(1);
    await pollTurns(20);
    expect(received - before).toBe(9);
    expect(byBytes.load()).toMatchObject({ inFlightMessages: 9, inFlightBytes: 9 * P, paused: true });
    expect(pauses.get("bytes")).toBe(1);
    openGate();
    await Promise.all(sent);
    expect(received - before).toBe(80);
    const stored = await storedValues();
    expect(Array.from({ length: 80 }, (_, k) => 700_000 + Math.floor(k / 20) * 1000 + (k % 20)).filter((v) => !stored.has(v))).toEqual([]);
  });

  it("shows a held device offline as soon as it disconnects, though its socket is not read", async () => {
    closeGate();
    const l = await start(5, undefined, 50);
    const url = `mqtt://127.0.0.1:${l.port}`;
    const busy = await connectDevice(url, { protocolVersion: 5, username: "bp-eof-busy", password: TOKEN, clientId: "bp-eof-busy" });
    const quiet3 = await connectDevice(url, { protocolVersion: 4, username: "bp-eof-q3", password: TOKEN, clientId: "bp-eof-q3" });
    const quiet5 = await connectDevice(url, { protocolVersion: 5, username: "bp-eof-q5", password: TOKEN, clientId: "bp-eof-q5" });
    clients.push(busy, quiet3, quiet5);
    const sent = Array.from({ length: 5 }, (_, n) => busy.publishAsync("devices/bp-eof-busy/telemetry", JSON.stringify({ msgId: `eof-${n}`, values: { seq: 800_000 + n } }), { qos: 1 }));
    await until(() => l.load().paused, "the cap holds every device");
    const state = (id: string): { state: string; error: string | null } | undefined => table.states().find((d) => d.id === id);
    quiet3.end(); // DISCONNECT, then FIN
    quiet5.stream.end(); // a FIN without DISCONNECT
    await until(() => state("bp-eof-q3")?.state === "offline" && state("bp-eof-q5")?.state === "offline", "both offline while held");
    expect(state("bp-eof-q3")!.error).toBe("disconnected");
    expect(state("bp-eof-q5")!.error).toBe("connection lost");
    expect(l.load()).toMatchObject({ paused: true, inFlightMessages: 5, connections: 1 });
    openGate();
    await Promise.all(sent);
  });

  it("journal full under overflow: reject — MQTT 5 gets PUBACK 0x97 and keeps its connection; MQTT 3.1.1 no PUBACK but a disconnect", async () => {
    openGate();
    const url = `mqtt://127.0.0.1:${listener.port}`;
    const v5 = await connectDevice(url, { protocolVersion: 5, username: "bp-full-5", password: TOKEN, clientId: "bp-full-5" });
    const v3 = await connectDevice(url, { protocolVersion: 4, username: "bp-full-4", password: TOKEN, clientId: "bp-full-4" });
    clients.push(v5, v3);
    const rejected = rejects.get("journal_full");
    await expect(v5.publishAsync("devices/bp-full-5/telemetry", JSON.stringify({ values: { t: 1 } }), { qos: 1 })).rejects.toThrow(/Quota exceeded/i);
    await expect(v5.publishAsync("devices/bp-full-5/telemetry", JSON.stringify({ values: { t: 2 } }), { qos: 1 })).rejects.toThrow(/Quota exceeded/i);
    expect(v5.connected).toBe(true);
    const closed = closedByGateway(v3);
    let pubacked = false;
    v3.publish("devices/bp-full-4/telemetry", JSON.stringify({ values: { t: 3 } }), { qos: 1 }, (err) => { if (!err) pubacked = true; });
    await closed;
    expect(pubacked).toBe(false);
    expect(rejects.get("journal_full")).toBe(rejected + 3);
    expect(disconnects.get("journal_full")).toBe(1);
    v3.end(true);
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
