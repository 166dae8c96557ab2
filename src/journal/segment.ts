import type { FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { FrameIndex } from "./frame-index.js";
import { segmentName } from "./segment-scan.js";

/** One segment file and what the journal knows of it; shared by the writer and the reader. */
export interface Segment {
  readonly name: string;
  readonly path: string;
  /** position of its first sample (from the file name) */
  readonly firstPos: number;
  fh: FileHandle | null;
  /** whether the file exists on disk (new segments are created at their first write) */
  created: boolean;
  /** durable frames only */
  index: FrameIndex;
  /** end offset of the last durable frame */
  indexedEnd: number;
  /** file size as written (durable or not) */
  bytes: number;
  /** bytes of frames assigned to this segment and not written yet */
  reserved: number;
  /** durable samples */
  records: number;
  /** last durable position (firstPos - 1 while empty) */
  lastPos: number;
  firstTs: number | null;
  /** no more frames will be assigned to it */
  sealed: boolean;
  /** reads in flight: the handle is closed only once they finish */
  pins: number;
  deleted: boolean;
}

export function makeSegment(dir: string, firstPos: number, created: boolean): Segment {
  const name = segmentName(firstPos);
  return {
    name,
    path: join(dir, name),
    firstPos,
    fh: null,
    created,
    index: new FrameIndex(),
    indexedEnd: 0,
    bytes: 0,
    reserved: 0,
    records: 0,
    lastPos: firstPos - 1,
    firstTs: null,
    sealed: false,
    pins: 0,
    deleted: false,
  };
}

export async function closeSegment(seg: Segment): Promise<void> {
  const fh = seg.fh;
  seg.fh = null;
  if (fh) await fh.close().catch(() => undefined);
}
