/**
 * Micro-benchmark of the journal frame encoder: a `FrameEncoder` (one, as a journal keeps) against
 * the encoder as it was before the encode fast paths (commit 6a6e637, kept as the test oracle in
 * test/oracles/frame-encoder.ts), on Modbus-shaped polls.
 * Also checks, on every benchmarked frame, that both write the same bytes.
 *
 *   npx tsx bench/frame-encode.ts [frames]   (each case in a child process; [frames] [case] runs one)
 */
import { execFileSync } from "node:child_process";
import { performance } from "node:perf_hooks";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Sample } from "../src/core/sample.js";
import { FrameEncoder } from "../src/journal/frame-encoder.js";
import { baselineEncodeFrame } from "../test/oracles/frame-encoder.js";

// ---- workloads ----------------------------------------------------------------------------------

/** Distinct polls cycled through, so values and ts vary while tag strings stay the driver's own. */
const POLLS = 256;
const TS0 = 1_718_000_000_000;

/** 100 integer registers of one device, one ts per poll, quality good: the common Modbus poll. */
function intPolls(): Sample[][] {
  const tags = Array.from({ length: 100 }, (_, i) => `r${i}`);
  const device = "d123";
  return Array.from({ length: POLLS }, (_, p) =>
    tags.map((tag, i): Sample => ({ device, tag, value: (p * 7 + i * 13) % 65536, quality: "good", ts: TS0 + p * 1000 })),
  );
}

/** 100 tags with string values (a few states, some free text) and a unit on every tag. */
function stringPolls(): Sample[][] {
  const tags = Array.from({ length: 100 }, (_, i) => `line1.station${i % 10}.state_${i}`);
  const units = ["rpm", "°C", "bar", "kW", "mm/s"];
  const states = ["RUNNING", "IDLE", "FAULT", "Störung", "SETUP"];
  const device = "press-hall-2";
  return Array.from({ length: POLLS }, (_, p) =>
    tags.map((tag, i): Sample => ({
      device,
      tag,
      value: i % 10 === 9 ? `batch ${p * 100 + i} ok` : states[(p + i) % states.length]!,
      quality: "good",
      ts: TS0 + p * 1000,
      unit: units[i % units.length]!,
    })),
  );
}

/** Ten devices of ten float tags each in one frame, as the journal batches concurrent polls. */
function mixedPolls(): Sample[][] {
  const devices = Array.from({ length: 10 }, (_, d) => `agv-${d}`);
  const names = ["battery_pct", "speed_mps", "pos_x", "pos_y", "motor_temp", "load_kg", "state", "fault_code", "volt", "amp"];
  return Array.from({ length: POLLS }, (_, p) => {
    const out: Sample[] = [];
    for (const device of devices) {
      for (let i = 0; i < names.length; i++) {
        const s: Sample = { device, tag: names[i]!, value: p * 0.25 + i / 3, quality: i === 7 && p % 5 === 0 ? "bad" : "good", ts: TS0 + p * 1000 + devices.indexOf(device) };
        if (s.quality === "bad") s.reason = "modbus exception 2: illegal data address";
        out.push(s);
      }
    }
    return out;
  });
}

type Encode = (samples: readonly Sample[], firstPos: number) => Buffer;

const encoder = new FrameEncoder();
const encodeFrame: Encode = (samples, firstPos) => encoder.encode(samples, firstPos);

function run(encode: Encode, polls: Sample[][], frames: number): number {
  let pos = 0;
  let sink = 0;
  const t0 = performance.now();
  for (let f = 0; f < frames; f++) {
    const samples = polls[f % polls.length]!;
    sink ^= encode(samples, pos).length;
    pos += samples.length;
  }
  const ms = performance.now() - t0;
  if (sink === -1) console.log("unreachable");
  return ms;
}

function sameBytes(polls: Sample[][]): void {
  let pos = 2 ** 33;
  for (const samples of polls) {
    const a = baselineEncodeFrame(samples, pos);
    const b = encodeFrame(samples, pos);
    if (!a.equals(b)) throw new Error(`encoders disagree at firstPos ${pos}`);
    pos += samples.length;
  }
}

const CASES: Array<[string, () => Sample[][]]> = [
  ["int values, d123 r0..r99", intPolls],
  ["string values + units", stringPolls],
  ["10 devices x 10 floats", mixedPolls],
];

function runCase(index: number, frames: number): void {
  const [name, make] = CASES[index]!;
  const polls = make();
  sameBytes(polls);
  const per = polls[0]!.length;
  // warm both encoders up so both are optimized before timing
  run(baselineEncodeFrame, polls, 3000);
  run(encodeFrame, polls, 3000);
  let bestOld = Infinity;
  let bestNew = Infinity;
  for (let r = 0; r < 5; r++) {
    bestOld = Math.min(bestOld, run(baselineEncodeFrame, polls, frames));
    bestNew = Math.min(bestNew, run(encodeFrame, polls, frames));
  }
  const fps = (ms: number): number => (frames * 1000) / ms;
  const fmt = (n: number): string => Math.round(n).toLocaleString("en-US");
  console.log(
    `${name.padEnd(26)} old ${fmt(fps(bestOld)).padStart(9)} frames/s ${fmt(fps(bestOld) * per).padStart(11)} samples/s | ` +
      `new ${fmt(fps(bestNew)).padStart(9)} frames/s ${fmt(fps(bestNew) * per).padStart(11)} samples/s | ` +
      `${(bestOld / bestNew).toFixed(2)}x (${((bestNew * 1e6) / (frames * per)).toFixed(0)} vs ${((bestOld * 1e6) / (frames * per)).toFixed(0)} ns/sample)`,
  );
}

/**
 * Each case in a process of its own: in one process the sample shapes of the earlier cases make
 * the encoders' property accesses polymorphic for the later ones, which measures the order.
 */
function main(): void {
  const frames = Number(process.argv[2] ?? 20_000);
  const only = process.argv[3];
  if (only !== undefined) {
    runCase(Number(only), frames);
    return;
  }
  console.log(`node ${process.version}, ${frames} frames per run, best of 5 alternating runs, one process per case`);
  const script = fileURLToPath(import.meta.url);
  for (let i = 0; i < CASES.length; i++) {
    const out = execFileSync(process.execPath, [...process.execArgv, script, String(frames), String(i)], { encoding: "utf8" });
    process.stdout.write(out);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) main();
