import type { JournaledSample, Quality, SampleValue } from "../core/sample.js";
import { ColumnsBuilder, SampleColumns, type SampleRun } from "../core/sample-columns.js";
import { COUNT_MASK, F_REASON, F_UNIT, FRAME_HEADER, FRAME_PREFIX, TWO32, V_FALSE, V_NULL, V_NUM, V_STR, V_TRUE } from "./frame-format.js";
import { DecoderStrings } from "./frame-strings.js";

/** Thrown by a decode when a frame that passed its CRC still does not parse (a bug, or a foreign file). */
export class FrameDecodeError extends Error {}

const EMPTY = Buffer.alloc(0);
const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Reads the samples of CRC-checked frames (format: frame-format.ts), as objects or as columns.
 * One per journal reader: it keeps short names it decoded (`DecoderStrings`) so a backlog read
 * shares one string per name. Not reentrant (a decode is synchronous, so this only rules out a
 * decode from inside another one).
 */
export class FrameDecoder {
  private readonly strings = new DecoderStrings();
  /** 8-byte window for reading doubles without Buffer's per-call checks (little-endian hosts). */
  private readonly f64 = new Float64Array(1);
  private readonly f64b = new Uint8Array(this.f64.buffer);

  // The frame being decoded, and the sample `readSample` decoded last: fields, not closures or
  // an object per sample, so decoding a frame allocates only what it returns.
  private buf: Buffer = EMPTY;
  private at = 0;
  private end = 0;
  /**
   * The frame's string table: entries `0 … tableLen - 1`. One array for every frame (a fresh one
   * per frame grew by copies as each frame's names were added); entries past `tableLen` are stale.
   */
  private table: string[] = [];
  private tableLen = 0;
  /**
   * The tags of the last run decoded, shared with the next run while it repeats them sample by
   * sample (a device's frames list the same tags in the same order): no tag array per frame.
   * Column sets are never written into, so sharing the list is safe.
   */
  private prevTags: readonly string[] = [];
  private sTs = 0;
  private sDevice = "";
  private sTag = "";
  /** the value when it is not a number (V_NUM: it is `sNum`, kept unboxed) */
  private sValue: SampleValue = null;
  private sKind = 0;
  private sNum = 0;
  private sQ = 0;
  private sUnit: string | undefined = undefined;
  private sReason: string | undefined = undefined;

  /**
   * Decodes the samples of the (already CRC-checked) frame at `off`, appending those with
   * position ≥ `minPos` to `out`, up to `limit` entries in `out`.
   */
  decode(buf: Buffer, off: number, minPos: number, out: JournaledSample[], limit: number): void {
    const firstPos = this.begin(buf, off);
    const count = buf.readUInt32LE(off + 16) & COUNT_MASK;
    try {
      for (let i = 0; i < count; i++) {
        this.readSample();
        const q = this.sQ;
        const quality: Quality = q === 0 ? "good" : q === 1 ? "uncertain" : "bad";
        const unit = this.sUnit;
        const reason = this.sReason;
        const pos = firstPos + i;
        if (pos < minPos) continue;
        const s: JournaledSample = { device: this.sDevice, tag: this.sTag, value: this.sKind === V_NUM ? this.sNum : this.sValue, quality, ts: this.sTs, pos };
        if (unit !== undefined) s.unit = unit;
        if (reason !== undefined) s.reason = reason;
        out.push(s);
        if (out.length >= limit) return;
      }
    } finally {
      this.finish();
    }
  }

  /**
   * `decode` into columns: the frame at `off`, from the first sample with position ≥ `minPos`,
   * at most `limit` samples, as one run over fresh columns. Returns null for a frame whose kept
   * samples name more than one device (the caller decodes that one as objects); a run of count 0
   * when nothing is kept.
   */
  decodeRun(buf: Buffer, off: number, minPos: number, limit: number): SampleRun | null {
    const firstPos = this.begin(buf, off);
    const count = buf.readUInt32LE(off + 16) & COUNT_MASK;
    const skip = Math.min(count, Math.max(0, minPos - firstPos));
    const n = Math.max(0, Math.min(count - skip, limit));
    let b: ColumnsBuilder | undefined;
    const prev = this.prevTags;
    /** this run's own tag list, once it differs from the previous run's */
    let own: string[] | undefined;
    let units: (string | undefined)[] | undefined;
    try {
      for (let i = 0; i < skip + n; i++) {
        this.readSample();
        const q = this.sQ;
        const unit = this.sUnit;
        const reason = this.sReason;
        if (i < skip) continue;
        const k = i - skip;
        if (b === undefined) b = new ColumnsBuilder(this.sDevice, n);
        else if (this.sDevice !== b.device) return null;
        const tag = this.sTag;
        if (own !== undefined) own[k] = tag;
        else if (prev[k] !== tag) {
          own = new Array<string>(n);
          for (let j = 0; j < k; j++) own[j] = prev[j]!;
          own[k] = tag;
        }
        if (this.sKind === V_NUM) {
          b.nums[k] = this.sNum;
          b.qualities[k] = q;
          b.ts[k] = this.sTs;
        } else b.set(k, this.sValue, q, this.sTs);
        if (unit !== undefined) (units ??= new Array<string | undefined>(n))[k] = unit;
        if (reason !== undefined) b.setReason(k, reason);
      }
    } finally {
      this.finish();
    }
    if (b === undefined) return { cols: SampleColumns.fromSamples([]), from: 0, count: 0, firstPos: firstPos + skip };
    const tags = own ?? (n === prev.length ? prev : prev.slice(0, n));
    this.prevTags = tags;
    return { cols: b.done(tags, units), from: 0, count: n, firstPos: firstPos + skip };
  }

  /** Points the decoder at the frame at `off`; returns its first position. */
  private begin(buf: Buffer, off: number): number {
    this.buf = buf;
    this.end = off + FRAME_PREFIX + buf.readUInt32LE(off);
    this.at = off + FRAME_HEADER;
    this.tableLen = 0;
    return buf.readUInt32LE(off + 8) + buf.readUInt32LE(off + 12) * TWO32;
  }

  /** Lets go of the frame, so a decoder kept by a journal holds no read buffer. */
  private finish(): void {
    this.buf = EMPTY;
    this.tableLen = 0;
    // the strings are the interned names, mostly; a frame of many distinct ones leaves no big table behind
    if (this.table.length > 4096) this.table = [];
  }

  /**
   * Puts the little-endian double at `at` into `f64[0]`, where the caller reads it: a double
   * returned from a call that is not inlined is a heap object, and a frame has two per sample.
   */
  private loadDouble(at: number): void {
    const buf = this.buf;
    if (!LE) {
      this.f64[0] = buf.readDoubleLE(at);
      return;
    }
    const b = this.f64b;
    b[0] = buf[at]!;
    b[1] = buf[at + 1]!;
    b[2] = buf[at + 2]!;
    b[3] = buf[at + 3]!;
    b[4] = buf[at + 4]!;
    b[5] = buf[at + 5]!;
    b[6] = buf[at + 6]!;
    b[7] = buf[at + 7]!;
  }

  private readVarint(): number {
    let v = 0;
    let mul = 1;
    for (;;) {
      if (this.at >= this.end) throw new FrameDecodeError("varint past end of frame");
      const b = this.buf[this.at++]!;
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 128;
    }
  }

  private readStr(): string {
    const v = this.readVarint();
    if ((v & 1) === 0) {
      const i = v / 2;
      if (i >= this.tableLen) throw new FrameDecodeError("string reference out of range");
      return this.table[i]!;
    }
    const len = (v - 1) / 2;
    const at = this.at;
    if (at + len > this.end) throw new FrameDecodeError("string past end of frame");
    this.at += len;
    const s = this.strings.read(this.buf, at, len);
    this.table[this.tableLen++] = s;
    return s;
  }

  /**
   * Decodes the sample at `at` into the `s…` fields. Its strings are read even when the caller
   * skips the sample: later samples of the frame may reference them.
   */
  private readSample(): void {
    if (this.at + 9 > this.end) throw new FrameDecodeError("sample past end of frame");
    const flags = this.buf[this.at]!;
    this.loadDouble(this.at + 1);
    this.sTs = this.f64[0]!;
    this.at += 9;
    this.sDevice = this.readStr();
    this.sTag = this.readStr();
    const kind = (flags >> 2) & 7;
    this.sKind = kind;
    if (kind === V_NUM) {
      if (this.at + 8 > this.end) throw new FrameDecodeError("number past end of frame");
      this.loadDouble(this.at);
      this.sNum = this.f64[0]!;
      this.at += 8;
    } else if (kind === V_NULL) this.sValue = null;
    else if (kind === V_FALSE) this.sValue = false;
    else if (kind === V_TRUE) this.sValue = true;
    else if (kind === V_STR) this.sValue = this.readStr();
    else throw new FrameDecodeError(`unknown value kind ${kind}`);
    const q = flags & 3;
    if (q === 3) throw new FrameDecodeError("unknown quality");
    this.sQ = q;
    this.sUnit = flags & F_UNIT ? this.readStr() : undefined;
    this.sReason = flags & F_REASON ? this.readStr() : undefined;
  }
}
