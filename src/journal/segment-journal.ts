import { mkdir, open, unlink } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { FloorgateError } from "../core/errors.js";
import type { JournaledSample, Sample } from "../core/sample.js";
import { CURSORS_FILE, loadCursors, removeIfExists, saveCursors, syncDir } from "./cursor-store.js";
import { lockDir } from "./dir-lock.js";
import { decodeFrame, decodeFrameRun, encodeFrame, FRAME_PREFIX } from "./frame-codec.js";
import { FrameIndex } from "./frame-index.js";
import { SLOW_IO_MS, type Journal, type JournalEvent, type JournalOptions, type JournalOutputStats, type JournalStats } from "./journal.js";
import { RecentFrames } from "./recent-frames.js";
import { SampleBatch, SampleColumns, type SampleRun } from "../core/sample-columns.js";
import { listSegments, scanSegment, segmentName } from "./segment-scan.js";

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
}

const KiB = 1024;
const MiB = 1024 * 1024;
/** bytes read from disk per `read` call at most: large enough for fast backlog drains */
const READ_CHUNK = 4 * MiB;
/**
 * Samples a disk read decodes beyond what was asked, kept for the reads that follow. Why: a
 * forwarder behind the cache reads one batch per turn of the event loop (each read is a trip
 * through libuv's thread pool), and with thousands of devices polling a turn lasts milliseconds:
 * 4,000-sample reads capped catch-up at ~400k samples/s, below the rate being journaled.
 */
const READ_AHEAD = 65_536;
/** Read-ahead stashes kept, one per recent reader (each output reads at its own position). */
const READ_AHEAD_STASHES = 4;
const CURSOR_PERSIST_MS = 1000;

/** clamp(maxBytes/16, 64 KiB, 64 MiB): about 16 segments, so drop-oldest drops ~6 % at a time. */
export function defaultSegmentBytes(maxBytes: number): number {
  return Math.min(64 * MiB, Math.max(64 * KiB, Math.floor(maxBytes / 16)));
}

interface Segment {
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

interface OutputState {
  cursor: number;
  dropped: number;
  delivered: number;
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
 * Drop accounting: when drop-oldest deletes a segment, every output whose cursor had not passed it
 * gets the samples after its cursor counted as `dropped` and its cursor moved to the segment's end,
 * so per output: cursor at open + delivered + dropped = cursor, and lag = newest - cursor. Samples
 * an output had read but not yet confirmed count as dropped (its later commit is a no-op).
 *
 * `waitFor` also resolves when the journal closes, so forwarders blocked on it wake up and stop.
 * A disk error makes the journal unwritable until it is reopened (the daemon answers 503).
 */
export class SegmentJournal implements Journal {
  private readonly opts: SegmentJournalOptions;
  private readonly dir: string;
  private readonly segmentBytes: number;
  private readonly groupBytes: number;
  /** see JournalOptions.slowIoMs */
  private readonly slowIoMs: number;
  /**
   * When the last group commit started (performance.now()). Under `fsync: batch` commits are at
   * least `fsyncIntervalMs` apart — the bound on fsyncs per second that spares flash — but an append
   * that finds the journal idle for longer is committed at once instead of waiting out an interval.
   */
  private lastCommitAt = -Infinity;
  private segments: Segment[] = [];
  private active!: Segment;
  private readonly outputs = new Map<string, OutputState>();
  private readonly cache: RecentFrames;
  private readonly cacheOn: boolean;

  /** next position to assign */
  private nextPos = 1;
  /** newest durable position */
  private durablePos = 0;
  private newestTs: number | null = null;
  private diskBytes = 0;
  private pendingBytes = 0;
  private pending: PendingAppend[] = [];

  private appended = 0;
  private tornRecords = 0;
  private rejected = 0;
  private writable = true;
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
  private cursorsDirty = false;
  private cursorTimer: NodeJS.Timeout | null = null;
  private persistChain: Promise<void> = Promise.resolve();

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
    const cacheSamples = opts.cacheSamples ?? 500_000;
    this.cache = new RecentFrames(cacheSamples);
    this.cacheOn = cacheSamples > 0;
  }

  // ---------------------------------------------------------------- recovery

  /** @internal called once by `openJournal` */
  async recover(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    this.unlock = await lockDir(this.dir);
    await removeIfExists(join(this.dir, `${CURSORS_FILE}.tmp`));
    const files = await listSegments(this.dir);
    for (let i = 0; i < files.length; i++) {
      const f = files[i]!;
      const isLast = i === files.length - 1;
      const path = join(this.dir, f.name);
      const fh = await open(path, isLast ? "r+" : "r");
      const seg = this.makeSegment(f.firstPos, true);
      seg.fh = fh;
      this.segments.push(seg);
      const scan = await scanSegment(fh, f.firstPos);
      seg.index = scan.index;
      seg.indexedEnd = scan.validEnd;
      seg.records = scan.records;
      seg.lastPos = scan.nextPos - 1;
      seg.firstTs = scan.firstTs;
      seg.bytes = scan.fileSize;
      if (scan.records > 0 && scan.lastTs !== null) this.newestTs = scan.lastTs;
      if (scan.problem) {
        const droppedRecords = 1 + scan.framesAfterProblem;
        this.tornRecords += droppedRecords;
        if (isLast) {
          // A torn tail was never acknowledged (its fsync did not complete): cut it off so new
          // frames follow the last good one.
          await fh.truncate(scan.validEnd);
          await fh.datasync();
          seg.bytes = scan.validEnd;
        }
        this.emit({
          kind: "torn-tail",
          segment: f.name,
          offset: scan.validEnd,
          droppedBytes: scan.fileSize - scan.validEnd,
          droppedRecords,
        });
      }
      this.diskBytes += seg.bytes;
      this.nextPos = Math.max(this.nextPos, scan.nextPos);
      if (!isLast) seg.sealed = true;
    }
    this.durablePos = this.nextPos - 1;
    const last = this.segments[this.segments.length - 1];
    if (last) this.active = last;
    else {
      this.active = this.makeSegment(this.nextPos, false);
      this.segments.push(this.active);
    }

    const saved = await loadCursors(this.dir);
    const floor = this.floorCursor();
    for (const name of this.opts.outputs) {
      const s = saved.get(name);
      const cursor = s === undefined ? floor : Math.min(this.durablePos, Math.max(floor, s));
      this.outputs.set(name, { cursor, dropped: 0, delivered: 0 });
    }
    if (saved.size !== this.outputs.size || [...saved.keys()].some((k) => !this.outputs.has(k))) this.cursorsDirty = true;
    this.recovered = true;
    this.gcWanted = true;
    void this.ioLoop();
  }

  private makeSegment(firstPos: number, created: boolean): Segment {
    const name = segmentName(firstPos);
    return {
      name,
      path: join(this.dir, name),
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

  private emit(e: JournalEvent): void {
    try {
      this.opts.onEvent?.(e);
    } catch {
      // a faulty listener must not break the journal
    }
  }

  // ---------------------------------------------------------------- append

  append(input: SampleColumns | readonly Sample[]): Promise<number> {
    if (this.closing) return Promise.reject(new FloorgateError("JOURNAL_CLOSED", "journal is closed"));
    if (!this.writable) return Promise.reject(new FloorgateError("JOURNAL_IO", "journal is not writable after a disk error"));
    if (input.length === 0) return Promise.resolve(this.durablePos);

    const firstPos = this.nextPos;
    let frame: Buffer;
    let samples: SampleColumns;
    try {
      // Columns, not per-sample copies: what is held until durable and then cached must not be one
      // object per sample (see SampleColumns). Copied now when given objects the caller may reuse.
      samples = input instanceof SampleColumns ? input : SampleColumns.fromSamples(input);
      frame = encodeFrame(samples, firstPos);
    } catch (err) {
      return Promise.reject(new FloorgateError("JOURNAL_IO", `cannot encode samples: ${(err as Error).message}`, { cause: err }));
    }
    const size = frame.length;

    if (this.opts.overflow === "reject") {
      const after = this.diskBytes + this.pendingBytes + size - this.reclaimableBytes();
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
      seg = this.makeSegment(firstPos, false);
      this.segments.push(seg);
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
        if (this.gcWanted && this.writable) {
          this.gcWanted = false;
          // A segment that cannot be deleted now is retried at the next commit or write.
          await this.collectGarbage().catch(() => undefined);
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
        // Create a new segment before making room: the newest file on disk carries the positions
        // across a restart, so it must exist before older ones may be deleted.
        if (!seg.created) {
          seg.fh = await open(seg.path, "wx+");
          seg.created = true;
          // The directory entry must be durable before anything in the file is acknowledged.
          await syncDir(this.dir);
        } else if (!seg.fh) {
          seg.fh = await open(seg.path, "r+");
        }
        lap("create");
        await this.makeRoom(bytes, seg);
        lap("room");
        const at = seg.bytes;
        if (j - i === 1) await writeFully(seg.fh!, batch[i]!.frame, at);
        else await writevFully(seg.fh!, batch.slice(i, j).map((p) => p.frame), bytes, at);
        seg.bytes += bytes;
        seg.reserved -= bytes;
        this.pendingBytes -= bytes;
        this.diskBytes += bytes;
        lap("write");
        await seg.fh!.datasync();
        lap("sync");
        this.madeDurable(batch, i, j, at);
        i = j;
      }
    } catch (err) {
      this.fail(batch.slice(i), err);
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
    if (this.segments.length > 1 && this.isGarbage(this.segments[0]!)) this.gcWanted = true;
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

  /** A disk error: everything not yet durable fails, and the journal stops accepting appends. */
  private fail(batch: PendingAppend[], err: unknown): void {
    this.writable = false;
    const e = new FloorgateError("JOURNAL_IO", `journal write failed: ${(err as Error).message}`, { cause: err });
    const all = batch.concat(this.pending.splice(0));
    for (const p of all) {
      p.seg.reserved = 0;
      p.reject(e);
    }
    this.pendingBytes = 0;
  }

  // ---------------------------------------------------------------- cap and deletion

  /** Bytes that garbage collection would free now: sealed segments every output has passed. */
  private reclaimableBytes(): number {
    let n = 0;
    for (const seg of this.segments) {
      if (!this.isGarbage(seg)) break;
      n += seg.bytes;
    }
    return n;
  }

  /** Sealed, fully written, older than the newest file on disk (which keeps positions across restarts), and passed by every output. */
  private isGarbage(seg: Segment): boolean {
    if (!seg.sealed || seg.reserved > 0 || seg === this.newestCreated()) return false;
    if (seg.records === 0) return true;
    for (const o of this.outputs.values()) if (o.cursor < seg.lastPos) return false;
    return true;
  }

  private newestCreated(): Segment | undefined {
    for (let i = this.segments.length - 1; i >= 0; i--) if (this.segments[i]!.created) return this.segments[i];
    return undefined;
  }

  private async collectGarbage(): Promise<void> {
    while (this.segments.length > 1 && this.isGarbage(this.segments[0]!)) await this.deleteOldest(false);
  }

  /** Before writing `need` bytes into `target`: free garbage, then (drop-oldest) drop the oldest data. */
  private async makeRoom(need: number, target: Segment): Promise<void> {
    await this.collectGarbage();
    if (this.opts.overflow !== "drop-oldest") return;
    while (this.diskBytes + need > this.opts.maxBytes) {
      const oldest = this.segments[0];
      if (!oldest || oldest === target || !oldest.sealed || oldest.reserved > 0 || !oldest.created) return;
      await this.deleteOldest(true);
    }
  }

  private async deleteOldest(dropping: boolean): Promise<void> {
    const seg = this.segments.shift()!;
    seg.deleted = true;
    this.diskBytes -= seg.bytes;
    if (dropping && seg.records > 0) {
      const perOutput: Record<string, number> = {};
      for (const [name, o] of this.outputs) {
        if (o.cursor >= seg.lastPos) continue;
        const lost = seg.lastPos - Math.max(o.cursor, seg.firstPos - 1);
        o.dropped += lost;
        o.cursor = seg.lastPos;
        perOutput[name] = lost;
        this.cursorsDirty = true;
      }
      if (this.cursorsDirty) this.scheduleCursorPersist();
      this.emit({ kind: "dropped-oldest", segment: seg.name, samples: seg.records, perOutput });
    }
    this.cache.dropBefore(seg.lastPos + 1);
    const started = performance.now();
    try {
      await unlink(seg.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    const ms = performance.now() - started;
    if (ms >= this.slowIoMs) this.emit({ kind: "slow-io", op: "delete", segment: seg.name, ms: Math.round(ms) });
    if (seg.pins === 0) await this.closeSegment(seg);
  }

  private async closeSegment(seg: Segment): Promise<void> {
    const fh = seg.fh;
    seg.fh = null;
    if (fh) await fh.close().catch(() => undefined);
  }

  // ---------------------------------------------------------------- read

  async read(after: number, max: number): Promise<JournaledSample[]> {
    return (await this.readBatch(after, max)).toArray();
  }

  async readBatch(after: number, max: number): Promise<SampleBatch> {
    if (this.closed) throw new FloorgateError("JOURNAL_CLOSED", "journal is closed");
    if (!(max > 0)) return SampleBatch.EMPTY;
    max = Math.floor(max);
    let start = Math.max(Math.floor(after) + 1, this.oldestPos());
    if (start > this.durablePos || start <= 0) return SampleBatch.EMPTY;
    max = Math.min(max, this.durablePos - start + 1);

    const runs: SampleRun[] = [];
    if (this.cache.covers(start)) {
      // A stash that starts inside the cache can never be read again (the cache is asked first).
      if (this.ahead.length > 0) this.dropCachedStashes();
      this.cache.readRuns(start, max, runs);
      return new SampleBatch(runs);
    }
    let got = this.takeAhead(start, max, runs);
    if (got > 0) {
      const lastRun = runs[runs.length - 1]!;
      start = lastRun.firstPos + lastRun.count;
      if (got >= max || start > this.durablePos) return new SampleBatch(runs);
      if (this.cache.covers(start)) {
        this.cache.readRuns(start, max - got, runs);
        return new SampleBatch(runs);
      }
    }
    while (got < max) {
      const seg = this.segmentFor(start);
      if (!seg) break;
      // Read and decode ahead (see READ_AHEAD); what goes beyond `max` is stashed.
      const want = Math.min(max - got + READ_AHEAD, this.durablePos - start + 1);
      const n = await this.readSegmentRuns(seg, start, want, runs);
      if (n === 0) break;
      got += n;
      const lastRun = runs[runs.length - 1]!;
      start = lastRun.firstPos + lastRun.count;
      // A chunk ended at a segment end (or READ_CHUNK): go on into the next segment or the cache.
      if (got >= max || start > this.durablePos) break;
      if (this.cache.covers(start)) {
        got += this.cache.readRuns(start, max - got, runs);
        break;
      }
    }
    if (got > max) this.stashAhead(runs, max);
    return new SampleBatch(runs);
  }

  /** Decoded runs read ahead from disk, by first position; each holds consecutive positions. */
  private readonly ahead: SampleRun[][] = [];

  private dropCachedStashes(): void {
    for (let s = this.ahead.length - 1; s >= 0; s--) if (this.cache.covers(this.ahead[s]![0]!.firstPos)) this.ahead.splice(s, 1);
  }

  /**
   * Moves the samples of `runs` past the first `keep` into a read-ahead stash (cutting the run
   * that straddles the line), leaving exactly `keep` in `runs`.
   */
  private stashAhead(runs: SampleRun[], keep: number): void {
    let n = 0;
    let i = 0;
    while (i < runs.length && n + runs[i]!.count <= keep) n += runs[i++]!.count;
    const rest: SampleRun[] = [];
    if (i < runs.length && n < keep) {
      const r = runs[i]!;
      const k = keep - n;
      runs[i] = { cols: r.cols, from: r.from, count: k, firstPos: r.firstPos };
      rest.push({ cols: r.cols, from: r.from + k, count: r.count - k, firstPos: r.firstPos + k });
      i++;
    }
    for (let j = i; j < runs.length; j++) rest.push(runs[j]!);
    runs.length = i;
    if (rest.length === 0) return;
    this.ahead.push(rest);
    if (this.ahead.length > READ_AHEAD_STASHES) this.ahead.shift();
  }

  /**
   * Up to `max` samples from `start` on out of a read-ahead stash that holds `start`, appended to
   * `runs`; returns how many (0 when no stash holds `start`). The stash keeps what is left.
   */
  private takeAhead(start: number, max: number, runs: SampleRun[]): number {
    for (let s = 0; s < this.ahead.length; s++) {
      const stash = this.ahead[s]!;
      const first = stash[0]!;
      const last = stash[stash.length - 1]!;
      if (start < first.firstPos || start >= last.firstPos + last.count) continue;
      let got = 0;
      let i = 0;
      while (i < stash.length && got < max) {
        const r = stash[i]!;
        const end = r.firstPos + r.count;
        if (end <= start) { i++; continue; }
        const skip = Math.max(0, start - r.firstPos);
        const k = Math.min(r.count - skip, max - got);
        runs.push({ cols: r.cols, from: r.from + skip, count: k, firstPos: r.firstPos + skip });
        got += k;
        if (skip + k < r.count) {
          stash[i] = { cols: r.cols, from: r.from + skip + k, count: r.count - skip - k, firstPos: r.firstPos + skip + k };
          break;
        }
        i++;
      }
      stash.splice(0, i);
      if (stash.length === 0) this.ahead.splice(s, 1);
      return got;
    }
    return 0;
  }

  /** The segment holding the first durable sample at or after `pos`. */
  private segmentFor(pos: number): Segment | undefined {
    const segs = this.segments;
    let lo = 0;
    let hi = segs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (segs[mid]!.lastPos >= pos) hi = mid;
      else lo = mid + 1;
    }
    for (let i = lo; i < segs.length; i++) if (segs[i]!.records > 0) return segs[i];
    return undefined;
  }

  /**
   * Frames of `seg` from `start` on, each decoded straight into columns (a frame of several
   * devices, which polls never write, goes through objects). Returns how many samples it added.
   */
  private async readSegmentRuns(seg: Segment, start: number, max: number, runs: SampleRun[]): Promise<number> {
    const buf = await this.loadFrames(seg, start, max);
    if (!buf) return 0;
    let off = 0;
    let got = 0;
    try {
      while (off < buf.length && got < max) {
        const run = decodeFrameRun(buf, off, start, max - got);
        if (run === null) {
          const objs: JournaledSample[] = [];
          decodeFrame(buf, off, start, objs, max - got);
          for (const r of SampleBatch.of(objs).runs) runs.push(r);
          got += objs.length;
        } else if (run.count > 0) {
          runs.push(run);
          got += run.count;
        }
        off += FRAME_PREFIX + buf.readUInt32LE(off);
      }
    } catch (err) {
      throw new FloorgateError("JOURNAL_CORRUPT", `undecodable frame in ${seg.name}: ${(err as Error).message}`, { cause: err });
    }
    return got;
  }

  /**
   * The bytes of the frames from the one holding `start` on, about `want` samples' worth and at
   * most READ_CHUNK; null when there are none or the segment was dropped while being read.
   */
  private async loadFrames(seg: Segment, start: number, want: number): Promise<Buffer | null> {
    const idx = seg.index;
    const first = idx.findFrom(start);
    if (first >= idx.length) return null;
    let last = first;
    let samples = idx.firstPos(first) + idx.count(first) - start;
    const from = idx.offset(first);
    while (last + 1 < idx.length && samples < want) {
      const nextEnd = last + 2 < idx.length ? idx.offset(last + 2) : seg.indexedEnd;
      if (nextEnd - from > READ_CHUNK) break;
      last++;
      samples += idx.count(last);
    }
    const to = last + 1 < idx.length ? idx.offset(last + 1) : seg.indexedEnd;
    const buf = Buffer.allocUnsafe(to - from);
    seg.pins++;
    try {
      if (!seg.fh) seg.fh = await open(seg.path, "r");
      let got = 0;
      while (got < buf.length) {
        const { bytesRead } = await seg.fh.read(buf, got, buf.length - got, from + got);
        if (bytesRead === 0) throw new Error(`unexpected end of ${seg.name}`);
        got += bytesRead;
      }
    } catch (err) {
      if (seg.deleted) return null; // dropped while we read: the caller continues at the new oldest
      throw new FloorgateError("JOURNAL_IO", `journal read failed in ${seg.name}: ${(err as Error).message}`, { cause: err });
    } finally {
      seg.pins--;
      if (seg.deleted && seg.pins === 0) await this.closeSegment(seg);
    }
    return seg.deleted ? null : buf;
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
    return this.outputs.get(name)?.cursor ?? this.floorCursor();
  }

  commit(name: string, pos: number): void {
    const o = this.outputs.get(name);
    if (!o || this.closed) return;
    const to = Math.min(Math.floor(pos), this.durablePos);
    if (!(to > o.cursor)) return;
    o.delivered += to - o.cursor;
    o.cursor = to;
    this.cursorsDirty = true;
    this.scheduleCursorPersist();
    if (this.segments.length > 1 && this.isGarbage(this.segments[0]!)) {
      this.gcWanted = true;
      this.kick();
    }
  }

  private scheduleCursorPersist(): void {
    if (this.cursorTimer || this.closing) return;
    this.cursorTimer = setTimeout(() => {
      this.cursorTimer = null;
      void this.persistCursors().catch(() => undefined);
    }, CURSOR_PERSIST_MS);
    this.cursorTimer.unref();
  }

  private persistCursors(): Promise<void> {
    this.persistChain = this.persistChain.then(async () => {
      if (!this.cursorsDirty) return;
      this.cursorsDirty = false;
      const snapshot = new Map<string, number>();
      for (const [name, o] of this.outputs) snapshot.set(name, o.cursor);
      try {
        await saveCursors(this.dir, snapshot);
      } catch (err) {
        this.cursorsDirty = true;
        throw err;
      }
    });
    return this.persistChain;
  }

  // ---------------------------------------------------------------- stats

  private oldestPos(): number {
    for (const seg of this.segments) if (seg.records > 0) return seg.index.firstPos(0);
    return 0;
  }

  stats(): JournalStats {
    let records = 0;
    let segments = 0;
    let oldestTs: number | null = null;
    for (const seg of this.segments) {
      records += seg.records;
      if (seg.created) segments++;
      if (oldestTs === null && seg.records > 0) oldestTs = seg.firstTs;
    }
    const outputs: Record<string, JournalOutputStats> = {};
    for (const [name, o] of this.outputs) {
      outputs[name] = { cursor: o.cursor, lag: Math.max(0, this.durablePos - o.cursor), dropped: o.dropped, delivered: o.delivered };
    }
    return {
      bytes: this.diskBytes,
      maxBytes: this.opts.maxBytes,
      segments,
      records,
      oldestPos: this.oldestPos(),
      newestPos: this.durablePos,
      oldestTs,
      newestTs: records > 0 ? this.newestTs : null,
      appended: this.appended,
      tornRecords: this.tornRecords,
      rejected: this.rejected,
      writable: this.writable,
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
    this.ahead.length = 0;
    if (this.pending.length > 0 || this.ioRunning) {
      await new Promise<void>((resolve) => {
        this.idleWaiters.push(resolve);
        void this.ioLoop();
      });
    }
    if (this.flushTimer) clearTimeout(this.flushTimer);
    if (this.cursorTimer) clearTimeout(this.cursorTimer);
    this.cursorTimer = null;
    for (const w of [...this.durableWaiters]) w.wake();
    let persistFailed: unknown = null;
    if (this.recovered && (this.outputs.size > 0 || this.cursorsDirty)) {
      await this.persistCursors().catch((err: unknown) => {
        persistFailed = err;
      });
    }
    this.closed = true;
    for (const seg of this.segments) if (seg.pins === 0) await this.closeSegment(seg);
    this.cache.clear();
    await this.unlock?.();
    this.unlock = null;
    if (persistFailed !== null) {
      throw new FloorgateError("JOURNAL_IO", `cannot save cursors: ${(persistFailed as Error).message}`, { cause: persistFailed });
    }
  }
}

/**
 * Writes `bufs` (`bytes` in all) back to back at `position`. One gather write instead of a
 * concatenated copy: the copy was a fresh ArrayBuffer per batch, and V8 counts those bytes toward
 * starting its next full GC.
 */
async function writevFully(fh: FileHandle, bufs: Buffer[], bytes: number, position: number): Promise<void> {
  const { bytesWritten } = await fh.writev(bufs, position);
  if (bytesWritten === bytes) return;
  if (bytesWritten < 0 || bytesWritten > bytes) throw new Error("short write");
  // A short gather write (a full disk, or a signal): the rest, copied once.
  await writeFully(fh, Buffer.concat(bufs, bytes).subarray(bytesWritten), position + bytesWritten);
}

async function writeFully(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done, position + done);
    if (bytesWritten <= 0) throw new Error("short write");
    done += bytesWritten;
  }
}
