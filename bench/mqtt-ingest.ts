/**
 * The MQTT device listener's figures (issue 15): a 10,000-device fleet at one 10-value message per
 * second (PUBACK latency, gateway CPU and RSS), the highest sustained values/s against a bare aedes
 * broker in the same run, and a reconnect storm of the whole fleet with a loss check at the cloud.
 *
 * Processes: the gateway (spawned from bin/floorgate with Mosquitto as its cloud output) or the
 * bare aedes baseline (mqtt-ingest-aedes.ts); `procs` generator processes (mqtt-ingest-load.ts)
 * holding the devices as raw sockets; this process only steers and, in the storm, subscribes at
 * Mosquitto to check that every PUBACKed message arrived. Two cores are shared by all of them
 * (and by other engineers' work): the generators' CPU is not the gateway's, but it is taken from it.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt from "mqtt";
import { startBenchBroker, type MosquittoBroker } from "../test/helpers/mosquitto.js";
import { freePort } from "../test/helpers/ports.js";
import { Fleet, procUsage, spawnBareAedes, spawnGateway, waitFor, type GatewayUnderTest } from "./mqtt-ingest-procs.js";

type Figures = Record<string, number>;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (v: number, d = 0) => Number(v.toFixed(d));
const started = Date.now();
/** progress on stderr, so a run that goes wrong shows where */
const phase = (what: string) => process.stderr.write(`bench: mqtt-ingest +${((Date.now() - started) / 1000).toFixed(1)} s: ${what}\n`);

interface Health { outputs: Record<string, { sent: number; state: string }>; journal: { appended: number } }
async function health(base: string): Promise<Health> {
  return (await fetch(`${base}/healthz`)).json() as Promise<Health>;
}

/** The gateway's V8 heap in use and its memory outside the heap (Buffers), from its /metrics. */
async function heapOf(base: string): Promise<{ heapUsed: number; external: number }> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const get = (name: string): number => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? NaN);
  return { heapUsed: get("floorgate_nodejs_heap_size_used_bytes"), external: get("floorgate_nodejs_external_memory_bytes") };
}

/** How often the listener's in-flight caps held the devices so far (floorgate_ingest_pauses_total, both caps). */
async function pausesOf(base: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  let n = 0;
  for (const m of text.matchAll(/^floorgate_ingest_pauses_total\{[^}]*\} (\S+)$/gm)) n += Number(m[1]);
  return n;
}

/** Busy and total jiffies of the whole machine (all cores), from /proc/stat. */
async function machineJiffies(): Promise<{ busy: number; total: number }> {
  const line = (await readFile("/proc/stat", "utf8")).split("\n", 1)[0]!;
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - f[3]! - (f[4] ?? 0), total }; // idle, iowait
}

/**
 * CPU (% of one core) and peak RSS of `pid` over `ms`, sampling RSS every second, and how busy
 * the whole machine was (% of all its cores): whether the gateway or the machine was the limit.
 */
async function watch(pid: number, ms: number): Promise<{ cpuPct: number; rssPeak: number; rssEnd: number; machinePct: number }> {
  const m0 = await machineJiffies();
  const a = await procUsage(pid);
  const t0 = Date.now();
  let peak = a.rssBytes;
  let last = a;
  while (Date.now() - t0 < ms) {
    await sleep(Math.min(1_000, ms - (Date.now() - t0)));
    last = await procUsage(pid);
    peak = Math.max(peak, last.rssBytes);
  }
  const m1 = await machineJiffies();
  const machinePct = (100 * (m1.busy - m0.busy)) / Math.max(1, m1.total - m0.total);
  return { cpuPct: (100 * (last.cpuS - a.cpuS)) / ((Date.now() - t0) / 1000), rssPeak: peak, rssEnd: last.rssBytes, machinePct };
}

export interface FleetOptions {
  devices?: number;
  procs?: number;
  /** seconds measured at 1 Hz */
  seconds?: number;
  /** handshakes in flight per generator process while connecting */
  connectConcurrency?: number;
}

/**
 * (a) the fleet at 1 Hz and (c) its reconnect storm, on one gateway: the storm runs on the fleet
 * the first part connected, while it keeps publishing.
 */
export async function benchMqttIngestFleet(opts: FleetOptions = {}): Promise<Figures> {
  const devices = opts.devices ?? 10_000;
  const procs = opts.procs ?? 2;
  const seconds = opts.seconds ?? 20;
  const broker = await startBenchBroker();
  const dir = await mkdtemp(join(tmpdir(), "floorgate-bench-mqtt-ingest-"));
  let gw: GatewayUnderTest | undefined;
  let fleet: Fleet | undefined;
  try {
    gw = await spawnGateway(dir, await freePort(), await freePort(), broker.url, devices);
    await sleep(2_000); // settle after start (JIT, first GCs) before the no-device RSS
    const idle = await procUsage(gw.pid);
    fleet = await Fleet.start({ port: gw.mqttPort, devices, procs, values: 10, messagesPerPublish: 1 });
    phase(`connecting ${devices} devices`);
    const connectS = await fleet.connect(opts.connectConcurrency ?? 200);
    phase(`connected in ${connectS.toFixed(1)} s; publishing at 1 Hz`);
    const connectedRss = (await procUsage(gw.pid)).rssBytes;
    fleet.rate(1);
    await sleep(5_000); // warm-up: every phase slot has published a few times
    await fleet.stats(true);
    phase(`measuring ${seconds} s`);
    const w = await watch(gw.pid, seconds * 1000);
    const s = await fleet.stats(true);
    const mem = await heapOf(gw.base);
    phase(`measured: ${Math.round(s.acked / seconds)} PUBACKs/s, p99 ${(s.hist.quantile(0.99) / 1000).toFixed(1)} ms`);
    const figures: Figures = {
      [`devices connected (of ${devices})`]: s.connected,
      "connect all, s": round(connectS, 1),
      "PUBACKed messages/s": round(s.acked / seconds),
      "PUBACKed values/s": round(s.valuesAcked / seconds),
      "PUBACK latency p50, ms": round(s.hist.quantile(0.5) / 1000, 1),
      "PUBACK latency p99, ms": round(s.hist.quantile(0.99) / 1000, 1),
      "PUBACK latency max (bucket), ms": round(s.hist.quantile(1) / 1000, 1),
      "gateway CPU, % of one core": round(w.cpuPct),
      "gateway CPU µs per PUBACKed message": round((w.cpuPct * 1e4) / (s.acked / seconds), 1),
      "gateway RSS peak, MB": round(w.rssPeak / 2 ** 20),
      "gateway RSS before any device, MB": round(idle.rssBytes / 2 ** 20),
      "gateway RSS, all connected before publishing, MB": round(connectedRss / 2 ** 20),
      "RSS per connected device (connected idle − no device), KB": round((connectedRss - idle.rssBytes) / devices / 1024, 1),
      "RSS per connected device (at 1 Hz − no device), KB": round((w.rssPeak - idle.rssBytes) / devices / 1024, 1),
      "connections dropped by the gateway": s.dropped,
      "gateway JS heap used at the end, MB": round(mem.heapUsed / 2 ** 20),
      "gateway external + array buffers at the end, MB": round(mem.external / 2 ** 20),
    };
    // FLOORGATE_BENCH_STORM=0: the 1 Hz figures only (the storm can be left out while another part is fixed)
    if (process.env.FLOORGATE_BENCH_STORM !== "0") Object.assign(figures, await storm(gw, fleet, broker));
    return figures;
  } finally {
    await fleet?.close();
    await gw?.stop();
    await broker.dispose();
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * (c) every device's socket reset at once while the fleet publishes at 1 Hz. Messages PUBACKed
 * from a moment on are checked against what a subscriber at Mosquitto gets from the gateway's
 * output (each message carries its device's `seq` as a value).
 */
async function storm(gw: GatewayUnderTest, fleet: Fleet, broker: MosquittoBroker): Promise<Figures> {
  const seen = new Map<string, Set<number>>();
  const sub = mqtt.connect(broker.url, { clientId: `bench-check-${process.pid}`, clean: true, reconnectPeriod: 0 });
  sub.on("message", (_t, payload) => {
    const m = JSON.parse(payload.toString()) as { device: string; samples: { tag: string; value: unknown }[] };
    let set = seen.get(m.device);
    for (const x of m.samples) {
      if (x.tag !== "seq") continue;
      if (!set) seen.set(m.device, (set = new Set()));
      set.add(x.value as number);
    }
  });
  await new Promise<void>((resolve, reject) => {
    sub.once("error", reject);
    sub.once("connect", () => sub.subscribe("floorgate/bench-edge/+/telemetry", { qos: 1 }, (err) => (err ? reject(err) : resolve())));
  });
  try {
    await sleep(2_000); // anything PUBACKed from here on was published by the output after the SUBACK
    fleet.track(true);
    await sleep(3_000);
    const before = await fleet.stats(true);
    phase("storm: every socket reset");
    const stormS = await fleet.storm(5_000);
    phase(`storm: all back in ${stormS.toFixed(1)} s`);
    await sleep(5_000);
    const unacked = await fleet.stop(60_000);
    phase("stopped publishing; waiting for the output and the subscriber");
    const after = await fleet.stats(true);
    fleet.track(false);
    const appended = (await health(gw.base)).journal.appended;
    await waitFor(async () => ((await health(gw.base)).outputs.cloud?.sent ?? 0) >= appended, 120_000, "output caught up with the journal");
    const acked = await fleet.acked();
    let ackedN = 0;
    let lost = 0;
    // the subscriber may still be reading what Mosquitto already took: wait until the count settles
    let prevSeen = -1;
    for (;;) {
      lost = 0;
      ackedN = 0;
      let seenN = 0;
      for (const [id, seqs] of acked) {
        const got = seen.get(id);
        ackedN += seqs.length;
        for (const q of seqs) if (!got?.has(q)) lost++;
        seenN += got?.size ?? 0;
      }
      if (lost === 0 || seenN === prevSeen) break;
      prevSeen = seenN;
      await sleep(2_000);
    }
    return {
      "storm: seconds until all devices are back": round(stormS, 1),
      "storm: devices connected after": after.connected,
      "storm: CONNACK refusals (retried)": after.refused - before.refused,
      "storm: connections closed before CONNACK (connect rate/cap; retried)": after.cut - before.cut,
      "storm: PUBACKed messages checked at the cloud": ackedN,
      "storm: PUBACKed messages lost": lost,
      "storm: messages still unacknowledged at stop": unacked,
      "storm: PUBACK latency p99 around the storm, ms": round(after.hist.quantile(0.99) / 1000, 1),
    };
  } finally {
    await sub.endAsync(true);
  }
}

export interface MaxOptions {
  devices?: number;
  procs?: number;
  window?: number;
  messagesPerPublish?: number;
  seconds?: number;
  /** aedes, gateway, aedes, gateway… */
  rounds?: number;
}

/** Closed-loop load at saturation: values/s PUBACKed over `seconds` after a warm-up. */
async function saturate(port: number, pid: number, o: Required<MaxOptions>): Promise<{ valuesPerS: number; p99Ms: number; cpuPct: number; cpuUsPerValue: number; machinePct: number }> {
  const fleet = await Fleet.start({ port, devices: o.devices, procs: o.procs, values: 10, messagesPerPublish: o.messagesPerPublish });
  try {
    await fleet.connect(200);
    fleet.closed(o.window);
    await sleep(3_000);
    await fleet.stats(true);
    const w = await watch(pid, o.seconds * 1000);
    const s = await fleet.stats(true);
    await fleet.stop(30_000);
    const valuesPerS = s.valuesAcked / o.seconds;
    return { valuesPerS, p99Ms: s.hist.quantile(0.99) / 1000, cpuPct: w.cpuPct, cpuUsPerValue: (w.cpuPct * 1e4) / valuesPerS, machinePct: w.machinePct };
  } finally {
    await fleet.close();
  }
}

/** (b) highest sustained values/s, gateway with journal vs bare aedes, alternately in one run. */
export async function benchMqttIngestMax(opts: MaxOptions = {}): Promise<Figures> {
  const o: Required<MaxOptions> = { devices: 1_000, procs: 2, window: 8, messagesPerPublish: 10, seconds: 10, rounds: 1, ...opts };
  const broker = await startBenchBroker();
  const gwRates: number[] = [];
  const bareRates: number[] = [];
  const gwCpu: number[] = [];
  const bareCpu: number[] = [];
  const soloRates: number[] = [];
  const soloCpu: number[] = [];
  const figures: Figures = {};
  // FLOORGATE_BENCH_SIDES=solo (or "bare,gateway"…): run only those sides, while working on one
  const sides = new Set((process.env.FLOORGATE_BENCH_SIDES ?? "bare,solo,gateway").split(","));
  try {
    for (let r = 0; r < o.rounds; r++) {
      const port = await freePort();
      const bare = sides.has("bare") ? await spawnBareAedes(port, o.devices) : undefined;
      if (bare) {
        try {
          const b = await saturate(port, bare.pid, o);
          bareRates.push(b.valuesPerS);
          figures[`bare aedes values/s, round ${r + 1}`] = round(b.valuesPerS);
          figures[`bare aedes CPU %, round ${r + 1}`] = round(b.cpuPct);
          figures[`machine busy during bare aedes, % of all cores, round ${r + 1}`] = round(b.machinePct);
          figures[`bare aedes CPU µs per value, round ${r + 1}`] = round(b.cpuUsPerValue, 2);
          bareCpu.push(b.cpuUsPerValue);
          figures[`bare aedes PUBACK p99 ms, round ${r + 1}`] = round(b.p99Ms, 1);
        } finally {
          await bare.stop();
        }
      }
      // The same gateway without its cloud output: the listener, validation, dedup and the journal
      // (fsync on) alone — the part of the gap to bare aedes that ingest itself owns.
      if (sides.has("solo")) {
        const soloDir = await mkdtemp(join(tmpdir(), "floorgate-bench-mqtt-solo-"));
        const solo = await spawnGateway(soloDir, await freePort(), await freePort(), broker.url, o.devices, false);
        try {
          const p0 = await pausesOf(solo.base);
          const t0 = Date.now();
          const s = await saturate(solo.mqttPort, solo.pid, o);
          figures[`gateway without output: in-flight cap reached, times/s, round ${r + 1}`] = round((await pausesOf(solo.base) - p0) / ((Date.now() - t0) / 1000));
          soloRates.push(s.valuesPerS);
          soloCpu.push(s.cpuUsPerValue);
          figures[`gateway without output values/s (journal, fsync batch), round ${r + 1}`] = round(s.valuesPerS);
          figures[`gateway without output CPU %, round ${r + 1}`] = round(s.cpuPct);
          figures[`machine busy during gateway without output, % of all cores, round ${r + 1}`] = round(s.machinePct);
          figures[`gateway without output CPU µs per value, round ${r + 1}`] = round(s.cpuUsPerValue, 2);
        } finally {
          await solo.stop();
          await rm(soloDir, { recursive: true, force: true });
        }
      }
      if (!sides.has("gateway")) continue;
      const dir = await mkdtemp(join(tmpdir(), "floorgate-bench-mqtt-max-"));
      const gw = await spawnGateway(dir, await freePort(), await freePort(), broker.url, o.devices);
      try {
        const out0 = (await health(gw.base)).outputs.cloud?.sent ?? 0;
        const t0 = Date.now();
        const g = await saturate(gw.mqttPort, gw.pid, o);
        const out1 = (await health(gw.base)).outputs.cloud?.sent ?? 0;
        gwRates.push(g.valuesPerS);
        figures[`gateway values/s (journal, fsync batch), round ${r + 1}`] = round(g.valuesPerS);
        figures[`gateway CPU %, round ${r + 1}`] = round(g.cpuPct);
        figures[`machine busy during gateway, % of all cores, round ${r + 1}`] = round(g.machinePct);
        figures[`gateway CPU µs per value, round ${r + 1}`] = round(g.cpuUsPerValue, 2);
        gwCpu.push(g.cpuUsPerValue);
        figures[`gateway PUBACK p99 ms, round ${r + 1}`] = round(g.p99Ms, 1);
        figures[`gateway output to Mosquitto, samples/s over the run, round ${r + 1}`] = round((out1 - out0) / ((Date.now() - t0) / 1000));
      } finally {
        await gw.stop();
        await rm(dir, { recursive: true, force: true });
      }
    }
  } finally {
    await broker.dispose();
  }
  if (gwRates.length === 0 || bareRates.length === 0 || soloRates.length === 0) return figures;
  const best = (xs: number[]) => Math.max(...xs);
  figures[`load: ${o.devices} devices × ${o.window} publishes in flight × ${o.messagesPerPublish} messages × 10 values`] = o.devices;
  const low = (xs: number[]) => Math.min(...xs);
  // The figure: MQTT ingest with durability on against bare aedes taking the same load
  // without a journal; neither forwards anything. The same gateway also forwarding every value
  // to the cloud (on the same two cores) follows.
  figures["bare aedes best values/s"] = round(best(bareRates));
  figures["MQTT ingest with durability (journal, fsync; no output) best values/s"] = round(best(soloRates));
  figures["ratio MQTT ingest with durability / bare aedes (best of each)"] = round(best(soloRates) / best(bareRates), 2);
  figures["ratio MQTT ingest with durability / bare aedes (lowest of the rounds, each against its own round)"] =
    round(low(soloRates.map((v, i) => v / bareRates[i]!)), 2);
  // On a machine whose cores are shared, each process gets a share of them: CPU per value is the
  // figure that load does not move much; its ratio is what the two would do on cores of their own.
  figures["CPU per value, bare aedes / MQTT ingest with durability (lowest of each)"] = round(low(bareCpu) / low(soloCpu), 2);
  figures["gateway also forwarding every value to the cloud, best values/s"] = round(best(gwRates));
  figures["ratio gateway forwarding to the cloud / bare aedes (best of each)"] = round(best(gwRates) / best(bareRates), 2);
  figures["CPU per value, bare aedes / gateway forwarding to the cloud (lowest of each)"] = round(low(bareCpu) / low(gwCpu), 2);
  return figures;
}

/** Only the bare broker side of (b), to check the generator before the listener exists. */
export async function benchBareAedesOnly(opts: MaxOptions = {}): Promise<Figures> {
  const o: Required<MaxOptions> = { devices: 1_000, procs: 2, window: 8, messagesPerPublish: 10, seconds: 10, rounds: 1, ...opts };
  const port = await freePort();
  const bare = await spawnBareAedes(port, o.devices);
  try {
    const b = await saturate(port, bare.pid, o);
    return { "bare aedes values/s": round(b.valuesPerS), "bare aedes CPU %": round(b.cpuPct), "PUBACK p99 ms": round(b.p99Ms, 1) };
  } finally { await bare.stop(); }
}

/** The generator against bare aedes at fleet size and 1 Hz: checks the load side holds 10,000 devices. */
export async function benchBareFleet(opts: FleetOptions = {}): Promise<Figures> {
  const devices = opts.devices ?? 10_000;
  const seconds = opts.seconds ?? 10;
  const port = await freePort();
  const bare = await spawnBareAedes(port, devices);
  const fleet = await Fleet.start({ port, devices, procs: opts.procs ?? 2, values: 10, messagesPerPublish: 1 });
  try {
    const connectS = await fleet.connect(opts.connectConcurrency ?? 200);
    fleet.rate(1);
    await sleep(3_000);
    await fleet.stats(true);
    const w = await watch(bare.pid, seconds * 1000);
    const s = await fleet.stats(true);
    phase("storm: every socket reset");
    const stormS = await fleet.storm(5_000);
    phase(`storm: all back in ${stormS.toFixed(1)} s`);
    return {
      "bare: CPU µs per message": round((w.cpuPct * 1e4) / (s.acked / seconds), 1),
      "bare: connected": s.connected, "bare: connect all, s": round(connectS, 1), "bare: values/s": round(s.valuesAcked / seconds),
      "bare: PUBACK p50 ms": round(s.hist.quantile(0.5) / 1000, 1), "bare: PUBACK p99 ms": round(s.hist.quantile(0.99) / 1000, 1),
      "bare: CPU %": round(w.cpuPct), "bare: RSS MB": round(w.rssPeak / 2 ** 20), "bare: storm s": round(stormS, 1),
    };
  } finally {
    await fleet.close();
    await bare.stop();
  }
}
