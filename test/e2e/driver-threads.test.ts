import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startMosquitto, type MosquittoBroker } from "../helpers/mosquitto.js";
import { collect, type Collector } from "../helpers/mqtt-sub.js";
import { freePort } from "../helpers/ports.js";
import { getJson, http, startGateway, writeConfig, type GatewayProcess } from "../helpers/gateway-process.js";
import { startFaultServer, type FaultServer } from "../helpers/modbus-servers.js";
import type { TelemetryMessage } from "../helpers/pusher.js";

const OPERATOR = "op-secret";
const PREFIX = "floorgate/e2e-threads";

interface DeviceInfo { id: string; state: string; error: string | null }

/**
 * `gateway.driverThreads`: the same Modbus devices as in the main thread, polled from two driver
 * threads — two unit ids sharing one TCP connection and a third device on a server of its own —
 * with values, states, log lines and write-back crossing between the threads.
 */
describe("drivers on driver threads, end to end", () => {
  let broker: MosquittoBroker;
  let collector: Collector;
  let shared: FaultServer;
  let alone: FaultServer;
  let gw: GatewayProcess;
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "floorgate-e2e-threads-"));
    broker = await startMosquitto();
    collector = await collect(broker.url, `${PREFIX}/#`);
    shared = await startFaultServer({ register: (unit, _area, addr) => unit * 1000 + addr });
    alone = await startFaultServer({ register: (unit, _area, addr) => 5000 + unit * 100 + addr });
    const httpPort = await freePort();
    const tags = `
    tags:
      - { name: r0, area: holding, address: 0, type: uint16 }
      - { name: r1, area: holding, address: 1, type: uint16 }
      - { name: setpoint, area: holding, address: 5, type: int16, writable: true, scale: 0.5 }`;
    const file = await writeConfig(dir, `
gateway: { id: e2e-threads, group: e2e, dataDir: ./data, driverThreads: 2 }
http: { listen: "127.0.0.1:${httpPort}", operatorTokens: ["${OPERATOR}"] }
devices:
  - id: m1
    driver: modbus
    connection: { transport: tcp, host: 127.0.0.1, port: ${shared.port}, unitId: 1, timeoutMs: 300 }
    pollMs: 200${tags}
  - id: m2
    driver: modbus
    connection: { transport: tcp, host: 127.0.0.1, port: ${shared.port}, unitId: 2, timeoutMs: 300 }
    pollMs: 200${tags}
  - id: m3
    driver: modbus
    connection: { transport: tcp, host: 127.0.0.1, port: ${alone.port}, unitId: 1, timeoutMs: 300 }
    pollMs: 200${tags}
outputs:
  - { type: mqtt, name: cloud, url: "${broker.url}" }
`);
    gw = await startGateway(file, httpPort);
  });

  afterAll(async () => {
    await gw?.stop();
    await shared?.stop();
    await alone?.stop();
    await collector?.close();
    await broker?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  const samplesOf = (device: string) => collector.on(`${PREFIX}/${device}/telemetry`)
    .flatMap((m) => (JSON.parse(m.payload.toString()) as TelemetryMessage).samples);

  it("delivers every device's values, each from its own unit id, as the contract's JSON", async () => {
    await collector.until(() => ["m1", "m2", "m3"].every((d) => samplesOf(d).length >= 9), 20_000);
    const expected: Record<string, number> = { m1: 1000, m2: 2000, m3: 5100 };
    for (const [device, base] of Object.entries(expected)) {
      const s = samplesOf(device);
      expect(s.filter((x) => x.tag === "r0").every((x) => x.value === base && x.quality === "good")).toBe(true);
      expect(s.filter((x) => x.tag === "r1").every((x) => x.value === base + 1)).toBe(true);
      // scale 0.5 is applied on the main thread, after the crossing
      expect(s.filter((x) => x.tag === "setpoint").every((x) => x.value === (base + 5) * 0.5)).toBe(true);
      const msgs = collector.on(`${PREFIX}/${device}/telemetry`).map((m) => JSON.parse(m.payload.toString()) as TelemetryMessage);
      for (let i = 1; i < msgs.length; i++) expect(msgs[i]!.batch).toBeGreaterThan(msgs[i - 1]!.batch);
    }
    const { devices } = await getJson<{ devices: DeviceInfo[] }>(`${gw.base}/api/v1/devices`, OPERATOR);
    expect(Object.fromEntries(devices.map((d) => [d.id, d.state]))).toEqual({ m1: "online", m2: "online", m3: "online" });
    // One connection for the two unit ids on the shared server, so both ran on one thread.
    expect(shared.openSockets).toBe(1);
  });

  it("writes back through the driver thread, inverse-scaled, to the right unit", async () => {
    const res = await http("POST", `${gw.base}/api/v1/devices/m2/tags/setpoint/write`, {
      body: JSON.stringify({ value: 21 }), headers: { authorization: `Bearer ${OPERATOR}` },
    });
    expect(res.status).toBe(200);
    expect(shared.writes.get("2/holding/5")).toBe(42);
    expect(shared.writes.has("1/holding/5")).toBe(false);
    const refused = await http("POST", `${gw.base}/api/v1/devices/m2/tags/r0/write`, {
      body: JSON.stringify({ value: 1 }), headers: { authorization: `Bearer ${OPERATOR}` },
    });
    expect(refused.status).toBe(403);
  });

  it("relays state changes and the driver's own log lines while the other devices keep flowing", async () => {
    alone.setBehaviour(() => "silent");
    const stateOf = async (id: string): Promise<string> =>
      (await getJson<{ devices: DeviceInfo[] }>(`${gw.base}/api/v1/devices`, OPERATOR)).devices.find((d) => d.id === id)!.state;
    await waitUntil(async () => (await stateOf("m3")) === "offline", 15_000);
    const before = samplesOf("m1").length;
    await collector.until(() => samplesOf("m1").length >= before + 6, 10_000);
    expect(await stateOf("m1")).toBe("online");
    alone.setBehaviour(() => "answer");
    await waitUntil(async () => (await stateOf("m3")) === "online", 15_000);
    // The driver logs its state changes itself; that line was written on the driver thread and
    // reaches the gateway's log with the device's binding.
    const lines = gw.output.join("").split("\n").filter((l) => l.includes('"msg":"modbus device state"'));
    expect(lines.some((l) => l.includes('"device":"m3"') && l.includes('"state":"offline"'))).toBe(true);
    const status = await collector.waitFor((m) => m.topic === `${PREFIX}/m3/status` && (JSON.parse(m.payload.toString()) as { state: string }).state === "offline");
    expect(status).toBeDefined();
  });

  it("reports each driver thread's event-loop delay in /metrics, and no samples lost", async () => {
    const series = async (): Promise<Map<string, number>> => {
      const text = (await http("GET", `${gw.base}/metrics`)).body;
      const out = new Map<string, number>();
      for (const m of text.matchAll(/^floorgate_driver_thread_event_loop_delay_seconds\{([^}]*)\} (\S+)$/gm)) out.set(m[1]!, Number(m[2]));
      return out;
    };
    // reported every 5 s by each thread
    await expect.poll(async () => (await series()).size, { timeout: 12_000, interval: 250 }).toBe(4);
    const got = await series();
    for (const thread of ["0", "1"]) {
      const p99 = got.get(`thread="${thread}",stat="p99"`)!;
      const max = got.get(`thread="${thread}",stat="max"`)!;
      expect(p99).toBeGreaterThan(0);
      expect(max).toBeGreaterThanOrEqual(p99);
      expect(max).toBeLessThan(5);
    }
    const text = (await http("GET", `${gw.base}/metrics`)).body;
    expect(text).not.toMatch(/floorgate_drops_total\{[^}]*\} [1-9]/);
  });

  it("stops cleanly, threads included", async () => {
    const { code, ms } = await gw.stop();
    expect(code).toBe(0);
    expect(ms).toBeLessThan(8000);
    expect(gw.output.join("")).not.toMatch(/driver thread \d+ failed/);
  });
});

async function waitUntil(cond: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`condition not met within ${timeoutMs} ms`);
}
