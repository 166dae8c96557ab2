import { unlink } from "node:fs/promises";
import { performance } from "node:perf_hooks";
import { errnoOf } from "./disk-errors.js";
import type { JournalEvent } from "./journal.js";
import type { OutputCursors } from "./output-cursors.js";
import type { PositionGaps } from "./position-gaps.js";
import type { RecentFrames } from "./recent-frames.js";
import { closeSegment, type Segment } from "./segment.js";

export interface SegmentSetOptions {
  overflow: "drop-oldest" | "reject";
  maxBytes: number;
  slowIoMs: number;
  outputs: OutputCursors;
  cache: RecentFrames;
  gaps: () => PositionGaps;
  emit: (e: JournalEvent) => void;
}

/**
 * The journal's segments, oldest first, and the disk they take: which may be deleted (garbage:
 * every output passed it; or dropped to make room, counted per output), and the deleting. Only
 * the journal's I/O loop calls the async methods, so a deletion never races a write.
 */
export class SegmentSet {
  /** oldest first; shared with the reader, changed in place */
  readonly list: Segment[] = [];
  /** bytes of every segment file as written */
  diskBytes = 0;

  constructor(private readonly opts: SegmentSetOptions) {}

  /** position of the oldest stored sample, 0 when none */
  oldestPos(): number {
    for (const seg of this.list) if (seg.records > 0) return seg.index.firstPos(0);
    return 0;
  }

  /** whether the oldest segment can go now (its deletion frees room and keeps nothing anyone needs) */
  garbageAtHead(): boolean {
    return this.list.length > 1 && this.isGarbage(this.list[0]!);
  }

  /** stored samples, segment files on disk, and the oldest stored sample's ts */
  counts(): { records: number; files: number; oldestTs: number | null } {
    let records = 0;
    let files = 0;
    let oldestTs: number | null = null;
    for (const seg of this.list) {
      records += seg.records;
      if (seg.created) files++;
      if (oldestTs === null && seg.records > 0) oldestTs = seg.firstTs;
    }
    return { records, files, oldestTs };
  }

  async closeAll(): Promise<void> {
    for (const seg of this.list) if (seg.pins === 0) await closeSegment(seg);
  }


  /** Bytes that garbage collection would free now: sealed segments every output has passed. */
  reclaimableBytes(): number {
    let n = 0;
    for (const seg of this.list) {
      if (!this.isGarbage(seg)) break;
      n += seg.bytes;
    }
    return n;
  }

  /** Sealed, fully written, older than the newest file on disk (which keeps positions across restarts), and passed by every output. */
  isGarbage(seg: Segment): boolean {
    if (!seg.sealed || seg.reserved > 0 || seg === this.newestCreated()) return false;
    if (seg.records === 0) return true;
    return this.opts.outputs.passedAll(seg.lastPos);
  }

  newestCreated(): Segment | undefined {
    for (let i = this.list.length - 1; i >= 0; i--) if (this.list[i]!.created) return this.list[i];
    return undefined;
  }

  /** Under drop-oldest, whether the oldest segment may be deleted to make room for `target`. */
  canDropFor(target: Segment): boolean {
    const oldest = this.list[0];
    return this.opts.overflow === "drop-oldest" && this.list.length > 1 && oldest !== undefined
      && oldest !== target && oldest.sealed && oldest.created && oldest.reserved === 0;
  }

  async collectGarbage(): Promise<void> {
    while (this.list.length > 1 && this.isGarbage(this.list[0]!)) await this.deleteOldest(null);
  }

  /** Before writing `need` bytes into `target`: free garbage, then (drop-oldest) drop the oldest data. */
  async makeRoom(need: number, target: Segment): Promise<void> {
    await this.collectGarbage();
    while (this.diskBytes + need > this.opts.maxBytes && this.canDropFor(target)) await this.deleteOldest("drop_oldest");
  }

  /** Deletes the oldest segment; `dropping` says why unread samples in it are lost (null: garbage). */
  async deleteOldest(dropping: "drop_oldest" | "disk_full" | null): Promise<void> {
    const seg = this.list.shift()!;
    seg.deleted = true;
    this.diskBytes -= seg.bytes;
    if (dropping && seg.records > 0) {
      const perOutput = this.opts.outputs.drop(seg.firstPos, seg.lastPos, this.opts.gaps(), dropping === "disk_full");
      this.opts.emit({ kind: "dropped-oldest", reason: dropping, segment: seg.name, samples: seg.records, perOutput });
    }
    this.opts.cache.dropBefore(seg.lastPos + 1);
    this.opts.gaps().dropBefore(seg.lastPos + 1);
    const started = performance.now();
    try {
      await unlink(seg.path);
    } catch (err) {
      if (errnoOf(err) !== "ENOENT") throw err;
    }
    const ms = performance.now() - started;
    if (ms >= this.opts.slowIoMs) this.opts.emit({ kind: "slow-io", op: "delete", segment: seg.name, ms: Math.round(ms) });
    if (seg.pins === 0) await closeSegment(seg);
  }
}
