/**
 * The processes of the MQTT ingest bench: the gateway (or the bare aedes baseline) under test and
 * the load generators, with file-descriptor limits raised for them, CPU and RSS read from /proc.
 */
import { execFile, fork, spawn, type ChildProcess } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import type { LoadCommand, LoadInit, LoadReply, LoadStats } from "./mqtt-ingest-load.js";
import { LatencyHistogram } from "./mqtt-ingest-wire.js";
import { waitFor } from "./modbus-scale.js";

const run = promisify(execFile);
const HERE = import.meta.dirname; // dist/bench
const BIN = join(HERE, "..", "..", "bin", "floorgate");
export const TOKEN = "bench-token";
const CLK_TCK = 100;

/**
 * Raises `pid`'s soft open-files limit to its hard limit (allowed without privileges) and checks
 * that at least `need` descriptors are allowed: 10,000 devices are 10,000 sockets in the gateway.
 */
export async function raiseFdLimit(pid: number, need: number): Promise<number> {
  const limits = await readFile(`/proc/${pid}/limits`, "utf8");
  const m = /Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/.exec(limits);
  if (!m) throw new Error(`bench: cannot read the open-files limit of pid ${pid}`);
  let soft = m[1] === "unlimited" ? Infinity : Number(m[1]);
  const hard = m[2] === "unlimited" ? Infinity : Number(m[2]);
  if (soft < hard) {
    await run("prlimit", ["--pid", String(pid), `--nofile=${hard === Infinity ? "unlimited" : hard}:${hard === Infinity ? "unlimited" : hard}`]);
    soft = hard;
  }
  if (soft < need) {
    throw new Error(`bench: pid ${pid} may open ${soft} files but needs ${need}; raise the hard limit (ulimit -Hn, /etc/security/limits.conf or the container's nofile)`);
  }
  return soft;
}

/** CPU seconds (user + system) and RSS bytes of a process, from /proc. */
export async function procUsage(pid: number): Promise<{ cpuS: number; rssBytes: number }> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const cpuS = (Number(f[11]) + Number(f[12])) / CLK_TCK; // utime, stime (fields 14, 15)
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const rss = /VmRSS:\s+(\d+) kB/.exec(status);
  return { cpuS, rssBytes: rss ? Number(rss[1]) * 1024 : NaN };
}

export { waitFor };

export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((r) => { child.once("exit", () => r()); child.kill(signal); });
}

export interface GatewayUnderTest {
  pid: number;
  child: ChildProcess;
  base: string;
  mqttPort: number;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** The gateway config of the bench: one glob token for every device, durability on, Mosquitto as the cloud. */
/** `withOutput: false` leaves the cloud output out: what ingest alone costs, journal and fsync included. */
export function gatewayConfig(httpPort: number, mqttPort: number, brokerUrl: string, extraMqtt = "", withOutput = true): string {
  return `gateway: { id: bench-edge, group: bench, dataDir: ./data }
http: { listen: "127.0.0.1:${httpPort}" }
journal: { maxBytes: 4GiB, fsync: batch, fsyncIntervalMs: ${process.env.FLOORGATE_BENCH_FSYNC_MS ?? 10} }
ingest:
  ratePerDevice: 1000000
  maxPayloadBytes: 1048576
  maxDevices: 20000
  mqtt: { listen: "127.0.0.1:${mqttPort}"${extraMqtt} }
  devices: [{ id: "dev-*", token: "${TOKEN}" }]
outputs:${withOutput ? `
  - { type: mqtt, name: cloud, url: "${brokerUrl}", qos: 1, maxBatch: 500 }` : " []"}
`;
}

export async function spawnGateway(dir: string, httpPort: number, mqttPort: number, brokerUrl: string, devices: number, withOutput = true): Promise<GatewayUnderTest> {
  const cfg = join(dir, "floorgate.yaml");
  await writeFile(cfg, gatewayConfig(httpPort, mqttPort, brokerUrl, process.env.FLOORGATE_BENCH_MQTT_EXTRA ?? "", withOutput));
  const child = spawn(process.execPath, ["--max-semi-space-size=16", "--no-allocation-site-pretenuring", ...(process.env.FLOORGATE_BENCH_GW_FLAGS?.split(" ").filter(Boolean) ?? []), BIN, "run", "--config", cfg], {
    cwd: dir, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, FLOORGATE_LOG_LEVEL: "warn" },
  });
  const errs: string[] = [];
  const keep = (c: Buffer) => { errs.push(c.toString()); if (errs.length > 50) errs.shift(); };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  let stopping = false;
  // A gateway that dies under load is a finding, not a hang: say so with what it logged last.
  child.once("exit", (code, signal) => {
    if (stopping) return;
    process.stderr.write(`bench: the gateway (pid ${child.pid}) exited during the run (code ${code}, signal ${signal}); its data dir ${dir} is kept for inspection (remove it after); its last output:\n${errs.join("").slice(-4000)}\n`);
    process.exit(3);
  });
  await raiseFdLimit(child.pid!, devices + 500);
  const base = `http://127.0.0.1:${httpPort}`;
  try {
    await waitFor(async () => child.exitCode === null && (await fetch(`${base}/healthz`).then((r) => r.status, () => 0)) === 200, 30_000, "gateway /healthz 200");
  } catch (err) {
    stopping = true;
    child.kill("SIGKILL");
    throw new Error(`${(err as Error).message}; gateway stderr: ${errs.join("").slice(-2000)}`);
  }
  return { pid: child.pid!, child, base, mqttPort, stop: (signal) => { stopping = true; return stopChild(child, signal); } };
}

export interface BareBroker { pid: number; child: ChildProcess; stop(): Promise<{ values: number; publishes: number }> }

export async function spawnBareAedes(port: number, devices: number): Promise<BareBroker> {
  const child = spawn(process.execPath, ["--max-semi-space-size=16", join(HERE, "mqtt-ingest-aedes.js"), String(port), TOKEN], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  child.stdout!.on("data", (c: Buffer) => { out += c.toString(); });
  await raiseFdLimit(child.pid!, devices + 100);
  await waitFor(() => out.includes("listening"), 20_000, "bare aedes listening");
  return {
    pid: child.pid!,
    child,
    stop: async () => {
      await stopChild(child);
      const last = out.trim().split("\n").pop() ?? "{}";
      try { return JSON.parse(last) as { values: number; publishes: number }; } catch { return { values: NaN, publishes: NaN }; }
    },
  };
}

/** One generator process, driven by request/answer over IPC. */
export class Generator {
  private waiting: { ev: LoadReply["ev"]; resolve: (r: LoadReply) => void }[] = [];
  private constructor(readonly child: ChildProcess) {
    child.on("message", (r: LoadReply) => {
      const i = this.waiting.findIndex((w) => w.ev === r.ev);
      if (i >= 0) this.waiting.splice(i, 1)[0]!.resolve(r);
    });
  }

  static async start(init: LoadInit): Promise<Generator> {
    const child = fork(join(HERE, "mqtt-ingest-load.js"), [], { execArgv: ["--max-semi-space-size=16"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
    await raiseFdLimit(child.pid!, init.to - init.from + 100);
    const g = new Generator(child);
    await g.ask({ cmd: "init", init }, "ready");
    return g;
  }

  ask<E extends LoadReply["ev"]>(cmd: LoadCommand, ev: E): Promise<Extract<LoadReply, { ev: E }>> {
    return new Promise((resolve, reject) => {
      const onExit = () => reject(new Error(`bench: generator ${this.child.pid} exited while waiting for ${ev}`));
      this.child.once("exit", onExit);
      this.waiting.push({ ev, resolve: (r) => { this.child.off("exit", onExit); resolve(r as Extract<LoadReply, { ev: E }>); } });
      this.child.send(cmd);
    });
  }

  tell(cmd: LoadCommand): void { this.child.send(cmd); }

  async close(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((r) => this.child.once("exit", () => r()));
    this.child.send({ cmd: "close" } satisfies LoadCommand);
    await Promise.race([exited, new Promise((r) => setTimeout(r, 3_000))]);
    if (this.child.exitCode === null) this.child.kill("SIGKILL");
  }
}

/** A fleet of `devices` split over `procs` generator processes, each on its own loopback source address. */
export class Fleet {
  private constructor(readonly gens: Generator[]) {}

  static async start(opts: { port: number; devices: number; procs: number; values: number; messagesPerPublish: number }): Promise<Fleet> {
    const per = Math.ceil(opts.devices / opts.procs);
    const gens = await Promise.all(Array.from({ length: opts.procs }, (_, k) => Generator.start({
      host: "127.0.0.1", port: opts.port, prefix: "dev-", from: k * per, to: Math.min(opts.devices, (k + 1) * per), token: TOKEN,
      localAddress: `127.0.${1 + Math.floor(k / 200)}.${2 + (k % 200)}`, values: opts.values, messagesPerPublish: opts.messagesPerPublish,
    })));
    return new Fleet(gens);
  }

  /** seconds until every device is connected */
  async connect(concurrency: number): Promise<number> {
    const r = await Promise.all(this.gens.map((g) => g.ask({ cmd: "connect", concurrency }, "connected")));
    return Math.max(...r.map((x) => x.ms)) / 1000;
  }

  rate(hz: number): void { for (const g of this.gens) g.tell({ cmd: "rate", hz }); }
  closed(window: number): void { for (const g of this.gens) g.tell({ cmd: "closed", window }); }
  track(on: boolean): void { for (const g of this.gens) g.tell({ cmd: "track", on }); }

  async stop(timeoutMs: number): Promise<number> {
    const r = await Promise.all(this.gens.map((g) => g.ask({ cmd: "stop", timeoutMs }, "stopped")));
    return r.reduce((a, x) => a + x.unacked, 0);
  }

  async stats(reset: boolean): Promise<Omit<LoadStats, "hist"> & { hist: LatencyHistogram }> {
    const r = await Promise.all(this.gens.map((g) => g.ask({ cmd: "stats", reset }, "stats")));
    const hist = new LatencyHistogram();
    const sum = { connected: 0, published: 0, acked: 0, valuesAcked: 0, refused: 0, cut: 0, dropped: 0, unacked: 0 };
    for (const { stats: s } of r) {
      hist.add(s.hist);
      for (const k of Object.keys(sum) as (keyof typeof sum)[]) sum[k] += s[k];
    }
    return { ...sum, hist };
  }

  /** every socket reset at once; seconds until all devices are connected again */
  async storm(concurrency: number): Promise<number> {
    const r = await Promise.all(this.gens.map((g) => g.ask({ cmd: "storm", concurrency }, "storm")));
    return Math.max(...r.map((x) => x.ms)) / 1000;
  }

  async acked(): Promise<Map<string, number[]>> {
    const r = await Promise.all(this.gens.map((g) => g.ask({ cmd: "acked" }, "acked")));
    const out = new Map<string, number[]>();
    for (const x of r) for (const [id, seqs] of Object.entries(x.acked)) out.set(id, seqs);
    return out;
  }

  async close(): Promise<void> { await Promise.all(this.gens.map((g) => g.close())); }
}
