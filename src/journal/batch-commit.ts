import type { FileHandle } from "node:fs/promises";
import { performance } from "node:perf_hooks";
import type { SampleColumns } from "../core/sample-columns.js";
import { syncDir } from "./cursor-store.js";
import { errnoOf } from "./disk-errors.js";
import { writeFully, writevFully } from "./file-writes.js";
import type { JournalEvent } from "./journal.js";
import type { RecentFrames } from "./recent-frames.js";
import type { Segment } from "./segment.js";
import type { SegmentSet } from "./segment-set.js";
import type { WriteGate } from "./write-gate.js";

/** One queued append: its encoded frame, the segment and positions it was given, its promise. */
export interface PendingAppend {
  seg: Segment;
  frame: Buffer;
  firstPos: number;
  count: number;
  firstTs: number;
  lastTs: number;
  /** null when the cache is off */
  cols: SampleColumns | null;
  resolve: (pos: number) => void;
  reject: (err: unknown) => void;
}

/** What a commit needs of the writer and the journal. */
export interface BatchCommitOptions {
  dir: string;
  /** see JournalOptions.slowIoMs */
  slowIoMs: number;
  /** see SegmentJournalOptions.openFile */
  openFile: (path: string, flags: string) => Promise<FileHandle>;
  set: SegmentSet;
  /** made-durable appends that carry columns are added to it */
  cache: RecentFrames;
  /** told after every successful fdatasync (resets its backoff) */
  gate: WriteGate;
  /** must not throw (the journal's emit swallows listener errors) */
  emit: (e: JournalEvent) => void;
  /** `bytes` of queued frames were just written to their segment (not synced yet): no longer pending */
  written: (bytes: number) => void;
  /**
   * The commit failed at `rest[0]`: every append in `rest` is still unacknowledged. The writer
   * undoes and refuses them (and whatever queued behind them). Awaited before `committed`.
   */
  failed: (rest: PendingAppend[], err: CommitError) => Promise<void>;
  /** see SegmentWriterOptions.committed */
  committed: () => void;
}

/**
 * Makes one batch of queued appends durable and readable: write, fdatasync, then index, cache
 * and ack, segment by segment. Keeps the durable edge (`durablePos`, newest ts, samples
 * appended) and whether a created segment's directory entry still needs an fsync.
 */
export class BatchCommit {
  /** newest durable position */
  private durable = 0;
  private newest: number | null = null;
  private appendedSamples = 0;
  /** a segment file was created and the directory not yet synced since */
  private dirDirty = false;

  constructor(private readonly opts: BatchCommitOptions) {}

  /** newest durable position: every sample up to it is on disk, indexed and readable */
  get durablePos(): number {
    return this.durable;
  }

  /** ts of the newest durable sample; null when none was found at open nor appended since */
  get newestTs(): number | null {
    return this.newest;
  }

  /** samples made durable since open */
  get appended(): number {
    return this.appendedSamples;
  }

  /** At open, before any commit: the durable edge found by recovery. */
  restore(durablePos: number, newestTs: number | null): void {
    this.durable = durablePos;
    this.newest = newestTs;
  }

  /**
   * Writes `batch` (appends in position order, possibly spanning segments) one segment at a time:
   * write, fdatasync, then at once that segment's index and counters and the acks. Why per
   * segment: creating the next segment runs garbage collection and may drop the oldest data,
   * and both judge a segment by its counters; a segment whose fresh frames were not yet counted
   * looked empty and fully read, and was deleted with acknowledged samples in it.
   *
   * Called by the writer's I/O loop only, one batch at a time. Resolves true when every append of
   * the batch was acked and garbage now waits at the head of the set; false when the commit
   * failed (after `failed` handled it). Never rejects.
   */
  async write(batch: PendingAppend[]): Promise<boolean> {
    // phase times (ms), reported when the commit was slow (JournalEvent "slow-io")
    const phases = { create: 0, room: 0, write: 0, sync: 0 };
    const started = performance.now();
    let t = started;
    const lap = (k: keyof typeof phases): void => {
      const now = performance.now();
      phases[k] += now - t;
      t = now;
    };
    let last: Segment | undefined;
    let i = 0;
    try {
      while (i < batch.length) {
        const seg = batch[i]!.seg;
        last = seg;
        let j = i;
        let bytes = 0;
        while (j < batch.length && batch[j]!.seg === seg) bytes += batch[j++]!.frame.length;
        const at = seg.bytes;
        for (;;) {
          try {
            await this.writeGroup(seg, batch, i, j, bytes, lap);
            break;
          } catch (err) {
            // A full disk under drop-oldest: the oldest whole segment goes (counted), then again.
            if (!isDiskFull(err) || !this.opts.set.canDropFor(seg)) throw new CommitError(err, false);
            await seg.fh?.truncate(at).catch(() => undefined);
            await this.opts.set.deleteOldest("disk_full");
          }
        }
        seg.bytes += bytes;
        seg.reserved -= bytes;
        this.opts.written(bytes);
        this.opts.set.diskBytes += bytes;
        try {
          await seg.fh!.datasync();
        } catch (err) {
          throw new CommitError(err, true);
        }
        lap("sync");
        this.opts.gate.succeeded();
        this.madeDurable(batch, i, j, at);
        i = j;
      }
    } catch (err) {
      await this.opts.failed(batch.slice(i), err instanceof CommitError ? err : new CommitError(err, false));
      return false;
    } finally {
      this.opts.committed();
    }
    const ms = performance.now() - started;
    if (ms >= this.opts.slowIoMs && last) {
      const r = (x: number): number => Math.round(x);
      this.opts.emit({ kind: "slow-io", op: "commit", segment: last.name, ms: r(ms), phases: { create: r(phases.create), room: r(phases.room), write: r(phases.write), sync: r(phases.sync) } });
    }
    return this.opts.set.garbageAtHead();
  }

  /** Creates the segment file if needed, makes room, writes batch[i..j) at the segment's end. */
  private async writeGroup(seg: Segment, batch: PendingAppend[], i: number, j: number, bytes: number, lap: (k: "create" | "room" | "write") => void): Promise<void> {
    // Create a new segment before making room: the newest file on disk carries the positions
    // across a restart, so it must exist before older ones may be deleted.
    if (!seg.created) {
      seg.fh = await this.opts.openFile(seg.path, "wx+");
      seg.created = true;
      this.dirDirty = true;
    } else if (!seg.fh) {
      seg.fh = await this.opts.openFile(seg.path, "r+");
    }
    if (this.dirDirty) {
      // The directory entry must be durable before anything in the file is acknowledged.
      await syncDir(this.opts.dir);
      this.dirDirty = false;
    }
    lap("create");
    await this.opts.set.makeRoom(bytes, seg);
    lap("room");
    if (j - i === 1) await writeFully(seg.fh!, batch[i]!.frame, seg.bytes);
    else await writevFully(seg.fh!, batch.slice(i, j).map((p) => p.frame), bytes, seg.bytes);
    lap("write");
  }

  /** Appends batch[i..j), just synced at `offset` of their segment, become readable and are acked. */
  private madeDurable(batch: PendingAppend[], i: number, j: number, offset: number): void {
    for (let k = i; k < j; k++) {
      const p = batch[k]!;
      const seg = p.seg;
      const n = p.count;
      seg.index.push(offset, p.firstPos, n);
      offset += p.frame.length;
      seg.indexedEnd = offset;
      if (seg.records === 0) seg.firstTs = p.firstTs;
      seg.records += n;
      seg.lastPos = p.firstPos + n - 1;
      this.appendedSamples += n;
      this.durable = seg.lastPos;
      this.newest = p.lastTs;
      if (p.cols) this.opts.cache.add(p.firstPos, p.cols);
    }
    for (let k = i; k < j; k++) batch[k]!.resolve(batch[k]!.firstPos + batch[k]!.count - 1);
  }
}

/** A failure inside a commit, with whether it came from an fsync (see disk-errors.ts). */
export class CommitError extends Error {
  constructor(readonly original: unknown, readonly duringSync: boolean) {
    super((original as Error)?.message ?? String(original), { cause: original });
  }
}

function isDiskFull(err: unknown): boolean {
  const code = errnoOf(err);
  return code === "ENOSPC" || code === "EDQUOT";
}
