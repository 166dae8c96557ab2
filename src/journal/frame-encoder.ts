import { crc32 } from "node:zlib";
import type { Sample, SampleValue } from "../core/sample.js";
import { SampleColumns } from "../core/sample-columns.js";
import { F_REASON, F_UNIT, FRAME_HEADER, FRAME_PREFIX, KEYS_FLAG, TWO32, V_FALSE, V_NULL, V_NUM, V_STR, V_TRUE } from "./frame-format.js";
import { EncoderStrings, NOT_CACHED, SEEN_ONCE, type StrSlot } from "./frame-strings.js";

/** Marks "no entry in `other`" (undefined can be an entry's value). */
const NONE = Symbol("none") as unknown as SampleValue;

/** Bytes per chunk that frames are encoded into (a larger frame gets a larger chunk of its own). */
const CHUNK = 64 * 1024;

/**
 * Writes frames (format: frame-format.ts). One per journal: it keeps a string table across frames
 * (see `EncoderStrings`) and a chunk that frames are encoded into. A frame's bytes depend only on
 * its samples and position, and on where the string table was cleared (every STR_SLOTS_MAX
 * distinct strings), as they did for the encoder before the fast paths.
 *
 * `encode` returns a view of the chunk that the caller owns: later frames are written after it,
 * never over it.
 */
export class FrameEncoder {
  /**
   * Frames are encoded in place into a chunk and handed out as views of it: a frame costs neither
   * an allocation nor a copy of its own (Buffer.allocUnsafe makes a fresh 8 KiB pool every three
   * polls, which cost more than the encoding of them). `base` is where the frame being encoded
   * starts; everything before it belongs to frames already returned and is never written again. A
   * chunk is kept alive by any frame still held from it, which the journal drops once the frame is
   * on disk.
   */
  private scratch: Buffer = Buffer.allocUnsafeSlow(CHUNK);
  /** Little-endian stores into `scratch`: one inlined store per double, where byte copies were eight. */
  private view = new DataView(this.scratch.buffer, this.scratch.byteOffset, this.scratch.byteLength);
  private base = 0;
  private frameNo = 0;
  /** strings written so far in the current frame's table */
  private tableSize = 0;
  private readonly strings = new EncoderStrings();

  /** Strings the encoder's table knows (bounded by its clearing); for tests and diagnostics. */
  get stringCount(): number {
    return this.strings.size;
  }

  /**
   * Encodes samples as one complete frame (header, CRC and payload) starting at `firstPos`. Reads
   * columns; an array of samples (tools, tests) is turned into columns first. With `keys` (and
   * `keysAt`, the append's wall-clock ms) the frame carries them as its trailer, byte for byte as
   * `withKeys` (frame-keys.ts) would add it, but in the same buffer and under one CRC: a pushed
   * frame is neither copied nor checksummed twice.
   */
  encode(input: SampleColumns | readonly Sample[], firstPos: number, keys?: readonly string[], keysAt = 0, keyPrefix = ""): Buffer {
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
    const t = this.strings;
    if (this.frameNo >= 0x3fffffff) { t.clear(); this.frameNo = 0; }
    const frameNo = ++this.frameNo;
    this.tableSize = 0;
    t.trimSeqs();
    // A fresh chunk when this frame would likely not fit in the rest of the current one (most
    // samples take 12 to 30 bytes), or when the current one was grown for a large frame.
    const estimate = FRAME_HEADER + n * 32;
    if (this.scratch.length - this.base < estimate || this.scratch.length > CHUNK) {
      let size = CHUNK;
      while (size < estimate) size *= 2;
      this.newChunk(size);
    }
    let at = this.base + FRAME_HEADER;
    const plain = oneDev !== undefined && other === undefined && units === undefined && reasons === undefined;
    if (plain) at = this.encodePlain(oneDev, tags, nums, qualities, tsCol, n, frameNo, at);
    for (let k = plain ? n : 0; k < n; k++) {
      if (at + 32 > this.scratch.length) at = this.grow(at, 32);
      // A number is read from `nums` where it is written, never held in a variable that may also
      // hold a string or boolean: such a variable boxes every double (a heap object per value
      // whenever the column set has any non-numeric value).
      const o: SampleValue | undefined = other !== undefined && other.has(k) ? other.get(k) : NONE;
      const v: SampleValue = o === NONE ? 0 : o!;
      let kind: number;
      if (o === NONE || typeof v === "number") kind = V_NUM;
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
      this.scratch[at] = flags;
      this.view.setFloat64(at + 1, tsCol[k]!, true);
      at += 9;

      const dev = oneDev ?? devs![k]!;
      const devSlot = t.deviceSlot(dev);
      at = this.putStr(at, devSlot, dev);

      // Each lookup below may clear the table (generation change): `seq` is re-checked after one.
      const seq = t.seqOf(devSlot, frameNo);
      const j = seq.next++;
      const tag = tags[k]!;
      at = this.putStr(at, t.slotAt(seq, seq.tags, seq.tagSlots, j, tag), tag);

      if (kind === V_NUM) {
        if (at + 8 > this.scratch.length) at = this.grow(at, 8);
        // two stores, not one of a merged value: the merge would box the double
        if (o === NONE) this.view.setFloat64(at, nums[k]!, true);
        else this.view.setFloat64(at, v as number, true);
        at += 8;
      } else if (kind === V_STR) {
        const str = typeof v === "string" ? v : String(v);
        at = this.putStr(at, t.slotAt(seq, seq.values, seq.valueSlots, j, str), str);
      }
      if (unit !== undefined) at = this.putStr(at, t.slotAt(seq, seq.units, seq.unitSlots, j, unit), unit);
      if (reason !== undefined) at = this.putStr(at, t.slotOf(reason), reason);
    }
    // DataView stores wrap where Buffer's writeUInt32LE refused: keep refusing, after the samples as before.
    if (firstPos < 0 || firstPos >= TWO32 * TWO32) throw new RangeError(`firstPos out of range: ${firstPos}`);
    const keyed = keys !== undefined && keys.length > 0;
    if (keyed) at = this.putKeys(at, keys, keysAt, keyPrefix);
    const start = this.base;
    const view = this.view;
    view.setUint32(start, at - start - FRAME_PREFIX, true);
    view.setUint32(start + 8, firstPos % TWO32, true);
    view.setUint32(start + 12, Math.floor(firstPos / TWO32), true);
    view.setUint32(start + 16, keyed ? (n | KEYS_FLAG) >>> 0 : n, true);
    view.setUint32(start + 4, crc32(this.scratch.subarray(start + FRAME_PREFIX, at)), true);
    this.base = at;
    return this.scratch.subarray(start, at);
  }

  /**
   * The samples of `encode` for the common column set (one device, numbers only, no unit or
   * reason: a poll, a push) from `at`; returns their end. The same bytes as the general loop,
   * with the chunk, its view and its end in locals and a string already in this frame's table
   * written as its one-byte reference inline: the general loop re-read them from the encoder
   * around every call, several times per sample.
   */
  private encodePlain(dev: string, tags: readonly string[], nums: Float64Array, qualities: Uint8Array, tsCol: Float64Array, n: number, frameNo: number, at: number): number {
    const t = this.strings;
    const numFlags = V_NUM << 2;
    let b = this.scratch;
    let view = this.view;
    let lim = b.length;
    for (let k = 0; k < n; k++) {
      // 32 bytes cover a sample whose strings are references; putStr makes its own room otherwise
      if (at + 32 > lim) {
        at = this.grow(at, 32);
        b = this.scratch;
        view = this.view;
        lim = b.length;
      }
      b[at] = qualities[k]! | numFlags;
      view.setFloat64(at + 1, tsCol[k]!, true);
      at += 9;
      const devSlot = t.deviceSlot(dev);
      if (devSlot.frame === frameNo && devSlot.idx < 64) b[at++] = devSlot.idx * 2;
      else {
        at = this.putStr(at, devSlot, dev);
        b = this.scratch;
        view = this.view;
        lim = b.length;
      }
      // Each lookup below may clear the table (generation change): `seq` is re-checked after one.
      const seq = t.seqOf(devSlot, frameNo);
      const j = seq.next++;
      const tag = tags[k]!;
      const slot = t.slotAt(seq, seq.tags, seq.tagSlots, j, tag);
      if (slot.frame === frameNo && slot.idx < 64) b[at++] = slot.idx * 2;
      else {
        at = this.putStr(at, slot, tag);
        b = this.scratch;
        view = this.view;
        lim = b.length;
      }
      if (at + 8 > lim) {
        at = this.grow(at, 8);
        b = this.scratch;
        view = this.view;
        lim = b.length;
      }
      view.setFloat64(at, nums[k]!, true);
      at += 8;
    }
    return at;
  }

  /**
   * The idempotency-key trailer (format: frame-keys.ts) at `at`; returns its end. A key over
   * 65,535 bytes throws RangeError before anything is written, as `withKeys` does.
   */
  private putKeys(at: number, keys: readonly string[], keysAt: number, prefix: string): number {
    // Room for the most the keys can take (3 bytes per UTF-16 unit), then one pass that writes
    // each key and learns its length: no Buffer.byteLength call per key. A key found too long
    // throws with nothing handed out: `base` has not moved, the next frame overwrites.
    let most = 8 + 4 + 4;
    for (let i = 0; i < keys.length; i++) most += 2 + 3 * (prefix.length + keys[i]!.length);
    if (at + most > this.scratch.length) at = this.grow(at, most);
    const view = this.view;
    view.setFloat64(at, keysAt, true);
    view.setUint32(at + 8, keys.length, true);
    let p = at + 12;
    for (let i = 0; i < keys.length; i++) {
      let q = p + 2;
      if (prefix.length > 0) q += this.putUtf8(q, prefix);
      q += this.putUtf8(q, keys[i]!);
      const len = q - p - 2;
      if (len > 0xffff) throw new RangeError(`idempotency key over 65,535 bytes`);
      view.setUint16(p, len, true);
      p = q;
    }
    view.setUint32(p, p + 4 - at, true);
    return p + 4;
  }

  /** Writes `s` as UTF-8 at `at` (room already made); returns its byte length. */
  private putUtf8(at: number, s: string): number {
    const b = this.scratch;
    const n = s.length;
    // ASCII (device ids and most msgIds) byte by byte; anything else through Buffer.write
    let j = 0;
    for (; j < n; j++) {
      const c = s.charCodeAt(j);
      if (c > 0x7f) break;
      b[at + j] = c;
    }
    return j === n ? n : b.write(s, at, "utf8");
  }

  private newChunk(size: number): void {
    this.scratch = Buffer.allocUnsafeSlow(size);
    this.view = new DataView(this.scratch.buffer, this.scratch.byteOffset, this.scratch.byteLength);
    this.base = 0;
  }

  /**
   * Makes room for `more` bytes at `at` (callers test `at + more > scratch.length` inline first) by
   * moving the frame so far to the start of a new chunk; returns where `at` is now.
   */
  private grow(at: number, more: number): number {
    const used = at - this.base;
    let size = CHUNK;
    while (size < used + more) size *= 2;
    const prev = this.scratch;
    const from = this.base;
    this.newChunk(size);
    prev.copy(this.scratch, 0, from, at);
    return used;
  }

  private writeVarint(at: number, v: number): number {
    const b = this.scratch;
    while (v >= 0x80) {
      b[at++] = (v & 0x7f) | 0x80;
      v = Math.floor(v / 128);
    }
    b[at++] = v;
    return at;
  }

  /** Writes the string of `slot` (which is `s`'s): a table reference, or the string itself when new in this frame. */
  private putStr(at: number, slot: StrSlot, s: string): number {
    if (at + 72 > this.scratch.length) at = this.grow(at, 72);
    if (slot.frame === this.frameNo) {
      const ref = slot.idx * 2;
      if (ref < 0x80) {
        this.scratch[at] = ref;
        return at + 1;
      }
      return this.writeVarint(at, ref);
    }
    slot.frame = this.frameNo;
    slot.idx = this.tableSize++;
    const len = slot.len;
    // Two word stores, and garbage past the string's end that the next write overwrites (the room
    // check above covers it): device ids, short tag names and units mostly fit in 8 bytes.
    if (len > 0 && len <= 8) {
      const view = this.view;
      view.setInt32(at, slot.w0, true);
      view.setInt32(at + 4, slot.w1, true);
      return at + len;
    }
    return this.putLong(at, slot, s);
  }

  /** The rest of `putStr`, kept apart so the common paths above stay small enough to inline. */
  private putLong(at: number, slot: StrSlot, s: string): number {
    if (slot.len === SEEN_ONCE) {
      this.strings.cacheBytes(slot, s);
      const len = slot.len;
      if (len > 0 && len <= 8) {
        this.view.setInt32(at, slot.w0, true);
        this.view.setInt32(at + 4, slot.w1, true);
        return at + len;
      }
    } else if (slot.len === NOT_CACHED) slot.len = SEEN_ONCE;
    const words = slot.words;
    if (words !== null) {
      const n = words.length;
      if (at + n * 4 > this.scratch.length) at = this.grow(at, n * 4);
      const dv = this.view;
      for (let i = 0; i < n; i++) dv.setInt32(at + i * 4, words[i]!, true);
      return at + slot.len;
    }
    const n = s.length;
    if (at + n * 3 + 5 > this.scratch.length) at = this.grow(at, n * 3 + 5);
    if (n < 64) {
      const b = this.scratch;
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
    at = this.writeVarint(at, bytes * 2 + 1);
    this.scratch.write(s, at, bytes, "utf8");
    return at + bytes;
  }
}
