import { mkdir, open } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { FloorgateError } from "../core/errors.js";
import type { JournaledSample, Sample } from "../core/sample.js";
import type { SampleBatch, SampleColumns } from "../core/sample-columns.js";
import { CURSORS_FILE, loadCursors, removeIfExists } from "./cursor-store.js";
import { lockDir } from "./dir-lock.js";
import { SLOW_IO_MS, type AppendOptions, type Journal, type JournalEvent, type JournalOptions, type JournalStats } from "./journal.js";
import { recoverSegments } from "./journal-recovery.js";
import { PositionGaps } from "./position-gaps.js";
import { OutputCursors } from "./output-cursors.js";
import { RecentFrames } from "./recent-frames.js";
import { SegmentSet } from "./segment-set.js";
import { SegmentReader } from "./segment-reader.js";
import { PROBE_FILE, SegmentWriter } from "./segment-writer.js";

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

/** clamp(maxBytes/16, 64 KiB, 64 MiB): about 16 segments, so drop-oldest drops ~6 % at a time. */
export function defaultSegmentBytes(maxBytes: number): number {
  return Math.min(64 * MiB, Math.max(64 * KiB, Math.floor(maxBytes / 16)));
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
  private readonly set: SegmentSet;
  private readonly outputs: OutputCursors;
  private readonly cache: RecentFrames;
  private readonly reader: SegmentReader;
  /** the append path and the I/O loop: positions, the pending queue, commits, the write gate */
  private readonly writer: SegmentWriter;
  private gaps = new PositionGaps();
  private keys: { at: number; keys: string[] }[] = [];

  private tornRecords = 0;
  private corruptRecords = 0;
  private closed = false;
  private closePromise: Promise<void> | null = null;
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
    const slowIoMs = opts.slowIoMs ?? SLOW_IO_MS;
    const cacheSamples = opts.cacheSamples ?? 500_000;
    this.cache = new RecentFrames(cacheSamples);
    this.outputs = new OutputCursors(opts.dir);
    this.set = new SegmentSet({
      overflow: opts.overflow,
      maxBytes: opts.maxBytes,
      slowIoMs,
      outputs: this.outputs,
      cache: this.cache,
      gaps: () => this.gaps,
      emit: (e) => this.emit(e),
    });
    this.writer = new SegmentWriter({
      dir: opts.dir,
      overflow: opts.overflow,
      maxBytes: opts.maxBytes,
      fsync: opts.fsync,
      fsyncIntervalMs: opts.fsyncIntervalMs,
      segmentBytes: opts.segmentBytes ?? defaultSegmentBytes(opts.maxBytes),
      groupBytes: opts.groupCommitBytes ?? MiB,
      slowIoMs,
      cacheOn: cacheSamples > 0,
      openFile: opts.openFile ?? ((path, flags) => open(path, flags)),
      set: this.set,
      cache: this.cache,
      emit: (e) => this.emit(e),
      committed: () => this.wakeDurableWaiters(),
    });
    this.reader = new SegmentReader({
      segments: this.set.list,
      cache: this.cache,
      durablePos: () => this.writer.durablePos,
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
    this.set.diskBytes = st.diskBytes;
    this.tornRecords = st.tornRecords;
    this.gaps = st.gaps;
    this.keys = st.keys;
    this.writer.restore(st.nextPos, st.newestTs);

    const saved = await loadCursors(this.dir);
    const floor = this.floorCursor();
    const durablePos = this.writer.durablePos;
    for (const name of this.opts.outputs) {
      const s = saved.get(name);
      const cursor = s === undefined ? floor : Math.min(durablePos, Math.max(floor, s));
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
    this.writer.requestGc();
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
    return this.writer.append(input, opts);
  }

  // ---------------------------------------------------------------- read

  async read(after: number, max: number): Promise<JournaledSample[]> {
    return (await this.readBatch(after, max)).toArray();
  }

  readBatch(after: number, max: number): Promise<SampleBatch> {
    return this.reader.readBatch(after, max);
  }

  async waitFor(after: number, signal: AbortSignal): Promise<void> {
    if (this.writer.durablePos > after || this.writer.isClosing || signal.aborted) return;
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

  /** After every commit (see SegmentWriterOptions.committed): wakes the waiters it satisfied. */
  private wakeDurableWaiters(): void {
    const durablePos = this.writer.durablePos;
    for (const w of this.durableWaiters) {
      if (durablePos > w.after) w.wake();
    }
  }

  // ---------------------------------------------------------------- cursors

  /** Where a new output starts: before the oldest stored sample (after the newest when empty). */
  private floorCursor(): number {
    const oldest = this.oldestPos();
    return oldest > 0 ? oldest - 1 : this.writer.durablePos;
  }

  cursor(name: string): number {
    return this.outputs.cursor(name) ?? this.floorCursor();
  }

  commit(name: string, pos: number): void {
    if (this.closed) return;
    if (!this.outputs.commit(name, Math.min(Math.floor(pos), this.writer.durablePos), this.gaps)) return;
    if (this.set.garbageAtHead()) this.writer.requestGc();
  }

  // ---------------------------------------------------------------- stats

  private oldestPos(): number {
    return this.set.oldestPos();
  }

  stats(): JournalStats {
    const { records, files: segments, oldestTs } = this.set.counts();
    const durablePos = this.writer.durablePos;
    const w = this.writer.counters();
    const outputs = this.outputs.stats(durablePos, this.gaps);
    return {
      bytes: this.set.diskBytes,
      maxBytes: this.opts.maxBytes,
      segments,
      records,
      oldestPos: this.oldestPos(),
      newestPos: durablePos,
      oldestTs,
      newestTs: records > 0 ? w.newestTs : null,
      appended: w.appended,
      tornRecords: this.tornRecords,
      corruptRecords: this.corruptRecords,
      rejected: w.rejected,
      writable: w.writable,
      unwritable: w.unwritable,
      failed: w.failed,
      outputs,
    };
  }

  /**
   * Resolves once no write, fsync or segment deletion is running or due (pending appends written,
   * garbage collected). For tests and tools that look at the files; forwarding never needs it.
   */
  idle(): Promise<void> {
    return this.writer.idle();
  }

  // ---------------------------------------------------------------- close

  close(): Promise<void> {
    this.closePromise ??= this.doClose();
    return this.closePromise;
  }

  private async doClose(): Promise<void> {
    this.reader.clear();
    // Appends are refused from here on (synchronously); waits for those already queued.
    await this.writer.close();
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
