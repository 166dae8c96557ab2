import { mkdir, open, unlink } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { FloorgateError } from "../core/errors.js";
import type { JournaledSample, Sample } from "../core/sample.js";
import { SampleBatch, SampleColumns } from "../core/sample-columns.js";
import { CURSORS_FILE, loadCursors, removeIfExists, syncDir } from "./cursor-store.js";
import { lockDir } from "./dir-lock.js";
import { classifyDiskError, describeDiskError, errnoOf } from "./disk-errors.js";
import { writeFully, writevFully } from "./file-writes.js";
import { encodeFrame } from "./frame-codec.js";
import { withKeys } from "./frame-keys.js";
import { SLOW_IO_MS, type AppendOptions, type Journal, type JournalEvent, type JournalOptions, type JournalStats } from "./journal.js";
import { recoverSegments } from "./journal-recovery.js";
import { PositionGaps } from "./position-gaps.js";
import { OutputCursors } from "./output-cursors.js";
import { RecentFrames } from "./recent-frames.js";
import { makeSegment, type Segment } from "./segment.js";
import { SegmentSet } from "./segment-set.js";
import { SegmentReader } from "./segment-reader.js";
import { WriteGate } from "./write-gate.js";

/**
 * Extra knobs of the segment journal, for tests and benchmarks; the daemon uses the defaults.
 */
export interface SegmentJournalOptions extends JournalOptions {
  /**
   * samples kept in memory (as columns, ~17 bytes each) for live forwarding; default 500,000, a
   * few seconds, so a broker hiccup does not send the forwarders to the disk
   */
  cacheSamples?: number;
  /** pending bytes that trigger a group commit before `fsyncIntervalMs` (default 1 MiB) */
  groupCommitBytes?: number;
  /**
   * Opens segment files for writing (default fs/promises `open`): where the fault tests inject
   * EIO from an fsync or EMFILE from an open, which no real device here produces on demand.
   */
  openFile?: (path: string, flags: string) => Promise<FileHandle>;
}

const KiB = 1024;
const MiB = 1024 * 1024;
const PROBE_FILE = ".write-probe";

/** clamp(maxBytes/16, 64 KiB, 64 MiB): about 16 segments, so drop-oldest drops ~6 % at a time. */
export function defaultSegmentBytes(maxBytes: number): number {
  return Math.min(64 * MiB, Math.max(64 * KiB, Math.floor(maxBytes / 16)));
}

interface PendingAppend {
  seg: Segment;
  frame: Buffer;
  firstPos: number;
  count: number;
  firstTs: number;
  lastTs: number;
  /** null when the cache is off */
  cols: SampleColumns | null;
  queuedAt: number;
  resolve: (pos: number) => void;
  reject: (err: unknown) => void;
}

/**
 * Opens (creating if missing) the segment journal in `opts.dir` and recovers it: torn tails are
 * truncated and reported through `onEvent`, positions and cursors continue where they were.
 */
export async function openJournal(opts: SegmentJournalOptions): Promise<SegmentJournal> {
  const j = new SegmentJournal(opts);
  try {
    await j.recover();
  } catch (err) {
    await j.close().catch(() => undefined);
    if (err instanceof FloorgateError) throw err;
    throw new FloorgateError("JOURNAL_IO", `cannot open journal in ${opts.dir}: ${(err as Error).message}`, { cause: err });
  }
  return j;
}

/** A failure inside a commit, with whether it came from an fsync (see disk-errors.ts). */
class CommitError extends Error {
  constructor(readonly original: unknown, readonly duringSync: boolean) {
    super((original as Error)?.message ?? String(original), { cause: original });
  }
}

/**
 * Append-only segment files with one CRC-checked frame per append, grouped fdatasync, and an
 * in-memory frame index plus a cache of recent frames so forwarders rarely touch the disk.
 *
 * Cap: disk use stays within `maxBytes` plus one segment. Under drop-oldest a single append larger
 * than the whole cap is still accepted (that segment alone exceeds the cap until the next roll), and
 * segments whose frames are still being written cannot be dropped, so concurrent appends larger
 * than a segment may briefly overshoot by the bytes in flight.
 *
 * Samples returned by `read` may be shared between callers: treat them as read-only.
 *
 * Drop accounting: when a segment is deleted to make room (drop-oldest at the cap, or a full
 * disk), every output whose cursor had not passed it gets the samples after its cursor counted as
 * `dropped` and its cursor moved to the segment's end, so per output: cursor at open + delivered +
 * dropped = cursor, and lag = stored samples after the cursor. Samples an output had read but not
 * yet confirmed count as dropped (its later commit is a no-op).
 *
 * Disk errors: see disk-errors.ts. A transient one undoes the commit, refuses appends until a
 * probe write succeeds (JOURNAL_UNAVAILABLE) and recovers by itself; under drop-oldest a full
 * disk first drops the oldest whole segments. A failed fsync or EIO is fatal (JOURNAL_IO and a
 * "fatal" event). `waitFor` also resolves when the journal closes, so blocked forwarders stop.
 */
export class SegmentJournal implements Journal {
  private readonly opts: SegmentJournalOptions;
  private readonly dir: string;
  private readonly segmentBytes: number;
  private readonly groupBytes: number;
  /** see JournalOptions.slowIoMs */
  private readonly slowIoMs: number;
  private readonly openFile: (path: string, flags: string) => Promise<FileHandle>;
  /**
   * When the last group commit started (performance.now()). Under `fsync: batch` commits are at
   * least `fsyncIntervalMs` apart — the bound on fsyncs per second that spares flash — but an append
   * that finds the journal idle for longer is committed at once instead of waiting out an interval.
   */
  private lastCommitAt = -Infinity;
  private readonly set: SegmentSet;
  private active!: Segment;
  private readonly outputs: OutputCursors;
  private readonly cache: RecentFrames;
  private readonly cacheOn: boolean;
  private readonly reader: SegmentReader;
  private gaps = new PositionGaps();
  private keys: { at: number; keys: string[] }[] = [];

  /** next position to assign */
  private nextPos = 1;
  /** newest durable position */
  private durablePos = 0;
  private newestTs: number | null = null;
  private pendingBytes = 0;
  private pending: PendingAppend[] = [];
  /** a segment file was created and the directory not yet synced since */
  private dirDirty = false;

  private appended = 0;
  private tornRecords = 0;
  private corruptRecords = 0;
  private rejected = 0;
  private readonly gate: WriteGate;
  private failed = false;
  private closing = false;
  private closed = false;
  private closePromise: Promise<void> | null = null;

  private ioRunning = false;
  private gcWanted = false;
  private flushTimer: NodeJS.Timeout | null = null;
  private idleWaiters: (() => void)[] = [];
  private durableWaiters = new Set<{ after: number; wake: () => void }>();

  private unlock: (() => Promise<void>) | null = null;
  /** a journal whose open failed half-way must not overwrite cursors.json on close */
  private recovered = false;

  constructor(opts: SegmentJournalOptions) {
    if (!(opts.maxBytes > 0)) throw new FloorgateError("CONFIG_INVALID", `journal maxBytes must be > 0, got ${opts.maxBytes}`);
    if (!(opts.fsyncIntervalMs >= 0)) {
      throw new FloorgateError("CONFIG_INVALID", `journal fsyncIntervalMs must be ≥ 0, got ${opts.fsyncIntervalMs}`);
    }
    this.opts = opts;
    this.dir = opts.dir;
    this.segmentBytes = opts.segmentBytes ?? defaultSegmentBytes(opts.maxBytes);
    this.slowIoMs = opts.slowIoMs ?? SLOW_IO_MS;
    this.groupBytes = opts.groupCommitBytes ?? MiB;
    this.openFile = opts.openFile ?? ((path, flags) => open(path, flags));
    const cacheSamples = opts.cacheSamples ?? 500_000;
    this.cache = new RecentFrames(cacheSamples);
    this.cacheOn = cacheSamples > 0;
    this.outputs = new OutputCursors(opts.dir);
    this.set = new SegmentSet({
      overflow: opts.overflow,
      maxBytes: opts.maxBytes,
      slowIoMs: this.slowIoMs,
      outputs: this.outputs,
      cache: this.cache,
      gaps: () => this.gaps,
      emit: (e) => this.emit(e),
    });
    this.gate = new WriteGate(() => this.probeWrite(), (e) => this.emit(e));
    this.reader = new SegmentReader({
      segments: this.set.list,
      cache: this.cache,
      durablePos: () => this.durablePos,
      oldestPos: () => this.oldestPos(),
      isClosed: () => this.closed,
    });
  }

  // ---------------------------------------------------------------- recovery

  /** @internal called once by `openJournal` */
  async recover(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    this.unlock = await lockDir(this.dir);
    await removeIfExists(join(this.dir, `${CURSORS_FILE}.tmp`));
    await removeIfExists(join(this.dir, PROBE_FILE));
    const st = await recoverSegments(this.dir, { keysSince: Date.now() - (this.opts.keyWindowMs ?? 600_000), emit: (e) => this.emit(e) });
    this.set.list.push(...st.segments);
    this.nextPos = st.nextPos;
    this.newestTs = st.newestTs;
    this.set.diskBytes = st.diskBytes;
    this.tornRecords = st.tornRecords;
    this.gaps = st.gaps;
    this.keys = st.keys;
    this.durablePos = this.nextPos - 1;
    const last = this.set.list[this.set.list.length - 1];
    if (last) this.active = last;
    else {
      this.active = makeSegment(this.dir, this.nextPos, false);
      this.set.list.push(this.active);
    }

    const saved = await loadCursors(this.dir);
    const floor = this.floorCursor();
    for (const name of this.opts.outputs) {
      const s = saved.get(name);
      const cursor = s === undefined ? floor : Math.min(this.durablePos, Math.max(floor, s));
      this.outputs.add(name, cursor);
    }
    for (const c of st.corrupt) {
      const samples = c.toPos - c.fromPos + 1;
      this.corruptRecords += samples;
      const perOutput = this.outputs.countCorrupt(c.fromPos, c.toPos);
      this.emit({ kind: "corrupt", segment: c.segment, offset: c.offset, bytes: c.bytes, samples, perOutput });
    }
    if (saved.size !== this.outputs.size || [...saved.keys()].some((k) => !this.outputs.has(k))) this.outputs.changed();
    this.recovered = true;
    this.gcWanted = true;
    void this.ioLoop();
  }

  recentKeys(): { at: number; keys: string[] }[] {
    const k = this.keys;
    this.keys = [];
    return k;
  }

  private emit(e: JournalEvent): void {
    try {
      this.opts.onEvent?.(e);
    } catch {
      // a faulty listener must not break the journal
    }
  }

  // ---------------------------------------------------------------- append

  append(input: SampleColumns | readonly Sample[], opts?: AppendOptions): Promise<number> {
    if (this.closing) return Promise.reject(new FloorgateError("JOURNAL_CLOSED", "journal is closed"));
    if (this.failed) return Promise.reject(new FloorgateError("JOURNAL_IO", "journal stopped after a fatal disk error"));
    if (!this.gate.open) {
      this.gate.refuse(input.length);
      return Promise.reject(new FloorgateError("JOURNAL_UNAVAILABLE", `journal cannot write: ${this.gate.why ?? "disk error"}; retrying`));
    }
    if (input.length === 0) return Promise.resolve(this.durablePos);

    const firstPos = this.nextPos;
    let frame: Buffer;
    let samples: SampleColumns;
    try {
      // Columns, not per-sample copies: what is held until durable and then cached must not be one
      // object per sample (see SampleColumns). Copied now when given objects the caller may reuse.
      samples = input instanceof SampleColumns ? input : SampleColumns.fromSamples(input);
      frame = encodeFrame(samples, firstPos);
      if (opts?.keys && opts.keys.length > 0) frame = withKeys(frame, opts.keys, Date.now());
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
    if (seg.bytes + seg.reserved > 0 && seg.bytes + seg.reserved + size > this.segmentBytes) {
      seg.sealed = true;
      seg = makeSegment(this.dir, firstPos, false);
      this.set.list.push(seg);
      this.active = seg;
    }
    seg.reserved += size;
    this.pendingBytes += size;
    this.nextPos += samples.length;

    const cols = this.cacheOn ? samples : null;
    const count = samples.length;
    const firstTs = samples.ts[0]!;
    const lastTs = samples.ts[count - 1]!;
    return new Promise<number>((resolve, reject) => {
      this.pending.push({ seg, frame, firstPos, count, firstTs, lastTs, cols, queuedAt: performance.now(), resolve, reject });
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
    if (this.closing || this.opts.fsync === "always" || this.pendingBytes >= this.groupBytes) return true;
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
          await this.writeBatch(batch);
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

  /**
   * Writes `batch` (appends in position order, possibly spanning segments) one segment at a time:
   * write, fdatasync, then at once that segment's index and counters and the acks. Why per
   * segment: creating the next segment runs garbage collection and may drop the oldest data,
   * and both judge a segment by its counters; a segment whose fresh frames were not yet counted
   * looked empty and fully read, and was deleted with acknowledged samples in it.
   */
  private async writeBatch(batch: PendingAppend[]): Promise<void> {
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
            if (!isDiskFull(err) || !this.set.canDropFor(seg)) throw new CommitError(err, false);
            await seg.fh?.truncate(at).catch(() => undefined);
            await this.set.deleteOldest("disk_full");
          }
        }
        seg.bytes += bytes;
        seg.reserved -= bytes;
        this.pendingBytes -= bytes;
        this.set.diskBytes += bytes;
        try {
          await seg.fh!.datasync();
        } catch (err) {
          throw new CommitError(err, true);
        }
        lap("sync");
        this.gate.succeeded();
        this.madeDurable(batch, i, j, at);
        i = j;
      }
    } catch (err) {
      await this.commitFailed(batch.slice(i), err instanceof CommitError ? err : new CommitError(err, false));
      return;
    } finally {
      for (const w of this.durableWaiters) {
        if (this.durablePos > w.after) w.wake();
      }
    }
    const ms = performance.now() - started;
    if (ms >= this.slowIoMs && last) {
      const r = (x: number): number => Math.round(x);
      this.emit({ kind: "slow-io", op: "commit", segment: last.name, ms: r(ms), phases: { create: r(phases.create), room: r(phases.room), write: r(phases.write), sync: r(phases.sync) } });
    }
    if (this.set.garbageAtHead()) this.gcWanted = true;
  }

  /** Creates the segment file if needed, makes room, writes batch[i..j) at the segment's end. */
  private async writeGroup(seg: Segment, batch: PendingAppend[], i: number, j: number, bytes: number, lap: (k: "create" | "room" | "write") => void): Promise<void> {
    // Create a new segment before making room: the newest file on disk carries the positions
    // across a restart, so it must exist before older ones may be deleted.
    if (!seg.created) {
      seg.fh = await this.openFile(seg.path, "wx+");
      seg.created = true;
      this.dirDirty = true;
    } else if (!seg.fh) {
      seg.fh = await this.openFile(seg.path, "r+");
    }
    if (this.dirDirty) {
      // The directory entry must be durable before anything in the file is acknowledged.
      await syncDir(this.dir);
      this.dirDirty = false;
    }
    lap("create");
    await this.set.makeRoom(bytes, seg);
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
      this.appended += n;
      this.durablePos = seg.lastPos;
      this.newestTs = p.lastTs;
      if (p.cols) this.cache.add(p.firstPos, p.cols);
    }
    for (let k = i; k < j; k++) batch[k]!.resolve(batch[k]!.firstPos + batch[k]!.count - 1);
  }

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
      this.emit({ kind: "fatal", error: `${err.duringSync ? "fsync failed" : "write failed"}: ${why}` });
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
      const fh = await this.openFile(path, "w");
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

  // ---------------------------------------------------------------- read

  async read(after: number, max: number): Promise<JournaledSample[]> {
    return (await this.readBatch(after, max)).toArray();
  }

  readBatch(after: number, max: number): Promise<SampleBatch> {
    return this.reader.readBatch(after, max);
  }

  async waitFor(after: number, signal: AbortSignal): Promise<void> {
    if (this.durablePos > after || this.closing || signal.aborted) return;
    await new Promise<void>((resolve) => {
      const w = {
        after,
        wake: () => {
          this.durableWaiters.delete(w);
          signal.removeEventListener("abort", w.wake);
          resolve();
        },
      };
      this.durableWaiters.add(w);
      signal.addEventListener("abort", w.wake, { once: true });
    });
  }

  // ---------------------------------------------------------------- cursors

  /** Where a new output starts: before the oldest stored sample (after the newest when empty). */
  private floorCursor(): number {
    const oldest = this.oldestPos();
    return oldest > 0 ? oldest - 1 : this.durablePos;
  }

  cursor(name: string): number {
    return this.outputs.cursor(name) ?? this.floorCursor();
  }

  commit(name: string, pos: number): void {
    if (this.closed) return;
    if (!this.outputs.commit(name, Math.min(Math.floor(pos), this.durablePos), this.gaps)) return;
    if (this.set.garbageAtHead()) {
      this.gcWanted = true;
      this.kick();
    }
  }

  // ---------------------------------------------------------------- stats

  private oldestPos(): number {
    return this.set.oldestPos();
  }

  stats(): JournalStats {
    const { records, files: segments, oldestTs } = this.set.counts();
    const outputs = this.outputs.stats(this.durablePos, this.gaps);
    return {
      bytes: this.set.diskBytes,
      maxBytes: this.opts.maxBytes,
      segments,
      records,
      oldestPos: this.oldestPos(),
      newestPos: this.durablePos,
      oldestTs,
      newestTs: records > 0 ? this.newestTs : null,
      appended: this.appended,
      tornRecords: this.tornRecords,
      corruptRecords: this.corruptRecords,
      rejected: this.rejected,
      writable: !this.failed && this.gate.open,
      unwritable: this.failed ? "stopped after a fatal disk error" : this.gate.why,
      failed: this.failed,
      outputs,
    };
  }

  /**
   * Resolves once no write, fsync or segment deletion is running or due (pending appends written,
   * garbage collected). For tests and tools that look at the files; forwarding never needs it.
   */
  idle(): Promise<void> {
    if (!this.ioRunning && this.pending.length === 0 && !this.gcWanted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.idleWaiters.push(resolve);
      void this.ioLoop();
    });
  }

  // ---------------------------------------------------------------- close

  close(): Promise<void> {
    this.closePromise ??= this.doClose();
    return this.closePromise;
  }

  private async doClose(): Promise<void> {
    this.closing = true;
    this.gate.close();
    this.reader.clear();
    if (this.pending.length > 0 || this.ioRunning) {
      await new Promise<void>((resolve) => {
        this.idleWaiters.push(resolve);
        void this.ioLoop();
      });
    }
    if (this.flushTimer) clearTimeout(this.flushTimer);
    const { dirty } = this.outputs.close();
    for (const w of [...this.durableWaiters]) w.wake();
    let persistFailed: unknown = null;
    if (this.recovered && (this.outputs.size > 0 || dirty)) {
      await this.outputs.save().catch((err: unknown) => {
        persistFailed = err;
      });
    }
    this.closed = true;
    await this.set.closeAll();
    this.cache.clear();
    await this.unlock?.();
    this.unlock = null;
    if (persistFailed !== null) {
      throw new FloorgateError("JOURNAL_IO", `cannot save cursors: ${(persistFailed as Error).message}`, { cause: persistFailed });
    }
  }
}

function isDiskFull(err: unknown): boolean {
  const code = errnoOf(err);
  return code === "ENOSPC" || code === "EDQUOT";
}
