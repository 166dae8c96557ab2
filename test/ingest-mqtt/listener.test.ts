// The device MQTT listener against real parts: MQTT.js devices (3.1.1 and 5) connect to the built
// gateway's `ingest.mqtt`, the journal and the MQTT output behind it, Mosquitto as the cloud broker.
// Auth refusals, own-topic access control, QoS 0 and 1, msgId shared with HTTP, over-rate and
// oversize disconnects counted, device state, and every PUBACKed message at the cloud across a
// gateway SIGKILL (devices reconnect and resend).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MqttClient } from "mqtt";
import { getJson, metric, http } from "../helpers/gateway-process.js";
import {
  apiDevice, closedByGateway, connectDevice, eventually, metricsText, startMqttSpine, TOKEN, valuesOf, type MqttSpine,
} from "./fixture.js";

const RATE = 40;
const MAX_PAYLOAD = 4096;

describe("device MQTT listener", () => {
  let spine: MqttSpine;
  const dev = (id: string, version: 4 | 5 = 4, extra: Record<string, unknown> = {}): Promise<MqttClient> =>
    connectDevice(spine.mqttUrl, { protocolVersion: version, username: id, password: TOKEN, clientId: `${id}-${version}`, ...extra });
  const body = (values: Record<string, number>, msgId?: string): string => JSON.stringify({ ...(msgId ? { msgId } : {}), values });
  const metrics = async (name: string, labels: Record<string, string> = {}): Promise<number> => metric(await metricsText(spine.gw), name, labels);

  beforeAll(async () => {
    spine = await startMqttSpine({
      ingestYaml: `ratePerDevice: ${RATE}\nmaxPayloadBytes: ${MAX_PAYLOAD}\ndevices:\n  - { id: "sensor-*", token: "${TOKEN}" }\n  - { id: other-1, token: other-token }`,
    });
  });
  afterAll(async () => {
    await spine?.close();
  });

  it("refuses a wrong token and an unknown id, MQTT 3.1.1 and 5, and counts both", async () => {
    const before = await metrics("floorgate_ingest_rejects_total", { reason: "unauthorized" });
    await expect(connectDevice(spine.mqttUrl, { username: "sensor-a", password: "wrong" })).rejects.toThrow(/Bad username or password/);
    await expect(connectDevice(spine.mqttUrl, { protocolVersion: 5, username: "sensor-a", password: "wrong" })).rejects.toThrow(/Bad User Name or Password/i);
    // unknown id: no entry matches it, so the token is valid for no device of that name
    await expect(connectDevice(spine.mqttUrl, { username: "stranger", password: TOKEN })).rejects.toThrow(/Not authorized/);
    await expect(connectDevice(spine.mqttUrl, { protocolVersion: 5, username: "stranger", password: TOKEN })).rejects.toThrow(/Not authorized/);
    await expect(connectDevice(spine.mqttUrl, { username: "sensor-a" })).rejects.toThrow(/Bad username or password/);
    expect(await metrics("floorgate_ingest_rejects_total", { reason: "unauthorized" })).toBe(before + 3);
    expect(await metrics("floorgate_ingest_rejects_total", { reason: "forbidden" })).toBe(2);
    expect(await apiDevice(spine.gw, "stranger")).toBeUndefined();
  });

  it("stores QoS 1 (PUBACK once durable) and QoS 0, from MQTT 3.1.1 and 5", async () => {
    const a = await dev("sensor-q", 4);
    const b = await dev("sensor-r", 5);
    await a.publishAsync("devices/sensor-q/telemetry", body({ t: 101 }, "q-1"), { qos: 1 });
    await a.publishAsync("devices/sensor-q/telemetry", body({ t: 102 }), { qos: 0 });
    await b.publishAsync("devices/sensor-r/telemetry", body({ t: 201 }, "r-1"), { qos: 1 });
    await b.publishAsync("devices/sensor-r/telemetry", JSON.stringify([{ values: { t: 202 } }, { msgId: "r-2", values: { t: 203 } }]), { qos: 0 });
    await spine.collector.until(() => valuesOf(spine.collector.messages, "sensor-q").length === 2 && valuesOf(spine.collector.messages, "sensor-r").length === 3);
    expect(valuesOf(spine.collector.messages, "sensor-q").sort()).toEqual([101, 102]);
    expect(valuesOf(spine.collector.messages, "sensor-r").sort()).toEqual([201, 202, 203]);
    await a.endAsync();
    await b.endAsync();
  });

  it("never stores a publish to another device's topic: MQTT 5 PUBACK 0x87, MQTT 3.1.1 disconnect; counted", async () => {
    const v5 = await dev("sensor-s", 5);
    await expect(v5.publishAsync("devices/other-1/telemetry", body({ t: 999 }), { qos: 1 })).rejects.toThrow(/Not authorized/);
    await expect(v5.publishAsync("devices/sensor-s/status", body({ t: 998 }), { qos: 1 })).rejects.toThrow(/Not authorized/);
    // the connection stays: the next good publish is stored
    await v5.publishAsync("devices/sensor-s/telemetry", body({ t: 1 }), { qos: 1 });
    const v3 = await dev("sensor-t", 4);
    const closed = closedByGateway(v3);
    v3.publish("devices/other-1/telemetry", body({ t: 997 }), { qos: 1 });
    await closed;
    v3.end(true);
    // journal order: once a later marker of other-1 itself arrives, nothing before it can still come
    const other = await connectDevice(spine.mqttUrl, { username: "other-1", password: "other-token" });
    await other.publishAsync("devices/other-1/telemetry", body({ t: 5 }), { qos: 1 });
    await spine.collector.until(() => valuesOf(spine.collector.messages, "other-1").includes(5));
    expect(valuesOf(spine.collector.messages, "other-1")).toEqual([5]);
    expect(valuesOf(spine.collector.messages, "sensor-s")).toEqual([1]);
    expect(await metrics("floorgate_ingest_rejects_total", { reason: "topic_forbidden" })).toBe(3);
    expect(await metrics("floorgate_ingest_disconnects_total", { reason: "topic_forbidden" })).toBe(1);
    const logLines = spine.gw.output.join("").split("\n").filter((l) => l.includes("topic_forbidden") && l.includes("sensor-s"));
    expect(logLines, "logged once per device and reason").toHaveLength(1);
    await v5.endAsync();
    await other.endAsync();
  });

  it("answers a body that can never be valid without storing it: MQTT 5 PUBACK 0x99, MQTT 3.1.1 PUBACK anyway (no resend loop); connection kept, counted, logged once per device", async () => {
    const before = await metrics("floorgate_ingest_rejects_total", { reason: "bad_request" });
    const bad = ["not json", JSON.stringify({ values: { t: 1 }, extra: 1 }), JSON.stringify({ values: { s: "x".repeat(2000) } })];
    const v3 = await dev("sensor-bad3", 4);
    const v5 = await dev("sensor-bad5", 5);
    // 3.1.1 has no negative PUBACK: a disconnect would make the device resend the same message forever
    for (const b of bad) await v3.publishAsync("devices/sensor-bad3/telemetry", b, { qos: 1 });
    for (const b of bad) await expect(v5.publishAsync("devices/sensor-bad5/telemetry", b, { qos: 1 })).rejects.toThrow(/Payload format invalid/i);
    await v3.publishAsync("devices/sensor-bad3/telemetry", body({ t: 31 }), { qos: 1 });
    await v5.publishAsync("devices/sensor-bad5/telemetry", body({ t: 51 }), { qos: 1 });
    await spine.collector.until(() => valuesOf(spine.collector.messages, "sensor-bad3").includes(31) && valuesOf(spine.collector.messages, "sensor-bad5").includes(51));
    expect(valuesOf(spine.collector.messages, "sensor-bad3")).toEqual([31]);
    expect(valuesOf(spine.collector.messages, "sensor-bad5")).toEqual([51]);
    expect(v3.connected && v5.connected).toBe(true);
    expect(await metrics("floorgate_ingest_rejects_total", { reason: "bad_request" })).toBe(before + 6);
    expect(await metrics("floorgate_ingest_disconnects_total", { reason: "bad_request" })).toBe(0);
    for (const id of ["sensor-bad3", "sensor-bad5"]) {
      const lines = spine.gw.output.join("").split("\n").filter((l) => l.includes("bad_request") && l.includes(`"${id}"`));
      expect(lines, `${id}: logged once per device and reason`).toHaveLength(1);
    }
    await v3.endAsync();
    await v5.endAsync();
  });

  it("shows what awaits the journal: /metrics gauges and counter, the listener in /healthz", async () => {
    const c = await dev("sensor-load", 5);
    const text = await metricsText(spine.gw);
    for (const [name, type] of [["floorgate_ingest_inflight_messages", "gauge"], ["floorgate_ingest_inflight_bytes", "gauge"], ["floorgate_ingest_paused_connections", "gauge"], ["floorgate_ingest_pauses_total", "counter"]]) {
      expect(text).toMatch(new RegExp(`^# TYPE ${name} ${type}$`, "m"));
    }
    expect(metric(text, "floorgate_ingest_inflight_messages")).toBe(0);
    const h = await getJson<{ ingest?: { mqtt?: Record<string, unknown> } }>(`${spine.gw.base}/healthz`);
    expect(h.ingest?.mqtt).toEqual({ connections: expect.any(Number), inFlightMessages: 0, inFlightBytes: 0, pausedConnections: 0, paused: false });
    expect(h.ingest!.mqtt!.connections).toBeGreaterThanOrEqual(1);
    await c.endAsync();
  });

  it("refuses subscriptions except the device's own cmd topic", async () => {
    const c = await dev("sensor-u", 5);
    const granted = await c.subscribeAsync({ "devices/sensor-u/cmd": { qos: 1 } });
    expect(granted[0]!.qos).toBe(1);
    await expect(c.subscribeAsync("devices/#")).rejects.toThrow(/Not authorized/);
    const c3 = await dev("sensor-v", 4);
    // MQTT.js rejects the whole call when any topic is refused; the SUBACK says which
    const err = await c3.subscribeAsync(["devices/sensor-w/cmd", "devices/sensor-v/cmd"]).then(() => undefined, (e: unknown) => e as { packet?: { granted: number[] } });
    expect(err?.packet?.granted).toEqual([128, 0]);
    expect(await metrics("floorgate_ingest_rejects_total", { reason: "subscribe_refused" })).toBe(2);
    await c.endAsync();
    await c3.endAsync();
  });

  it("refuses a persistent session on MQTT 3.1.1", async () => {
    await expect(dev("sensor-p", 4, { clean: false })).rejects.toThrow(/Identifier rejected/);
    expect(await metrics("floorgate_ingest_rejects_total", { reason: "persistent_session" })).toBe(1);
  });

  it("disconnects a device over ratePerDevice (MQTT 5: 0x96) and counts it", async () => {
    const c = await dev("sensor-rate", 5);
    const closed = closedByGateway(c);
    for (let i = 0; i < RATE * 3; i++) c.publish("devices/sensor-rate/telemetry", body({ t: i }), { qos: 0 });
    expect((await closed).reasonCode).toBe(0x96);
    c.end(true);
    const c3 = await dev("sensor-rate3", 4);
    const closed3 = closedByGateway(c3);
    for (let i = 0; i < RATE * 3; i++) c3.publish("devices/sensor-rate3/telemetry", body({ t: i }), { qos: 0 });
    await closed3;
    c3.end(true);
    expect(await metrics("floorgate_ingest_disconnects_total", { reason: "rate_limited" })).toBe(2);
    expect(await metrics("floorgate_ingest_rejects_total", { reason: "rate_limited" })).toBeGreaterThanOrEqual(2);
    expect((await apiDevice(spine.gw, "sensor-rate"))?.counters.rateLimited).toBeGreaterThanOrEqual(1);
  });

  it("disconnects a device over maxPayloadBytes (MQTT 5: 0x95), whether the packet or only the payload is too large; counted", async () => {
    const big = (n: number): string => JSON.stringify({ values: { t: 1 }, pad: "x".repeat(n) });
    const c = await dev("sensor-big", 5);
    const closed = closedByGateway(c);
    c.publish("devices/sensor-big/telemetry", big(MAX_PAYLOAD + 100), { qos: 1 });
    expect((await closed).reasonCode).toBe(0x95);
    c.end(true);
    // far over: refused from the packet's header, before it is buffered (MQTT.js would refuse to send past the CONNACK's maximum, so 3.1.1)
    const c3 = await dev("sensor-huge", 4);
    const closed3 = closedByGateway(c3);
    c3.publish("devices/sensor-huge/telemetry", big(1_000_000), { qos: 1 });
    await closed3;
    c3.end(true);
    expect(await metrics("floorgate_ingest_disconnects_total", { reason: "too_large" })).toBe(2);
    expect(await metrics("floorgate_ingest_rejects_total", { reason: "too_large" })).toBe(2);
  });

  it("shares msgId idempotency with HTTP: one retry via each path is stored once", async () => {
    const c = await dev("sensor-m", 5);
    const post = (b: string): Promise<{ status: number; body: string }> =>
      http("POST", `${spine.gw.base}/api/v1/ingest/sensor-m`, { body: b, headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` } });
    // HTTP first, then the same message over MQTT
    expect((await post(body({ t: 71 }, "m-1"))).status).toBe(202);
    await c.publishAsync("devices/sensor-m/telemetry", body({ t: 71 }, "m-1"), { qos: 1 });
    // MQTT first, then the same message over HTTP
    await c.publishAsync("devices/sensor-m/telemetry", body({ t: 72 }, "m-2"), { qos: 1 });
    const r = await post(body({ t: 72 }, "m-2"));
    expect(r.status).toBe(202);
    expect(JSON.parse(r.body)).toMatchObject({ samples: 0, duplicates: 1 });
    await c.publishAsync("devices/sensor-m/telemetry", body({ t: 73 }, "m-3"), { qos: 1 });
    await spine.collector.until(() => valuesOf(spine.collector.messages, "sensor-m").includes(73));
    expect(valuesOf(spine.collector.messages, "sensor-m")).toEqual([71, 72, 73]);
    expect(await metrics("floorgate_ingest_duplicates_total", { device: "sensor-m" })).toBe(2);
    await c.endAsync();
  });

  it("shows an MQTT device online while connected (however quiet) and offline after its DISCONNECT or a lost connection", async () => {
    const c = await dev("sensor-state", 5);
    await eventually(() => apiDevice(spine.gw, "sensor-state"), (d) => d?.state === "online", 5000, "online");
    expect(metric(await metricsText(spine.gw), "floorgate_device_state", { device: "sensor-state", state: "online" })).toBe(1);
    expect(await metrics("floorgate_ingest_connections")).toBeGreaterThanOrEqual(1);
    await c.endAsync();
    const d = await eventually(() => apiDevice(spine.gw, "sensor-state"), (x) => x?.state === "offline", 5000, "offline");
    expect(d!.error).toBe("disconnected");
    // a lost connection (no DISCONNECT: the will's case)
    const c2 = await dev("sensor-state", 4);
    await eventually(() => apiDevice(spine.gw, "sensor-state"), (x) => x?.state === "online", 5000, "online again");
    c2.stream.destroy();
    const lost = await eventually(() => apiDevice(spine.gw, "sensor-state"), (x) => x?.state === "offline", 5000, "offline after loss");
    expect(lost!.error).toBe("connection lost");
    c2.end(true);
  });

  it("counts a connection taken over by a newer one of the same device (reason takeover); the device stays online", async () => {
    const before = await metrics("floorgate_ingest_disconnects_total", { reason: "takeover" });
    const old = await dev("sensor-take", 5, { clientId: "take-old" });
    const kicked = closedByGateway(old);
    const fresh = await dev("sensor-take", 4, { clientId: "take-new" });
    expect((await kicked).reasonCode).toBe(0x8e); // MQTT 5: Session taken over
    expect(await metrics("floorgate_ingest_disconnects_total", { reason: "takeover" })).toBe(before + 1);
    expect((await apiDevice(spine.gw, "sensor-take"))?.state).toBe("online");
    await fresh.endAsync();
    old.end(true);
  });

  it("delivers every PUBACKed message to the cloud across a gateway SIGKILL: devices reconnect and resend", async () => {
    const ids = ["sensor-k1", "sensor-k2", "sensor-k3", "sensor-k4"];
    const acked = new Map<string, number[]>(ids.map((id) => [id, []]));
    const clients = await Promise.all(ids.map((id, i) => dev(id, i % 2 === 0 ? 4 : 5, { reconnectPeriod: 200, clean: true })));
    let stop = false;
    let seq = 0;
    const loops = clients.map(async (c, i) => {
      const id = ids[i]!;
      while (!stop) {
        // never publish while disconnected (field notes: MQTT.js's offline queue); in-flight ones are resent by MQTT.js
        if (c.connected) {
          const v = seq++;
          c.publish(`devices/${id}/telemetry`, body({ t: v }, `${id}-${v}`), { qos: 1 }, (err) => { if (!err) acked.get(id)!.push(v); });
        }
        await new Promise((r) => setTimeout(r, 1000 / (RATE / 4)));
      }
    });
    const total = (): number => [...acked.values()].reduce((n, l) => n + l.length, 0);
    await eventually(async () => total(), (n) => n >= 40, 10_000, "acks before the kill");
    await spine.gw.kill();
    await spine.gw.restart();
    const atRestart = total();
    await eventually(async () => total(), (n) => n >= atRestart + 40, 20_000, "acks after the restart");
    stop = true;
    await Promise.all(loops);
    // what was in flight at the end is PUBACKed (or never counted): wait for the clients' stores to empty
    await eventually(async () => clients.every((c) => Object.keys(c.outgoing).length === 0), (ok) => ok, 15_000, "in-flight publishes acknowledged");
    await spine.collector.until(() => ids.every((id) => {
      const got = new Set(valuesOf(spine.collector.messages, id));
      return acked.get(id)!.every((v) => got.has(v));
    }), 30_000);
    for (const id of ids) {
      const got = new Set(valuesOf(spine.collector.messages, id));
      expect(acked.get(id)!.filter((v) => !got.has(v)), `${id}: PUBACKed but never at the cloud`).toEqual([]);
    }
    await Promise.all(clients.map((c) => c.endAsync()));
  }, 90_000);
});
