/**
 * `npm run bench`: every figure the issues ask for, in one run, side by side. Each part starts its
 * own servers on free loopback ports. Select parts with `npm run bench -- journal e2e modbus`
 * (default: all but the long scale runs; add `modbus-scale` or `opcua-scale` for them). The MQTT
 * ingest parts take sizes from FLOORGATE_BENCH_DEVICES, _WINDOW, _MESSAGES and _ROUNDS.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { benchE2e } from "./e2e.js";
import { benchInflux } from "./influx.js";
import { benchJournal } from "./journal.js";
import { benchModbus } from "./modbus.js";
import { benchMqttOutput } from "./mqtt-output.js";
import { startBenchBroker } from "../test/helpers/mosquitto.js";

type Figures = Record<string, number>;

/** Long scale runs, and parts that only repeat or check another part. */
const NOT_BY_DEFAULT = new Set(["modbus-scale", "opcua-scale", "e2e-live", "mqtt-ingest-bare", "ingest-parse"]);

const parts: Record<string, () => Promise<Figures>> = {
  journal: async () => {
    const dir = await mkdtemp(join(tmpdir(), "floorgate-bench-journal-"));
    try { return await benchJournal(dir); } finally { await rm(dir, { recursive: true, force: true }); }
  },
  "mqtt-output": async () => {
    const broker = await startBenchBroker();
    try {
      const r = await benchMqttOutput(broker.url);
      return {
        [`mqtt output samples/s, ${r.maxInFlight} writes in flight`]: Math.round(r.windowed),
        "mqtt output samples/s, 1 write in flight": Math.round(r.single),
        "ratio window / single": Number((r.windowed / r.single).toFixed(1)),
      };
    } finally { await broker.dispose(); }
  },
  // The output against a bare MQTT.js publisher of the same bytes, and Mosquitto's own CPU.
  "mqtt-output-cpu": async () => {
    const { benchMqttOutputVsBare, vsBareFigures } = await import("./mqtt-output.js");
    const broker = await startBenchBroker();
    try {
      return vsBareFigures(await benchMqttOutputVsBare(broker.url, broker.pid!, {
        rounds: envInt("FLOORGATE_BENCH_ROUNDS", 3),
        devices: envInt("FLOORGATE_BENCH_DEVICES", 1000),
        tagsPerDevice: envInt("FLOORGATE_BENCH_TAGS", 10),
      }));
    } finally { await broker.dispose(); }
  },
  sparkplug: async () => {
    const { benchSparkplug, sparkplugFigures } = await import("./sparkplug.js");
    const broker = await startBenchBroker();
    try { return sparkplugFigures(await benchSparkplug(broker.url)); } finally { await broker.dispose(); }
  },
  influx: () => benchInflux(),
  "outputs-3": async () => {
    const { benchOutputs3 } = await import("./outputs3.js");
    return benchOutputs3();
  },
  e2e: () => benchE2e(),
  modbus: () => benchModbus(),
  opcua: async () => {
    const { benchOpcua } = await import("./opcua.js");
    return benchOpcua({ servers: 1, variables: 10_000, seconds: 30 });
  },
  // 100,000 items over 10 servers. Every 1 s, not 100 ms: 1,000,000 changes/s would need about
  // four cores for the bench servers alone (node-opcua serves ~100k/s at ~40 % of a core), on a
  // machine of two; the rate per session is what the `opcua` part measures.
  "opcua-scale": async () => {
    const { benchOpcua } = await import("./opcua.js");
    return benchOpcua({ servers: 10, variables: 10_000, periodMs: 1000, seconds: 30, profile: true });
  },
  dashboard: async () => {
    const { benchDashboard } = await import("./dashboard.js");
    return benchDashboard();
  },
  "e2e-live": () => benchE2e({ only: "live" }),
  "mqtt-ingest": async () => {
    const { benchMqttIngestFleet } = await import("./mqtt-ingest.js");
    return benchMqttIngestFleet({ devices: envInt("FLOORGATE_BENCH_DEVICES", 10_000), seconds: envInt("FLOORGATE_BENCH_SECONDS", 20) });
  },
  "mqtt-ingest-max": async () => {
    const { benchMqttIngestMax } = await import("./mqtt-ingest.js");
    return benchMqttIngestMax({
      devices: envInt("FLOORGATE_BENCH_DEVICES", 1_000),
      window: envInt("FLOORGATE_BENCH_WINDOW", 8),
      messagesPerPublish: envInt("FLOORGATE_BENCH_MESSAGES", 10),
      rounds: envInt("FLOORGATE_BENCH_ROUNDS", 2),
    });
  },
  "mqtt-ingest-bare": async () => {
    const { benchBareFleet } = await import("./mqtt-ingest.js");
    return benchBareFleet({ devices: envInt("FLOORGATE_BENCH_DEVICES", 10_000) });
  },
  // The msgId window: bytes per entry and ns per message, against the old structure and a plain Map.
  dedup: async () => {
    const { benchDedup } = await import("./dedup.js");
    return benchDedup({ devices: envInt("FLOORGATE_BENCH_DEVICES", 10_000) });
  },
  // former vs current push-body parser, in process (a check on this code path, not an issue figure)
  "ingest-parse": async () => {
    const { benchIngestParse } = await import("./ingest-parse.js");
    return benchIngestParse();
  },
  live: async () => {
    const { benchLive } = await import("./live.js");
    return benchLive();
  },
  "modbus-scale": async () => {
    const { benchModbusScale } = await import("./modbus-scale.js");
    return benchModbusScale({ devices: 2000 });
  },
};

/** A whole-number knob from the environment (bench sizes), or its default. */
function envInt(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined || v === "") return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name}=${v}: expected a positive whole number`);
  return n;
}

async function main(): Promise<void> {
  const wanted = process.argv.slice(2).filter((a) => !a.startsWith("-"));
  const names = wanted.length > 0 ? wanted : Object.keys(parts).filter((n) => !NOT_BY_DEFAULT.has(n));
  const results: { part: string; figure: string; value: number }[] = [];
  for (const name of names) {
    const run = parts[name];
    if (!run) throw new Error(`unknown bench part ${name}; parts: ${Object.keys(parts).join(", ")}`);
    process.stderr.write(`bench: ${name}…\n`);
    const t0 = Date.now();
    const figures = await run();
    for (const [figure, value] of Object.entries(figures)) results.push({ part: name, figure, value });
    process.stderr.write(`bench: ${name} done in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
  }
  const w = Math.max(...results.map((r) => r.figure.length));
  let last = "";
  for (const r of results) {
    if (r.part !== last) { process.stdout.write(`\n${r.part}\n`); last = r.part; }
    process.stdout.write(`  ${r.figure.padEnd(w)}  ${r.value.toLocaleString("en-US")}\n`);
  }
}

main().catch((err: unknown) => { console.error(err); process.exit(1); });
