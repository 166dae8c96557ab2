// The listener's accept path, in-process against MQTT.js devices: a burst of connections is started
// at most STARTS_PER_TURN per event-loop turn (so timers, the Modbus pollers', run between slices),
// every device still gets in; a connection that never sends its CONNECT is closed after the connect
// timeout and counted; a wall clock that steps times nobody out and refuses no connect.
import { connect as tcpConnect, type Socket } from "node:net";
import mqttPacket from "mqtt-packet";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../src/core/logger.js";
import { DeviceTable } from "../../src/core/device-table.js";
import { createIngest, type IngestSink } from "../../src/ingest/ingest.js";
import type { RunningListener } from "../../src/ingest/listener.js";
import { STARTS_PER_TURN, startMqttListener } from "../../src/ingest/mqtt/listener.js";
import { HOUR, stepWallClock } from "../helpers/wall-clock.js";
import { counter, gauge } from "./fixture.js";

const TOKEN = "accept-token";
const BURST = 200;

describe("device MQTT listener: accept path", () => {
  let listener: RunningListener;
  let table: DeviceTable;
  const rejects = counter();

  beforeAll(async () => {
    const sink: IngestSink = { push: async () => undefined };
    const counters = { ingestRejects: rejects, ingestDevices: gauge, ingestDuplicates: counter(), ingestClockSkew: counter(), ingestDedupEvictions: counter() };
    table = new DeviceTable({});
    const ingest = createIngest({ http: false, maxPayloadBytes: 4096, ratePerDevice: 1000, maxDevices: 1000, devices: [{ id: "acc-*", token: TOKEN }] }, sink, counters, Date.now, { devices: table });
    listener = await startMqttListener(
      { listen: "127.0.0.1:0", host: "127.0.0.1", port: 0, maxConnections: 1000, connectsPerSec: 10_000, maxInFlight: 1000, maxInFlightBytes: 64 * 1024 * 1024 },
      { ingest, table, metrics: { ingestRejects: rejects, ingestConnections: gauge, ingestDisconnects: counter(), ingestPauses: counter() }, log: createLogger({ level: "silent" }) },
      { connectTimeoutMs: 300, sweepMs: 100 },
    );
  });
  afterAll(async () => {
    await listener?.close();
  });

  it(`starts a burst of ${BURST} connections at most ${STARTS_PER_TURN} per event-loop turn, and every one gets in`, async () => {
    // Raw sockets, all connected first, then every CONNECT written in one go: they land together.
    const sockets = await Promise.all(Array.from({ length: BURST }, () => new Promise<Socket>((resolve, reject) => {
      const s = tcpConnect(listener.port, "127.0.0.1", () => resolve(s));
      s.once("error", reject);
    })));
    // The listener accepts about one pending connection per event-loop turn: give it the turns to
    // take them all, so that the CONNECTs below meet sockets it has already accepted.
    for (let i = 0; i < 2 * BURST; i++) await new Promise((r) => setImmediate(r));
    const acked = sockets.map((s) => new Promise<number>((resolve, reject) => {
      s.once("data", (b: Buffer) => resolve(b[0] === 0x20 ? b[3]! : -1));
      s.once("close", () => reject(new Error("closed before CONNACK")));
    }));
    // one count per loop iteration (its check phase), and the devices that went online in each
    let turn = 0;
    let spinning = true;
    const spin = (): void => { turn++; if (spinning) setImmediate(spin); };
    setImmediate(spin);
    const perTurn = new Map<number, number>();
    const off = table.onState((_id, state) => { if (state === "online") perTurn.set(turn, (perTurn.get(turn) ?? 0) + 1); });
    try {
      sockets.forEach((s, i) => s.write(mqttPacket.generate({ cmd: "connect", protocolId: "MQTT", protocolVersion: 4, clean: true, keepalive: 30, clientId: `acc-${i}`, username: `acc-${i}`, password: Buffer.from(TOKEN) })));
      expect(await Promise.all(acked), "CONNACK return codes").toEqual(sockets.map(() => 0));
    } finally {
      spinning = false;
      off();
      for (const s of sockets) s.destroy();
    }
    const counts = [...perTurn.values()];
    expect(counts.reduce((a, b) => a + b, 0)).toBe(BURST);
    expect(Math.max(...counts)).toBeLessThanOrEqual(STARTS_PER_TURN);
    expect(perTurn.size).toBeGreaterThanOrEqual(Math.ceil(BURST / STARTS_PER_TURN));
  });

  it("closes a connection that sends no CONNECT within the connect timeout, and counts it", async () => {
    const before = rejects.get("timeout");
    const t0 = Date.now();
    const closed = await new Promise<number>((resolve, reject) => {
      const s = tcpConnect(listener.port, "127.0.0.1");
      s.on("error", () => undefined);
      s.once("close", () => resolve(Date.now() - t0));
      setTimeout(() => { s.destroy(); reject(new Error("not closed by the listener within 5 s")); }, 5000).unref();
    });
    expect(closed).toBeGreaterThanOrEqual(250);
    expect(rejects.get("timeout")).toBe(before + 1);
  });

  it("a wall clock stepped an hour forward, then back, times no connected device out and refuses no new connect", async () => {
    const connectOne = (id: string): Promise<{ s: Socket; code: number }> => new Promise((resolve, reject) => {
      const s = tcpConnect(listener.port, "127.0.0.1", () => {
        s.write(mqttPacket.generate({ cmd: "connect", protocolId: "MQTT", protocolVersion: 4, clean: true, keepalive: 30, clientId: id, username: id, password: Buffer.from(TOKEN) }));
      });
      s.once("data", (b: Buffer) => resolve({ s, code: b[0] === 0x20 ? b[3]! : -1 }));
      s.once("error", reject);
    });
    const closedWithin = (s: Socket, ms: number): Promise<boolean> => new Promise((resolve) => {
      const t = setTimeout(() => { s.off("close", onClose); resolve(false); }, ms);
      const onClose = (): void => { clearTimeout(t); resolve(true); };
      s.once("close", onClose);
    });
    const before = { timeout: rejects.get("timeout"), rate: rejects.get("connect_rate") };
    const first = await connectOne("acc-step-1");
    expect(first.code).toBe(0);
    let restore = (): void => undefined;
    try {
      // forward an hour: the sweep (every 100 ms) must not see 30 s keep-alives an hour overdue
      restore = stepWallClock(HOUR);
      expect(await closedWithin(first.s, 600), "closed after a forward step").toBe(false);
      // back an hour: new devices still get in (the connect bucket does not run an hour dry)
      restore = stepWallClock(-HOUR);
      const second = await connectOne("acc-step-2");
      expect(second.code).toBe(0);
      expect(await closedWithin(first.s, 600), "closed after a backward step").toBe(false);
      second.s.destroy();
    } finally {
      restore();
      first.s.destroy();
    }
    expect(rejects.get("timeout")).toBe(before.timeout);
    expect(rejects.get("connect_rate")).toBe(before.rate);
  });
});
