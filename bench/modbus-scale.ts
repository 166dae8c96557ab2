/**
 * Modbus at scale, through the real gateway process: N simulated Modbus TCP devices (one port each,
 * in a child process) × `tags` holding registers polled every `pollMs`, journaled (fsync batch) and
 * published as the contract's JSON over MQTT QoS 1 to a default Mosquitto, counted at a subscriber.
 *
 * Reported: tag values/s at the broker; latency from poll (the request's arrival time, written by
 * the simulator into registers 0..2) to arrival at the subscriber, and from the sample's `ts`; poll
 * jitter p99 measured where the requests land; the gateway process's own CPU (% of one core, from
 * /proc/<pid>/stat) and RSS (VmRSS) sampled every few seconds.
 *
 *   node dist/bench/modbus-scale.js --devices 2000 [--tags 100] [--poll 1000] [--delay 5] [--duration 60] [--warmup 15] [--cpu-prof DIR] [--semi-space MiB] [--threads N]
 *   node dist/bench/modbus-scale.js --find-max [--steps 1000,2000,3000,5000,7500,9000] [--duration 30]
 */
import { fork, spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readdir, rm, writeFile, copyFile, mkdir } from "node:fs/promises";
import { openSync, closeSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt from "mqtt";
import { startBenchBroker, type MosquittoBroker } from "../test/helpers/mosquitto.js";
import { freePort } from "../test/helpers/ports.js";
import { Histogram } from "./modbus-scale-hist.js";
import { topFunctions } from "./modbus-scale-profile.js";
import type { SimReady, SimRequest, SimStats } from "./modbus-sim-server.js";

const HERE = import.meta.dirname;
/** bin/floorgate from dist/bench or from bench/ (tsx) */
const BIN = join(HERE, HERE.includes("/dist/") ? "../.." : "..", "bin", "floorgate");
const EXT = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
const SIM = join(HERE, `modbus-sim-server${EXT}`);
const LAUNCHER = join(HERE, `modbus-scale-gateway${EXT}`);
const GATEWAY_ID = "bench-scale";
const CLK_TCK = 100; // getconf CLK_TCK on Linux x86/arm

export interface ScaleOptions {
  devices: number;
  /** holding-register tags per device, contiguous from address 0 (default 100: one read per poll) */
  tags?: number;
  pollMs?: number;
  replyDelayMs?: number;
  /** measured window, after the warm-up */
  durationMs?: number;
  warmupMs?: number;
  /** write the gateway's V8 CPU profile here and print its top functions */
  cpuProfDir?: string;
  /** seconds between CPU/RSS samples of the gateway */
  sampleEveryMs?: number;
  /**
   * Run `bin/floorgate run` on a spelled-out config instead of the modbus-scale-gateway launcher;
   * only possible while the config stays under the loader's size caps (a few hundred devices).
   */
  viaCli?: boolean;
  /** print progress lines to stderr */
  verbose?: boolean;
  /** V8 --max-semi-space-size for the gateway in MiB (default 16, as bin/floorgate's shebang) */
  semiSpaceMiB?: number;
  /** gateway.driverThreads (default 0: drivers in the main thread) */
  driverThreads?: number;
}

function log(on: boolean | undefined, msg: string): void {
  if (on) process.stderr.write(`[modbus-scale] ${msg}\n`);
}

// ---------- simulator -------------------------------------------------------------------------

export interface Sim { child: ChildProcess; ports: number[]; stats(): Promise<SimStats>; reset(): void; stop(): Promise<void> }

export async function startSim(devices: number, replyDelayMs: number, pollMs: number): Promise<Sim> {
  const child = fork(SIM, ["--devices", String(devices), "--delay", String(replyDelayMs), "--poll", String(pollMs)], {
    execArgv: process.execArgv, stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const ports = await new Promise<number[]>((resolve, reject) => {
    const onExit = (code: number | null): void => reject(new Error(`simulator exited with ${code} before listening`));
    child.once("exit", onExit);
    child.on("message", function ready(m: SimReady | SimStats) {
      if (m.type === "ready") { child.off("exit", onExit); child.off("message", ready); resolve(m.ports); }
    });
  });
  const send = (m: SimRequest): void => { child.send(m); };
  return {
    child, ports,
    reset: () => send({ type: "reset" }),
    stats: () => new Promise<SimStats>((resolve) => {
      child.on("message", function got(m: SimStats) {
        if (m.type === "stats") { child.off("message", got); resolve(m); }
      });
      send({ type: "stats" });
    }),
    stop: async () => {
      if (child.exitCode !== null) return;
      await new Promise<void>((r) => { child.once("exit", () => r()); child.kill("SIGTERM"); });
    },
  };
}

// ---------- gateway ---------------------------------------------------------------------------

/** Tag list: registers 0..2 carry the poll time and 3 a sequence (uint16), the rest mixes uint16 and int16. */
export function tagLines(tags: number): string {
  const out: string[] = [];
  for (let a = 0; a < tags; a++) {
    const type = a < 4 || a % 2 === 0 ? "uint16" : "int16";
    out.push(`      - { name: r${a}, area: holding, address: ${a}, type: ${type} }`);
  }
  return out.join("\n");
}

/**
 * The config. With `allDevices` every device is spelled out (what `floorgate run` reads; the loader
 * caps a file at 4 MiB and 500,000 YAML nodes, so this only fits a few hundred 100-tag devices);
 * otherwise only device d0 is written, as the template modbus-scale-gateway clones per port.
 */
function configYaml(ports: number[], o: Required<Pick<ScaleOptions, "tags" | "pollMs" | "driverThreads">>, httpPort: number, brokerUrl: string, allDevices: boolean): string {
  const head = `gateway: { id: ${GATEWAY_ID}, group: bench, dataDir: ./data, driverThreads: ${o.driverThreads} }
http: { listen: "127.0.0.1:${httpPort}" }
journal: { maxBytes: 2GiB, fsync: batch }
outputs:
  - { type: mqtt, name: cloud, url: "${brokerUrl}", format: json, qos: 1 }
devices:
`;
  const parts: string[] = [head];
  const tagsText = tagLines(o.tags);
  for (let i = 0; i < (allDevices ? ports.length : 1); i++) {
    parts.push(`  - id: d${i}\n    driver: modbus\n    connection: { transport: tcp, host: 127.0.0.1, port: ${ports[i]}, unitId: 1, timeoutMs: 1000 }\n    pollMs: ${o.pollMs}\n    tags:\n${tagsText}\n`);
  }
  return parts.join("");
}

export async function waitFor(cond: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`bench: ${what} not reached within ${timeoutMs} ms`);
}

/** utime+stime of a process in clock ticks, and its VmRSS in bytes. */
function procSample(pid: number): { ticks: number; rss: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields after ")" start at field 3 (state); utime is field 14, stime 15
  const ticks = Number(f[11]) + Number(f[12]);
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return { ticks, rss: m ? Number(m[1]) * 1024 : 0 };
}

/** The whole box's CPU time from /proc/stat, in ticks: busy (user..softirq) and steal, summed over cores. */
function boxSample(): { busy: number; steal: number; total: number } {
  const f = readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
  return { busy: user + nice + system + irq + softirq, steal, total: user + nice + system + idle + iowait + irq + softirq + steal };
}

function metricSum(text: string, name: string, filter = ""): number {
  let v = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith(name) && (line[name.length] === "{" || line[name.length] === " ") && line.includes(filter)) v += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return v;
}

// ---------- subscriber ------------------------------------------------------------------------

const TAG_OPEN = Buffer.from('{"tag":');
const R = [0, 1, 2].map((k) => Buffer.from(`{"tag":"r${k}","value":`));
const TS = Buffer.from('"ts":"');

function intAt(buf: Buffer, i: number): number {
  let v = 0;
  for (; i < buf.length; i++) {
    const c = buf[i]!;
    if (c < 48 || c > 57) break;
    v = v * 10 + (c - 48);
  }
  return v;
}

/**
 * Counts samples and measures latency without JSON.parse: at 200,000+ values/s a full parse would
 * make the subscriber, not the gateway, the thing being measured on a 2-core box.
 */
class Subscriber {
  values = 0;
  messages = 0;
  /** poll times (the simulator's request arrival, ms) of every poll received since the reset */
  pollTimes: number[] = [];
  readonly pollLatency = new Histogram(0.1, 120_000);
  readonly tsLatency = new Histogram(0.1, 120_000);
  private client?: mqtt.MqttClient;

  async start(url: string): Promise<void> {
    const c = mqtt.connect(url, { clientId: `bench-sub-${process.pid}`, clean: true, reconnectPeriod: 1000 });
    this.client = c;
    c.on("message", (_topic, payload) => this.onMessage(payload));
    await new Promise<void>((resolve, reject) => {
      c.once("connect", () => c.subscribe(`floorgate/${GATEWAY_ID}/+/telemetry`, { qos: 0 }, (err) => (err ? reject(err) : resolve())));
      c.once("error", reject);
    });
  }

  reset(): void {
    this.values = 0;
    this.messages = 0;
    this.pollTimes = [];
    this.pollLatency.reset();
    this.tsLatency.reset();
  }

  private onMessage(buf: Buffer): void {
    const now = Date.now();
    this.messages++;
    let n = 0;
    for (let i = buf.indexOf(TAG_OPEN); i >= 0; i = buf.indexOf(TAG_OPEN, i + TAG_OPEN.length)) n++;
    this.values += n;
    // one latency point per poll: registers 0..2 hold the poll time, the sample's ts is the reply time
    for (let i = buf.indexOf(R[0]!); i >= 0; i = buf.indexOf(R[0]!, i + 1)) {
      const j = buf.indexOf(R[1]!, i);
      const k = j < 0 ? -1 : buf.indexOf(R[2]!, j);
      if (k < 0) break;
      const t = intAt(buf, i + R[0]!.length) * 0x100000000 + intAt(buf, j + R[1]!.length) * 0x10000 + intAt(buf, k + R[2]!.length);
      this.pollLatency.record(now - t);
      this.pollTimes.push(t);
      const ts = buf.indexOf(TS, k);
      if (ts >= 0) this.tsLatency.record(now - Date.parse(buf.toString("latin1", ts + TS.length, ts + TS.length + 24)));
    }
  }

  async stop(): Promise<void> {
    await this.client?.endAsync(true);
  }
}

// ---------- one run ---------------------------------------------------------------------------

/** One measured run; every child it starts is stopped before it returns or throws. */
export async function benchModbusScale(opts: ScaleOptions): Promise<Record<string, number>> {
  const devices = opts.devices;
  const tags = opts.tags ?? 100;
  const pollMs = opts.pollMs ?? 1000;
  const replyDelayMs = opts.replyDelayMs ?? 5;
  const durationMs = opts.durationMs ?? 60_000;
  const warmupMs = opts.warmupMs ?? Math.min(15_000, Math.max(5_000, durationMs / 4));
  const every = opts.sampleEveryMs ?? 5_000;
  const v = opts.verbose;
  if (tags > 125) throw new Error("bench: at most 125 tags (one read per device)");

  const dir = await mkdtemp(join(tmpdir(), "floorgate-bench-scale-"));
  let sim: Sim | undefined;
  let broker: MosquittoBroker | undefined;
  let gw: ChildProcess | undefined;
  const sub = new Subscriber();
  let failed = true;
  try {
    sim = await startSim(devices, replyDelayMs, pollMs);
    broker = await startBenchBroker();
    const httpPort = await freePort();
    const cfg = join(dir, "floorgate.yaml");
    await writeFile(cfg, configYaml(sim.ports, { tags, pollMs, driverThreads: opts.driverThreads ?? 0 }, httpPort, broker.url, opts.viaCli === true));
    const portsFile = join(dir, "ports.json");
    await writeFile(portsFile, JSON.stringify(sim.ports));
    await sub.start(broker.url);

    const logFd = openSync(join(dir, "gateway.log"), "w");
    // The same V8 flag as bin/floorgate's shebang, so the bench measures what operators run.
    // FLOORGATE_BENCH_NODE_FLAGS: extra V8/Node flags for the gateway only (e.g. --trace-gc-nvp)
    const extraFlags = (process.env.FLOORGATE_BENCH_NODE_FLAGS ?? "").split(" ").filter((f) => f !== "");
    const nodeFlags = [`--max-semi-space-size=${opts.semiSpaceMiB ?? 16}`, "--no-allocation-site-pretenuring", ...extraFlags, ...(opts.cpuProfDir ? ["--cpu-prof", "--cpu-prof-dir", join(dir, "prof")] : [])];
    const cmd = opts.viaCli ? [BIN, "run", "--config", cfg] : [...process.execArgv, LAUNCHER, cfg, portsFile];
    gw = spawn(process.execPath, [...nodeFlags, ...cmd], {
      cwd: dir, stdio: ["ignore", logFd, logFd], env: { ...process.env, FLOORGATE_LOG_LEVEL: "warn" },
    });
    closeSync(logFd);
    const pid = gw.pid!;
    const exited = new Promise<number | null>((r) => gw!.once("exit", (c) => r(c)));
    const t0 = Date.now();
    const base = `http://127.0.0.1:${httpPort}`;
    await Promise.race([
      waitFor(async () => (await fetch(`${base}/healthz`).then((r) => r.status, () => 0)) === 200, 120_000, "gateway /healthz"),
      exited.then((c) => { throw new Error(`gateway exited with ${c} at start; see ${join(dir, "gateway.log")}`); }),
    ]);
    const startupMs = Date.now() - t0;
    log(v, `${devices} devices: gateway up in ${startupMs} ms; warming up ${warmupMs} ms`);
    await waitFor(() => sub.values > 0, 60_000, "first telemetry at the broker");
    await new Promise((r) => setTimeout(r, warmupMs));

    // ---- measurement window
    sim.reset();
    sub.reset();
    const m0 = Date.now();
    const p0 = procSample(pid);
    const b0 = boxSample();
    log(v, `window starts at ${m0}`);
    // per second of the window: the VM's steal, % of all cores (a stalled host shows here)
    const stealBySecond: number[] = [];
    let sb = b0;
    const stealTimer = setInterval(() => {
      const b = boxSample();
      stealBySecond.push(((b.steal - sb.steal) / Math.max(1, b.total - sb.total)) * 100);
      sb = b;
    }, 1000);
    stealTimer.unref();
    const rssSeries: number[] = [p0.rss];
    const cpuSeries: number[] = [];
    let prev = p0;
    let prevAt = m0;
    while (Date.now() - m0 < durationMs) {
      await new Promise((r) => setTimeout(r, Math.min(every, durationMs - (Date.now() - m0))));
      if (gw.exitCode !== null) throw new Error(`gateway exited with ${gw.exitCode} during the run; see ${join(dir, "gateway.log")}`);
      const now = Date.now();
      const p = procSample(pid);
      const cpu = ((p.ticks - prev.ticks) / CLK_TCK) / ((now - prevAt) / 1000) * 100;
      cpuSeries.push(cpu);
      rssSeries.push(p.rss);
      log(v, `t=${Math.round((now - m0) / 1000)}s cpu ${cpu.toFixed(1)}% rss ${(p.rss / 2 ** 20).toFixed(0)} MiB values/s ${Math.round(sub.values / ((now - m0) / 1000))}`);
      prev = p;
      prevAt = now;
    }
    const m1 = Date.now();
    const seconds = (m1 - m0) / 1000;
    const values = sub.values;
    const messages = sub.messages;
    const lat = sub.pollLatency.summary();
    const tsLat = sub.tsLatency.summary();
    const simStats = await sim.stats();
    // Delivery accounted for the pipeline's in-flight window: of the polls the simulator answered
    // in [since, at), how many reached the broker, waiting for the stragglers (until none come
    // for 2 s). Raw values/s over the window instead miss what was in flight at its two edges.
    const inWindow = (): number => sub.pollTimes.reduce((n, t) => n + (t >= simStats.since && t < simStats.at ? 1 : 0), 0);
    let got = inWindow();
    for (let quiet = 0; quiet < 4; ) {
      await new Promise((r) => setTimeout(r, 500));
      const g = inWindow();
      quiet = g === got ? quiet + 1 : 0;
      got = g;
    }
    const pollsArrived = got;
    clearInterval(stealTimer);
    const b1 = boxSample();
    const boxTicks = b1.total - b0.total;
    const cpuPct = ((prev.ticks - p0.ticks) / CLK_TCK) / ((prevAt - m0) / 1000) * 100;
    // after the window: /metrics carries per-device series and is not free to render
    const metrics = await fetch(`${base}/metrics`).then((r) => r.text(), () => "");
    const mib = (b: number): number => Math.round((b / 2 ** 20) * 10) / 10;
    const r1 = (x: number): number => Math.round(x * 10) / 10;
    const expected = (devices * tags * 1000) / pollMs;
    const out: Record<string, number> = {
      devices,
      tags_per_device: tags,
      poll_ms: pollMs,
      reply_delay_ms: replyDelayMs,
      measured_s: r1(seconds),
      gateway_startup_ms: startupMs,
      values_per_s: Math.round(values / seconds),
      expected_values_per_s: Math.round(expected),
      delivered_ratio: Math.round((values / seconds / expected) * 1000) / 1000,
      // polls answered by the simulator in the window that reached the broker (1 = none lost)
      delivered_accounted: Math.round((pollsArrived / Math.max(1, simStats.requests)) * 100_000) / 100_000,
      polls_answered: simStats.requests,
      polls_lost: simStats.requests - pollsArrived,
      mqtt_messages_per_s: Math.round(messages / seconds),
      latency_poll_to_broker_p50_ms: r1(lat.p50),
      latency_poll_to_broker_p99_ms: r1(lat.p99),
      latency_poll_to_broker_max_ms: r1(lat.max),
      latency_sample_ts_to_broker_p99_ms: r1(tsLat.p99),
      poll_jitter_p50_ms: r1(simStats.jitterP50),
      poll_jitter_p99_ms: r1(simStats.jitterP99),
      poll_jitter_max_ms: r1(simStats.jitterMax),
      sim_requests_per_s: Math.round(simStats.requests / seconds),
      gateway_cpu_pct_of_one_core: r1(cpuPct),
      gateway_cpu_pct_max_interval: r1(Math.max(...cpuSeries)),
      // robust on a shared machine: CPU time spent per unit of work, not per wall second
      gateway_cpu_s_per_million_values: Math.round(((prev.ticks - p0.ticks) / CLK_TCK / (values / 1e6)) * 1000) / 1000,
      gateway_rss_start_mib: mib(rssSeries[0]!),
      gateway_rss_end_mib: mib(rssSeries[rssSeries.length - 1]!),
      gateway_rss_max_mib: mib(Math.max(...rssSeries)),
      sim_cpu_pct_of_one_core: r1((simStats.cpuMs / 1000 / seconds) * 100),
      // the whole VM, all cores (100 = every core busy): how much room the load generators left
      box_busy_pct: r1(((b1.busy - b0.busy) / boxTicks) * 100),
      // time the hypervisor ran something else while this VM wanted a core
      box_steal_pct: r1(((b1.steal - b0.steal) / boxTicks) * 100),
      // seconds of the window in which some poll interval was off by more than 100 ms
      seconds_with_late_polls: simStats.lateBySecond.filter((x) => x > 0).length,
      seconds_with_steal_over_10pct: stealBySecond.filter((x) => x > 10).length,
      sim_loop_delay_max_ms: Math.max(0, ...simStats.loopMaxBySecond),
      skipped_polls_total: metricSum(metrics, "floorgate_driver_events_total", 'event="skipped_poll"'),
      timeouts_total: metricSum(metrics, "floorgate_driver_events_total", 'event="timeout"'),
      // polls that waited for the journal (a driver thread's in-flight window was full)
      journal_backpressure_total: metricSum(metrics, "floorgate_driver_events_total", 'event="journal_backpressure"'),
      drops_total: metricSum(metrics, "floorgate_drops_total"),
      journal_slow_commits_total: metricSum(metrics, "floorgate_journal_slow_io_total", 'op="commit"'),
      journal_lag_samples_end: metricSum(metrics, "floorgate_journal_lag_samples"),
    };

    // ---- stop the gateway (a clean exit writes the CPU profile)
    await new Promise<void>((r) => {
      const kill = setTimeout(() => gw!.kill("SIGKILL"), 20_000);
      void exited.then(() => { clearTimeout(kill); r(); });
      gw!.kill("SIGTERM");
    });
    gw = undefined;
    if (opts.cpuProfDir) {
      await mkdir(opts.cpuProfDir, { recursive: true });
      const files = (await readdir(join(dir, "prof")).catch(() => [] as string[])).filter((f) => f.endsWith(".cpuprofile"));
      for (const f of files) {
        const dest = join(opts.cpuProfDir, `gateway-${devices}dev-${f}`);
        await copyFile(join(dir, "prof", f), dest);
        const t = await topFunctions(dest, 20);
        process.stderr.write(`gateway CPU profile ${dest} (whole run incl. startup): idle ${t.idlePct}%, gc ${t.gcPct}%\n`);
        for (const f2 of t.top) process.stderr.write(`  ${f2.selfPct.toFixed(1).padStart(5)}%  ${f2.name}  ${f2.where}\n`);
      }
    }
    if (stealBySecond.some((x) => x > 10)) {
      log(v, `steal > 10 % by second of the window: ${stealBySecond.map((x, i) => (x > 10 ? `${i}s:${x.toFixed(0)}%` : "")).filter(Boolean).join(" ")}`);
    }
    if (simStats.lateBySecond.some((x) => x > 0)) {
      // with the simulator's own longest event-loop delay around that second (a stall there is not the gateway's)
      const simLoop = (i: number): number => Math.max(simStats.loopMaxBySecond[i - 1] ?? 0, simStats.loopMaxBySecond[i] ?? 0, simStats.loopMaxBySecond[i + 1] ?? 0);
      log(v, `late polls (>100 ms off) by second of the window [simulator loop delay max ±1 s]: ${simStats.lateBySecond.map((x, i) => (x > 0 ? `${i}s:${x}[${simLoop(i)}ms]` : "")).filter(Boolean).join(" ")}`);
    }
    failed = false;
    return out;
  } finally {
    if (gw && gw.exitCode === null) gw.kill("SIGKILL");
    await sub.stop().catch(() => {});
    await sim?.stop();
    await broker?.dispose();
    if (failed) process.stderr.write(`[modbus-scale] run failed; its files are kept in ${dir}\n`);
    else {
      if (process.env.FLOORGATE_BENCH_STATS === "1") {
        // the launcher's heap / event-loop lines (see modbus-scale-gateway printStats)
        const lines = readFileSync(join(dir, "gateway.log"), "utf8").split("\n").filter((l) => l.startsWith("bench-stats"));
        process.stderr.write(lines.map((l) => `[modbus-scale] ${l}\n`).join(""));
      }
      // FLOORGATE_BENCH_KEEP_LOG=FILE: keep the gateway's log (e.g. with --trace-gc-nvp output)
      if (process.env.FLOORGATE_BENCH_KEEP_LOG) await copyFile(join(dir, "gateway.log"), process.env.FLOORGATE_BENCH_KEEP_LOG);
      await rm(dir, { recursive: true, force: true });
    }
  }
}

/**
 * Steps the device count up with short runs and reports the highest count whose poll jitter p99
 * stays under `jitterLimitMs` and whose values all arrive (≥ 95 % of the expected rate). Stops at
 * the first failing step, or before a step the open-files limit cannot hold.
 */
export async function findMaxDevices(opts: Omit<ScaleOptions, "devices"> & { steps?: number[]; jitterLimitMs?: number }): Promise<{ maxDevices: number; runs: Record<string, number>[] }> {
  const steps = opts.steps ?? [1000, 2000, 3000, 5000, 7500, 9000];
  const limit = opts.jitterLimitMs ?? 100;
  const runs: Record<string, number>[] = [];
  let maxDevices = 0;
  for (const devices of steps) {
    let r: Record<string, number>;
    try {
      r = await benchModbusScale({ ...opts, devices, durationMs: opts.durationMs ?? 30_000, warmupMs: opts.warmupMs ?? 10_000 });
    } catch (err) {
      process.stderr.write(`[modbus-scale] ${devices} devices: ${(err as Error).message}\n`);
      break;
    }
    runs.push(r);
    const ok = r.poll_jitter_p99_ms! < limit && r.delivered_ratio! >= 0.95;
    log(opts.verbose, `${devices} devices: jitter p99 ${r.poll_jitter_p99_ms} ms, delivered ${r.delivered_ratio}, cpu ${r.gateway_cpu_pct_of_one_core}% → ${ok ? "ok" : "over the line"}`);
    if (!ok) break;
    maxDevices = devices;
  }
  return { maxDevices, runs };
}

function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const num = (name: string): number | undefined => (argValue(name) === undefined ? undefined : Number(argValue(name)));
  const seconds = (name: string): number | undefined => (num(name) === undefined ? undefined : num(name)! * 1000);
  const common = {
    tags: num("tags"), pollMs: num("poll"), replyDelayMs: num("delay"),
    durationMs: seconds("duration"), warmupMs: seconds("warmup"), cpuProfDir: argValue("cpu-prof"), viaCli: process.argv.includes("--via-cli"), verbose: true,
    semiSpaceMiB: num("semi-space"), driverThreads: num("threads"),
  };
  const main = async (): Promise<void> => {
    if (process.argv.includes("--find-max")) {
      const steps = argValue("steps")?.split(",").map(Number);
      const r = await findMaxDevices({ ...common, steps });
      console.table(r.runs.map((x) => ({ devices: x.devices, "values/s": x.values_per_s, delivered: x.delivered_ratio, "jitter p99": x.poll_jitter_p99_ms, "lat p99": x.latency_poll_to_broker_p99_ms, "cpu %": x.gateway_cpu_pct_of_one_core, "rss max MiB": x.gateway_rss_max_mib })));
      console.log(JSON.stringify({ max_devices_jitter_p99_under_100ms: r.maxDevices }));
    } else {
      const r = await benchModbusScale({ ...common, devices: num("devices") ?? 2000 });
      console.log(JSON.stringify(r, null, 2));
    }
  };
  main().catch((e: unknown) => { console.error(e); process.exit(1); });
}
