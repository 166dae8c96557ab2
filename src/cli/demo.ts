import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { GatewayConfig } from "../config/types.js";
import { describeError } from "../core/errors.js";
import { createLogger } from "../core/logger.js";
import { startAgvFleet } from "../demo/agv-fleet.js";
import { startDemoBroker, type DemoBroker } from "../demo/broker.js";
import { Gateway } from "../runtime/gateway.js";
import { stopWithin, untilSignal } from "./run.js";

export interface DemoOptions {
  port: number;
  broker?: string;
  devices: number;
  dataDir?: string;
  pretty: boolean;
}

const DEMO_TOKEN = "demo-agv-token";

/** `floorgate demo`: a simulated plant, the gateway, and an embedded broker for the cloud — no set-up. */
export async function runDemo(opts: DemoOptions): Promise<number> {
  const log = createLogger({ pretty: opts.pretty, level: process.env.FLOORGATE_LOG_LEVEL ?? "warn" });
  let broker: DemoBroker | null = null;
  let brokerUrl = opts.broker;
  if (!brokerUrl) {
    broker = await startDemoBroker(1883).catch(() => startDemoBroker(0));
    brokerUrl = broker.url;
  }
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), "floorgate-demo-")));
  const config = demoConfig(opts.port, brokerUrl, dataDir);
  let gw: Gateway;
  try {
    gw = await Gateway.start(config, log);
  } catch (err) {
    process.stderr.write(`floorgate demo: cannot start the gateway: ${describeError(err)}\n`);
    await broker?.close();
    return 2;
  }
  const base = `http://127.0.0.1:${gw.httpPort}`;
  const fleet = startAgvFleet({ baseUrl: base, count: opts.devices, token: DEMO_TOKEN, periodMs: 500, log });
  const brokerPort = new URL(brokerUrl).port || "1883";
  process.stdout.write(`
Floorgate demo is running.
  ${opts.devices} simulated 5G AGVs push telemetry to ${base}/api/v1/ingest/{agv-id}
  the gateway journals it in ${dataDir} and forwards it to ${broker ? "an embedded MQTT broker" : "your broker"} at ${brokerUrl}

Where to look:
  dashboard   ${base}/
  health      curl ${base}/healthz
  metrics     curl ${base}/metrics
  devices     curl ${base}/api/v1/devices
  the cloud   mosquitto_sub -h 127.0.0.1 -p ${brokerPort} -t 'floorgate/#' -v

Ctrl-C stops it.
`);
  await untilSignal();
  process.stdout.write("stopping the demo…\n");
  await fleet.stop();
  const code = await stopWithin(gw, log);
  await broker?.close();
  return code;
}

export function demoConfig(port: number, brokerUrl: string, dataDir: string): GatewayConfig {
  return {
    gateway: { id: "demo-edge", group: "demo-plant", dataDir },
    http: { listen: `127.0.0.1:${port}`, host: "127.0.0.1", port, operatorTokens: [], allowedOrigins: [] },
    journal: { maxBytes: 256 * 1024 * 1024, overflow: "drop-oldest", fsync: "batch", fsyncIntervalMs: 50 },
    devices: [],
    ingest: {
      http: true, maxPayloadBytes: 262144, ratePerDevice: 200,
      devices: [{ id: "agv-*", token: DEMO_TOKEN }],
    },
    outputs: [{
      type: "mqtt", name: "cloud", url: brokerUrl, clientId: "demo-edge", format: "json",
      topicPrefix: "floorgate/demo-edge", qos: 1, maxBatch: 500,
    }],
  };
}
