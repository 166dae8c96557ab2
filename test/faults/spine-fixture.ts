import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect } from "vitest";
import { startMosquitto, type MosquittoBroker } from "../helpers/mosquitto.js";
import { collect } from "../helpers/mqtt-sub.js";
import { startGateway, type GatewayProcess } from "../helpers/gateway-process.js";
import { freePort } from "../helpers/ports.js";
import type { Collector, ReceivedMessage } from "../helpers/mqtt-sub.js";
import { writeConfig } from "../helpers/gateway-process.js";
import type { TelemetryMessage, TestDevice } from "../helpers/pusher.js";

export const GATEWAY_ID = "e2e-edge";
export const DEVICE_TOKEN = "secret-dev-token";
export const TELEMETRY = `floorgate/${GATEWAY_ID}/+/telemetry`;

/** A temp dir, a free HTTP port and a config file for one spawned gateway. */
export async function spineSetup(brokerUrl: string, journalYaml = "maxBytes: 256MiB\n  fsync: batch\n  fsyncIntervalMs: 5", maxBatch = 200): Promise<{ dir: string; port: number; configFile: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), "floorgate-e2e-"));
  const port = await freePort();
  const configFile = await writeConfig(dir, `
gateway: { id: ${GATEWAY_ID}, group: e2e, dataDir: ./data }
http: { listen: "127.0.0.1:${port}" }
journal:
  ${journalYaml}
ingest:
  http: true
  ratePerDevice: 100000
  devices:
    - { id: "dev-*", token: "${DEVICE_TOKEN}" }
outputs:
  - { type: mqtt, name: cloud, url: "${brokerUrl}", qos: 1, maxBatch: ${maxBatch} }
`);
  return { dir, port, configFile, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * What a careful consumer does: per device topic, a message whose `batch` is not above the
 * highest seen is a replay and is dropped. Returns the values kept per device, and the count of
 * replayed messages dropped.
 */
export function consume(messages: readonly ReceivedMessage[]): { values: Map<string, number[]>; replays: number; topics: Set<string> } {
  const maxBatch = new Map<string, number>();
  const values = new Map<string, number[]>();
  const topics = new Set<string>();
  let replays = 0;
  for (const m of messages) {
    if (!m.topic.endsWith("/telemetry")) continue;
    topics.add(m.topic);
    const msg = JSON.parse(m.payload.toString()) as TelemetryMessage;
    const seen = maxBatch.get(msg.device) ?? 0;
    if (msg.batch <= seen) { replays++; continue; }
    maxBatch.set(msg.device, msg.batch);
    const list = values.get(msg.device) ?? [];
    for (const s of msg.samples) list.push(s.value as number);
    values.set(msg.device, list);
  }
  return { values, replays, topics };
}

/** Every value in `values` as a set per device, replays included (for at-least-once checks). */
export function allValues(messages: readonly ReceivedMessage[]): Map<string, Set<number>> {
  const out = new Map<string, Set<number>>();
  for (const m of messages) {
    if (!m.topic.endsWith("/telemetry")) continue;
    const msg = JSON.parse(m.payload.toString()) as TelemetryMessage;
    const set = out.get(msg.device) ?? new Set<number>();
    for (const s of msg.samples) set.add(s.value as number);
    out.set(msg.device, set);
  }
  return out;
}

/**
 * Waits until the collector holds every acknowledged value of every device. The check runs on every
 * message received, so it parses each message once and keeps the set of values still missing: a
 * check that re-read every message each time was quadratic, and on a loaded machine a backlog of
 * thousands of messages starved the collector's own MQTT client (CI saw it stall at 4,032).
 */
export async function waitDelivered(collector: Collector, devices: readonly TestDevice[], timeoutMs = 60_000, except: ReadonlySet<string> = new Set()): Promise<void> {
  const need = new Map<string, Set<number>>();
  let missing = 0;
  for (const d of devices) {
    const set = need.get(d.id) ?? new Set<number>();
    for (const v of d.acked) {
      if (except.has(`${d.id}/${v}`) || set.has(v)) continue;
      set.add(v);
      missing++;
    }
    need.set(d.id, set);
  }
  let read = 0;
  const check = (): boolean => {
    const msgs = collector.messages;
    for (; read < msgs.length; read++) {
      const m = msgs[read]!;
      if (!m.topic.endsWith("/telemetry")) continue;
      const msg = JSON.parse(m.payload.toString()) as TelemetryMessage;
      const set = need.get(msg.device);
      if (!set) continue;
      for (const s of msg.samples) if (set.delete(s.value as number)) missing--;
    }
    return missing === 0;
  };
  try {
    await collector.until(check, timeoutMs);
  } catch (err) {
    expect.fail(`${missing} acknowledged samples never reached the broker: ${(err as Error).message}`);
  }
}

export interface Spine {
  broker: MosquittoBroker;
  collector: Collector;
  gw: GatewayProcess;
  setup: Awaited<ReturnType<typeof spineSetup>>;
}

/**
 * One file's spine, started once in beforeAll and torn down in afterAll: Mosquitto, a consumer
 * with a persistent session (so what it misses while resubscribing after a broker restart is the
 * gateway's fault, not the test's), and the gateway as a process. The returned object is filled in
 * by beforeAll.
 */
export function useSpine(opts: { consumerId: string; journalYaml?: string; brokerConfig?: string[]; brokerDownAtStart?: boolean }): Spine {
  const spine = {} as Spine;
  beforeAll(async () => {
    spine.broker = await startMosquitto({ extraConfig: ["max_queued_messages 0", "max_queued_bytes 0", ...(opts.brokerConfig ?? [])] });
    spine.collector = await collect(spine.broker.url, TELEMETRY, { clean: false, clientId: opts.consumerId });
    spine.setup = await spineSetup(spine.broker.url, opts.journalYaml);
    if (opts.brokerDownAtStart) await spine.broker.stop();
    spine.gw = await startGateway(spine.setup.configFile, spine.setup.port);
  });
  afterAll(async () => {
    await spine.gw?.kill();
    await spine.collector?.close();
    await spine.broker?.dispose();
    await spine.setup?.cleanup();
  });
  return spine;
}
