/**
 * OPC UA figures (issue 12): servers of variables that all change every 100 ms, each in a child
 * process (bench/opcua-server.ts, which counts the changes it really offered), and
 *  (a) a bare node-opcua client subscribing to every variable (ClientMonitoredItemGroup, in this
 *      process): notifications/s and its CPU % of one core;
 *  (b) the gateway (`bin/floorgate run` as a child, with bin/floorgate's V8 flags; driver: opcua,
 *      journal, MQTT output to a Mosquitto started here): value changes/s acknowledged by the
 *      broker (the output's `sent` count on /healthz), samples appended to the journal/s, its CPU %
 *      of one core (from /proc), RSS, and the ratio to (a).
 * Both ask for the same thing: samplingInterval 0 (every change, pushed by the server), queue
 * size 10 (the driver's default), publishing interval 100 ms, source and server timestamps. With
 * `profile`, the gateway runs under --cpu-prof and the part adds where its time goes.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AttributeIds, ClientMonitoredItemGroup, OPCUAClient, TimestampsToReturn, setErrorLogger, setWarningLogger } from "node-opcua";
import { startBenchBroker } from "../test/helpers/mosquitto.js";
import { freePort } from "../test/helpers/ports.js";
import { profileSummary, type ProfileWindow } from "./opcua-profile.js";

setWarningLogger(() => undefined);
setErrorLogger(() => undefined);

// Run compiled (npm run bench: dist/bench/) or under tsx (bench/): the server runs as a plain
// node process either way, so /proc and its own CPU count are the server's and not a launcher's.
const COMPILED = !import.meta.filename.endsWith(".ts");
const ROOT = COMPILED ? join(import.meta.dirname, "..", "..") : join(import.meta.dirname, "..");
const SERVER_ARGS = COMPILED ? [join(import.meta.dirname, "opcua-server.js")] : ["--import", "tsx", join(import.meta.dirname, "opcua-server.ts")];
/** What bin/floorgate's shebang gives the daemon (spawning `node bin/floorgate` would drop them). */
const GATEWAY_NODE_FLAGS = ["--max-semi-space-size=16", "--no-allocation-site-pretenuring"];
const QUEUE_SIZE = 10;

interface Server { port: number; child: ChildProcess; offered: number; cpuS: number; stop(): Promise<void> }

async function startServer(variables: number, periodMs: number): Promise<Server> {
  const child = spawn(process.execPath, [...SERVER_ARGS, String(variables), String(periodMs)], { stdio: ["ignore", "pipe", "inherit"] });
  const server = { child, port: 0, offered: 0, cpuS: 0 } as Server;
  server.port = await new Promise<number>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const lines = out.split("\n");
      out = lines.pop()!;
      for (const line of lines) {
        const [what, a, b] = line.split(" ");
        if (what === "port") resolve(Number(a));
        else if (what === "offered") { server.offered = Number(a); server.cpuS = Number(b); }
      }
    });
    child.once("exit", (code) => reject(new Error(`bench OPC UA server exited ${code}`)));
  });
  server.stop = () => new Promise<void>((r) => { if (child.exitCode !== null) r(); else { child.once("exit", () => r()); child.kill("SIGTERM"); } });
  return server;
}

/** Changes offered and server CPU over a window (the servers report once a second). */
function serverWindow(servers: readonly Server[]): () => { offeredPerS: number; serverCpuPct: number } {
  const o0 = servers.reduce((a, s) => a + s.offered, 0);
  const c0 = servers.reduce((a, s) => a + s.cpuS, 0);
  const t0 = performance.now();
  return () => {
    const t = (performance.now() - t0) / 1000;
    return {
      offeredPerS: (servers.reduce((a, s) => a + s.offered, 0) - o0) / t,
      serverCpuPct: ((servers.reduce((a, s) => a + s.cpuS, 0) - c0) / t) * 100,
    };
  };
}

interface Window { perS: number; cpuPct: number; offeredPerS: number; serverCpuPct: number }

/** `p`, or a rejection naming `what` after `ms`: a starved server must fail the part, not hang it. */
function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([p.finally(() => clearTimeout(t)), new Promise<T>((_, reject) => { t = setTimeout(() => reject(new Error(`bench opcua: ${what} took over ${ms / 1000} s`)), ms); })]);
}

/** (a): one session per server, every variable in one ClientMonitoredItemGroup; notifications/s over `seconds` after a warm-up. */
async function bareClient(servers: readonly Server[], variables: number, seconds: number): Promise<Window> {
  let received = 0;
  const stops: (() => Promise<void>)[] = [];
  for (const { port } of servers) {
    const client = OPCUAClient.create({ endpointMustExist: false, connectionStrategy: { maxRetry: 0 } });
    await bounded(client.connect(`opc.tcp://127.0.0.1:${port}`), 60_000, "connect");
    const session = await bounded(client.createSession(), 60_000, "createSession");
    const sub = await session.createSubscription2({ requestedPublishingInterval: 100, requestedMaxKeepAliveCount: 20, requestedLifetimeCount: 600, maxNotificationsPerPublish: 0, publishingEnabled: true, priority: 1 });
    const items = Array.from({ length: variables }, (_, i) => ({ nodeId: `ns=1;s=v${i}`, attributeId: AttributeIds.Value }));
    const group = ClientMonitoredItemGroup.create(sub, items, { samplingInterval: 0, queueSize: QUEUE_SIZE, discardOldest: true }, TimestampsToReturn.Both);
    group.on("changed", () => { received++; });
    await bounded(new Promise<void>((r) => group.once("initialized", () => r())), 120_000, `monitoring ${variables} items`);
    stops.push(async () => { await group.terminate(); await sub.terminate(); await session.close(); await client.disconnect(); });
  }
  await new Promise((r) => setTimeout(r, 3000)); // warm-up: initial values and the first publish cycles
  const r0 = received;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const srv = serverWindow(servers);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const t = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  const perS = (received - r0) / t;
  const s = srv();
  for (const stop of stops) await stop();
  return { perS, cpuPct: ((c.user + c.system) / 1e6 / t) * 100, ...s };
}

async function procStat(pid: number): Promise<{ cpuS: number; rssMb: number }> {
  const stat = (await readFile(`/proc/${pid}/stat`, "utf8")).split(") ")[1]!.split(" ");
  const ticks = Number(stat[11]) + Number(stat[12]); // utime + stime, fields 14 and 15
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return { cpuS: ticks / 100, rssMb: rssKb / 1024 };
}

async function healthOf(base: string): Promise<{ sent: number; appended: number }> {
  const h = await (await fetch(`${base}/healthz`)).json() as { outputs: Record<string, { sent: number }>; journal: { appended: number } };
  return { sent: Object.values(h.outputs).reduce((a, o) => a + o.sent, 0), appended: h.journal.appended };
}

export interface GatewayFigures extends Window { journalPerS: number; rssMb: number; profile?: string[] }

/** (b): the gateway subscribed to every variable of every server, journal + MQTT; null when the build has no opcua driver. */
async function gateway(servers: readonly Server[], variables: number, seconds: number, profile: boolean): Promise<GatewayFigures | null> {
  const { findDriver } = await import("../src/plugins/drivers.js");
  if (!findDriver("opcua")) return null;
  const broker = await startBenchBroker();
  const dir = await mkdtemp(join(tmpdir(), "floorgate-bench-opcua-"));
  const httpPort = await freePort();
  // One tag list for every device (a YAML anchor), as a plant of identical machines would write it.
  const tagList = Array.from({ length: variables }, (_, i) => `      - { name: v${i}, nodeId: "ns=1;s=v${i}" }`).join("\n");
  const devices = servers.map(({ port }, s) =>
    `  - id: server-${s}\n    driver: opcua\n    connection: { endpoint: "opc.tcp://127.0.0.1:${port}" }\n    samplingMs: 0\n    queueSize: ${QUEUE_SIZE}\n    tags: ${s === 0 ? `&tags\n${tagList}` : "*tags"}`).join("\n");
  const file = join(dir, "bench.yaml");
  await writeFile(file, `gateway: { id: bench, group: bench, dataDir: ${JSON.stringify(join(dir, "data"))} }\nhttp: { listen: "127.0.0.1:${httpPort}" }\njournal: { maxBytes: 2GiB }\ndevices:\n${devices}\noutputs:\n  - { type: mqtt, name: cloud, url: ${JSON.stringify(broker.url)}, maxBatch: 500 }\n`);
  // FLOORGATE_BENCH_PROF_DIR keeps the .cpuprofile there (for DevTools or opcua-profile.js).
  const profDir = process.env.FLOORGATE_BENCH_PROF_DIR ?? join(dir, "prof");
  // FLOORGATE_BENCH_NODE_FLAGS: more V8/Node flags for the gateway (e.g. --trace-gc), space-separated.
  const extra = (process.env.FLOORGATE_BENCH_NODE_FLAGS ?? "").split(" ").filter(Boolean);
  const flags = [...GATEWAY_NODE_FLAGS, ...extra, ...(profile ? ["--cpu-prof", "--cpu-prof-dir", profDir] : [])];
  const spawnedAt = performance.now();
  let window: ProfileWindow | undefined;
  const child = spawn(process.execPath, [...flags, join(ROOT, "bin", "floorgate"), "run", "--config", file], { stdio: ["ignore", extra.length ? "inherit" : "ignore", "inherit"], env: { ...process.env, FLOORGATE_LOG_LEVEL: "warn" } });
  const base = `http://127.0.0.1:${httpPort}`;
  try {
    for (let i = 0; ; i++) {
      if (child.exitCode !== null) throw new Error(`gateway exited ${child.exitCode}`);
      const { sent } = await healthOf(base).catch(() => ({ sent: 0 }));
      if (sent >= variables * servers.length) break; // every item delivered once: subscribed
      if (i > 1200) throw new Error("gateway did not deliver the first values within 120 s");
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 3000));
    const h0 = await healthOf(base);
    const p0 = await procStat(child.pid!);
    const t0 = performance.now();
    const srv = serverWindow(servers);
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const t = (performance.now() - t0) / 1000;
    window = { fromS: (t0 - spawnedAt) / 1000, toS: (t0 - spawnedAt) / 1000 + t };
    const h1 = await healthOf(base);
    const p1 = await procStat(child.pid!);
    return {
      perS: (h1.sent - h0.sent) / t, journalPerS: (h1.appended - h0.appended) / t,
      cpuPct: ((p1.cpuS - p0.cpuS) / t) * 100, rssMb: p1.rssMb, ...srv(),
    };
  } finally {
    await new Promise<void>((r) => { if (child.exitCode !== null) r(); else { child.once("exit", () => r()); child.kill("SIGTERM"); } });
    await broker.dispose();
    if (profile) {
      const files = (await readdir(profDir).catch(() => [] as string[])).filter((f) => f.endsWith(".cpuprofile")).sort();
      if (files.length) files.reverse(); // the newest (names carry the time)
      if (files[0]) for (const line of await profileSummary(join(profDir, files[0]), window)) process.stderr.write(`bench opcua profile: ${line}\n`);
      else process.stderr.write("bench opcua profile: the gateway wrote no .cpuprofile\n");
    }
    await rm(dir, { recursive: true, force: true });
  }
}

export interface OpcuaBenchOptions {
  servers?: number;
  variables?: number;
  /** every variable changes this often (default 100 ms) */
  periodMs?: number;
  seconds?: number;
  profile?: boolean;
}

export async function benchOpcua(opts: OpcuaBenchOptions = {}): Promise<Record<string, number>> {
  const serversN = opts.servers ?? 1;
  const variables = opts.variables ?? 10_000;
  const seconds = opts.seconds ?? 30;
  const periodMs = opts.periodMs ?? 100;
  const total = serversN * variables;
  const nominal = (total * 1000) / periodMs;
  const servers: Server[] = [];
  try {
    for (let i = 0; i < serversN; i++) servers.push(await startServer(variables, periodMs));
    const bare = await bareClient(servers, variables, seconds);
    const label = `${total.toLocaleString("en-US")} items`;
    const out: Record<string, number> = {
      [`changes offered/s during (a) (${label}, ${serversN} server${serversN > 1 ? "s" : ""}, every ${periodMs} ms, nominal ${nominal.toLocaleString("en-US")}/s)`]: Math.round(bare.offeredPerS),
      "(a) bare node-opcua client notifications/s": Math.round(bare.perS),
      "(a) bare client CPU % of one core": Math.round(bare.cpuPct),
      "(a) servers' CPU % of one core (sum)": Math.round(bare.serverCpuPct),
    };
    const gw = await gateway(servers, variables, seconds, opts.profile ?? false);
    if (gw === null) {
      process.stderr.write("bench opcua: the opcua driver is not in this build: gateway figures left out\n");
      return out;
    }
    out["changes offered/s during (b)"] = Math.round(gw.offeredPerS);
    out["(b) gateway value changes/s end to end (acked by MQTT)"] = Math.round(gw.perS);
    out["(b) gateway samples/s into the journal"] = Math.round(gw.journalPerS);
    out["(b) gateway CPU % of one core"] = Math.round(gw.cpuPct);
    out["(b) gateway RSS MB"] = Math.round(gw.rssMb);
    out["(b) servers' CPU % of one core (sum)"] = Math.round(gw.serverCpuPct);
    out["ratio gateway / bare client"] = Number((gw.perS / bare.perS).toFixed(2));
    // On a loaded machine the servers do not always manage the nominal rate, and (a) and (b) run
    // one after the other: each side's share of what was offered during its own window says
    // whether it kept up, independently of what the servers managed.
    out["(a) delivered / offered"] = Number((bare.perS / Math.max(1, bare.offeredPerS)).toFixed(3));
    out["(b) delivered / offered"] = Number((gw.perS / Math.max(1, gw.offeredPerS)).toFixed(3));
    out["bare client CPU µs per notification"] = Number(((bare.cpuPct / 100) * 1e6 / Math.max(1, bare.perS)).toFixed(2));
    out["gateway CPU µs per value change"] = Number(((gw.cpuPct / 100) * 1e6 / Math.max(1, gw.perS)).toFixed(2));
    return out;
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
}
