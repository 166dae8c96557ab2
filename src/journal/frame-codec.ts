import { crc32 } from "node:zlib";
import type { JournaledSample, Quality, Sample, SampleValue } from "../core/sample.js";
import { ColumnsBuilder, SampleColumns, type SampleRun } from "../core/sample-columns.js";

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
/**
 * Set in the count field when the frame ends with a trailer of idempotency keys (see
 * frame-keys.ts); the sample count is the other 31 bits. Frames written before keys existed
 * never have it set, so old journals read unchanged.
 */
export const KEYS_FLAG = 0x8000_0000;
export const COUNT_MASK = 0x7fff_ffff;


const V_NULL = 0;
const V_FALSE = 1;
const V_TRUE = 2;
const V_NUM = 3;
const V_STR = 4;
const F_UNIT = 0x20;
const F_REASON = 0x40;

const TWO32 = 0x1_0000_0000;

/**
 * Frames are encoded in place into a chunk and handed out as views of it: a frame costs neither
 * an allocation nor a copy of its own (Buffer.allocUnsafe makes a fresh 8 KiB pool every three
 * polls, which cost more than the encoding of them). `base` is where the frame being encoded starts;
 * everything before it belongs to frames already returned and is never written again. A chunk is
 * kept alive by any frame still held from it, which the journal drops once the frame is on disk.
 */
const CHUNK = 64 * 1024;
// The encoder's mutable state is `var`, not `let`, on purpose: V8 checks a module-level `let` for
// its temporal dead zone on every read from a function, and these are read several times per
// sample (measured: 8-10 % of the encode time).
var scratch = Buffer.allocUnsafeSlow(CHUNK);
/** Little-endian stores into `scratch`: one inlined store per double, where byte copies were eight. */
var view = new DataView(scratch.buffer, scratch.byteOffset, scratch.byteLength);
var base = 0;

/** 8-byte window for reading doubles without Buffer's per-call checks (little-endian hosts). */
const f64 = new Float64Array(1);
const f64b = new Uint8Array(f64.buffer);
const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function newChunk(size: number): void {
  scratch = Buffer.allocUnsafeSlow(size);
  view = new DataView(scratch.buffer, scratch.byteOffset, scratch.byteLength);
  base = 0;
}

/**
 * Makes room for `more` bytes at `at` (callers test `at + more > scratch.length` inline first) by
 * moving the frame so far to the start of a new chunk; returns where `at` is now.
 */
function grow(at: number, more: number): number {
  const used = at - base;
  let size = CHUNK;
  while (size < used + more) size *= 2;
  const prev = scratch;
  const from = base;
  newChunk(size);
  prev.copy(scratch, 0, from, at);
  return used;
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
 * One known string: where it sits in the current frame's table, and its bytes for when it is new in
 * a frame. Slots are kept across frames so that encoding builds no table per frame; a slot whose
 * `frame` is not the current one is just stale.
 */
interface StrSlot {
  /** frame the string was last written in, and its table index there */
  frame: number;
  idx: number;
  /**
   * Bytes of its new-string form (varint prefix + UTF-8) when cached: up to 8 in `w0`/`w1`, more
   * in `words`. NOT_CACHED, then SEEN_ONCE, until the string is written new a second time (a
   * free-text value seen once is not worth encoding twice); TOO_BIG over the size or memory cap.
   */
  len: number;
  /** the new form's bytes 0-3 and 4-7 as little-endian words, written with two stores */
  w0: number;
  w1: number;
  /** the new form as little-endian words (zero-padded), when longer than 8 bytes */
  words: Int32Array | null;
  /** the per-device tag order, for a string used as a device id */
  seq: DeviceSeq | null;
}
const NOT_CACHED = -1;
const SEEN_ONCE = -2;
const TOO_BIG = -3;

/**
 * A device's strings by their place among its samples in a frame: a poll lists the same tags (and
 * units, and often the same state strings) in the same order every time, so the n-th sample of a
 * device usually carries the string the n-th one did last frame, and an identity compare finds its
 * slot without hashing it. Valid only for the table generation `gen` it was built in.
 */
interface DeviceSeq {
  gen: number;
  frame: number;
  next: number;
  tags: (string | undefined)[];
  tagSlots: (StrSlot | undefined)[];
  units: (string | undefined)[];
  unitSlots: (StrSlot | undefined)[];
  values: (string | undefined)[];
  valueSlots: (StrSlot | undefined)[];
}

/**
 * Every known string's slot. Bounded: cleared when it reaches STR_SLOTS_MAX (free-text values could
 * otherwise grow it without end), exactly where the encoder before the fast paths cleared it, since
 * a clear inside a frame makes a string already in that frame's table be written anew: the bytes of
 * such a frame depend on it.
 */
const strSlots = new Map<string, StrSlot>();
const STR_SLOTS_MAX = 100_000;
/** bumped by every clear: slots and sequences of an older generation must not be used */
var gen = 0;
var frameNo = 0;
var tableSize = 0;
/** the previous sample's device and its slot: polls put one device in a run of samples */
var prevDev: string | undefined;
var prevDevSlot: StrSlot | undefined;

/** Cached encoded bytes are capped in total and per string; beyond that strings are encoded per write. */
const ENC_STR_MAX = 256;
const ENC_BUDGET = 4 * 1024 * 1024;
var encBytes = 0;
/** Per device, at most this many samples per frame keep their place in `DeviceSeq`. */
const SEQ_MAX = 4096;
/**
 * Entries over all `DeviceSeq`s (2,000 devices of 100 tags with units take 400,000); past this, all
 * are dropped at the next frame and rebuilt by the polls that come back. Device ids seen once
 * would otherwise keep theirs until the string table is cleared.
 */
const SEQ_BUDGET = 1_000_000;
var seqEntries = 0;
/** the device slots that carry a `DeviceSeq` */
var seqOwners: StrSlot[] = [];

/** Strings the encoder's table knows (bounded by its clearing); for tests and diagnostics. */
export function encoderStringCount(): number {
  return strSlots.size;
}

function clearSlots(): void {
  strSlots.clear();
  gen++;
  encBytes = 0;
  seqOwners = [];
  seqEntries = 0;
  prevDev = undefined;
  prevDevSlot = undefined;
}

function slotOf(s: string): StrSlot {
  const known = strSlots.get(s);
  if (known !== undefined) return known;
  if (strSlots.size >= STR_SLOTS_MAX) clearSlots();
  const slot: StrSlot = { frame: 0, idx: 0, len: NOT_CACHED, w0: 0, w1: 0, words: null, seq: null };
  strSlots.set(s, slot);
  // After the insert, as the old encoder failed on a non-string only once it was in the table: the
  // table's size, and so where it is cleared, stays the same. Its slot fails again in putLong.
  if (typeof s !== "string") throw new TypeError(`expected a string, got ${typeof s}`);
  return slot;
}

const wordBuf = new Int32Array(ENC_STR_MAX / 4 + 2);
const wordBytes = Buffer.from(wordBuf.buffer);

/** Fills in the cached new-string form of `slot`, or marks it TOO_BIG. */
function cacheBytes(slot: StrSlot, s: string): void {
  const bytes = Buffer.byteLength(s, "utf8");
  const v = bytes * 2 + 1;
  const head = v < 0x80 ? 1 : v < 0x4000 ? 2 : 3;
  const len = head + bytes;
  if (len > ENC_STR_MAX || encBytes + len > ENC_BUDGET) {
    slot.len = TOO_BIG;
    return;
  }
  wordBuf.fill(0);
  let at = 0;
  for (let x = v; ; x = Math.floor(x / 128)) {
    if (x < 0x80) {
      wordBytes[at++] = x;
      break;
    }
    wordBytes[at++] = (x & 0x7f) | 0x80;
  }
  wordBytes.write(s, head, bytes, "utf8");
  // Word i holds bytes 4i..4i+3 in host order; the writers store words little-endian, so on a
  // big-endian host fix them up here.
  const nWords = (len + 3) >> 2;
  const dv = new DataView(wordBuf.buffer);
  for (let i = 0; i < nWords; i++) wordBuf[i] = dv.getInt32(i * 4, true);
  if (len <= 8) {
    slot.w0 = wordBuf[0]!;
    slot.w1 = wordBuf[1]!;
  } else {
    slot.words = wordBuf.slice(0, nWords);
    encBytes += nWords * 4 + 64; // the 64: a typed array's own overhead, roughly
  }
  slot.len = len;
}

/** Writes the string of `slot` (which is `s`'s): a table reference, or the string itself when new in this frame. */
function putStr(at: number, slot: StrSlot, s: string): number {
  if (at + 72 > scratch.length) at = grow(at, 72);
  if (slot.frame === frameNo) {
    const ref = slot.idx * 2;
    if (ref < 0x80) {
      scratch[at] = ref;
      return at + 1;
    }
    return writeVarint(at, ref);
  }
  slot.frame = frameNo;
  slot.idx = tableSize++;
  const len = slot.len;
  // Two word stores, and garbage past the string's end that the next write overwrites (the room
  // check above covers it): device ids, short tag names and units mostly fit in 8 bytes.
  if (len > 0 && len <= 8) {
    view.setInt32(at, slot.w0, true);
    view.setInt32(at + 4, slot.w1, true);
    return at + len;
  }
  return putLong(at, slot, s);
}

/** The rest of `putStr`, kept apart so the common paths above stay small enough to inline. */
function putLong(at: number, slot: StrSlot, s: string): number {
  if (slot.len === SEEN_ONCE) {
    cacheBytes(slot, s);
    const len = slot.len;
    if (len > 0 && len <= 8) {
      view.setInt32(at, slot.w0, true);
      view.setInt32(at + 4, slot.w1, true);
      return at + len;
    }
  } else if (slot.len === NOT_CACHED) slot.len = SEEN_ONCE;
  const words = slot.words;
  if (words !== null) {
    const n = words.length;
    if (at + n * 4 > scratch.length) at = grow(at, n * 4);
    const dv = view;
    for (let i = 0; i < n; i++) dv.setInt32(at + i * 4, words[i]!, true);
    return at + slot.len;
  }
  const n = s.length;
  if (at + n * 3 + 5 > scratch.length) at = grow(at, n * 3 + 5);
  if (n < 64) {
    const b = scratch;
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
  at = writeVarint(at, bytes * 2 + 1);
  scratch.write(s, at, bytes, "utf8");
  return at + bytes;
}

function seqOf(devSlot: StrSlot): DeviceSeq {
  let seq = devSlot.seq;
  if (seq === null || seq.gen !== gen) {
    seq = { gen, frame: 0, next: 0, tags: [], tagSlots: [], units: [], unitSlots: [], values: [], valueSlots: [] };
    devSlot.seq = seq;
    seqOwners.push(devSlot);
  }
  if (seq.frame !== frameNo) {
    seq.frame = frameNo;
    seq.next = 0;
  }
  return seq;
}

/**
 * Encodes samples as one complete frame (header, CRC and payload) starting at `firstPos`. Reads
 * columns; an array of samples (tools, tests) is turned into columns first. Returns a view into
 * the encoder's chunk that the caller owns.
 */
export function encodeFrame(input: SampleColumns | readonly Sample[], firstPos: number): Buffer {
  const cols = input instanceof SampleColumns ? input : SampleColumns.fromSamples(input);
  const n = cols.length;
  const tags = cols.tags;
  const nums = cols.nums;
  const other = cols.other;
  const qualities = cols.qualities;
  const tsCol = cols.ts;
  const units = cols.units;
  const reasons = cols.reasons;
  const oneDev = typeof cols.device === "string" ? cols.device : undefined;
  const devs = typeof cols.device === "string" ? undefined : cols.device;
  if (frameNo >= 0x3fffffff) { clearSlots(); frameNo = 0; }
  frameNo++;
  tableSize = 0;
  if (seqEntries > SEQ_BUDGET) dropSeqs();
  // A fresh chunk when this frame would likely not fit in the rest of the current one (most
  // samples take 12 to 30 bytes), or when the current one was grown for a large frame.
  const estimate = FRAME_HEADER + n * 32;
  if (scratch.length - base < estimate || scratch.length > CHUNK) {
    let size = CHUNK;
    while (size < estimate) size *= 2;
    newChunk(size);
  }
  let at = base + FRAME_HEADER;
  for (let k = 0; k < n; k++) {
    if (at + 32 > scratch.length) at = grow(at, 32);
    const v: SampleValue = other !== undefined && other.has(k) ? other.get(k)! : nums[k]!;
    let kind: number;
    if (typeof v === "number") kind = V_NUM;
    else if (v === null || v === undefined) kind = V_NULL;
    else if (v === true) kind = V_TRUE;
    else if (v === false) kind = V_FALSE;
    else kind = V_STR;
    const q = qualities[k]!;
    const unit = units === undefined ? undefined : units[k];
    const reason = reasons === undefined ? undefined : reasons[k];
    let flags = q | (kind << 2);
    if (unit !== undefined) flags |= F_UNIT;
    if (reason !== undefined) flags |= F_REASON;
    scratch[at] = flags;
    view.setFloat64(at + 1, tsCol[k]!, true);
    at += 9;

    const dev = oneDev ?? devs![k]!;
    let devSlot: StrSlot;
    if (dev === prevDev) devSlot = prevDevSlot!;
    else {
      devSlot = slotOf(dev);
      prevDev = dev;
      prevDevSlot = devSlot;
    }
    at = putStr(at, devSlot, dev);

    // Each lookup below may clear the table (generation change): `seq` is re-checked after one.
    let seq = seqOf(devSlot);
    const j = seq.next++;
    const tag = tags[k]!;
    let slot: StrSlot;
    if (seq.tags[j] === tag) slot = seq.tagSlots[j]!;
    else {
      slot = slotOf(tag);
      if (seq.gen === gen) remember(seq.tags, seq.tagSlots, j, tag, slot);
    }
    at = putStr(at, slot, tag);

    if (kind === V_NUM) {
      if (at + 8 > scratch.length) at = grow(at, 8);
      view.setFloat64(at, v as number, true);
      at += 8;
    } else if (kind === V_STR) {
      const str = typeof v === "string" ? v : String(v);
      if (seq.gen === gen && seq.values[j] === str) slot = seq.valueSlots[j]!;
      else {
        slot = slotOf(str);
        if (seq.gen === gen) remember(seq.values, seq.valueSlots, j, str, slot);
      }
      at = putStr(at, slot, str);
    }
    if (unit !== undefined) {
      if (seq.gen === gen && seq.units[j] === unit) slot = seq.unitSlots[j]!;
      else {
        slot = slotOf(unit);
        if (seq.gen === gen) remember(seq.units, seq.unitSlots, j, unit, slot);
      }
      at = putStr(at, slot, unit);
    }
    if (reason !== undefined) at = putStr(at, slotOf(reason), reason);
  }
  // DataView stores wrap where Buffer's writeUInt32LE refused: keep refusing, after the samples as before.
  if (firstPos < 0 || firstPos >= TWO32 * TWO32) throw new RangeError(`firstPos out of range: ${firstPos}`);
  const start = base;
  view.setUint32(start, at - start - FRAME_PREFIX, true);
  view.setUint32(start + 8, firstPos % TWO32, true);
  view.setUint32(start + 12, Math.floor(firstPos / TWO32), true);
  view.setUint32(start + 16, n, true);
  view.setUint32(start + 4, crc32(scratch.subarray(start + FRAME_PREFIX, at)), true);
  base = at;
  return scratch.subarray(start, at);
}

/** Records `s` and its slot at place `j`, padding so the arrays stay packed when samples lack the field. */
function remember(strs: (string | undefined)[], slots: (StrSlot | undefined)[], j: number, s: string, slot: StrSlot): void {
  if (j >= SEQ_MAX) return;
  while (strs.length < j) {
    strs.push(undefined);
    slots.push(undefined);
    seqEntries++;
  }
  if (j === strs.length) seqEntries++;
  strs[j] = s;
  slots[j] = slot;
}

function dropSeqs(): void {
  for (const owner of seqOwners) owner.seq = null;
  seqOwners = [];
  seqEntries = 0;
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
    count: buf.readUInt32LE(off + 16) & COUNT_MASK,
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

/** The sample `readSample` decoded last (module `var`s, like the encoder's state: no object per sample). */
var sTs = 0;
var sDevice = "";
var sTag = "";
var sValue: SampleValue = null;
var sQ = 0;
var sUnit: string | undefined;
var sReason: string | undefined;

/**
 * Decodes the sample at `dAt` into the `s…` vars. Its strings are read even when the caller skips
 * the sample: later samples of the frame may reference them.
 */
function readSample(): void {
  const buf = dBuf;
  if (dAt + 9 > dEnd) throw new FrameDecodeError("sample past end of frame");
  const flags = buf[dAt]!;
  sTs = getDouble(buf, dAt + 1);
  dAt += 9;
  sDevice = readStr();
  sTag = readStr();
  const kind = (flags >> 2) & 7;
  if (kind === V_NUM) {
    if (dAt + 8 > dEnd) throw new FrameDecodeError("number past end of frame");
    sValue = getDouble(buf, dAt);
    dAt += 8;
  } else if (kind === V_NULL) sValue = null;
  else if (kind === V_FALSE) sValue = false;
  else if (kind === V_TRUE) sValue = true;
  else if (kind === V_STR) sValue = readStr();
  else throw new FrameDecodeError(`unknown value kind ${kind}`);
  sQ = flags & 3;
  if (sQ === 3) throw new FrameDecodeError("unknown quality");
  sUnit = flags & F_UNIT ? readStr() : undefined;
  sReason = flags & F_REASON ? readStr() : undefined;
}

/**
 * Decodes the samples of the (already CRC-checked) frame at `off`, appending those with
 * position ≥ `minPos` to `out`, up to `limit` entries in `out`.
 */
export function decodeFrame(buf: Buffer, off: number, minPos: number, out: JournaledSample[], limit: number): void {
  const size = FRAME_PREFIX + buf.readUInt32LE(off);
  const firstPos = buf.readUInt32LE(off + 8) + buf.readUInt32LE(off + 12) * TWO32;
  const count = buf.readUInt32LE(off + 16) & COUNT_MASK;
  dBuf = buf;
  dEnd = off + size;
  dAt = off + FRAME_HEADER;
  dTable = [];
  try {
    for (let i = 0; i < count; i++) {
      readSample();
      const q = sQ;
      const quality: Quality = q === 0 ? "good" : q === 1 ? "uncertain" : "bad";
      const unit = sUnit;
      const reason = sReason;
      const pos = firstPos + i;
      if (pos < minPos) continue;
      const s: JournaledSample = { device: sDevice, tag: sTag, value: sValue, quality, ts: sTs, pos };
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

/**
 * `decodeFrame` into columns: the frame at `off`, from the first sample with position ≥ `minPos`,
 * at most `limit` samples, as one run over fresh columns. Returns null for a frame whose kept
 * samples name more than one device (the caller decodes that one as objects); a run of count 0
 * when nothing is kept.
 */
export function decodeFrameRun(buf: Buffer, off: number, minPos: number, limit: number): SampleRun | null {
  const size = FRAME_PREFIX + buf.readUInt32LE(off);
  const firstPos = buf.readUInt32LE(off + 8) + buf.readUInt32LE(off + 12) * TWO32;
  const count = buf.readUInt32LE(off + 16) & COUNT_MASK;
  const skip = Math.min(count, Math.max(0, minPos - firstPos));
  const n = Math.max(0, Math.min(count - skip, limit));
  dBuf = buf;
  dEnd = off + size;
  dAt = off + FRAME_HEADER;
  dTable = [];
  let b: ColumnsBuilder | undefined;
  const tags = new Array<string>(n);
  let units: (string | undefined)[] | undefined;
  try {
    for (let i = 0; i < skip + n; i++) {
      readSample();
      const q = sQ;
      const unit = sUnit;
      const reason = sReason;
      if (i < skip) continue;
      const k = i - skip;
      if (b === undefined) b = new ColumnsBuilder(sDevice, n);
      else if (sDevice !== b.device) return null;
      tags[k] = sTag;
      b.set(k, sValue, q, sTs);
      if (unit !== undefined) (units ??= new Array<string | undefined>(n))[k] = unit;
      if (reason !== undefined) b.setReason(k, reason);
    }
  } finally {
    dBuf = EMPTY;
    dTable = [];
  }
  if (b === undefined) return { cols: SampleColumns.fromSamples([]), from: 0, count: 0, firstPos: firstPos + skip };
  return { cols: b.done(tags, units), from: 0, count: n, firstPos: firstPos + skip };
}

const EMPTY = Buffer.alloc(0);

/** First sample's ts of a valid frame without decoding the rest (0 samples → null). */
export function frameFirstTs(buf: Buffer, off: number): number | null {
  if ((buf.readUInt32LE(off + 16) & COUNT_MASK) === 0) return null;
  return buf.readDoubleLE(off + FRAME_HEADER + 1);
}
