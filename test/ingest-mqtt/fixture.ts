/**
 * The spine behind the device MQTT listener, for this folder's tests: Mosquitto as the cloud
 * broker, a consumer on the gateway's telemetry topics, and the built gateway as a process with
 * `ingest.mqtt` on a port of its own; plus MQTT.js devices and waits on /metrics and the device API.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { startMosquitto, type MosquittoBroker } from "../helpers/mosquitto.js";
import { collect, type Collector, type ReceivedMessage } from "../helpers/mqtt-sub.js";
import { getJson, http, startGateway, writeConfig, type GatewayProcess } from "../helpers/gateway-process.js";
import { freePort } from "../helpers/ports.js";

export const GATEWAY_ID = "mqtt-edge";
export const TOKEN = "sensor-token";
export const TELEMETRY = `floorgate/${GATEWAY_ID}/+/telemetry`;

/** A counter for a listener run in-process that keeps what it was told, by label value (the first label). */
export function counter(): { inc(labels: Record<string, string | number | undefined>, n?: number): void; get(v: string): number } {
  const m = new Map<string, number>();
  return {
    inc(labels, n = 1) {
      const k = String(Object.values(labels)[0]);
      m.set(k, (m.get(k) ?? 0) + n);
    },
    get: (v) => m.get(v) ?? 0,
  };
}
/** A gauge nothing reads. */
export const gauge = { set: (): undefined => undefined };

export interface MqttSpine {
  broker: MosquittoBroker;
  collector: Collector;
  gw: GatewayProcess;
  dir: string;
  mqttPort: number;
  mqttUrl: string;
  close(): Promise<void>;
}

/**
 * Starts the spine. `ingestYaml` is laid into the `ingest:` section after the listener (indented
 * two spaces), `mqttYaml` into `ingest.mqtt` after `listen`, `extraYaml` at the top level.
 */
export async function startMqttSpine(opts: { ingestYaml?: string; mqttYaml?: string; extraYaml?: string; scheme?: "mqtt" | "mqtts"; env?: NodeJS.ProcessEnv; driverThreads?: number } = {}): Promise<MqttSpine> {
  const broker = await startMosquitto({ extraConfig: ["max_queued_messages 0", "max_queued_bytes 0"] });
  const collector = await collect(broker.url, TELEMETRY, { clean: false, clientId: `mqtt-ingest-consumer-${process.pid}` });
  const dir = await mkdtemp(join(tmpdir(), "floorgate-mqtt-ingest-"));
  const httpPort = await freePort();
  const mqttPort = await freePort();
  const file = await writeConfig(dir, `
gateway: { id: ${GATEWAY_ID}, group: e2e, dataDir: ./data${opts.driverThreads ? `, driverThreads: ${opts.driverThreads}` : ""} }
http: { listen: "127.0.0.1:${httpPort}" }
journal: { maxBytes: 256MiB, fsync: batch, fsyncIntervalMs: 5 }
ingest:
  http: true
  mqtt:
    listen: "127.0.0.1:${mqttPort}"
${indent(opts.mqttYaml ?? "", 4)}
${indent(opts.ingestYaml ?? "", 2)}
outputs:
  - { type: mqtt, name: cloud, url: "${broker.url}", qos: 1, maxBatch: 200 }
${opts.extraYaml ?? ""}
`);
  const gw = await startGateway(file, httpPort, opts.env ?? {});
  return {
    broker, collector, gw, dir, mqttPort,
    mqttUrl: `${opts.scheme ?? "mqtt"}://${opts.scheme === "mqtts" ? "localhost" : "127.0.0.1"}:${mqttPort}`,
    close: async () => {
      await gw.kill();
      await collector.close();
      await broker.dispose();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function indent(text: string, n: number): string {
  return text.split("\n").map((l) => (l.trim() === "" ? "" : " ".repeat(n) + l)).join("\n");
}

/**
 * Connects a device; resolves with the client once CONNACKed, rejects with the refusal. No
 * automatic reconnect unless `reconnectPeriod` is given.
 */
export function connectDevice(url: string, opts: IClientOptions): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...opts });
    const fail = (err: Error): void => { c.removeAllListeners(); c.on("error", () => undefined); c.end(true); reject(err); };
    const closed = (): void => fail(new Error("closed before CONNACK"));
    c.once("connect", () => {
      c.removeListener("error", fail);
      c.removeListener("close", closed);
      c.on("error", () => undefined);
      resolve(c);
    });
    c.once("error", fail);
    c.once("close", closed);
  });
}

/** Resolves once the client's connection is closed (by the gateway); with the MQTT 5 DISCONNECT reason code if one came. */
export function closedByGateway(c: MqttClient, timeoutMs = 10_000): Promise<{ reasonCode: number | undefined }> {
  return new Promise((resolve, reject) => {
    let reasonCode: number | undefined;
    const t = setTimeout(() => reject(new Error("the gateway did not close the connection")), timeoutMs);
    c.on("disconnect", (p) => { reasonCode = p.reasonCode; });
    c.once("close", () => { clearTimeout(t); resolve({ reasonCode }); });
  });
}

/** Every sample value the consumer holds for `device`. */
export function valuesOf(messages: readonly ReceivedMessage[], device: string): number[] {
  const out: number[] = [];
  for (const m of messages) {
    if (!m.topic.endsWith(`/${device}/telemetry`)) continue;
    const msg = JSON.parse(m.payload.toString()) as { samples: { value: number }[] };
    for (const s of msg.samples) out.push(s.value);
  }
  return out;
}

/** Re-reads `read()` until `ok` holds on it; fails with the last value after `timeoutMs`. */
export async function eventually<T>(read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 10_000, what = "condition"): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms; last: ${JSON.stringify(v).slice(0, 500)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function metricsText(gw: GatewayProcess): Promise<string> {
  return (await http("GET", `${gw.base}/metrics`)).body;
}

export interface ApiDevice { id: string; driver: string; state: string; error: string | null; counters: Record<string, number> }

export async function apiDevice(gw: GatewayProcess, id: string): Promise<ApiDevice | undefined> {
  const r = await getJson<{ devices: ApiDevice[] }>(`${gw.base}/api/v1/devices`);
  return r.devices.find((d) => d.id === id);
}
