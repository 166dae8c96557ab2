import mqtt, { type MqttClient } from "mqtt";
import type { IngestConfig } from "../ingest/types.js";
import type { Logger } from "../core/logger.js";

/**
 * Simulated 5G wireless sensors on the gateway's device MQTT listener (`ingest.mqtt`), as real ones
 * behave: each connects with its id and token (MQTT 3.1.1 or 5), publishes its readings at QoS 1
 * with a `msgId` to `devices/{id}/telemetry`, and now and then roams between cells — its
 * connection drops without a DISCONNECT and it reconnects (MQTT.js resends what was in flight, the
 * msgId keeps that from being stored twice). Publishes happen only while connected: the journal,
 * not MQTT.js's offline queue, is where data waits.
 */
export interface MqttFleetOptions {
  /** mqtt://host:port of the listener */
  url: string;
  ids: readonly string[];
  token: string;
  periodMs: number;
  /** mean time between roams of one sensor; default 45 s */
  roamEveryMs?: number;
  log?: Logger;
}

export interface MqttFleet {
  stats(): { published: number; acked: number; roams: number; connected: number };
  stop(): Promise<void>;
}

interface Sensor {
  id: string;
  client: MqttClient;
  seq: number;
  temp: number;
  battery: number;
}

export function startMqttFleet(opts: MqttFleetOptions): MqttFleet {
  const stats = { published: 0, acked: 0, roams: 0 };
  const roamEveryMs = opts.roamEveryMs ?? 45_000;
  let stopped = false;
  const timers = new Set<NodeJS.Timeout>();
  const later = (ms: number, fn: () => void): void => {
    const t = setTimeout(() => { timers.delete(t); if (!stopped) fn(); }, ms);
    timers.add(t);
  };
  const sensors: Sensor[] = opts.ids.map((id, i) => {
    const client = mqtt.connect(opts.url, {
      username: id, password: opts.token, clientId: id, protocolVersion: i % 2 === 0 ? 5 : 4,
      // no two sensors retry in step after a cell outage
      reconnectPeriod: 1000 + ((i * 137) % 1000), connectTimeout: 5000, keepalive: 30,
    });
    // refusals and lost connections are the gateway's to log; the sensor just retries
    client.on("error", () => undefined);
    return { id, client, seq: 0, temp: 20 + (i % 10), battery: 50 + ((i * 13) % 50) };
  });

  const publish = (s: Sensor): void => {
    if (s.client.connected) {
      s.seq++;
      s.temp += (Math.random() - 0.5) * 0.2;
      s.battery = s.battery > 5 ? s.battery - 0.01 : 100;
      const body = JSON.stringify({
        msgId: `${s.id}-${s.seq}`, ts: new Date().toISOString(),
        values: { temp_c: round(s.temp), humidity_pct: round(45 + 5 * Math.sin(s.seq / 20)), battery_pct: round(s.battery), rssi_dbm: -60 - Math.round(Math.random() * 30) },
      });
      stats.published++;
      s.client.publish(`devices/${s.id}/telemetry`, body, { qos: 1 }, (err) => { if (!err) stats.acked++; });
    }
    later(opts.periodMs, () => publish(s));
  };
  const roam = (s: Sensor): void => {
    // the radio link is gone: no DISCONNECT, the gateway sees the connection drop (its will)
    if (s.client.connected) {
      stats.roams++;
      s.client.stream.destroy();
    }
    later(roamEveryMs / 2 + Math.random() * roamEveryMs, () => roam(s));
  };
  sensors.forEach((s, i) => {
    later((opts.periodMs * i) / Math.max(1, sensors.length), () => publish(s));
    later(roamEveryMs / 2 + Math.random() * roamEveryMs, () => roam(s));
  });
  opts.log?.info({ sensors: sensors.length, url: opts.url }, "simulated MQTT sensors started");

  return {
    stats: () => ({ ...stats, connected: sensors.filter((s) => s.client.connected).length }),
    stop: async () => {
      stopped = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      await Promise.all(sensors.map((s) => s.client.endAsync(true)));
    },
  };
}

/**
 * The sensors `floorgate simulate` runs against a config's own listener: up to `count` ids from
 * each `ingest.devices` entry with a plain token (a glob's `*` numbered, an exact id once), on
 * the listener's address (loopback for a wildcard host). Undefined when there is no listener, it
 * speaks TLS, or no entry has a plain token to connect with.
 */
export function fleetFromConfig(ingest: IngestConfig, count = 50): { url: string; token: string; ids: string[] } | undefined {
  const l = ingest.mqtt;
  if (!l || l.tls || l.port === 0) return undefined;
  const entry = ingest.devices.find((d) => d.token !== undefined && d.token !== "");
  if (!entry) return undefined;
  const ids = entry.id.includes("*")
    ? Array.from({ length: count }, (_, i) => entry.id.replace(/\*/g, `sim${String(i + 1).padStart(2, "0")}`)).filter((id) => id.length <= 64)
    : [entry.id];
  const host = l.host === "0.0.0.0" || l.host === "::" ? "127.0.0.1" : l.host.includes(":") ? `[${l.host}]` : l.host;
  return { url: `mqtt://${host}:${l.port}`, token: entry.token!, ids };
}

function round(v: number): number {
  return Math.round(v * 100) / 100;
}
