/**
 * OPC UA figures (issue 12): servers of variables that all change every 100 ms, each in a child
 * process (bench/opcua-server.ts), and
 *  (a) a bare node-opcua client subscribing to every variable (ClientMonitoredItemGroup,
 *      samplingInterval 100, in this process): notifications/s and its CPU % of one core;
 *  (b) the gateway (`bin/floorgate run` as a child; driver: opcua, journal, MQTT output to a
 *      Mosquitto started here): value changes/s acknowledged by the broker (the output's `sent`
 *      count on /healthz), its CPU % of one core (from /proc), RSS, and the ratio to (a).
 * (b) needs the opcua driver in the build; without it the part says so and reports (a) only.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AttributeIds, ClientMonitoredItemGroup, OPCUAClient, TimestampsToReturn, setErrorLogger, setWarningLogger } from "node-opcua";
import { startBenchBroker } from "../test/helpers/mosquitto.js";
import { freePort } from "../test/helpers/ports.js";

setWarningLogger(() => undefined);
setErrorLogger(() => undefined);

// Run compiled (npm run bench: dist/bench/) or under tsx (bench/).
const COMPILED = !import.meta.filename.endsWith(".ts");
const ROOT = COMPILED ? join(import.meta.dirname, "..", "..") : join(import.meta.dirname, "..");
const SERVER_ARGS = COMPILED
  ? [join(import.meta.dirname, "opcua-server.js")]
  : [join(ROOT, "node_modules", "tsx", "dist", "cli.mjs"), join(import.meta.dirname, "opcua-server.ts")];

interface Server { port: number; child: ChildProcess; stop(): Promise<void> }

async function startServer(variables: number, periodMs: number): Promise<Server> {
  const child = spawn(process.execPath, [...SERVER_ARGS, String(variables), String(periodMs)], { stdio: ["ignore", "pipe", "inherit"] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => { out += d.toString(); const m = /port (\d+)/.exec(out); if (m) resolve(Number(m[1])); });
    child.once("exit", (code) => reject(new Error(`bench OPC UA server exited ${code}`)));
  });
  return { port, child, stop: () => new Promise<void>((r) => { child.once("exit", () => r()); child.kill("SIGTERM"); }) };
}

/** (a): one session per server, every variable in one ClientMonitoredItemGroup; notifications/s over `seconds` after a warm-up. */
async function bareClient(ports: readonly number[], variables: number, seconds: number): Promise<{ perS: number; cpuPct: number }> {
  let received = 0;
  const stops: (() => Promise<void>)[] = [];
  for (const port of ports) {
    const client = OPCUAClient.create({ endpointMustExist: false, connectionStrategy: { maxRetry: 0 } });
    await client.connect(`opc.tcp://127.0.0.1:${port}`);
    const session = await client.createSession();
    const sub = await session.createSubscription2({ requestedPublishingInterval: 100, requestedMaxKeepAliveCount: 20, requestedLifetimeCount: 600, maxNotificationsPerPublish: 0, publishingEnabled: true, priority: 1 });
    const items = Array.from({ length: variables }, (_, i) => ({ nodeId: `ns=1;s=v${i}`, attributeId: AttributeIds.Value }));
    const group = ClientMonitoredItemGroup.create(sub, items, { samplingInterval: 100, queueSize: 1, discardOldest: true }, TimestampsToReturn.Source);
    group.on("changed", () => { received++; });
    await new Promise<void>((r) => group.once("initialized", () => r()));
    stops.push(async () => { await group.terminate(); await sub.terminate(); await session.close(); await client.disconnect(); });
  }
  await new Promise((r) => setTimeout(r, 3000)); // warm-up: initial values and the first publish cycles
  const r0 = received;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const t = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  const perS = (received - r0) / t;
  for (const s of stops) await s();
  return { perS, cpuPct: ((c.user + c.system) / 1e6 / t) * 100 };
}

async function procStat(pid: number): Promise<{ cpuS: number; rssMb: number }> {
  const stat = (await readFile(`/proc/${pid}/stat`, "utf8")).split(") ")[1]!.split(" ");
  const ticks = Number(stat[11]) + Number(stat[12]); // utime + stime, fields 14 and 15
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return { cpuS: ticks / 100, rssMb: rssKb / 1024 };
}

async function sentOf(base: string): Promise<number> {
  const h = await (await fetch(`${base}/healthz`)).json() as { outputs: Record<string, { sent: number }> };
  return Object.values(h.outputs).reduce((a, o) => a + o.sent, 0);
}

/** (b): the gateway subscribed to every variable of every server, journal + MQTT; null when the build has no opcua driver. */
async function gateway(ports: readonly number[], variables: number, seconds: number): Promise<{ perS: number; cpuPct: number; rssMb: number } | null> {
  const { findDriver } = await import("../src/plugins/drivers.js");
  if (!findDriver("opcua")) return null;
  const broker = await startBenchBroker();
  const dir = await mkdtemp(join(tmpdir(), "floorgate-bench-opcua-"));
  const httpPort = await freePort();
  const devices = ports.map((port, s) => {
    const tags = Array.from({ length: variables }, (_, i) => `      - { name: v${i}, nodeId: "ns=1;s=v${i}" }`).join("\n");
    return `  - id: server-${s}\n    driver: opcua\n    connection: { endpoint: "opc.tcp://127.0.0.1:${port}" }\n    samplingMs: 100\n    tags:\n${tags}`;
  }).join("\n");
  const file = join(dir, "bench.yaml");
  await writeFile(file, `gateway: { id: bench, group: bench, dataDir: ${JSON.stringify(join(dir, "data"))} }\nhttp: { listen: "127.0.0.1:${httpPort}" }\njournal: { maxBytes: 2GiB }\ndevices:\n${devices}\noutputs:\n  - { type: mqtt, name: cloud, url: ${JSON.stringify(broker.url)}, maxBatch: 500 }\n`);
  const child = spawn(process.execPath, [join(ROOT, "bin", "floorgate"), "run", "--config", file], { stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, FLOORGATE_LOG_LEVEL: "warn" } });
  const base = `http://127.0.0.1:${httpPort}`;
  try {
    for (let i = 0; ; i++) {
      if (child.exitCode !== null) throw new Error(`gateway exited ${child.exitCode}`);
      const sent = await sentOf(base).catch(() => 0);
      if (sent >= variables * ports.length) break; // every item delivered once: subscribed
      if (i > 600) throw new Error("gateway did not deliver the first values within 60 s");
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 3000));
    const s0 = await sentOf(base);
    const p0 = await procStat(child.pid!);
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const t = (performance.now() - t0) / 1000;
    const s1 = await sentOf(base);
    const p1 = await procStat(child.pid!);
    return { perS: (s1 - s0) / t, cpuPct: ((p1.cpuS - p0.cpuS) / t) * 100, rssMb: p1.rssMb };
  } finally {
    await new Promise<void>((r) => { if (child.exitCode !== null) r(); else { child.once("exit", () => r()); child.kill("SIGTERM"); } });
    await broker.dispose();
    await rm(dir, { recursive: true, force: true });
  }
}

export interface OpcuaBenchOptions { servers?: number; variables?: number; seconds?: number }

export async function benchOpcua(opts: OpcuaBenchOptions = {}): Promise<Record<string, number>> {
  const serversN = opts.servers ?? 1;
  const variables = opts.variables ?? 10_000;
  const seconds = opts.seconds ?? 30;
  const total = serversN * variables;
  const servers: Server[] = [];
  try {
    for (let i = 0; i < serversN; i++) servers.push(await startServer(variables, 100));
    const ports = servers.map((s) => s.port);
    const bare = await bareClient(ports, variables, seconds);
    const label = `${total.toLocaleString("en-US")} items`;
    const out: Record<string, number> = {
      [`bare node-opcua client notifications/s (${label}, offered ${(total * 10).toLocaleString("en-US")}/s)`]: Math.round(bare.perS),
      "bare client CPU % of one core": Math.round(bare.cpuPct),
    };
    const gw = await gateway(ports, variables, seconds);
    if (gw === null) {
      process.stderr.write("bench opcua: the opcua driver is not in this build: gateway figures left out\n");
      return out;
    }
    out[`gateway value changes/s end to end (${label})`] = Math.round(gw.perS);
    out["gateway CPU % of one core"] = Math.round(gw.cpuPct);
    out["gateway RSS MB"] = Math.round(gw.rssMb);
    out["ratio gateway / bare client"] = Number((gw.perS / bare.perS).toFixed(2));
    return out;
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
}
