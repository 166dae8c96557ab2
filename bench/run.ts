/**
 * `npm run bench`: every figure the issues ask for, in one run, side by side. Each part starts its
 * own servers on free loopback ports. Select parts with `npm run bench -- journal e2e modbus`
 * (default: all but the long scale runs; add `modbus-scale` or `opcua-scale` for them).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { benchE2e } from "./e2e.js";
import { benchJournal } from "./journal.js";
import { benchModbus } from "./modbus.js";
import { benchMqttOutput } from "./mqtt-output.js";
import { startBenchBroker } from "../test/helpers/mosquitto.js";

type Figures = Record<string, number>;

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
  "modbus-scale": async () => {
    const { benchModbusScale } = await import("./modbus-scale.js");
    return benchModbusScale({ devices: 2000 });
  },
};

async function main(): Promise<void> {
  const wanted = process.argv.slice(2).filter((a) => !a.startsWith("-"));
  const names = wanted.length > 0 ? wanted : Object.keys(parts).filter((n) => n !== "modbus-scale" && n !== "opcua-scale");
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
