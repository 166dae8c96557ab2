import { open } from "node:fs/promises";
import { syncDir } from "./cursor-store.js";
import type { JournalEvent } from "./journal.js";
import { PositionGaps } from "./position-gaps.js";
import { makeSegment, type Segment } from "./segment.js";
import { listSegments, scanSegment } from "./segment-scan.js";

/** What the segment files say at open; the journal continues from it. */
export interface RecoveredState {
  segments: Segment[];
  /** position after the newest valid sample */
  nextPos: number;
  newestTs: number | null;
  diskBytes: number;
  /** torn tail records cut off the newest segment (never acknowledged) */
  tornRecords: number;
  /** positions lost to corruption inside or at the end of older segments */
  gaps: PositionGaps;
  /** one per corrupt stretch, for the caller to count per output and report */
  corrupt: { segment: string; offset: number; bytes: number; fromPos: number; toPos: number }[];
  keys: { at: number; keys: string[] }[];
}

/**
 * Scans every segment in `dir` (length, CRC, position continuity) and rebuilds the in-memory
 * index. A bad frame at the end of the newest segment is a torn tail: never acknowledged (its
 * fsync did not complete), so the file is cut there and new frames follow the last good one.
 * A corrupt stretch anywhere else is skipped, keeping every valid frame after it, and the
 * positions it held are reported as lost; so are positions missing between two segments.
 */
export async function recoverSegments(
  dir: string,
  opts: { keysSince: number; emit: (e: JournalEvent) => void },
): Promise<RecoveredState> {
  const st: RecoveredState = { segments: [], nextPos: 1, newestTs: null, diskBytes: 0, tornRecords: 0, gaps: new PositionGaps(), corrupt: [], keys: [] };
  const files = await listSegments(dir);
  for (let i = 0; i < files.length; i++) {
    const f = files[i]!;
    const next = files[i + 1];
    const isLast = next === undefined;
    const fh = await open(`${dir}/${f.name}`, isLast ? "r+" : "r");
    const seg = makeSegment(dir, f.firstPos, true);
    seg.fh = fh;
    st.segments.push(seg);
    const scan = await scanSegment(fh, f.firstPos, { keysSince: opts.keysSince });
    seg.index = scan.index;
    seg.indexedEnd = scan.validEnd;
    seg.records = scan.records;
    seg.lastPos = scan.nextPos - 1;
    seg.firstTs = scan.firstTs;
    seg.bytes = scan.fileSize;
    if (scan.records > 0 && scan.lastTs !== null) st.newestTs = scan.lastTs;
    for (const k of scan.keys) st.keys.push(k);
    for (const c of scan.corrupt) {
      st.gaps.add(c.fromPos, c.toPos);
      st.corrupt.push({ segment: f.name, offset: c.offset, bytes: c.bytes, fromPos: c.fromPos, toPos: c.toPos });
    }
    if (scan.problem && isLast) {
      st.tornRecords += 1;
      await fh.truncate(scan.validEnd);
      seg.bytes = scan.validEnd;
      opts.emit({ kind: "torn-tail", segment: f.name, offset: scan.validEnd, droppedBytes: scan.fileSize - scan.validEnd, droppedRecords: 1 });
    }
    if (isLast && (await fh.stat()).isFile()) {
      // Frames written before a crash of the process but never fsynced sit in the page cache and
      // scan as valid. They are served from now on, so they must be durable first: otherwise a
      // power loss later could take back what outputs already delivered, and its positions would
      // be handed out again to other samples. Older segments were synced before the next was made.
      await fh.datasync();
    }
    if (next !== undefined && next.firstPos > scan.nextPos) {
      // The segment ends early (a corrupt tail, or a file that went missing): positions up to
      // the next segment's first are gone. Its bad bytes are left alone (it is sealed).
      const offset = scan.problem ? scan.problem.offset : scan.fileSize;
      st.gaps.add(scan.nextPos, next.firstPos - 1);
      st.corrupt.push({ segment: f.name, offset, bytes: scan.fileSize - offset, fromPos: scan.nextPos, toPos: next.firstPos - 1 });
    }
    st.diskBytes += seg.bytes;
    st.nextPos = Math.max(st.nextPos, scan.nextPos, next?.firstPos ?? 0);
    if (!isLast) seg.sealed = true;
  }
  // The same for directory entries: a segment created just before the crash must stay.
  if (files.length > 0) await syncDir(dir);
  return st;
}
