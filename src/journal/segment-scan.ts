import { readdir } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import type { JournaledSample } from "../core/sample.js";
import { checkFrame, decodeFrame, frameFirstTs, FRAME_HEADER, readHeader } from "./frame-codec.js";
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
  /** why scanning stopped before the end of the file */
  problem: { offset: number; kind: "short" | "bad-length" | "bad-crc" | "bad-pos" } | null;
  /** complete (CRC-valid) frames found after the problem; 0 for a plain torn tail */
  framesAfterProblem: number;
}

const CHUNK = 4 * 1024 * 1024;

/**
 * Reads a whole segment, checks every frame's length, CRC and position continuity, and indexes
 * the valid prefix. Read-only: the caller decides whether to truncate.
 */
export async function scanSegment(fh: FileHandle, firstPosFromName: number, lastTsWanted = true): Promise<SegmentScan> {
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
  let problem: SegmentScan["problem"] = null;

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
    if (!check.ok) {
      problem = { offset: off, kind: check.problem };
      break;
    }
    const h = check.header;
    if (h.firstPos !== expected) {
      problem = { offset: off, kind: "bad-pos" };
      break;
    }
    if (index.length === 0) firstTs = frameFirstTs(buf, off - bufStart);
    index.push(off, h.firstPos, h.count);
    records += h.count;
    expected = h.firstPos + h.count;
    lastFrameOff = off;
    off += h.size;
  }

  let lastTs: number | null = null;
  if (lastTsWanted && lastFrameOff >= 0) lastTs = await lastTsOf(fh, lastFrameOff);

  let framesAfterProblem = 0;
  if (problem && problem.kind !== "short") framesAfterProblem = await countValidAfter(fh, problem.offset + 1, fileSize);

  return {
    index,
    validEnd: off,
    fileSize,
    records,
    firstPos: index.length > 0 ? index.firstPos(0) : firstPosFromName,
    nextPos: index.length > 0 ? expected : firstPosFromName,
    firstTs,
    lastTs,
    problem,
    framesAfterProblem,
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
 * Counts CRC-valid frames in [from, size) by sliding byte by byte: tells a torn tail (nothing
 * valid after it) from corruption in the middle (valid frames follow). Bounded to 1 MiB so a
 * recovery never crawls through a huge segment.
 */
async function countValidAfter(fh: FileHandle, from: number, size: number): Promise<number> {
  const len = Math.min(size - from, 1024 * 1024);
  if (len < FRAME_HEADER) return 0;
  const buf = Buffer.allocUnsafe(len);
  const { bytesRead } = await fh.read(buf, 0, len, from);
  let n = 0;
  for (let i = 0; i + FRAME_HEADER <= bytesRead; ) {
    const c = checkFrame(buf, i, bytesRead);
    if (c.ok && c.header.count > 0) {
      n++;
      i += c.header.size;
    } else i++;
  }
  return n;
}
