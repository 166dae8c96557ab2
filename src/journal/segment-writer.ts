import { unlink } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { FloorgateError } from "../core/errors.js";
import type { Sample } from "../core/sample.js";
import { SampleColumns } from "../core/sample-columns.js";
import { BatchCommit, type CommitError, type PendingAppend } from "./batch-commit.js";
import { classifyDiskError, describeDiskError } from "./disk-errors.js";
import { FrameEncoder } from "./frame-encoder.js";
import type { AppendOptions, JournalEvent, JournalOptions } from "./journal.js";
import type { RecentFrames } from "./recent-frames.js";
import { makeSegment, type Segment } from "./segment.js";
import type { SegmentSet } from "./segment-set.js";
import { WriteGate } from "./write-gate.js";

const KiB = 1024;
/** the small file a probe writes while the gate is shut; removed at open if a crash left it */
export const PROBE_FILE = ".write-probe";

/** What the writer needs of the journal: settled options and the parts it shares. */
export interface SegmentWriterOptions extends Pick<JournalOptions, "overflow" | "maxBytes" | "fsync" | "fsyncIntervalMs"> {
  dir: string;
  segmentBytes: number;
  /** pending bytes that start a group commit before `fsyncIntervalMs` */
  groupBytes: number;
  /** see JournalOptions.slowIoMs */
  slowIoMs: number;
  /** whether made-durable appends are handed to `cache` (false: the cache is off) */
  cacheOn: boolean;
  /** see SegmentJournalOptions.openFile */
  openFile: (path: string, flags: string) => Promise<FileHandle>;
  /** shared with the journal and its reader; only the writer's I/O loop adds files to it or deletes them */
  set: SegmentSet;
  /** made-durable appends go here (see BatchCommitOptions.cache) */
  cache: RecentFrames;
  /** must not throw (the journal's emit swallows listener errors) */
  emit: (e: JournalEvent) => void;
  /**
   * Called at the end of every commit, whether it succeeded or failed, once the appends it made
   * durable are readable and acknowledged and the refused ones rejected: `durablePos` may have
   * moved (the journal wakes `waitFor`).
   */
  committed: () => void;
}

/**
 * The journal's write side: assigns positions, queues appends, group-commits them (write,
 * fdatasync, then index, cache and ack) and runs the I/O loop, the only place that changes files
 * (commits and segment deletion, serialized). Owns the write gate and the journal's fatal state.
 *
 * Disk errors: see disk-errors.ts. A transient one undoes the commit, refuses appends until a
 * probe write succeeds (JOURNAL_UNAVAILABLE) and recovers by itself; under drop-oldest a full
 * disk first drops the oldest whole segments. A failed fsync or EIO is fatal (JOURNAL_IO and a
 * "fatal" event).
 *
 * Order of use: `restore` once at open, before anything else; then `append`, `requestGc`, `idle`
 * any time; `close` last, also after an open that failed before `restore` (appends are refused
 * from its first synchronous step on).
 */
export class SegmentWriter {
  private readonly opts: SegmentWriterOptions;
  private readonly dir: string;
  private readonly set: SegmentSet;
  /**
   * When the last group commit started (performance.now()). Under `fsync: batch` commits are at
   * least `fsyncIntervalMs` apart — the bound on fsyncs per second that spares flash — but an append
   * that finds the journal idle for longer is committed at once instead of waiting out an interval.
   */
  private lastCommitAt = -Infinity;
  private active!: Segment;

  /** next position to assign */
  private nextPos = 1;
  private pendingBytes = 0;
  private pending: PendingAppend[] = [];

  private rejected = 0;
  private readonly gate: WriteGate;
  /** makes batches durable; holds the durable edge */
  private readonly commits: BatchCommit;
  /** this journal's own: its string table lives as long as the journal */
  private readonly encoder = new FrameEncoder();
  private failed = false;
  private closing = false;

  private ioRunning = false;
  private gcWanted = false;
  private flushTimer: NodeJS.Timeout | null = null;
  private idleWaiters: (() => void)[] = [];

  constructor(opts: SegmentWriterOptions) {
    this.opts = opts;
    this.dir = opts.dir;
    this.set = opts.set;
    this.gate = new WriteGate(() => this.probeWrite(), (e) => this.opts.emit(e));
    this.commits = new BatchCommit({
      dir: opts.dir,
      slowIoMs: opts.slowIoMs,
      openFile: opts.openFile,
      set: opts.set,
      cache: opts.cache,
      gate: this.gate,
      emit: opts.emit,
      written: (bytes) => {
        this.pendingBytes -= bytes;
      },
      failed: (rest, err) => this.commitFailed(rest, err),
      committed: opts.committed,
    });
  }

  /** newest durable position: every sample up to it is on disk, indexed and readable */
  get durablePos(): number {
    return this.commits.durablePos;
  }

  /** true from the first synchronous step of `close()` on: appends are refused */
  get isClosing(): boolean {
    return this.closing;
  }

  /** The write side of JournalStats, as of now. */
  counters(): { newestTs: number | null; appended: number; rejected: number; failed: boolean; writable: boolean; unwritable: string | null } {
    return {
      newestTs: this.commits.newestTs,
      appended: this.commits.appended,
      rejected: this.rejected,
      failed: this.failed,
      writable: !this.failed && this.gate.open,
      unwritable: this.failed ? "stopped after a fatal disk error" : this.gate.why,
    };
  }

  /**
   * At open, before anything is appended: positions continue at `nextPos` (everything before it
   * durable), and the newest segment of the set (a new, not yet created one when there is none)
   * takes the next appends.
   */
  restore(nextPos: number, newestTs: number | null): void {
    this.nextPos = nextPos;
    this.commits.restore(this.nextPos - 1, newestTs);
    const last = this.set.list[this.set.list.length - 1];
    if (last) this.active = last;
    else {
      this.active = makeSegment(this.dir, this.nextPos, false);
      this.set.list.push(this.active);
    }
  }

  /**
   * Garbage may sit at the head of the segment set (a cursor moved, or the journal just opened):
   * the I/O loop deletes it, between commits, never during one.
   */
  requestGc(): void {
    this.gcWanted = true;
    this.kick();
  }

  // ---------------------------------------------------------------- append

  /** Journal.append: resolves once durable, readable and counted; rejects with nothing stored. */
  append(input: SampleColumns | readonly Sample[], opts?: AppendOptions): Promise<number> {
    if (this.closing) return Promise.reject(new FloorgateError("JOURNAL_CLOSED", "journal is closed"));
    if (this.failed) return Promise.reject(new FloorgateError("JOURNAL_IO", "journal stopped after a fatal disk error"));
    if (!this.gate.open) {
      this.gate.refuse(input.length);
      return Promise.reject(new FloorgateError("JOURNAL_UNAVAILABLE", `journal cannot write: ${this.gate.why ?? "disk error"}; retrying`));
    }
    if (input.length === 0) return Promise.resolve(this.commits.durablePos);

    const firstPos = this.nextPos;
    let frame: Buffer;
    let samples: SampleColumns;
    try {
      // Columns, not per-sample copies: what is held until durable and then cached must not be one
      // object per sample (see SampleColumns). Copied now when given objects the caller may reuse.
      samples = input instanceof SampleColumns ? input : SampleColumns.fromSamples(input);
      const keys = opts?.keys;
      frame = keys !== undefined && keys.length > 0 ? this.encoder.encode(samples, firstPos, keys, Date.now(), opts?.keyPrefix) : this.encoder.encode(samples, firstPos);
    } catch (err) {
      return Promise.reject(new FloorgateError("JOURNAL_IO", `cannot encode samples: ${(err as Error).message}`, { cause: err }));
    }
    const size = frame.length;

    if (this.opts.overflow === "reject") {
      const after = this.set.diskBytes + this.pendingBytes + size - this.set.reclaimableBytes();
      if (after > this.opts.maxBytes) {
        this.rejected += samples.length;
        return Promise.reject(
          new FloorgateError(
            "JOURNAL_FULL",
            `journal full: ${after} bytes would exceed maxBytes ${this.opts.maxBytes} (overflow: reject)`,
          ),
        );
      }
    }

    let seg = this.active;
    if (seg.bytes + seg.reserved > 0 && seg.bytes + seg.reserved + size > this.opts.segmentBytes) {
      seg.sealed = true;
      seg = makeSegment(this.dir, firstPos, false);
      this.set.list.push(seg);
      this.active = seg;
    }
    seg.reserved += size;
    this.pendingBytes += size;
    this.nextPos += samples.length;

    const cols = this.opts.cacheOn ? samples : null;
    const count = samples.length;
    const firstTs = samples.ts[0]!;
    const lastTs = samples.ts[count - 1]!;
    return new Promise<number>((resolve, reject) => {
      this.pending.push({ seg, frame, firstPos, count, firstTs, lastTs, cols, resolve, reject });
      this.kick();
    });
  }

  /** Starts the I/O loop when a flush is due, else arms the group-commit timer. */
  private kick(): void {
    if (this.ioRunning) return;
    if (this.flushDue() || this.gcWanted) {
      void this.ioLoop();
      return;
    }
    this.armTimer();
  }

  private armTimer(): void {
    const first = this.pending[0];
    if (!first || this.flushTimer) return;
    const wait = Math.max(0, this.lastCommitAt + this.opts.fsyncIntervalMs - performance.now());
    this.flushTimer = setTimeout(() => {
      this.flushTimer = null;
      void this.ioLoop();
    }, wait);
  }

  private flushDue(): boolean {
    const first = this.pending[0];
    if (!first) return false;
    if (this.closing || this.opts.fsync === "always" || this.pendingBytes >= this.opts.groupBytes) return true;
    // Timers may fire a fraction of a millisecond early against performance.now().
    return performance.now() - this.lastCommitAt >= this.opts.fsyncIntervalMs - 1;
  }

  /**
   * The only place that changes files: group commits, segment deletion. Serialized so a deletion
   * never races a write, and deletions run before the write that needs their room.
   */
  private async ioLoop(): Promise<void> {
    if (this.ioRunning) return;
    this.ioRunning = true;
    if (this.flushTimer) {
      clearTimeout(this.flushTimer);
      this.flushTimer = null;
    }
    try {
      for (;;) {
        if (this.gcWanted && !this.failed) {
          this.gcWanted = false;
          // A segment that cannot be deleted now is retried at the next commit or write.
          await this.set.collectGarbage().catch(() => undefined);
          continue;
        }
        if (this.flushDue()) {
          const batch = this.opts.fsync === "always" ? [this.pending.shift()!] : this.pending.splice(0);
          this.lastCommitAt = performance.now();
          if (await this.commits.write(batch)) this.gcWanted = true;
          continue;
        }
        break;
      }
    } finally {
      this.ioRunning = false;
    }
    if (this.pending.length > 0) this.armTimer();
    else if (this.idleWaiters.length > 0) {
      const w = this.idleWaiters;
      this.idleWaiters = [];
      for (const f of w) f();
    }
  }

  // ---------------------------------------------------------------- commit failure and probe

  /**
   * A commit failed: `failed` (and everything queued behind it) is refused and undone, so that
   * positions stay contiguous on disk (they are handed out again) and no stale frame is left
   * past the last good one. Then: transient → the gate shuts until a probe succeeds; fatal →
   * the journal stops for good.
   */
  private async commitFailed(failed: PendingAppend[], err: CommitError): Promise<void> {
    const fatal = classifyDiskError(err.original, err.duringSync) === "fatal";
    const all = failed.concat(this.pending.splice(0));
    const first = all[0];
    if (first) {
      this.nextPos = first.firstPos;
      for (const s of this.set.list) s.reserved = 0;
      this.pendingBytes = 0;
      // Segments opened for the refused appends alone go; the one before takes appends again.
      while (this.set.list.length > 1) {
        const s = this.set.list[this.set.list.length - 1]!;
        if (s.created || s.records > 0 || s.firstPos < first.firstPos) break;
        this.set.list.pop();
      }
      this.active = this.set.list[this.set.list.length - 1]!;
      if (this.active.firstPos <= first.firstPos) this.active.sealed = false;
      const seg = first.seg.created && !first.seg.deleted ? first.seg : null;
      if (seg?.fh && !fatal) {
        // Bytes a failed write left past the last good frame must not survive as a frame.
        seg.bytes = seg.indexedEnd;
        await seg.fh.truncate(seg.indexedEnd).catch(() => undefined);
      }
    }
    const why = describeDiskError(err.original);
    if (fatal) {
      this.failed = true;
      this.opts.emit({ kind: "fatal", error: `${err.duringSync ? "fsync failed" : "write failed"}: ${why}` });
    } else {
      this.gate.shut(err.original);
    }
    const e = new FloorgateError(fatal ? "JOURNAL_IO" : "JOURNAL_UNAVAILABLE", `journal write failed: ${why}`, { cause: err.original });
    for (const p of all) p.reject(e);
  }

  /** While the gate is shut: can the disk take a small file now? Frees garbage first. */
  private async probeWrite(): Promise<void> {
    if (this.closing || this.failed) return;
    this.gcWanted = true;
    await this.idle();
    const path = join(this.dir, PROBE_FILE);
    try {
      const fh = await this.opts.openFile(path, "w");
      try {
        await fh.write(Buffer.alloc(4 * KiB), 0, 4 * KiB, 0);
        await fh.datasync();
      } finally {
        await fh.close();
      }
    } finally {
      await unlink(path).catch(() => undefined);
    }
  }

  // ---------------------------------------------------------------- idle and close

  /** Resolves once no write, fsync or segment deletion is running or due (see SegmentJournal.idle). */
  idle(): Promise<void> {
    if (!this.ioRunning && this.pending.length === 0 && !this.gcWanted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.idleWaiters.push(resolve);
      void this.ioLoop();
    });
  }

  /**
   * Refuses appends from now on (synchronously, before the first await), stops the gate's
   * probes, and resolves once every queued append was committed (or refused by a failed commit).
   * The journal saves cursors and closes files only after this.
   */
  async close(): Promise<void> {
    this.closing = true;
    this.gate.close();
    if (this.pending.length > 0 || this.ioRunning) {
      await new Promise<void>((resolve) => {
        this.idleWaiters.push(resolve);
        void this.ioLoop();
      });
    }
    if (this.flushTimer) clearTimeout(this.flushTimer);
  }
}
