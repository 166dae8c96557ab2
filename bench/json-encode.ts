/**
 * Micro-benchmark of the MQTT json telemetry encoder: today's Buffer encoder against the string
 * encoder it replaced (the baseline, kept as the test oracle in test/oracles/json-encoder.ts). 2,000 messages × 100 samples per round, like
 * one second of 2,000 Modbus devices × 100 registers: tags r0..r99, uint16 values, one ts per message,
 * quality good. The last `HELD` payloads stay referenced, as MQTT.js holds them until PUBACK (64
 * writes in flight × 8 messages), so the GC figures include their promotion.
 *
 * The string baseline is measured three ways: the bare `+=` result (a cons string nobody has paid to
 * flatten yet), + `Buffer.byteLength` (what mqtt-packet does first; it flattens), and + `Buffer.from`
 * (the UTF-8 bytes that finally go to the socket) — the fair comparison with a Buffer payload.
 *
 * Run: `npx tsx bench/json-encode.ts [rounds=8]` (3 passes, each variant in a process of its own).
 * Not a test: it reports figures. "CPU" is process CPU (GC helper threads included); "GC" is
 * main-thread GC pause time per round of 2,000 messages.
 */
import { spawn } from "node:child_process";
import { PerformanceObserver } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import v8 from "node:v8";
import { runInNewContext } from "node:vm";
import type { JournaledSample } from "../src/core/sample.js";
import { SampleColumns } from "../src/core/sample-columns.js";
import { TelemetryEncoder, type TelemetryMessage } from "../src/outputs/mqtt/json-format.js";
import { StringTelemetryEncoder } from "../test/oracles/json-encoder.js";

/** A message in both shapes: columns for today's encoder, sample objects for the string baseline. */
type BenchMessage = TelemetryMessage & { samples: JournaledSample[] };

const DEVICES = 2000;
const TAGS = 100;
const HELD = 512;
const PASSES = 3;

/** One string per tag name, as the journal's frame decoder hands them out. */
const TAG_NAMES = Array.from({ length: TAGS }, (_, t) => `r${t}`);

function makeMessages(round: number): BenchMessage[] {
  const ts = Date.UTC(2026, 0, 1) + round * 1000;
  const out: BenchMessage[] = new Array(DEVICES);
  let pos = round * DEVICES * TAGS;
  for (let d = 0; d < DEVICES; d++) {
    const device = `plc-${String(d).padStart(4, "0")}`;
    const samples: JournaledSample[] = new Array(TAGS);
    for (let t = 0; t < TAGS; t++) {
      samples[t] = { device, tag: TAG_NAMES[t]!, value: (d * 7919 + t * 104_729 + round * 31) % 65536, quality: "good", ts, pos: ++pos };
    }
    out[d] = { device, batch: pos, samples, runs: [{ cols: SampleColumns.fromSamples(samples), from: 0, count: TAGS, firstPos: pos - TAGS + 1 }] };
  }
  return out;
}

interface Variant {
  name: string;
  /** Encodes one message; returns what would be held until PUBACK and its byte count. */
  run(m: BenchMessage): { held: unknown; bytes: number };
}

interface Figures { msgPerS: number; mbPerS: number; cpuUsPerMsg: number; gcMsPerRound: number }

interface Rounds { times: number[]; cpus: number[]; gcs: number[]; bytes: number }

/** GC pauses as [start, duration]; delivered asynchronously, so they are matched to rounds by time. */
const gcPauses: Array<[number, number]> = [];
const gcObserver = new PerformanceObserver((list) => { for (const e of list.getEntries()) gcPauses.push([e.startTime, e.duration]); });
gcObserver.observe({ entryTypes: ["gc"] });
const gcBetween = (a: number, b: number): number => gcPauses.reduce((sum, [t, d]) => (t >= a && t <= b ? sum + d : sum), 0);
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A full GC after the warm-up, so the measured rounds do not pay for the set-up's garbage. */
v8.setFlagsFromString("--expose-gc");
const fullGc = runInNewContext("gc") as () => void;

/** Runs `rounds` and appends each round's wall ms, process CPU µs (all threads, so GC helper threads count) and GC ms to `into`. */
async function measure(v: Variant, rounds: BenchMessage[][], into: Rounds): Promise<void> {
  fullGc();
  await tick();
  const held: unknown[] = new Array(HELD);
  let sink = 0;
  const { times, cpus, gcs } = into;
  let bytes = 0;
  for (let r = 0; r < rounds.length; r++) {
    const msgs = rounds[r]!;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    bytes = 0;
    for (let i = 0; i < msgs.length; i++) {
      const { held: h, bytes: n } = v.run(msgs[i]!);
      held[i % HELD] = h;
      bytes += n;
    }
    const t1 = performance.now();
    const c = process.cpuUsage(c0);
    times.push(t1 - t0);
    cpus.push(c.user + c.system);
    await tick();
    await tick();
    gcs.push(gcBetween(t0, t1));
    sink += bytes;
  }
  if (sink < 0) console.log(held.length);
  into.bytes = bytes;
}

function figures({ times, cpus, gcs, bytes }: Rounds): Figures {
  // The median round: robust against a neighbour's burst on a shared 2-core machine.
  const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  const ms = med(times);
  // GC is bursty (a major GC every few rounds), so its mean, not its median, is the cost per round.
  const gcMean = gcs.reduce((a, b) => a + b, 0) / gcs.length;
  return { msgPerS: (DEVICES / ms) * 1000, mbPerS: bytes / 1e6 / (ms / 1000), cpuUsPerMsg: med(cpus) / DEVICES, gcMsPerRound: gcMean };
}

function variants(gw: string): Variant[] {
  const strEnc = new StringTelemetryEncoder(gw);
  const bufEnc = new TelemetryEncoder(gw);
  return [
    { name: "string += (unflattened; unsendable)", run: (m) => { const s = strEnc.encode(m); return { held: s, bytes: s.length }; } },
    { name: "string + Buffer.byteLength", run: (m) => { const s = strEnc.encode(m); return { held: s, bytes: Buffer.byteLength(s) }; } },
    { name: "string + Buffer.from (bytes)", run: (m) => { const b = Buffer.from(strEnc.encode(m)); return { held: b, bytes: b.length }; } },
    { name: "Buffer encoder", run: (m) => { const b = bufEnc.encode(m); return { held: b, bytes: b.length }; } },
  ];
}

const GW = "line3-edge";

/** Child: measures one variant in a heap of its own and prints its rounds as JSON. */
async function child(index: number, roundsN: number): Promise<void> {
  const rounds = Array.from({ length: roundsN }, (_, r) => makeMessages(r));
  const v = variants(GW)[index]!;
  const scratch: Rounds = { times: [], cpus: [], gcs: [], bytes: 0 };
  await measure(v, rounds.slice(0, 3), scratch); // warm-up: JIT and caches
  const out: Rounds = { times: [], cpus: [], gcs: [], bytes: 0 };
  await measure(v, rounds, out);
  process.stdout.write(JSON.stringify(out));
  gcObserver.disconnect();
}

function runChild(index: number, roundsN: number): Promise<Rounds> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), "--child", String(index), String(roundsN)], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let text = "";
    p.stdout.setEncoding("utf8").on("data", (d: string) => { text += d; });
    p.on("error", reject);
    p.on("exit", (code) => (code === 0 ? resolve(JSON.parse(text) as Rounds) : reject(new Error(`variant ${index} exited with ${code}`))));
  });
}

async function main(): Promise<void> {
  const roundsN = Number(process.argv[2] ?? 8);
  const vs = variants(GW);
  // Same bytes, or the comparison means nothing.
  const strEnc = new StringTelemetryEncoder(GW);
  const bufEnc = new TelemetryEncoder(GW);
  const sampleMsgs = makeMessages(0).slice(0, 50);
  for (const m of sampleMsgs) {
    if (!bufEnc.encode(m).equals(Buffer.from(strEnc.encode(m)))) throw new Error(`encoders disagree on ${m.device}`);
  }
  // Each variant in a process of its own: in one heap, the string variants' promoted garbage keeps
  // V8 marking (and slows) whatever runs after them. Passes alternate the order against load drift.
  const acc = vs.map((): Rounds => ({ times: [], cpus: [], gcs: [], bytes: 0 }));
  for (let pass = 0; pass < PASSES; pass++) {
    const order = vs.map((_, i) => i);
    if (pass % 2 === 1) order.reverse();
    for (const i of order) {
      const r = await runChild(i, roundsN);
      const a = acc[i]!;
      a.times.push(...r.times);
      a.cpus.push(...r.cpus);
      a.gcs.push(...r.gcs);
      a.bytes = r.bytes;
    }
  }
  const results = new Map<string, Figures>(vs.map((v, i) => [v.name, figures(acc[i]!)]));
  const base = results.get("string + Buffer.from (bytes)")!;
  const avgBytes = bufEnc.encode(sampleMsgs[0]!).length;
  console.log(
    `node ${process.version}, ${DEVICES} messages × ${TAGS} samples per round (~${avgBytes} B each), ${PASSES} passes × ${roundsN} rounds, ` +
      "one process per variant and pass; median round, GC mean; × = msg/s vs string + Buffer.from",
  );
  for (const [name, f] of results) {
    console.log(
      `${name.padEnd(36)} ${Math.round(f.msgPerS).toString().padStart(7)} msg/s  ${f.mbPerS.toFixed(1).padStart(6)} MB/s  ` +
        `${(f.msgPerS / base.msgPerS).toFixed(2)}×  CPU ${f.cpuUsPerMsg.toFixed(1).padStart(5)} µs/msg  GC ${f.gcMsPerRound.toFixed(1).padStart(5)} ms/round`,
    );
  }
  gcObserver.disconnect();
}

if (process.argv[2] === "--child") await child(Number(process.argv[3]), Number(process.argv[4]));
else await main();
