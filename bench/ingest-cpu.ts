/**
 * CPU cost of the HTTP device push, per sample, in the gateway's own process: `createHttpServer` +
 * `createIngest` in-process with a sink that resolves at once (no journal, no MQTT), loaded by a
 * separate child process (so the load generator's CPU is not counted). Reports CPU-µs per sample
 * from `process.cpuUsage` deltas, which stays meaningful on a busy 2-core machine where wall-clock
 * throughput does not.
 *
 * Run: `npx tsx bench/ingest-cpu.ts [bodiesPerClient=300] [rounds=3]`
 * (or from dist after `npm run build`: `node dist/bench/ingest-cpu.js`).
 */
import { spawn } from "node:child_process";
import type { GatewayConfig } from "../src/config/types.js";
import { createLogger } from "../src/core/logger.js";
import type { SampleColumns } from "../src/core/sample-columns.js";
import { createHttpServer } from "../src/http/server.js";
import { createIngest, type IngestSink } from "../src/ingest/ingest.js";
import { Metrics } from "../src/runtime/status/metrics.js";
import type { StatusView } from "../src/core/status.js";

const CLIENTS = 20;
const TOKEN = "bench-token";
const SAMPLES_PER_BODY = 100;

/** The load generator: same bodies and connection pattern as bench/e2e.ts, msgIds unique per round. */
const CLIENT_JS = `
import { Agent, request } from "node:http";
const [port, clients, bodies, round] = process.argv.slice(1).map(Number);
const agent = new Agent({ keepAlive: true, maxSockets: clients });
function body(device, seq) {
  const msgs = [];
  for (let m = 0; m < 10; m++) {
    const values = {};
    for (let t = 0; t < 9; t++) values["t" + t] = seq * 10 + m + t / 10;
    values.loaded = (seq + m) % 2 === 0;
    msgs.push({ msgId: "r" + round + "-d" + device + "-" + seq + "-" + m, values });
  }
  return JSON.stringify(msgs);
}
function post(path, data) {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, method: "POST", agent, headers: { authorization: "Bearer ${TOKEN}", "content-type": "application/json", "content-length": Buffer.byteLength(data) } }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode));
    });
    req.on("error", reject);
    req.end(data);
  });
}
let bad = 0;
await Promise.all(Array.from({ length: clients }, async (_, d) => {
  const pre = Array.from({ length: bodies }, (_, s) => body(d, s));
  for (let s = 0; s < bodies; s++) if ((await post("/api/v1/ingest/dev-" + d, pre[s])) !== 202) bad++;
}));
agent.destroy();
if (bad > 0) { console.error("non-202 answers: " + bad); process.exit(1); }
`;

function runClient(port: number, bodies: number, round: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--input-type=module", "-e", CLIENT_JS, String(port), String(CLIENTS), String(bodies), String(round)], { stdio: ["ignore", "inherit", "inherit"] });
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`client exited with ${code}`))));
  });
}

function config(): GatewayConfig {
  return {
    gateway: { id: "bench-edge", group: "bench", dataDir: "/nonexistent", driverThreads: 0 },
    http: { listen: "127.0.0.1:0", host: "127.0.0.1", port: 0, operatorTokens: [], allowedOrigins: [] },
    journal: { maxBytes: 1 << 30, overflow: "reject", fsync: "batch", fsyncIntervalMs: 50 },
    devices: [],
    ingest: { http: true, maxPayloadBytes: 1 << 20, ratePerDevice: 1_000_000, maxDevices: 20_000, devices: [{ id: "dev-*", token: TOKEN }] },
    outputs: [],
  };
}

const status: StatusView = {
  gatewayId: () => "bench-edge",
  health: () => ({
    status: "ok", journalAccepting: true, devices: {}, outputs: {},
    journal: { bytes: 0, maxBytes: 1, records: 0, segments: 1, oldestPos: 0, newestPos: 0, appended: 0, dropped: 0, tornRecords: 0, corruptRecords: 0, rejected: 0, writable: true, unwritable: null, failed: false, full: false },
  }),
  devices: () => [],
  tags: () => undefined,
};

export async function benchIngestCpu(bodies = 300, rounds = 3): Promise<{ cpuUsPerSample: number[]; best: number; median: number; samples: number }> {
  const cfg = config();
  const metrics = new Metrics({
    deviceStates: () => [],
    journal: () => ({ bytes: 0, records: 0, segments: 0, lag: {}, torn: 0, writable: true }),
    outputsUp: () => ({}),
    samplesIn: () => [],
  });
  let stored = 0;
  const sink: IngestSink = {
    push(_device: string, cols: SampleColumns) {
      stored += cols.length;
      return Promise.resolve();
    },
  };
  const log = createLogger({ level: "warn" });
  const ingest = createIngest(cfg.ingest, sink, metrics, Date.now, { log });
  const http = createHttpServer({ config: cfg, status, metrics, ingest, log });
  const { port } = await http.listen("127.0.0.1", 0);
  const out: number[] = [];
  try {
    await runClient(port, bodies, 0); // warm-up: JIT, sockets, maps
    for (let r = 1; r <= rounds; r++) {
      const before = stored;
      const c0 = process.cpuUsage();
      await runClient(port, bodies, r);
      const c = process.cpuUsage(c0);
      const n = stored - before;
      if (n !== CLIENTS * bodies * SAMPLES_PER_BODY) throw new Error(`stored ${n} samples, expected ${CLIENTS * bodies * SAMPLES_PER_BODY}`);
      out.push((c.user + c.system) / n);
    }
  } finally {
    await http.close(1_000);
  }
  const r3 = (x: number) => Math.round(x * 1000) / 1000;
  const sorted = [...out].sort((a, b) => a - b);
  return { cpuUsPerSample: out.map(r3), best: r3(sorted[0]!), median: r3(sorted[sorted.length >> 1]!), samples: CLIENTS * bodies * SAMPLES_PER_BODY };
}

if (process.argv[1] && /ingest-cpu\.(ts|js)$/.test(process.argv[1])) {
  const bodies = Number(process.argv[2] ?? 300);
  const rounds = Number(process.argv[3] ?? 3);
  benchIngestCpu(bodies, rounds).then((r) => {
    console.log(JSON.stringify(r));
  }, (err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
