import { saveCursors } from "./cursor-store.js";
import type { JournalOutputStats } from "./journal.js";
import type { PositionGaps } from "./position-gaps.js";

const PERSIST_MS = 1000;

interface OutputState {
  cursor: number;
  dropped: number;
  droppedDiskFull: number;
  corrupt: number;
  delivered: number;
}

/**
 * Each output's cursor and its accounting (delivered, dropped, corrupt), and the lazy saving of
 * cursors to `cursors.json`: at most about a second after a change and on close, so a crash
 * replays confirmed samples (at least once), never loses them. A failed save leaves the cursors
 * dirty and the next change tries again.
 */
export class OutputCursors {
  private readonly outputs = new Map<string, OutputState>();
  private dirty = false;
  private timer: NodeJS.Timeout | null = null;
  private chain: Promise<void> = Promise.resolve();
  private closing = false;

  constructor(private readonly dir: string) {}

  /** At open: `name` starts at `cursor`. */
  add(name: string, cursor: number): void {
    this.outputs.set(name, { cursor, dropped: 0, droppedDiskFull: 0, corrupt: 0, delivered: 0 });
  }

  get size(): number {
    return this.outputs.size;
  }

  has(name: string): boolean {
    return this.outputs.has(name);
  }

  cursor(name: string): number | undefined {
    return this.outputs.get(name)?.cursor;
  }

  /** The lowest cursor: every output has passed positions up to it. */
  passedAll(pos: number): boolean {
    for (const o of this.outputs.values()) if (o.cursor < pos) return false;
    return true;
  }

  /** Samples in [fromPos, toPos] lost to corruption at open, counted for outputs before them. */
  countCorrupt(fromPos: number, toPos: number): Record<string, number> {
    const perOutput: Record<string, number> = {};
    for (const [name, o] of this.outputs) {
      const lost = Math.max(0, toPos - Math.max(o.cursor, fromPos - 1));
      o.corrupt += lost;
      perOutput[name] = lost;
    }
    return perOutput;
  }

  /**
   * A segment ending at `lastPos` (first position `firstPos`) was deleted to make room: each
   * output not past it has the stored samples after its cursor counted as dropped, and its cursor
   * moves to the segment's end. Returns the count per output that lost any.
   */
  drop(firstPos: number, lastPos: number, gaps: PositionGaps, diskFull: boolean): Record<string, number> {
    const perOutput: Record<string, number> = {};
    for (const [name, o] of this.outputs) {
      if (o.cursor >= lastPos) continue;
      const from = Math.max(o.cursor, firstPos - 1);
      const lost = lastPos - from - (gaps.empty ? 0 : gaps.countIn(from, lastPos));
      o.dropped += lost;
      if (diskFull) o.droppedDiskFull += lost;
      o.cursor = lastPos;
      perOutput[name] = lost;
      this.changed();
    }
    return perOutput;
  }

  /** Moves `name`'s cursor forward to `to` (never back); false when it did not move. */
  commit(name: string, to: number, gaps: PositionGaps): boolean {
    const o = this.outputs.get(name);
    if (!o || !(to > o.cursor)) return false;
    o.delivered += to - o.cursor - (gaps.empty ? 0 : gaps.countIn(o.cursor, to));
    o.cursor = to;
    this.changed();
    return true;
  }

  stats(durablePos: number, gaps: PositionGaps): Record<string, JournalOutputStats> {
    const out: Record<string, JournalOutputStats> = {};
    for (const [name, o] of this.outputs) {
      const lag = Math.max(0, durablePos - o.cursor - (gaps.empty ? 0 : gaps.countIn(o.cursor, durablePos)));
      out[name] = { cursor: o.cursor, lag, dropped: o.dropped, droppedDiskFull: o.droppedDiskFull, corrupt: o.corrupt, delivered: o.delivered };
    }
    return out;
  }

  /** Marks the saved file out of date (e.g. it names outputs no longer configured). */
  changed(): void {
    this.dirty = true;
    if (this.timer || this.closing) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.save().catch(() => undefined);
    }, PERSIST_MS);
    this.timer.unref();
  }

  /** Saves now if anything changed; saves run one after another, and one failing does not stop the next. */
  save(): Promise<void> {
    this.chain = this.chain.catch(() => undefined).then(async () => {
      if (!this.dirty) return;
      this.dirty = false;
      const snapshot = new Map<string, number>();
      for (const [name, o] of this.outputs) snapshot.set(name, o.cursor);
      try {
        await saveCursors(this.dir, snapshot);
      } catch (err) {
        this.dirty = true;
        throw err;
      }
    });
    return this.chain;
  }

  /** No more timed saves; the caller makes the last `save()`. */
  close(): { dirty: boolean } {
    this.closing = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    return { dirty: this.dirty };
  }
}
