/**
 * Three outputs from one journal: the gateway process (bin/floorgate) takes 100,000 samples/s of
 * HTTP device pushes (20 devices, bodies of 500 samples, paced) and forwards them to MQTT json, MQTT Sparkplug B and InfluxDB 1.x at once,
 * each from its own cursor. Reported: each output's lag p99 (samples behind its cursor, from
 * /healthz every 100 ms over the steady part of the run, and as ms at the offered rate) and the
 * gateway's CPU (utime + stime of the whole process from /proc, all threads) against the same load
 * with the json output alone, in the same bench run. Mosquitto and influxd run on this machine too,
 * as does the load generator: on two cores the three compete with the gateway.
 *
 * `npm run bench -- outputs-3` (after `npm run build`), or `npx tsx bench/outputs3.ts`.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { Agent, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { startBenchBroker } from "../test/helpers/mosquitto.js";
import { startInfluxd } from "../test/helpers/influxdb.js";
import { freePort } from "../test/helpers/ports.js";

const ROOT = existsSync(join(import.meta.dirname, "..", "package.json")) ? join(import.meta.dirname, "..") : join(import.meta.dirname, "..", "..");
const BIN = join(ROOT, "bin", "floorgate");
const TOKEN = "bench-token";
const DEVICES = 20;
const PER_BODY = 500; // 50 messages × 10 values
/** concurrent pushes: each waits for its group commit (fsyncIntervalMs), so the rate needs many at once */
const CONCURRENCY = 64;
const CLK_TCK = 100; // Linux USER_HZ

type OutputKind = "json" | "sparkplug-b" | "influx";

export interface Outputs3Options {
  /** offered load, samples/s; default 100,000 */
  rate?: number;
  /** seconds of load; the first 3 are warm-up, left out of lag and CPU; default 15 */
  seconds?: number;
}

interface RunResult {
  /** samples/s the gateway acknowledged (202) over the steady window */
  ingested: number;
  /** CPU seconds per second (1.0 = one core) over the steady window */
  cpu: number;
  /** per output: lag p99 and max, in samples */
  lag: Record<string, { p99: number; max: number }>;
  /** every sample confirmed by every output at the end */
  drained: boolean;
}

/** One device's body: constant values, no msgId (the load generator must stay cheap). */
function body(device: number): string {
  const msgs = [];
  for (let m = 0; m < PER_BODY / 10; m++) {
    const values: Record<string, number | boolean> = {};
    for (let t = 0; t < 9; t++) values[`t${t}`] = device + m + t / 10;
    values.loaded = m % 2 === 0;
    msgs.push({ values });
  }
  return JSON.stringify(msgs);
}

function post(agent: Agent, url: string, data: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request(url, { method: "POST", agent, headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json", "content-length": Buffer.byteLength(data) } }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", () => resolve(0));
    req.end(data);
  });
}

function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(f[11]) + Number(f[12]); // utime, stime (fields 14 and 15 of the full line)
}

function p99(xs: number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(s.length * 0.99) - 1)]!;
}

interface Health { outputs: Record<string, { lag: number; sent: number; state: string }> }

async function health(base: string): Promise<Health> {
  return (await (await fetch(`${base}/healthz`)).json()) as Health;
}

async function waitFor(cond: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`bench outputs-3: ${what} not reached within ${ms} ms`);
}

async function run(kinds: OutputKind[], mqttUrl: string, influxUrl: string, opts: Required<Outputs3Options>, tag: string): Promise<RunResult> {
  const dir = await mkdtemp(join(tmpdir(), "floorgate-bench-out3-"));
  const port = await freePort();
  const outputs = kinds.map((k) => k === "json"
    ? `  - { type: mqtt, name: json, url: "${mqttUrl}", clientId: bench-json-${tag}, qos: 1 }`
    : k === "sparkplug-b"
      ? `  - { type: mqtt, name: sparkplug, url: "${mqttUrl}", clientId: bench-spb-${tag}, format: sparkplug-b }`
      : `  - { type: influx, name: influx, url: "${influxUrl}", database: bench_${tag.replace(/\W/g, "_")} }`);
  const cfg = join(dir, "floorgate.yaml");
  await writeFile(cfg, `gateway: { id: bench-edge-${tag}, group: bench, dataDir: ./data }
http: { listen: "127.0.0.1:${port}" }
journal: { maxBytes: 4GiB, fsync: batch, fsyncIntervalMs: 10 }
ingest:
  ratePerDevice: 1000000
  maxPayloadBytes: 1048576
  devices: [{ id: "dev-*", token: "${TOKEN}" }]
outputs:
${outputs.join("\n")}
`);
  const child: ChildProcess = spawn(BIN, ["run", "--config", cfg], { stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, FLOORGATE_LOG_LEVEL: "warn" } });
  const base = `http://127.0.0.1:${port}`;
  const names = kinds.map((k) => (k === "sparkplug-b" ? "sparkplug" : k));
  try {
    await waitFor(async () => {
      const h = await health(base);
      return names.every((n) => h.outputs[n]?.state === "online");
    }, 30_000, "outputs online");
    const bodies = Array.from({ length: DEVICES }, (_, d) => body(d));
    const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
    const bodiesPerS = opts.rate / PER_BODY;
    const lags: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
    let acked = 0;
    let ackedAtSteady = 0;
    let sentBodies = 0;
    let inFlight = 0;
    let steadyT0 = 0;
    let cpu0 = 0;
    const t0 = performance.now();
    const end = t0 + opts.seconds * 1000;
    const warm = t0 + 3000;
    let polling = false;
    const poller = setInterval(() => {
      if (polling || performance.now() < warm) return;
      polling = true;
      health(base).then((h) => { for (const n of names) lags[n]!.push(h.outputs[n]?.lag ?? 0); }, () => undefined).finally(() => { polling = false; });
    }, 100);
    // Paced load: bodies due by now are sent (round-robin over the devices), CONCURRENCY at most in flight.
    while (performance.now() < end) {
      const now = performance.now();
      if (steadyT0 === 0 && now >= warm) { steadyT0 = now; cpu0 = cpuTicks(child.pid!); ackedAtSteady = acked; }
      const due = Math.floor(((now - t0) / 1000) * bodiesPerS);
      while (sentBodies < due && inFlight < CONCURRENCY) {
        const d = sentBodies++ % DEVICES;
        inFlight++;
        void post(agent, `${base}/api/v1/ingest/dev-${d}`, bodies[d]!).then((status) => { inFlight--; if (status === 202) acked += PER_BODY; });
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    const steadyS = (performance.now() - steadyT0) / 1000;
    const cpu = (cpuTicks(child.pid!) - cpu0) / CLK_TCK / steadyS;
    const ingested = (acked - ackedAtSteady) / steadyS;
    clearInterval(poller);
    await waitFor(async () => inFlight === 0, 30_000, "pushes answered");
    agent.destroy();
    let drained = true;
    try {
      await waitFor(async () => {
        const h = await health(base);
        return names.every((n) => (h.outputs[n]?.lag ?? 1) === 0);
      }, 60_000, "outputs drained");
    } catch {
      drained = false;
    }
    const lag = Object.fromEntries(names.map((n) => [n, { p99: p99(lags[n]!), max: Math.max(0, ...lags[n]!) }]));
    return { ingested, cpu, lag, drained };
  } finally {
    if (child.exitCode === null) await new Promise<void>((r) => { child.once("exit", () => r()); child.kill("SIGTERM"); });
    await rm(dir, { recursive: true, force: true });
  }
}

export async function benchOutputs3(o: Outputs3Options = {}): Promise<Record<string, number>> {
  const opts: Required<Outputs3Options> = { rate: o.rate ?? 100_000, seconds: o.seconds ?? 15 };
  const broker = await startBenchBroker();
  const influx = await startInfluxd();
  try {
    const one = await run(["json"], broker.url, influx.url, opts, "one");
    const three = await run(["json", "sparkplug-b", "influx"], broker.url, influx.url, opts, "three");
    const ms = (samples: number): number => Number(((samples / opts.rate) * 1000).toFixed(0));
    const out: Record<string, number> = {
      "offered load, samples/s": opts.rate,
      "json alone: ingested samples/s": Math.round(one.ingested),
      "json alone: gateway CPU, cores": Number(one.cpu.toFixed(2)),
      "json alone: lag p99, samples": one.lag.json!.p99,
      "3 outputs: ingested samples/s": Math.round(three.ingested),
      "3 outputs: gateway CPU, cores": Number(three.cpu.toFixed(2)),
      "ratio CPU 3 outputs / json alone": Number((three.cpu / one.cpu).toFixed(2)),
    };
    for (const [n, l] of Object.entries(three.lag)) {
      out[`3 outputs: ${n} lag p99, samples`] = l.p99;
      out[`3 outputs: ${n} lag p99, ms at the offered rate`] = ms(l.p99);
      out[`3 outputs: ${n} lag max, samples`] = l.max;
    }
    out["every output drained after the load (1 = yes)"] = one.drained && three.drained ? 1 : 0;
    return out;
  } finally {
    await influx.dispose();
    await broker.dispose();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  benchOutputs3().then((r) => console.table(r), (e: unknown) => { console.error(e); process.exit(1); });
}
