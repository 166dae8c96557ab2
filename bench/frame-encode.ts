/**
 * Micro-benchmark of the journal frame encoder: the current `encodeFrame` against a frozen copy of
 * the encoder as it was before the encode fast paths (commit 6a6e637), on Modbus-shaped polls.
 * Also checks, on every benchmarked frame, that both write the same bytes.
 *
 *   npx tsx bench/frame-encode.ts [frames]   (each case in a child process; [frames] [case] runs one)
 */
import { execFileSync } from "node:child_process";
import { performance } from "node:perf_hooks";
import { fileURLToPath, pathToFileURL } from "node:url";
import { crc32 } from "node:zlib";
import type { Sample, SampleValue } from "../src/core/sample.js";
import { encodeFrame } from "../src/journal/frame-codec.js";

// ---- baseline: the encoder of commit 6a6e637, verbatim but for the `b`-prefixed names ----------

const B_FRAME_PREFIX = 8;
const B_FRAME_HEADER = 20;
const V_NULL = 0;
const V_FALSE = 1;
const V_TRUE = 2;
const V_NUM = 3;
const V_STR = 4;
const F_UNIT = 0x20;
const F_REASON = 0x40;
const TWO32 = 0x1_0000_0000;

let bScratch = Buffer.allocUnsafe(64 * 1024);
const bF64 = new Float64Array(1);
const bF64b = new Uint8Array(bF64.buffer);
const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function bEnsure(at: number, more: number): void {
  if (at + more <= bScratch.length) return;
  let size = bScratch.length * 2;
  while (size < at + more) size *= 2;
  const next = Buffer.allocUnsafe(size);
  bScratch.copy(next, 0, 0, at);
  bScratch = next;
}

function bPutDouble(at: number, v: number): void {
  if (!LE) {
    bScratch.writeDoubleLE(v, at);
    return;
  }
  bF64[0] = v;
  const b = bScratch;
  b[at] = bF64b[0]!;
  b[at + 1] = bF64b[1]!;
  b[at + 2] = bF64b[2]!;
  b[at + 3] = bF64b[3]!;
  b[at + 4] = bF64b[4]!;
  b[at + 5] = bF64b[5]!;
  b[at + 6] = bF64b[6]!;
  b[at + 7] = bF64b[7]!;
}

function bWriteVarint(at: number, v: number): number {
  while (v >= 0x80) {
    bScratch[at++] = (v & 0x7f) | 0x80;
    v = Math.floor(v / 128);
  }
  bScratch[at++] = v;
  return at;
}

interface StrSlot { frame: number; idx: number }
const bStrSlots = new Map<string, StrSlot>();
const STR_SLOTS_MAX = 100_000;
let bFrameNo = 0;
let bTableSize = 0;

function bWriteStr(at: number, s: string): number {
  const slot = bStrSlots.get(s);
  if (slot !== undefined && slot.frame === bFrameNo) {
    bEnsure(at, 5);
    return bWriteVarint(at, slot.idx * 2);
  }
  if (slot !== undefined) {
    slot.frame = bFrameNo;
    slot.idx = bTableSize++;
  } else {
    if (bStrSlots.size >= STR_SLOTS_MAX) bStrSlots.clear();
    bStrSlots.set(s, { frame: bFrameNo, idx: bTableSize++ });
  }
  const n = s.length;
  bEnsure(at, n * 3 + 5);
  if (n < 64) {
    const b = bScratch;
    b[at] = n * 2 + 1;
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c > 0x7f) break;
      b[at + 1 + i] = c;
    }
    if (i === n) return at + 1 + n;
  }
  const bytes = Buffer.byteLength(s, "utf8");
  at = bWriteVarint(at, bytes * 2 + 1);
  bScratch.write(s, at, bytes, "utf8");
  return at + bytes;
}

/** Strings the baseline's table knows: lets a test bring both tables to the same state. */
export function baselineStringCount(): number {
  return bStrSlots.size;
}

/** The encoder before the fast paths; the reference for bytes and for speed. */
export function baselineEncodeFrame(samples: readonly Sample[], firstPos: number): Buffer {
  if (bFrameNo >= 0x3fffffff) { bStrSlots.clear(); bFrameNo = 0; }
  bFrameNo++;
  bTableSize = 0;
  let at = B_FRAME_HEADER;
  for (let k = 0; k < samples.length; k++) {
    const s = samples[k]!;
    bEnsure(at, 32);
    const v: SampleValue = s.value;
    let kind: number;
    if (typeof v === "number") kind = V_NUM;
    else if (v === null || v === undefined) kind = V_NULL;
    else if (v === true) kind = V_TRUE;
    else if (v === false) kind = V_FALSE;
    else kind = V_STR;
    const q = s.quality === "good" ? 0 : s.quality === "uncertain" ? 1 : 2;
    let flags = q | (kind << 2);
    if (s.unit !== undefined) flags |= F_UNIT;
    if (s.reason !== undefined) flags |= F_REASON;
    bScratch[at++] = flags;
    bPutDouble(at, s.ts);
    at += 8;
    at = bWriteStr(at, s.device);
    at = bWriteStr(at, s.tag);
    if (kind === V_NUM) {
      bEnsure(at, 8);
      bPutDouble(at, v as number);
      at += 8;
    } else if (kind === V_STR) {
      at = bWriteStr(at, String(v));
    }
    if (s.unit !== undefined) at = bWriteStr(at, s.unit);
    if (s.reason !== undefined) at = bWriteStr(at, s.reason);
  }
  const frame = Buffer.allocUnsafe(at);
  bScratch.copy(frame, 0, 0, at);
  frame.writeUInt32LE(at - B_FRAME_PREFIX, 0);
  frame.writeUInt32LE(firstPos % TWO32, 8);
  frame.writeUInt32LE(Math.floor(firstPos / TWO32), 12);
  frame.writeUInt32LE(samples.length, 16);
  frame.writeUInt32LE(crc32(frame.subarray(B_FRAME_PREFIX, at)), 4);
  return frame;
}

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
