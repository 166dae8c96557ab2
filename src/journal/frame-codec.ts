import { crc32 } from "node:zlib";
import type { JournaledSample, Quality, Sample, SampleValue } from "../core/sample.js";

/**
 * On-disk frame: one per `append` call, so an append is stored whole or (torn) not at all.
 *
 *   [u32 length][u32 crc32][u64 firstPos][u32 count][payload]
 *
 * All little-endian. `length` counts the bytes the CRC covers (firstPos + count + payload), so a
 * frame occupies `FRAME_PREFIX + length` bytes. The CRC guards the length too: a length that
 * points past the end of the file, or a CRC mismatch, marks a torn or corrupt frame.
 *
 * Payload: a compact binary encoding (about 30 bytes per typical sample against about 90 as
 * JSON). Strings are interned per frame, so a device id repeated in every sample of a poll is
 * stored once. Per sample:
 *   u8 flags  bits 0-1 quality (0 good, 1 uncertain, 2 bad)
 *             bits 2-4 value kind (0 null, 1 false, 2 true, 3 f64, 4 string)
 *             bit 5 has unit, bit 6 has reason
 *   f64 ts
 *   str device, str tag, [f64 | str value], [str unit], [str reason]
 * where str is a varint v: v even → reference to the (v/2)-th string already in this frame;
 * v odd → a new UTF-8 string of (v-1)/2 bytes follows and joins the table.
 */
export const FRAME_PREFIX = 8;
/** bytes of firstPos + count, the part of the CRC-covered body before the payload */
export const BODY_HEAD = 12;
export const FRAME_HEADER = FRAME_PREFIX + BODY_HEAD;


const V_NULL = 0;
const V_FALSE = 1;
const V_TRUE = 2;
const V_NUM = 3;
const V_STR = 4;
const F_UNIT = 0x20;
const F_REASON = 0x40;

const TWO32 = 0x1_0000_0000;

/** Scratch space reused by every encode; grows to the largest frame seen. */
let scratch = Buffer.allocUnsafe(64 * 1024);

/** 8-byte window for moving doubles without Buffer's per-call checks (little-endian hosts). */
const f64 = new Float64Array(1);
const f64b = new Uint8Array(f64.buffer);
const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function ensure(at: number, more: number): void {
  if (at + more <= scratch.length) return;
  let size = scratch.length * 2;
  while (size < at + more) size *= 2;
  const next = Buffer.allocUnsafe(size);
  scratch.copy(next, 0, 0, at);
  scratch = next;
}

function putDouble(at: number, v: number): void {
  if (!LE) {
    scratch.writeDoubleLE(v, at);
    return;
  }
  f64[0] = v;
  const b = scratch;
  b[at] = f64b[0]!;
  b[at + 1] = f64b[1]!;
  b[at + 2] = f64b[2]!;
  b[at + 3] = f64b[3]!;
  b[at + 4] = f64b[4]!;
  b[at + 5] = f64b[5]!;
  b[at + 6] = f64b[6]!;
  b[at + 7] = f64b[7]!;
}

function getDouble(buf: Buffer, at: number): number {
  if (!LE) return buf.readDoubleLE(at);
  f64b[0] = buf[at]!;
  f64b[1] = buf[at + 1]!;
  f64b[2] = buf[at + 2]!;
  f64b[3] = buf[at + 3]!;
  f64b[4] = buf[at + 4]!;
  f64b[5] = buf[at + 5]!;
  f64b[6] = buf[at + 6]!;
  f64b[7] = buf[at + 7]!;
  return f64[0]!;
}

function writeVarint(at: number, v: number): number {
  while (v >= 0x80) {
    scratch[at++] = (v & 0x7f) | 0x80;
    v = Math.floor(v / 128);
  }
  scratch[at++] = v;
  return at;
}

/**
 * The per-frame string table, kept across frames so that encoding does not build a fresh Map per
 * frame: each known string has one slot object recording the frame it was last written in and
 * its index there. A slot from an older frame is just stale; bounded by clearing when it grows
 * past STR_SLOTS_MAX (free-text values could otherwise grow it without end).
 */
interface StrSlot { frame: number; idx: number }
const strSlots = new Map<string, StrSlot>();
const STR_SLOTS_MAX = 100_000;
let frameNo = 0;
let tableSize = 0;

function writeStr(at: number, s: string): number {
  const slot = strSlots.get(s);
  if (slot !== undefined && slot.frame === frameNo) {
    ensure(at, 5);
    return writeVarint(at, slot.idx * 2);
  }
  if (slot !== undefined) {
    slot.frame = frameNo;
    slot.idx = tableSize++;
  } else {
    if (strSlots.size >= STR_SLOTS_MAX) strSlots.clear();
    strSlots.set(s, { frame: frameNo, idx: tableSize++ });
  }
  const n = s.length;
  ensure(at, n * 3 + 5);
  // Device ids and tag names are short ASCII: copy char codes directly (Buffer.write costs more
  // per call than the copy for strings this short).
  if (n < 64) {
    const b = scratch;
    b[at] = n * 2 + 1; // one-byte varint: n < 64
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c > 0x7f) break;
      b[at + 1 + i] = c;
    }
    if (i === n) return at + 1 + n;
  }
  const bytes = Buffer.byteLength(s, "utf8");
  at = writeVarint(at, bytes * 2 + 1);
  scratch.write(s, at, bytes, "utf8");
  return at + bytes;
}

/**
 * Encodes `samples` as one complete frame (header, CRC and payload) starting at `firstPos`.
 * Returns a fresh buffer the caller owns.
 */
export function encodeFrame(samples: readonly Sample[], firstPos: number): Buffer {
  if (frameNo >= 0x3fffffff) { strSlots.clear(); frameNo = 0; }
  frameNo++;
  tableSize = 0;
  let at = FRAME_HEADER;
  for (let k = 0; k < samples.length; k++) {
    const s = samples[k]!;
    ensure(at, 32);
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
    scratch[at++] = flags;
    putDouble(at, s.ts);
    at += 8;
    at = writeStr(at, s.device);
    at = writeStr(at, s.tag);
    if (kind === V_NUM) {
      ensure(at, 8);
      putDouble(at, v as number);
      at += 8;
    } else if (kind === V_STR) {
      at = writeStr(at, String(v));
    }
    if (s.unit !== undefined) at = writeStr(at, s.unit);
    if (s.reason !== undefined) at = writeStr(at, s.reason);
  }
  const frame = Buffer.allocUnsafe(at);
  scratch.copy(frame, 0, 0, at);
  frame.writeUInt32LE(at - FRAME_PREFIX, 0);
  frame.writeUInt32LE(firstPos % TWO32, 8);
  frame.writeUInt32LE(Math.floor(firstPos / TWO32), 12);
  frame.writeUInt32LE(samples.length, 16);
  frame.writeUInt32LE(crc32(frame.subarray(FRAME_PREFIX, at)), 4);
  return frame;
}

export interface FrameHeader {
  /** bytes the frame occupies in the file, prefix included */
  size: number;
  firstPos: number;
  count: number;
}

export type FrameCheck =
  | { ok: true; header: FrameHeader }
  /** `short`: the buffer ends inside the frame (a torn tail if it is the end of the file) */
  | { ok: false; problem: "short" | "bad-length" | "bad-crc" };

/**
 * Validates the frame at `off` in `buf` (length, bounds, CRC). `end` is where valid bytes stop.
 */
export function checkFrame(buf: Buffer, off: number, end: number): FrameCheck {
  if (end - off < FRAME_HEADER) return { ok: false, problem: "short" };
  const length = buf.readUInt32LE(off);
  if (length < BODY_HEAD) return { ok: false, problem: "bad-length" };
  const size = FRAME_PREFIX + length;
  if (end - off < size) return { ok: false, problem: "short" };
  const crc = buf.readUInt32LE(off + 4);
  if (crc32(buf.subarray(off + FRAME_PREFIX, off + size)) !== crc) return { ok: false, problem: "bad-crc" };
  return { ok: true, header: readHeader(buf, off) };
}

/** Reads a header already known to be valid. */
export function readHeader(buf: Buffer, off: number): FrameHeader {
  return {
    size: FRAME_PREFIX + buf.readUInt32LE(off),
    firstPos: buf.readUInt32LE(off + 8) + buf.readUInt32LE(off + 12) * TWO32,
    count: buf.readUInt32LE(off + 16),
  };
}

/** Thrown by `decodeFrame` when a frame that passed its CRC still does not parse (a bug, or a foreign file). */
export class FrameDecodeError extends Error {}

/**
 * Decoded short ASCII strings, keyed by a hash of their bytes: the same few thousand device ids and
 * tag names recur in every frame, so a backlog read shares one string per name instead of decoding
 * (and allocating) it again per frame. Bounded; cleared when full.
 */
const intern = new Map<number, string>();
const INTERN_MAX = 50_000;

// Decoder state: module-level instead of closures, so decoding a frame allocates only samples.
let dBuf: Buffer = Buffer.alloc(0);
let dAt = 0;
let dEnd = 0;
let dTable: string[] = [];

function readVarint(): number {
  let v = 0;
  let mul = 1;
  for (;;) {
    if (dAt >= dEnd) throw new FrameDecodeError("varint past end of frame");
    const b = dBuf[dAt++]!;
    v += (b & 0x7f) * mul;
    if (b < 0x80) return v;
    mul *= 128;
  }
}

function readStr(): string {
  const v = readVarint();
  if ((v & 1) === 0) {
    const s = dTable[v / 2];
    if (s === undefined) throw new FrameDecodeError("string reference out of range");
    return s;
  }
  const len = (v - 1) / 2;
  const at = dAt;
  if (at + len > dEnd) throw new FrameDecodeError("string past end of frame");
  dAt += len;
  let s: string | undefined;
  if (len <= 48) {
    // FNV-1a over the bytes, with the length mixed in; verified below, so a collision only costs a decode.
    let h = 0x811c9dc5 ^ len;
    let ascii = true;
    for (let i = at; i < at + len; i++) {
      const c = dBuf[i]!;
      if (c > 0x7f) ascii = false;
      h = Math.imul(h ^ c, 0x01000193);
    }
    if (ascii) {
      s = intern.get(h);
      if (s !== undefined && s.length === len) {
        for (let i = 0; i < len; i++) {
          if (s.charCodeAt(i) !== dBuf[at + i]) {
            s = undefined;
            break;
          }
        }
      } else s = undefined;
      if (s === undefined) {
        const fresh = dBuf.toString("latin1", at, at + len);
        if (intern.size >= INTERN_MAX) intern.clear();
        intern.set(h, fresh);
        s = fresh;
      }
    }
  }
  if (s === undefined) s = dBuf.toString("utf8", at, at + len);
  dTable.push(s);
  return s;
}

/**
 * Decodes the samples of the (already CRC-checked) frame at `off`, appending those with
 * position ≥ `minPos` to `out`, up to `limit` entries in `out`.
 */
export function decodeFrame(buf: Buffer, off: number, minPos: number, out: JournaledSample[], limit: number): void {
  const size = FRAME_PREFIX + buf.readUInt32LE(off);
  const firstPos = buf.readUInt32LE(off + 8) + buf.readUInt32LE(off + 12) * TWO32;
  const count = buf.readUInt32LE(off + 16);
  dBuf = buf;
  dEnd = off + size;
  dAt = off + FRAME_HEADER;
  dTable = [];
  try {
    for (let i = 0; i < count; i++) {
      if (dAt + 9 > dEnd) throw new FrameDecodeError("sample past end of frame");
      const flags = buf[dAt]!;
      const ts = getDouble(buf, dAt + 1);
      dAt += 9;
      const device = readStr();
      const tag = readStr();
      const kind = (flags >> 2) & 7;
      let value: SampleValue;
      if (kind === V_NUM) {
        if (dAt + 8 > dEnd) throw new FrameDecodeError("number past end of frame");
        value = getDouble(buf, dAt);
        dAt += 8;
      } else if (kind === V_NULL) value = null;
      else if (kind === V_FALSE) value = false;
      else if (kind === V_TRUE) value = true;
      else if (kind === V_STR) value = readStr();
      else throw new FrameDecodeError(`unknown value kind ${kind}`);
      const q = flags & 3;
      if (q === 3) throw new FrameDecodeError("unknown quality");
      const quality: Quality = q === 0 ? "good" : q === 1 ? "uncertain" : "bad";
      // Strings are read even for skipped samples: later samples may reference them.
      const unit = flags & F_UNIT ? readStr() : undefined;
      const reason = flags & F_REASON ? readStr() : undefined;
      const pos = firstPos + i;
      if (pos < minPos) continue;
      const s: JournaledSample = { device, tag, value, quality, ts, pos };
      if (unit !== undefined) s.unit = unit;
      if (reason !== undefined) s.reason = reason;
      out.push(s);
      if (out.length >= limit) return;
    }
  } finally {
    dBuf = EMPTY;
    dTable = [];
  }
}

const EMPTY = Buffer.alloc(0);

/** First sample's ts of a valid frame without decoding the rest (0 samples → null). */
export function frameFirstTs(buf: Buffer, off: number): number | null {
  if (buf.readUInt32LE(off + 16) === 0) return null;
  return buf.readDoubleLE(off + FRAME_HEADER + 1);
}
