import { crc32 } from "node:zlib";
import { COUNT_MASK, FRAME_PREFIX, KEYS_FLAG } from "./frame-codec.js";

/**
 * Idempotency keys ride in the very frame that holds their samples, so "stored" and "remembered
 * as stored" become durable in one write and are torn together: after `kill -9` or power loss a
 * retried push is recognised exactly when its samples survived (a key kept apart from its
 * samples would either acknowledge a retry whose samples were lost, or store a retry twice).
 *
 * Trailer, after the samples and covered by the frame's length and CRC:
 *   [f64 appendedAt ms][u32 keyCount]{[u16 bytes][utf-8 key]}*[u32 trailerBytes]
 * and KEYS_FLAG set in the count field. Sample decoders stop after `count` samples and never
 * reach it.
 */
export interface FrameKeys {
  /** wall-clock time of the append (ms since the epoch): the dedup window is counted from it */
  at: number;
  keys: string[];
}

/** A copy of `frame` with `keys` appended as its trailer (length, flag and CRC rewritten). */
export function withKeys(frame: Buffer, keys: readonly string[], at: number): Buffer {
  const encoded = keys.map((k) => Buffer.from(k, "utf8"));
  for (const e of encoded) if (e.length > 0xffff) throw new RangeError(`idempotency key over 65,535 bytes`);
  const trailer = 8 + 4 + encoded.reduce((n, e) => n + 2 + e.length, 0) + 4;
  const out = Buffer.allocUnsafe(frame.length + trailer);
  frame.copy(out, 0);
  let at2 = frame.length;
  out.writeDoubleLE(at, at2);
  out.writeUInt32LE(encoded.length, at2 + 8);
  at2 += 12;
  for (const e of encoded) {
    out.writeUInt16LE(e.length, at2);
    e.copy(out, at2 + 2);
    at2 += 2 + e.length;
  }
  out.writeUInt32LE(trailer, at2);
  out.writeUInt32LE(out.length - FRAME_PREFIX, 0);
  out.writeUInt32LE(((out.readUInt32LE(16) & COUNT_MASK) | KEYS_FLAG) >>> 0, 16);
  out.writeUInt32LE(crc32(out.subarray(FRAME_PREFIX)), 4);
  return out;
}

/** The keys of the (CRC-checked) frame at `off`, or null when it has none. */
export function readFrameKeys(buf: Buffer, off: number): FrameKeys | null {
  if ((buf.readUInt32LE(off + 16) & KEYS_FLAG) === 0) return null;
  const end = off + FRAME_PREFIX + buf.readUInt32LE(off);
  const trailer = buf.readUInt32LE(end - 4);
  let p = end - trailer;
  const at = buf.readDoubleLE(p);
  const n = buf.readUInt32LE(p + 8);
  p += 12;
  const keys: string[] = [];
  for (let i = 0; i < n && p + 2 <= end - 4; i++) {
    const len = buf.readUInt16LE(p);
    keys.push(buf.toString("utf8", p + 2, p + 2 + len));
    p += 2 + len;
  }
  return { at, keys };
}
