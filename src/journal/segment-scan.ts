import { readdir } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import type { JournaledSample } from "../core/sample.js";
import { BODY_HEAD, checkFrame, decodeFrame, frameFirstTs, FRAME_HEADER, FRAME_PREFIX, readHeader } from "./frame-codec.js";
import { readFrameKeys } from "./frame-keys.js";
import { FrameIndex } from "./frame-index.js";

/** Segment files are named by their first position, zero-padded so names sort in position order. */
const SEGMENT_RE = /^(\d{20})\.seg$/;

export function segmentName(firstPos: number): string {
  return `${String(firstPos).padStart(20, "0")}.seg`;
}

export interface SegmentFile {
  name: string;
  firstPos: number;
}

/** The segment files in `dir`, oldest first. Other files are ignored. */
export async function listSegments(dir: string): Promise<SegmentFile[]> {
  const names = await readdir(dir);
  const out: SegmentFile[] = [];
  for (const name of names) {
    const m = SEGMENT_RE.exec(name);
    if (m?.[1] !== undefined) out.push({ name, firstPos: Number(m[1]) });
  }
  out.sort((a, b) => a.firstPos - b.firstPos);
  return out;
}

export interface SegmentScan {
  index: FrameIndex;
  /** end of the last valid frame: everything after it is torn or corrupt */
  validEnd: number;
  fileSize: number;
  records: number;
  /** first position of the first frame, else the name's position */
  firstPos: number;
  /** position after the last valid sample */
  nextPos: number;
  firstTs: number | null;
  lastTs: number | null;
  /** why the valid frames end before the end of the file (a torn tail in the newest segment) */
  problem: { offset: number; kind: "short" | "bad-length" | "bad-crc" | "bad-pos" } | null;
  /**
   * Corrupt stretches with valid frames after them: each is skipped (the scan slides to the next
   * CRC-valid frame that continues the positions), and the positions it held are lost.
   */
  corrupt: { offset: number; bytes: number; kind: "short" | "bad-length" | "bad-crc" | "bad-pos"; fromPos: number; toPos: number }[];
  /** idempotency keys of frames appended at or after `keysSince` */
  keys: { at: number; keys: string[] }[];
}

export interface ScanOptions {
  /** read the last sample's ts (default true) */
  lastTs?: boolean;
  /** collect the idempotency keys of frames appended at or after this time (ms); default: none */
  keysSince?: number;
}

const CHUNK = 4 * 1024 * 1024;

/**
 * Reads a whole segment, checks every frame's length, CRC and position continuity, and indexes
 * the valid frames. A bad stretch followed by valid frames is skipped (listed in `corrupt`),
 * so one bad sector never costs the frames after it; bad bytes with nothing valid after them
 * are the `problem` (a torn tail). Read-only: the caller decides whether to truncate.
 */
export async function scanSegment(fh: FileHandle, firstPosFromName: number, opts: ScanOptions | boolean = {}): Promise<SegmentScan> {
  const o: ScanOptions = typeof opts === "boolean" ? { lastTs: opts } : opts;
  const fileSize = (await fh.stat()).size;
  const index = new FrameIndex();
  let buf = Buffer.allocUnsafe(Math.min(CHUNK, Math.max(fileSize, FRAME_HEADER)));
  let bufStart = 0; // file offset of buf[0]
  let bufEnd = 0; // valid bytes in buf
  let off = 0; // file offset of the next frame
  let expected = firstPosFromName;
  let records = 0;
  let firstTs: number | null = null;
  let lastFrameOff = -1;
  let validEnd = 0;
  let problem: SegmentScan["problem"] = null;
  const corrupt: SegmentScan["corrupt"] = [];
  const keys: SegmentScan["keys"] = [];

  const fill = async (need: number): Promise<void> => {
    // Keep bytes from `off`, read more so that at least `need` bytes from `off` are present.
    const keepFrom = off - bufStart;
    const have = bufEnd - keepFrom;
    if (need > buf.length) {
      const next = Buffer.allocUnsafe(Math.max(need, buf.length * 2));
      buf.copy(next, 0, keepFrom, bufEnd);
      buf = next;
    } else if (keepFrom > 0) {
      buf.copy(buf, 0, keepFrom, bufEnd);
    }
    bufStart = off;
    bufEnd = have;
    while (bufEnd < buf.length && bufStart + bufEnd < fileSize) {
      const { bytesRead } = await fh.read(buf, bufEnd, buf.length - bufEnd, bufStart + bufEnd);
      if (bytesRead === 0) break;
      bufEnd += bytesRead;
    }
  };

  while (off < fileSize) {
    if (off + FRAME_HEADER > bufStart + bufEnd) await fill(FRAME_HEADER);
    let check = checkFrame(buf, off - bufStart, bufEnd);
    if (!check.ok && check.problem === "short" && bufStart + bufEnd < fileSize) {
      const length = bufEnd - (off - bufStart) >= 4 ? buf.readUInt32LE(off - bufStart) : 0;
      // Only fetch more when the claimed frame fits in the file; otherwise it is torn as it stands.
      if (off + 8 + length <= fileSize) {
        await fill(8 + length);
        check = checkFrame(buf, off - bufStart, bufEnd);
      }
    }
    let kind: NonNullable<SegmentScan["problem"]>["kind"] | null = check.ok ? null : check.problem;
    if (check.ok && check.header.firstPos > expected) {
      // A valid frame after missing positions: they are lost, the frame is kept.
      corrupt.push({ offset: off, bytes: 0, kind: "bad-pos", fromPos: expected, toPos: check.header.firstPos - 1 });
      expected = check.header.firstPos;
    } else if (check.ok && check.header.firstPos < expected) kind = "bad-pos"; // stale bytes: look further
    if (kind !== null) {
      const next = await nextValidFrame(fh, off + 1, fileSize, expected);
      if (next === null) {
        problem = { offset: off, kind };
        break;
      }
      corrupt.push({ offset: off, bytes: next.offset - off, kind, fromPos: expected, toPos: next.firstPos - 1 });
      off = next.offset;
      expected = next.firstPos;
      continue;
    }
    if (!check.ok) break; // unreachable: narrowed for the compiler
    const h = check.header;
    const at = off - bufStart;
    if (index.length === 0) firstTs = frameFirstTs(buf, at);
    if (o.keysSince !== undefined) {
      const k = readFrameKeys(buf, at);
      if (k && k.at >= o.keysSince) keys.push(k);
    }
    index.push(off, h.firstPos, h.count);
    records += h.count;
    expected = h.firstPos + h.count;
    lastFrameOff = off;
    off += h.size;
    validEnd = off;
  }

  let lastTs: number | null = null;
  if (o.lastTs !== false && lastFrameOff >= 0) lastTs = await lastTsOf(fh, lastFrameOff);

  return {
    index,
    validEnd,
    fileSize,
    records,
    firstPos: index.length > 0 ? index.firstPos(0) : firstPosFromName,
    nextPos: index.length > 0 ? expected : firstPosFromName,
    firstTs,
    lastTs,
    problem,
    corrupt,
    keys,
  };
}

async function lastTsOf(fh: FileHandle, frameOff: number): Promise<number | null> {
  const head = Buffer.allocUnsafe(FRAME_HEADER);
  await fh.read(head, 0, FRAME_HEADER, frameOff);
  const h = readHeader(head, 0);
  if (h.count === 0) return null;
  const buf = Buffer.allocUnsafe(h.size);
  await fh.read(buf, 0, h.size, frameOff);
  const out: JournaledSample[] = [];
  decodeFrame(buf, 0, 0, out, Number.MAX_SAFE_INTEGER);
  return out[out.length - 1]?.ts ?? null;
}

/**
 * The first CRC-valid frame in [from, size) that continues the positions (first position at or
 * after `expected`), found by sliding byte by byte; null when none. Tells a torn tail (nothing
 * valid after it) from corruption in the middle, and finds where to go on after the latter.
 */
async function nextValidFrame(fh: FileHandle, from: number, size: number, expected: number): Promise<{ offset: number; firstPos: number } | null> {
  const len = size - from;
  if (len < FRAME_HEADER) return null;
  const buf = Buffer.allocUnsafe(len);
  let got = 0;
  while (got < len) {
    const { bytesRead } = await fh.read(buf, got, len - got, from + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  for (let i = 0; i + FRAME_HEADER <= got; i++) {
    const length = buf.readUInt32LE(i);
    if (length < BODY_HEAD || i + FRAME_PREFIX + length > got) continue;
    const firstPos = buf.readUInt32LE(i + 8) + buf.readUInt32LE(i + 12) * 0x1_0000_0000;
    if (firstPos < expected) continue;
    const c = checkFrame(buf, i, got);
    if (c.ok && c.header.count > 0) return { offset: from + i, firstPos };
  }
  return null;
}
