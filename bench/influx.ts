import type { IPoint } from "influx";
import { InfluxDB } from "influx";
import { createLogger } from "../src/core/logger.js";
import { ColumnsBuilder, SampleBatch, type SampleRun } from "../src/core/sample-columns.js";
import { createInfluxOutput } from "../src/outputs/influx/influx-output.js";
import { buildPoints } from "../src/outputs/influx/points.js";
import { startInfluxd } from "../test/helpers/influxdb.js";

export interface InfluxBenchOptions {
  /** samples per run; default 200,000 */
  samples?: number;
  /** rounds of (bare, output), best of each kept; default 2 */
  rounds?: number;
  devices?: number;
  tagsPerDevice?: number;
  maxBatch?: number;
}

/**
 * Samples/s into InfluxDB 1.x (Debian's influxd, started here on free loopback ports, default
 * settings) through the influx output — writes issued as the forwarder issues them, its window of
 * `maxInFlight` writes outstanding, resolved in order — against a bare loop of the `influx`
 * package's `writePoints` over the same points, prebuilt (their building is not timed), one write
 * at a time. Each run writes into a database of its own, so neither overwrites the other's points.
 * Each round runs both, alternating which goes first; reported: the best of each, and the median of
 * the rounds' ratios (steadier than the best on a machine loaded by other work).
 */
export async function benchInflux(opts: InfluxBenchOptions = {}): Promise<Record<string, number>> {
  const total = opts.samples ?? 200_000;
  const rounds = opts.rounds ?? 5;
  const devices = opts.devices ?? 20;
  const tags = opts.tagsPerDevice ?? 50;
  const maxBatch = opts.maxBatch ?? 5000;
  const server = await startInfluxd();
  try {
    // Batches as the journal hands them out: runs over column sets, one per device poll, tag
    // names and units shared. Each (device, tag) gets its own ms per poll, so no point replaces another.
    const t0 = Date.UTC(2026, 10, 21, 8);
    const tagNames = Array.from({ length: tags }, (_, t) => `tag_${t}`);
    const units = tagNames.map(() => "rpm");
    const batches: SampleBatch[] = [];
    let pos = 0;
    while (pos < total) {
      const runs: SampleRun[] = [];
      let left = Math.min(maxBatch, total - pos);
      while (left > 0) {
        const from = pos % tags;
        const count = Math.min(left, tags - from);
        const poll = Math.floor(pos / (devices * tags));
        const b = new ColumnsBuilder(`dev-${Math.floor(pos / tags) % devices}`, tags);
        for (let t = from; t < from + count; t++) b.set(t, ((pos - from + t) % 1000) * 0.5, 0, t0 + poll * 10);
        runs.push({ cols: b.done(tagNames, units), from, count, firstPos: pos + 1 });
        pos += count;
        left -= count;
      }
      batches.push(new SampleBatch(runs));
    }
    const points: IPoint[][] = batches.map((b) => buildPoints(b, "bench-gw", new Map()).points);

    const bare = async (db: string): Promise<number> => {
      const influx = new InfluxDB({ host: "127.0.0.1", port: server.port, database: db });
      await influx.createDatabase(db);
      const start = performance.now();
      for (const p of points) await influx.writePoints(p, { database: db, precision: "ms" });
      return total / ((performance.now() - start) / 1000);
    };

    let maxInFlight = 0;
    const output = async (db: string): Promise<number> => {
      const out = createInfluxOutput({ type: "influx", name: "bench", url: server.url, database: db, maxBatch }, { id: "bench-gw" });
      maxInFlight = out.maxInFlight;
      const session = await out.connect({ signal: new AbortController().signal, log: createLogger({ level: "silent" }) });
      const start = performance.now();
      // The forwarder's pattern: up to maxInFlight writes outstanding, settled in issue order.
      const window: Promise<unknown>[] = [];
      for (const b of batches) {
        if (window.length >= out.maxInFlight) await window.shift();
        window.push(session.write(b).then((r) => { if (r.dropped.length > 0) throw new Error(`bench points refused: ${JSON.stringify(r.dropped)}`); }));
      }
      await Promise.all(window);
      const rate = total / ((performance.now() - start) / 1000);
      await session.close();
      return rate;
    };

    let bestBare = 0;
    let bestOut = 0;
    const ratios: number[] = [];
    for (let r = 0; r < rounds; r++) {
      // Alternate which goes first, so a load spike from other processes does not always hit one side.
      const first = r % 2 === 0 ? "bare" : "output";
      const a = first === "bare" ? await bare(`bench_bare_${r}`) : await output(`bench_output_${r}`);
      const b = first === "bare" ? await output(`bench_output_${r}`) : await bare(`bench_bare_${r}`);
      const [rb, ro] = first === "bare" ? [a, b] : [b, a];
      bestBare = Math.max(bestBare, rb);
      bestOut = Math.max(bestOut, ro);
      ratios.push(ro / rb);
    }
    ratios.sort((x, y) => x - y);
    const median = ratios[Math.floor(ratios.length / 2)]!;
    // Both wrote every point: check one database of each.
    for (const db of ["bench_bare_0", "bench_output_0"]) {
      const res = await server.query('SELECT count("tag_0") FROM "dev-0"', db);
      const n = res.results[0]?.series?.[0]?.values?.[0]?.[1];
      const want = Math.ceil(total / (devices * tags));
      if (n !== want) throw new Error(`${db}: dev-0 tag_0 has ${String(n)} points, expected ${want}`);
    }
    return {
      [`samples/s through the influx output (${maxInFlight} writes in flight, ${maxBatch} points each)`]: Math.round(bestOut),
      "samples/s, bare influx writePoints loop (same points, prebuilt, 1 in flight)": Math.round(bestBare),
      "ratio output / bare (best of each)": Number((bestOut / bestBare).toFixed(2)),
      [`ratio output / bare (median of ${rounds} paired rounds)`]: Number(median.toFixed(2)),
    };
  } finally {
    await server.dispose();
  }
}
