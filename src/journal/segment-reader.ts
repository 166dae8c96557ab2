import { open } from "node:fs/promises";
import { FloorgateError } from "../core/errors.js";
import type { JournaledSample } from "../core/sample.js";
import { SampleBatch, type SampleRun } from "../core/sample-columns.js";
import { FrameDecoder } from "./frame-decoder.js";
import { FRAME_PREFIX } from "./frame-format.js";
import type { RecentFrames } from "./recent-frames.js";
import { closeSegment, type Segment } from "./segment.js";

/** bytes read from disk per `read` call at most: large enough for fast backlog drains */
const READ_CHUNK = 4 * 1024 * 1024;
/**
 * Samples a disk read decodes beyond what was asked, kept for the reader's next reads. Why: a
 * forwarder behind the cache reads one batch per turn of the event loop (each read is a trip
 * through libuv's thread pool), and with thousands of devices polling a turn lasts milliseconds:
 * 4,000-sample reads capped catch-up at ~400k samples/s, below the rate being journaled.
 */
const READ_AHEAD = 65_536;
/** Read-ahead stashes kept, one per recent reader (each output reads at its own position). */
const READ_AHEAD_STASHES = 4;

/** What the reader needs of the journal: the live segment list and its durable edge. */
export interface ReaderHost {
  /** oldest first; the journal changes it in place */
  readonly segments: readonly Segment[];
  readonly cache: RecentFrames;
  durablePos(): number;
  oldestPos(): number;
  isClosed(): boolean;
}

/**
 * The journal's read path (Journal.readBatch): the recent-frames cache first, then read-ahead
 * stashes, then the segment files through their frame indexes. Never changes a file.
 */
export class SegmentReader {
  /** this reader's own: the names it decoded are shared by the batches it hands out */
  private readonly decoder = new FrameDecoder();

  constructor(private readonly host: ReaderHost) {}

  /** Forgets read-ahead (the journal is closing). */
  clear(): void {
    this.ahead.length = 0;
  }

  async readBatch(after: number, max: number): Promise<SampleBatch> {
    if (this.host.isClosed()) throw new FloorgateError("JOURNAL_CLOSED", "journal is closed");
    if (!(max > 0)) return SampleBatch.EMPTY;
    max = Math.floor(max);
    let start = Math.max(Math.floor(after) + 1, this.host.oldestPos());
    if (start > this.host.durablePos() || start <= 0) return SampleBatch.EMPTY;
    max = Math.min(max, this.host.durablePos() - start + 1);

    const runs: SampleRun[] = [];
    if (this.host.cache.covers(start)) {
      // A stash that starts inside the cache can never be read again (the cache is asked first).
      if (this.ahead.length > 0) this.dropCachedStashes();
      this.host.cache.readRuns(start, max, runs);
      return new SampleBatch(runs);
    }
    let got = this.takeAhead(start, max, runs);
    if (got > 0) {
      const lastRun = runs[runs.length - 1]!;
      start = lastRun.firstPos + lastRun.count;
      if (got >= max || start > this.host.durablePos()) return new SampleBatch(runs);
      if (this.host.cache.covers(start)) {
        this.host.cache.readRuns(start, max - got, runs);
        return new SampleBatch(runs);
      }
    }
    while (got < max) {
      const seg = this.segmentFor(start);
      if (!seg) break;
      // Read and decode ahead (see READ_AHEAD); what goes beyond `max` is stashed.
      const want = Math.min(max - got + READ_AHEAD, this.host.durablePos() - start + 1);
      const n = await this.readSegmentRuns(seg, start, want, runs);
      if (n === 0) break;
      got += n;
      const lastRun = runs[runs.length - 1]!;
      start = lastRun.firstPos + lastRun.count;
      // A chunk ended at a segment end (or READ_CHUNK): go on into the next segment or the cache.
      if (got >= max || start > this.host.durablePos()) break;
      if (this.host.cache.covers(start)) {
        got += this.host.cache.readRuns(start, max - got, runs);
        break;
      }
    }
    if (got > max) this.stashAhead(runs, max);
    return new SampleBatch(runs);
  }

  /** Decoded runs read ahead from disk, by first position; each holds consecutive positions. */
  private readonly ahead: SampleRun[][] = [];

  private dropCachedStashes(): void {
    for (let s = this.ahead.length - 1; s >= 0; s--) if (this.host.cache.covers(this.ahead[s]![0]!.firstPos)) this.ahead.splice(s, 1);
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
    const segs = this.host.segments;
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
    const loaded = await this.loadFrames(seg, start, max);
    if (!loaded) return 0;
    const { buf, frames } = loaded;
    let off = 0;
    let got = 0;
    try {
      for (let f = 0; f < frames && got < max; f++) {
        const run = this.decoder.decodeRun(buf, off, start, max - got);
        if (run === null) {
          const objs: JournaledSample[] = [];
          this.decoder.decode(buf, off, start, objs, max - got);
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
  private async loadFrames(seg: Segment, start: number, want: number): Promise<{ buf: Buffer; frames: number } | null> {
    const idx = seg.index;
    const first = idx.findFrom(start);
    if (first >= idx.length) return null;
    let last = first;
    let samples = idx.firstPos(first) + idx.count(first) - start;
    const from = idx.offset(first);
    while (last + 1 < idx.length && samples < want) {
      // Positions that jump mark a corrupt stretch skipped at recovery: its bytes are not read.
      if (idx.firstPos(last + 1) !== idx.firstPos(last) + idx.count(last)) break;
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
      if (seg.deleted && seg.pins === 0) await closeSegment(seg);
    }
    return seg.deleted ? null : { buf, frames: last - first + 1 };
  }
}
