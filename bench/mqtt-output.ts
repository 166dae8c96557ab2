import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import mqtt from "mqtt";
import type { MqttOutputConfig } from "../src/outputs/mqtt/config.js";
import { createLogger } from "../src/core/logger.js";
import { ColumnsBuilder, SampleBatch, type SampleRun } from "../src/core/sample-columns.js";
import { MAX_MESSAGES_IN_FLIGHT, createMqttJsonOutput } from "../src/outputs/mqtt/json-output.js";
import { TelemetryEncoder, planMessages } from "../src/outputs/mqtt/json-format.js";
import { telemetryTopic } from "../src/outputs/mqtt/topics.js";

export interface MqttOutputBench {
  /** The output's default window. */
  maxInFlight: number;
  /** samples/s through session.write with the default window, like the runtime's forwarder. */
  windowed: number;
  /** samples/s with one write in flight at a time. */
  single: number;
  /** samples/s for each window size tried. */
  byWindow: Record<number, number>;
}

export interface MqttOutputBenchOptions {
  /** How long each window size runs; default 3000 ms. */
  durationMs?: number;
  /** Extra window sizes to try. */
  windows?: number[];
  devices?: number;
  tagsPerDevice?: number;
  qos?: 0 | 1;
}

/** The devices and tags the bench's batches are made of. */
interface BenchShape { devices: number; tags: number; tagNames: string[]; units: string[]; t0: number }

function benchShape(devices: number, tags: number, t0: number): BenchShape {
  const tagNames = Array.from({ length: tags }, (_, t) => `tag_${t}`);
  return { devices, tags, tagNames, units: tagNames.map(() => "rpm"), t0 };
}

/**
 * `size` samples from position `pos`, built as the journal hands batches out: runs over column sets,
 * one per device poll, with the tag names and units shared, so the figure is the output's cost and
 * not the test data's.
 */
function benchBatch({ devices, tags, tagNames, units, t0 }: BenchShape, pos: number, size: number): SampleBatch {
  const runs: SampleRun[] = [];
  for (let left = size; left > 0;) {
    const from = pos % tags;
    const count = Math.min(left, tags - from);
    const b = new ColumnsBuilder(`dev-${Math.floor(pos / tags) % devices}`, tags);
    for (let t = from; t < from + count; t++) b.set(t, ((pos - from + t) % 1000) * 0.5, 0, t0 + Math.floor(pos / (devices * tags)));
    runs.push({ cols: b.done(tagNames, units), from, count, firstPos: pos });
    pos += count;
    left -= count;
  }
  return new SampleBatch(runs);
}

/**
 * Throughput of the json output alone (payload building + MQTT.js + broker PUBACKs), fed batches of
 * `maxBatch` (500) samples the way the forwarder does: a journal poll cycle of `devices` ×
 * `tagsPerDevice` samples per batch, positions increasing. Not a test: it reports figures.
 */
export async function benchMqttOutput(url: string, opts: MqttOutputBenchOptions = {}): Promise<MqttOutputBench> {
  const durationMs = opts.durationMs ?? 3000;
  const devices = opts.devices ?? 10;
  const tags = opts.tagsPerDevice ?? 50;
  const log = createLogger({ level: "silent" });
  const cfg: MqttOutputConfig = {
    type: "mqtt", name: "bench", url, clientId: `bench-${process.pid}`, format: "json",
    topicPrefix: "bench/gw", qos: opts.qos ?? 1, maxBatch: 500,
  };
  const defaultWindow = createMqttJsonOutput(cfg, { id: "gw" }).maxInFlight;
  const windows = [...new Set([1, defaultWindow, ...(opts.windows ?? [])])].sort((a, b) => a - b);
  let pos = 0;
  const t0 = Date.now();
  const shape = benchShape(devices, tags, t0);
  const nextBatch = (): SampleBatch => {
    const b = benchBatch(shape, pos, cfg.maxBatch);
    pos += cfg.maxBatch;
    return b;
  };

  const byWindow: Record<number, number> = {};
  for (const window of windows) {
    const output = createMqttJsonOutput(cfg, { id: "gw" }, { maxInFlight: window });
    const session = await output.connect({ signal: new AbortController().signal, log });
    let sent = 0;
    const outstanding = new Set<Promise<void>>();
    const start = performance.now();
    while (performance.now() - start < durationMs) {
      while (outstanding.size < window) {
        const batch = nextBatch();
        const p: Promise<void> = session.write(batch).then(() => { sent += batch.length; outstanding.delete(p); });
        outstanding.add(p);
      }
      await Promise.race(outstanding);
    }
    await Promise.all(outstanding);
    const seconds = (performance.now() - start) / 1000;
    byWindow[window] = Math.round(sent / seconds);
    await session.close();
  }
  return { maxInFlight: defaultWindow, windowed: byWindow[defaultWindow]!, single: byWindow[1]!, byWindow };
}

/** One side of the comparison, summed over its rounds. */
export interface PublisherFigures {
  /** samples/s (wall clock) */
  samplesPerS: number;
  /** this process' CPU (user + system, GC threads included) per sample, µs */
  cpuUsPerSample: number;
  /** this process' CPU, % of one core */
  cpuPct: number;
  /** Mosquitto's CPU over the same time, % of one core (it is single-threaded: 100 % is its ceiling) */
  brokerPct: number;
  /** Mosquitto's CPU per sample, µs */
  brokerUsPerSample: number;
}

export interface MqttOutputVsBare {
  gateway: PublisherFigures;
  bare: PublisherFigures;
}

/** utime + stime of a process, in µs (Linux /proc; clock ticks of 10 ms). */
function procCpuUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) * 10_000;
}

/**
 * The json output (the session the forwarder drives: plan, encode, MQTT.js, PUBACKs) against a
 * bare MQTT.js client (stock options) publishing the very payload bytes the output made, QoS 1,
 * with as many messages in flight as the output's default window holds. Same process, same
 * broker, alternating rounds of `durationMs`, so load on a shared machine hits both alike. The
 * batches are built before the clock starts and cycled, so neither side pays for test data.
 * Writes are the size the forwarder hands the output (`output.maxBatch`, 8 × maxBatch samples);
 * the default shape is mqtt-ingest-max's: 1,000 devices × 10 values per poll, so a message holds
 * 10 samples and per-message costs (MQTT.js, the socket, Mosquitto) weigh as they do there.
 */
export async function benchMqttOutputVsBare(
  url: string,
  brokerPid: number,
  opts: {
    durationMs?: number; rounds?: number; devices?: number; tagsPerDevice?: number;
    /** another build of the output (before/after comparisons in one run); default this one */
    createOutput?: typeof createMqttJsonOutput;
  } = {},
): Promise<MqttOutputVsBare> {
  const createOutput = opts.createOutput ?? createMqttJsonOutput;
  const durationMs = opts.durationMs ?? 3000;
  const rounds = opts.rounds ?? 3;
  const devices = opts.devices ?? 1000;
  const tags = opts.tagsPerDevice ?? 10;
  const log = createLogger({ level: "silent" });
  const cfg: MqttOutputConfig = {
    type: "mqtt", name: "bench", url, clientId: `bench-gw-${process.pid}`, format: "json",
    topicPrefix: "bench/gw", qos: 1, maxBatch: 500,
  };
  const t0 = Date.now();
  const probe = createMqttJsonOutput(cfg, { id: "gw" });
  const maxInFlight = probe.maxInFlight;
  // Twice the window's writes, so a batch is never in flight twice.
  const shape = benchShape(devices, tags, t0);
  const batches: SampleBatch[] = [];
  for (let k = 0; k < 2 * maxInFlight; k++) batches.push(benchBatch(shape, k * probe.maxBatch, probe.maxBatch));
  // The bytes the output publishes, for the bare client.
  const encoder = new TelemetryEncoder("gw");
  const messages = batches.flatMap((b) => planMessages(b, cfg.maxBatch)).map((m) => ({
    topic: telemetryTopic(cfg.topicPrefix, m.device),
    payload: Buffer.from(encoder.encode(m)),
    samples: m.runs.reduce((n, r) => n + r.count, 0),
  }));
  // The bare client gets the messages the output may have in flight: the writes' messages, capped like the output's.
  const messageWindow = Math.min(MAX_MESSAGES_IN_FLIGHT, Math.round(maxInFlight * (messages.length / batches.length)));

  const measure = async (run: (until: number) => Promise<number>): Promise<{ samples: number; wallUs: number; cpuUs: number; brokerUs: number }> => {
    const b0 = procCpuUs(brokerPid);
    const c0 = process.cpuUsage();
    const w0 = performance.now();
    const samples = await run(w0 + durationMs);
    const wallUs = (performance.now() - w0) * 1000;
    const c = process.cpuUsage(c0);
    return { samples, wallUs, cpuUs: c.user + c.system, brokerUs: procCpuUs(brokerPid) - b0 };
  };

  const gatewayRound = async (until: number): Promise<number> => {
    const output = createOutput(cfg, { id: "gw" });
    const session = await output.connect({ signal: new AbortController().signal, log });
    let sent = 0;
    let k = 0;
    const outstanding = new Set<Promise<void>>();
    while (performance.now() < until) {
      while (outstanding.size < maxInFlight) {
        const batch = batches[k++ % batches.length]!;
        const p: Promise<void> = session.write(batch).then(() => { sent += batch.length; outstanding.delete(p); });
        outstanding.add(p);
      }
      await Promise.race(outstanding);
    }
    await Promise.all(outstanding);
    await session.close();
    return sent;
  };

  const bareRound = async (until: number): Promise<number> => {
    const client = mqtt.connect(url, { protocolVersion: 4, clientId: `bench-bare-${process.pid}`, clean: true, reconnectPeriod: 0 });
    await new Promise<void>((resolve, reject) => { client.once("connect", () => resolve()); client.once("error", reject); });
    let sent = 0;
    let k = 0;
    let inFlight = 0;
    await new Promise<void>((resolve, reject) => {
      const next = (): void => {
        while (inFlight < messageWindow && performance.now() < until) {
          const m = messages[k++ % messages.length]!;
          inFlight++;
          client.publish(m.topic, m.payload, { qos: 1 }, (err) => {
            inFlight--;
            if (err) { reject(err); return; }
            sent += m.samples;
            if (performance.now() < until) next();
            else if (inFlight === 0) resolve();
          });
        }
      };
      next();
    });
    await client.endAsync();
    return sent;
  };

  const sum = { gateway: { samples: 0, wallUs: 0, cpuUs: 0, brokerUs: 0 }, bare: { samples: 0, wallUs: 0, cpuUs: 0, brokerUs: 0 } };
  await measure(gatewayRound); // warm-up: JIT and the encoder's caches
  for (let r = 0; r < rounds; r++) {
    for (const side of r % 2 === 0 ? (["gateway", "bare"] as const) : (["bare", "gateway"] as const)) {
      const m = await measure(side === "gateway" ? gatewayRound : bareRound);
      const s = sum[side];
      s.samples += m.samples; s.wallUs += m.wallUs; s.cpuUs += m.cpuUs; s.brokerUs += m.brokerUs;
    }
  }
  const figures = (s: typeof sum.gateway): PublisherFigures => ({
    samplesPerS: Math.round(s.samples / (s.wallUs / 1e6)),
    cpuUsPerSample: Number((s.cpuUs / s.samples).toFixed(3)),
    cpuPct: Math.round((100 * s.cpuUs) / s.wallUs),
    brokerPct: Math.round((100 * s.brokerUs) / s.wallUs),
    brokerUsPerSample: Number((s.brokerUs / s.samples).toFixed(3)),
  });
  return { gateway: figures(sum.gateway), bare: figures(sum.bare) };
}

/** The comparison as bench figures. */
export function vsBareFigures(r: MqttOutputVsBare): Record<string, number> {
  const out: Record<string, number> = {};
  for (const side of ["gateway", "bare"] as const) {
    const f = r[side];
    const name = side === "gateway" ? "json output" : "bare MQTT.js, same bytes";
    out[`${name}: samples/s`] = f.samplesPerS;
    out[`${name}: CPU µs/sample`] = f.cpuUsPerSample;
    out[`${name}: CPU % of a core`] = f.cpuPct;
    out[`${name}: Mosquitto CPU %`] = f.brokerPct;
    out[`${name}: Mosquitto µs/sample`] = f.brokerUsPerSample;
  }
  out["ratio output / bare (samples/s)"] = Number((r.gateway.samplesPerS / r.bare.samplesPerS).toFixed(2));
  return out;
}

// `npx tsx bench/mqtt-output.ts [mqtt://host:port]`: without a URL, starts a default-config Mosquitto.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { startBenchBroker } = await import("../test/helpers/mosquitto.js");
  const given = process.argv[2];
  const broker = given ? null : await startBenchBroker();
  try {
    const res = await benchMqttOutput(given ?? broker!.url, { windows: [4, 16, 32, 100, 256] });
    console.log(JSON.stringify(res, null, 2));
  } finally {
    await broker?.dispose();
  }
}
