import { crc32 } from "node:zlib";

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
 *
 * The writer is frame-encoder.ts, the reader frame-decoder.ts; this file holds what both agree on
 * and the checks that need no decoding.
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

/** value kinds, bits 2-4 of a sample's flags */
export const V_NULL = 0;
export const V_FALSE = 1;
export const V_TRUE = 2;
export const V_NUM = 3;
export const V_STR = 4;
/** flag bits: a unit, a reason follows */
export const F_UNIT = 0x20;
export const F_REASON = 0x40;

export const TWO32 = 0x1_0000_0000;

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

/** First sample's ts of a valid frame without decoding the rest (0 samples → null). */
export function frameFirstTs(buf: Buffer, off: number): number | null {
  if ((buf.readUInt32LE(off + 16) & COUNT_MASK) === 0) return null;
  return buf.readDoubleLE(off + FRAME_HEADER + 1);
}
