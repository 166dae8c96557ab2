/**
 * The Sparkplug B format against the json format of the same MQTT output: samples/s through
 * `session.write` with the output's default window (as the forwarder drives it), at QoS 0 and 1,
 * and bytes per sample on the wire (everything the gateway's socket sends to the broker: CONNECT,
 * births, PUBLISH headers, topics, payloads, divided by the samples carried), measured through a
 * counting TCP proxy in a run of its own so the proxy's cost stays out of the throughput figures.
 * Same batches for both: 10 devices × 50 tags, runs over shared columns, units on every tag.
 *
 * `npx tsx bench/sparkplug.ts` (starts a default-config Mosquitto) or `npm run bench -- sparkplug`.
 */
import { createServer, connect, type Socket } from "node:net";
import { pathToFileURL } from "node:url";
import type { MqttOutputConfig } from "../src/outputs/mqtt/config.js";
import type { Output } from "../src/core/output.js";
import { createLogger } from "../src/core/logger.js";
import { ColumnsBuilder, SampleBatch, type SampleRun } from "../src/core/sample-columns.js";
import { createMqttJsonOutput } from "../src/outputs/mqtt/json-output.js";
import { createMqttSparkplugOutput } from "../src/outputs/mqtt/sparkplug-output.js";

const log = createLogger({ level: "silent" });

type Format = "json" | "sparkplug-b";

/** Batches as the journal hands them out: runs over column sets, one per device poll. */
export function batchMaker(devices = 10, tags = 50, maxBatch = 500): () => SampleBatch {
  let pos = 1;
  const t0 = Date.now();
  const tagNames = Array.from({ length: tags }, (_, t) => `tag_${t}`);
  const units = tagNames.map(() => "rpm");
  return () => {
    const runs: SampleRun[] = [];
    let left = maxBatch;
    while (left > 0) {
      const from = (pos - 1) % tags;
      const count = Math.min(left, tags - from);
      const b = new ColumnsBuilder(`dev-${Math.floor((pos - 1) / tags) % devices}`, tags);
      for (let t = from; t < from + count; t++) b.set(t, ((pos - from + t) % 1000) * 0.5, 0, t0 + Math.floor(pos / (devices * tags)));
      runs.push({ cols: b.done(tagNames, units), from, count, firstPos: pos });
      pos += count;
      left -= count;
    }
    return new SampleBatch(runs);
  };
}

function makeOutput(format: Format, url: string, qos: 0 | 1, id: string): Output {
  const cfg: MqttOutputConfig = {
    type: "mqtt", name: `bench-${id}`, url, clientId: `bench-${id}-${process.pid}`, format,
    topicPrefix: "bench/gw", qos, maxBatch: 500,
  };
  return format === "json" ? createMqttJsonOutput(cfg, { id: "gw" }) : createMqttSparkplugOutput(cfg, { id: "gw", group: "bench" });
}

/** Drives one session for `ms` with the output's window full; returns samples confirmed. */
async function drive(output: Output, ms: number, next: () => SampleBatch): Promise<{ samples: number; seconds: number }> {
  const session = await output.connect({ signal: new AbortController().signal, log });
  let sent = 0;
  const outstanding = new Set<Promise<void>>();
  const start = performance.now();
  while (performance.now() - start < ms) {
    while (outstanding.size < output.maxInFlight) {
      const batch = next();
      const p: Promise<void> = session.write(batch).then(() => { sent += batch.length; outstanding.delete(p); });
      outstanding.add(p);
    }
    await Promise.race(outstanding);
  }
  await Promise.all(outstanding);
  const seconds = (performance.now() - start) / 1000;
  await session.close();
  return { samples: sent, seconds };
}

/** A loopback proxy to the broker that counts the bytes clients send through it. */
async function countingProxy(brokerPort: number): Promise<{ url: string; bytes(): number; close(): Promise<void> }> {
  let bytes = 0;
  const sockets = new Set<Socket>();
  const server = createServer((down) => {
    const up = connect(brokerPort, "127.0.0.1");
    sockets.add(down).add(up);
    down.on("data", (c: Buffer) => { bytes += c.length; up.write(c); });
    up.pipe(down);
    const end = (): void => { down.destroy(); up.destroy(); sockets.delete(down); sockets.delete(up); };
    down.on("error", end).on("close", end);
    up.on("error", end).on("close", end);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `mqtt://127.0.0.1:${port}`,
    bytes: () => bytes,
    close: () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
  };
}

export interface SparkplugBench {
  /** samples/s by format and QoS */
  rate: Record<`${Format} qos${0 | 1}`, number>;
  /** bytes on the wire per sample, by format (QoS 0 and 1 differ by 2 bytes of packet id per message) */
  bytesPerSample: Record<Format, number>;
}

export async function benchSparkplug(url: string, opts: { durationMs?: number; rounds?: number } = {}): Promise<SparkplugBench> {
  const ms = opts.durationMs ?? 3000;
  const rounds = opts.rounds ?? 2;
  const runs: [Format, 0 | 1][] = [["json", 1], ["sparkplug-b", 1], ["json", 0], ["sparkplug-b", 0]];
  const best: Record<string, number> = {};
  // Interleaved rounds, best of each: the machine is shared, and a neighbour's burst should not
  // land on one format only.
  for (let r = 0; r < rounds; r++) {
    for (const [format, qos] of runs) {
      const { samples, seconds } = await drive(makeOutput(format, url, qos, `${format}-${qos}-${r}`), ms, batchMaker());
      const key = `${format} qos${qos}`;
      best[key] = Math.max(best[key] ?? 0, samples / seconds);
    }
  }
  const port = Number(new URL(url).port);
  const bytesPerSample: Record<string, number> = {};
  for (const format of ["json", "sparkplug-b"] as const) {
    const proxy = await countingProxy(port);
    try {
      const { samples } = await drive(makeOutput(format, proxy.url, 1, `${format}-bytes`), 1000, batchMaker());
      bytesPerSample[format] = proxy.bytes() / samples;
    } finally {
      await proxy.close();
    }
  }
  return { rate: best as SparkplugBench["rate"], bytesPerSample: bytesPerSample as SparkplugBench["bytesPerSample"] };
}

/** The figures as bench/run.ts prints them. */
export function sparkplugFigures(r: SparkplugBench): Record<string, number> {
  const round = (x: number, d = 2): number => Number(x.toFixed(d));
  return {
    "json samples/s, qos 1 (json's default)": Math.round(r.rate["json qos1"]),
    "sparkplug-b samples/s, qos 1": Math.round(r.rate["sparkplug-b qos1"]),
    "ratio sparkplug / json, qos 1": round(r.rate["sparkplug-b qos1"] / r.rate["json qos1"]),
    "json samples/s, qos 0": Math.round(r.rate["json qos0"]),
    "sparkplug-b samples/s, qos 0 (sparkplug's default)": Math.round(r.rate["sparkplug-b qos0"]),
    "ratio sparkplug / json, qos 0": round(r.rate["sparkplug-b qos0"] / r.rate["json qos0"]),
    "json bytes/sample on the wire": round(r.bytesPerSample.json, 1),
    "sparkplug-b bytes/sample on the wire": round(r.bytesPerSample["sparkplug-b"], 1),
    "ratio bytes sparkplug / json": round(r.bytesPerSample["sparkplug-b"] / r.bytesPerSample.json),
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { startBenchBroker } = await import("../test/helpers/mosquitto.js");
  const broker = await startBenchBroker();
  try {
    console.table(sparkplugFigures(await benchSparkplug(broker.url)));
  } finally {
    await broker.dispose();
  }
}
