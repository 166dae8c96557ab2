/**
 * The journal's frame encoder as it was before the encode fast paths (commit 6a6e637), verbatim
 * but for the `b`-prefixed names: the oracle that test/journal/frame-codec-oracle.test.ts checks
 * the fast encoder against byte for byte, and the "old" figure of bench/frame-encode.ts. Simple on
 * purpose; never optimise it. Its string table is module state, as it was then: one oracle per
 * process.
 */
import { crc32 } from "node:zlib";
import type { Sample, SampleValue } from "../../src/core/sample.js";


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
