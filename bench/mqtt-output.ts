import { pathToFileURL } from "node:url";
import type { MqttOutputConfig } from "../src/outputs/mqtt/config.js";
import { createLogger } from "../src/core/logger.js";
import { ColumnsBuilder, SampleBatch, type SampleRun } from "../src/core/sample-columns.js";
import { createMqttJsonOutput } from "../src/outputs/mqtt/json-output.js";

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
  // Built as the journal hands batches out: runs over column sets, one per device poll, with the
  // tag names and units shared, so the figure is the output's cost and not the test data's.
  const tagNames = Array.from({ length: tags }, (_, t) => `tag_${t}`);
  const units = tagNames.map(() => "rpm");
  const nextBatch = (): SampleBatch => {
    const runs: SampleRun[] = [];
    let left = cfg.maxBatch;
    while (left > 0) {
      const from = pos % tags;
      const count = Math.min(left, tags - from);
      const b = new ColumnsBuilder(`dev-${Math.floor(pos / tags) % devices}`, tags);
      for (let t = from; t < from + count; t++) b.set(t, ((pos - from + t) % 1000) * 0.5, 0, t0 + Math.floor(pos / (devices * tags)));
      runs.push({ cols: b.done(tagNames, units), from, count, firstPos: pos });
      pos += count;
      left -= count;
    }
    return new SampleBatch(runs);
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
