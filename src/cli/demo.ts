import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startModbusSimulator, type ModbusSimulator } from "../../drivers/modbus/simulator.js";
import { formatProblem, parseConfigText } from "../config/load.js";
import type { GatewayConfig } from "../config/types.js";
import { describeError } from "../core/errors.js";
import { createLogger } from "../core/logger.js";
import { startAgvFleet } from "../demo/agv-fleet.js";
import { startMqttFleet } from "../demo/mqtt-fleet.js";
import { startDemoBroker, type DemoBroker } from "../demo/broker.js";
import { Gateway } from "../runtime/gateway.js";
import { listenHint, stopWithin, untilSignal } from "./run.js";
import { findDriver } from "../plugins/drivers.js";
import type { DeviceConfigBase, SimulatorRun } from "../core/plugin.js";

export interface DemoOptions {
  port: number;
  broker?: string;
  devices: number;
  dataDir?: string;
  pretty: boolean;
}

const DEMO_TOKEN = "demo-agv-token";
const SENSOR_TOKEN = "demo-sensor-token";
/** MQTT sensors roaming beside the HTTP AGVs */
const SENSORS = 50;
/** The demo's operator token: write-back needs one, and the demo prints it. */
const DEMO_OPERATOR_TOKEN = "demo-operator";

/** `floorgate demo`: a simulated plant, the gateway, and an embedded broker for the cloud — no set-up. */
export async function runDemo(opts: DemoOptions): Promise<number> {
  const log = createLogger({ pretty: opts.pretty, level: process.env.FLOORGATE_LOG_LEVEL ?? "warn" });
  // Listening from the start: a Ctrl-C during start-up still stops cleanly and removes the temp dir.
  const signalled = untilSignal();
  let broker: DemoBroker | null = null;
  let presses: ModbusSimulator | null = null;
  let oven: SimulatorRun | null = null;
  let gw: Gateway | null = null;
  // The demo's journal is a throwaway: a temp dir it made is removed on exit (a --data-dir is kept).
  let tmpDataDir: string | null = null;
  const cleanup = async (): Promise<void> => {
    await presses?.stop();
    await oven?.stop();
    await broker?.close();
    if (tmpDataDir) await rm(tmpDataDir, { recursive: true, force: true });
  };
  let brokerUrl = opts.broker;
  try {
    if (!brokerUrl) {
      broker = await startDemoBroker(1883).catch(() => startDemoBroker(0));
      brokerUrl = broker.url;
    }
    if (!opts.dataDir) tmpDataDir = await mkdtemp(join(tmpdir(), "floorgate-demo-"));
    presses = await startModbusSimulator({ presses: 3 });
    const ovenPort = await startOven((run) => { oven = run; }, tmpDataDir ?? undefined);
    gw = await Gateway.start(demoConfig(opts.port, brokerUrl, opts.dataDir ?? tmpDataDir!, presses.ports, ovenPort), log);
  } catch (err) {
    const hint = listenHint(err, "pick another port with --port N");
    process.stderr.write(`floorgate demo: cannot start: ${describeError(err)}${hint === undefined ? "" : `\n  ${hint}`}\n`);
    await cleanup();
    return 2;
  }
  const dataDir = opts.dataDir ?? tmpDataDir!;
  const base = `http://127.0.0.1:${gw.httpPort}`;
  const fleet = startAgvFleet({ baseUrl: base, count: opts.devices, token: DEMO_TOKEN, periodMs: 500, log });
  const sensorIds = Array.from({ length: SENSORS }, (_, i) => `sensor-${String(i + 1).padStart(2, "0")}`);
  const sensors = startMqttFleet({ url: `mqtt://127.0.0.1:${gw.mqttPort}`, ids: sensorIds, token: SENSOR_TOKEN, periodMs: 2000, log });
  const brokerPort = new URL(brokerUrl).port || "1883";
  process.stdout.write(`
Floorgate demo is running.
  3 simulated Modbus presses (press-1..3 on 127.0.0.1:${presses.ports.join(", ")}) are polled by the gateway
${ovenLine(oven)}  ${opts.devices} simulated 5G AGVs push telemetry to ${base}/api/v1/ingest/{agv-id}
  ${SENSORS} simulated 5G sensors publish over MQTT to mqtt://127.0.0.1:${gw.mqttPort} (devices/{sensor-id}/telemetry), roaming now and then
  the gateway journals it in ${dataDir}${tmpDataDir ? " (removed when the demo stops)" : ""} and forwards it to ${broker ? "an embedded MQTT broker" : "your broker"} at ${brokerUrl}

Where to look:
  dashboard   ${base}/?token=${DEMO_OPERATOR_TOKEN}${oven ? "#device=oven-1&tag=zone1_temp" : "#device=press-1&tag=spindle_rpm"}
  devices     curl -H 'Authorization: Bearer ${DEMO_OPERATOR_TOKEN}' ${base}/api/v1/devices
  press tags  curl -H 'Authorization: Bearer ${DEMO_OPERATOR_TOKEN}' ${base}/api/v1/devices/press-1/tags
  lamp on     curl -X POST -H 'Authorization: Bearer ${DEMO_OPERATOR_TOKEN}' -d '{"value":true}' ${base}/api/v1/devices/press-1/tags/lamp/write
  health      curl ${base}/healthz
  metrics     curl ${base}/metrics
  the cloud   mosquitto_sub -h 127.0.0.1 -p ${brokerPort} -t 'floorgate/#' -v

Ctrl-C stops it.
`);
  await signalled;
  process.stdout.write("stopping the demo…\n");
  await fleet.stop();
  await sensors.stop();
  const code = await stopWithin(gw, log);
  await cleanup();
  return code;
}

const ovenEndpoint = (port: number): string => `opc.tcp://127.0.0.1:${port}/UA/Oven`;
const ovenPortOf = (run: SimulatorRun): number => Number(/:(\d+)\/UA\/Oven/.exec(run.served[0] ?? "")?.[1] ?? 0);

const ovenLine = (run: SimulatorRun | null): string =>
  run ? `  a simulated OPC UA oven (oven-1 on ${ovenEndpoint(ovenPortOf(run))}: zones, state machine, writable setpoint) is subscribed to by the gateway\n` : "";

/** The oven's tags in the demo: what the gateway subscribes to. */
const OVEN_TAGS = `
      - { name: state, nodeId: "ns=2;s=Oven.State" }
      - { name: setpoint, nodeId: "ns=2;s=Oven.Setpoint", writable: true }
      - { name: zone1_temp, nodeId: "ns=2;s=Oven.Zone1.Temperature", deadband: 0.2 }
      - { name: zone2_temp, nodeId: "ns=2;s=Oven.Zone2.Temperature", deadband: 0.2 }
      - { name: zone3_temp, nodeId: "ns=2;s=Oven.Zone3.Temperature", deadband: 0.2 }
      - { name: zone1_power, nodeId: "ns=2;s=Oven.Zone1.HeaterPower" }
      - { name: part_count, nodeId: "ns=2;s=Oven.PartCount" }
      - { name: running, nodeId: "ns=2;s=Oven.Running" }`;

/**
 * Starts the OPC UA oven through the opcua driver's simulator when this build carries that
 * driver (it lands separately from the demo); resolves with its port, or undefined without it.
 */
async function startOven(started: (run: SimulatorRun) => void, workDir: string | undefined): Promise<number | undefined> {
  const sim = findDriver("opcua")?.simulator;
  if (!sim) return undefined;
  // port 0: the simulator takes a free port and names it in its served line
  // its certificates go in the demo's temp folder: the demo leaves nothing else in the temp directory
  const run = await sim.start([ovenDevice(0)], { workDir });
  started(run);
  return ovenPortOf(run);
}

/** The oven as a device config, for the simulator (which reads the endpoint and the tags' NodeIds). */
function ovenDevice(port: number): DeviceConfigBase {
  const r = parseConfigText(`gateway: { id: x, group: x }\ndevices:\n  - id: oven-1\n    driver: opcua\n    connection: { endpoint: "${ovenEndpoint(port)}" }\n    tags:${OVEN_TAGS}\n`, "demo-oven.yaml", {});
  if (!r.ok) throw new Error(`demo oven config is invalid:\n${r.problems.map((p) => formatProblem("demo-oven.yaml", p)).join("\n")}`);
  return r.config.devices[0]!;
}

/** The demo's config, written as YAML and put through the real loader, so it is validated and defaulted like any other. */
export function demoConfig(port: number, brokerUrl: string, dataDir: string, pressPorts: readonly number[], ovenPort?: number): GatewayConfig {
  const presses = pressPorts.map((p, i) => `
  - id: press-${i + 1}
    driver: modbus
    connection: { transport: tcp, host: 127.0.0.1, port: ${p}, unitId: 1, timeoutMs: 1000 }
    pollMs: ${i === 0 ? 500 : 1000}
    tags:
      - { name: spindle_rpm, area: holding, address: 0, type: float32, byteOrder: ABCD, unit: rpm, deadband: 0.5 }
      - { name: temp_c, area: holding, address: 2, type: int16, scale: 0.1, unit: degC }
      - { name: oil_temp_c, area: holding, address: 3, type: int16, scale: 0.1, unit: degC }
      - { name: part_count, area: input, address: 10, type: uint32, byteOrder: CDAB }
      - { name: energy_kwh, area: holding, address: 20, type: float64, byteOrder: DCBA, unit: kWh }
      - { name: model, area: holding, address: 30, type: string, length: 8 }
      - { name: running, area: holding, address: 40, type: bool, bit: 0 }
      - { name: door_open, area: discrete, address: 3, type: bool }
      - { name: lamp, area: coil, address: 0, type: bool, writable: true }`).join("") + (ovenPort === undefined ? "" : `
  - id: oven-1
    driver: opcua
    connection: { endpoint: "${ovenEndpoint(ovenPort)}" }
    samplingMs: 500
    tags:${OVEN_TAGS}`);
  const yaml = `
gateway: { id: demo-edge, group: demo-plant, dataDir: ${JSON.stringify(dataDir)} }
http: { listen: "127.0.0.1:${port}", operatorTokens: [${JSON.stringify(DEMO_OPERATOR_TOKEN)}] }
journal: { maxBytes: 256MiB }
devices:${presses || " []"}
ingest:
  mqtt: { listen: "127.0.0.1:0" }
  devices: [{ id: "agv-*", token: ${JSON.stringify(DEMO_TOKEN)} }, { id: "sensor-*", token: ${JSON.stringify(SENSOR_TOKEN)} }]
outputs:
  - { type: mqtt, name: cloud, url: ${JSON.stringify(brokerUrl)} }
`;
  const r = parseConfigText(yaml, "demo.yaml", {});
  if (!r.ok) throw new Error(`demo config is invalid:\n${r.problems.map((p) => formatProblem("demo.yaml", p)).join("\n")}`);
  return r.config;
}
