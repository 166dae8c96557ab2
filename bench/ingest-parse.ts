/**
 * Push-body parsing, the former parser (test/ingest/payload-reference.ts: JSON.parse, RegExp
 * timestamps) against the current one the ingest uses (`parsePushBatch`: bytes scanned), in one process, alternating rounds so that load on
 * a shared machine hits both alike. Bodies as the MQTT ingest bench sends them: 10 messages × 10
 * values with a msgId and a ts (consecutive timestamps, as devices send), and the HTTP bench's
 * shape without ts. Reports ns per value (best and median of the rounds) and the ratio new/old.
 *
 * Run: `npm run build && node dist/bench/run.js ingest-parse` (not in the default set), or
 * `node dist/bench/ingest-parse.js`.
 */
import { parsePushBatch } from "../src/ingest/payload.js";
import { refParsePushBody } from "../test/ingest/payload-reference.js";

const MESSAGES = 10;
const VALUES = 10;
const BODIES = 2_000;

function bodies(withTs: boolean): Buffer[] {
  const out: Buffer[] = [];
  let t = Date.parse("2026-11-21T08:59:58.000Z");
  for (let b = 0; b < BODIES; b++) {
    const msgs: string[] = [];
    for (let k = 0; k < MESSAGES; k++) {
      t += 7;
      let v = `"seq":${b}`;
      for (let i = 1; i < VALUES; i++) v += `,"v${i}":${((b * 7 + i * 13 + k) % 1000) / 10}`;
      msgs.push(`{"msgId":"dev-1-${b}-${k}",${withTs ? `"ts":"${new Date(t).toISOString()}",` : ""}"values":{${v}}}`);
    }
    out.push(Buffer.from(`[${msgs.join(",")}]`));
  }
  return out;
}

function timeNsPerValue(parse: (b: Buffer) => { ok: boolean }, input: readonly Buffer[]): number {
  const t0 = process.hrtime.bigint();
  for (const b of input) if (!parse(b).ok) throw new Error("bench body refused");
  return Number(process.hrtime.bigint() - t0) / (input.length * MESSAGES * VALUES);
}

export function benchIngestParse(rounds = 15): Record<string, number> {
  const figures: Record<string, number> = {};
  for (const withTs of [true, false]) {
    const input = bodies(withTs);
    const old: number[] = [];
    const now: number[] = [];
    for (let r = 0; r < 3; r++) { timeNsPerValue(refParsePushBody, input); timeNsPerValue(parsePushBatch, input); } // JIT warm-up
    for (let r = 0; r < rounds; r++) {
      old.push(timeNsPerValue(refParsePushBody, input));
      now.push(timeNsPerValue(parsePushBatch, input));
    }
    old.sort((a, b) => a - b);
    now.sort((a, b) => a - b);
    const label = withTs ? "with ts" : "no ts";
    const med = (xs: number[]) => xs[xs.length >> 1]!;
    figures[`parse ns/value, former, ${label} (best)`] = Math.round(old[0]! * 10) / 10;
    figures[`parse ns/value, current, ${label} (best)`] = Math.round(now[0]! * 10) / 10;
    figures[`parse ns/value, former, ${label} (median)`] = Math.round(med(old) * 10) / 10;
    figures[`parse ns/value, current, ${label} (median)`] = Math.round(med(now) * 10) / 10;
    figures[`ratio current / former, ${label} (median)`] = Math.round((med(now) / med(old)) * 100) / 100;
  }
  return figures;
}

if (process.argv[1] && /ingest-parse\.(ts|js)$/.test(process.argv[1])) {
  console.log(JSON.stringify(benchIngestParse(Number(process.argv[2] ?? 15)), null, 1));
}
