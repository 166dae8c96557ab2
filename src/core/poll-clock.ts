/**
 * One timer for every poll in the process. Why: with a `setTimeout` and a promise per device per
 * poll, thousands of devices polled every second keep thousands of timer objects, closures and
 * promises alive for a whole period each, long enough for V8 to promote them all to the old
 * generation (a fifth of what the major GC collected at 2,000 devices). Here a device owns one
 * `ClockEntry` for its life, and waiting costs a place in a binary heap.
 *
 * Callers speak wall-clock time (polls are aligned to it); the heap and the timer use the monotonic
 * clock (`performance.now()`), the moment being converted once, at `schedule`. Why: an edge box's
 * wall clock steps (NTP correcting a box that booted with a wrong time); a wait measured against
 * `Date.now()` would then stall for as long as the clock stepped back.
 */

/** A scheduled callback, reused for every wait of its owner. */
export class ClockEntry {
  /** wall-clock ms (Date.now()) at which `fire` is called, as the caller asked */
  due = 0;
  /** the same moment on the monotonic clock (performance.now() ms): what the heap orders by */
  at = 0;
  /** place in the heap; -1 while not scheduled */
  slot = -1;
  constructor(readonly fire: () => void) {}
}

export class PollClock {
  private readonly heap: ClockEntry[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** `due` of the entry the timer is armed for */
  private armedFor = Number.POSITIVE_INFINITY;

  /** How many entries wait. */
  get size(): number {
    return this.heap.length;
  }

  /**
   * Calls `entry.fire` once at `due` (a time in the past means as soon as possible). An entry
   * already waiting is moved to the new time. `fire` runs on a timer callback and must not throw:
   * a throw is reported as an uncaught exception, like a throw from any timer.
   */
  schedule(entry: ClockEntry, due: number): void {
    if (entry.slot >= 0) this.remove(entry);
    entry.due = due;
    entry.at = performance.now() + (due - Date.now());
    entry.slot = this.heap.length;
    this.heap.push(entry);
    this.up(entry.slot);
    if (entry.at < this.armedFor) this.arm();
  }

  /** Forgets `entry` if it waits; its `fire` is not called. */
  cancel(entry: ClockEntry): void {
    if (entry.slot < 0) return;
    this.remove(entry);
    if (this.heap.length === 0) this.disarm();
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    this.armedFor = Number.POSITIVE_INFINITY;
    const now = performance.now();
    const heap = this.heap;
    // Node's timers round to whole milliseconds and may wake a fraction of one before `at`:
    // those entries are due now too, or they would wait a whole extra timer round.
    // Taken out first, then fired: an entry that reschedules itself for "now" runs next round.
    const due = this.due;
    while (heap.length > 0 && heap[0]!.at <= now + 1) {
      const e = heap[0]!;
      this.remove(e);
      due.push(e);
    }
    if (heap.length > 0) this.arm();
    try {
      for (let i = 0; i < due.length; i++) due[i]!.fire();
    } finally {
      due.length = 0;
    }
  };

  /** scratch list of the entries one timer round fires */
  private readonly due: ClockEntry[] = [];

  private arm(): void {
    const first = this.heap[0];
    if (!first) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.armedFor = first.at;
    this.timer = setTimeout(this.onTimer, Math.max(0, first.at - performance.now()));
  }

  private disarm(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.armedFor = Number.POSITIVE_INFINITY;
  }

  private remove(e: ClockEntry): void {
    const heap = this.heap;
    const i = e.slot;
    const last = heap.pop()!;
    e.slot = -1;
    if (last === e) return;
    heap[i] = last;
    last.slot = i;
    this.down(i);
    this.up(last.slot);
  }

  private up(i: number): void {
    const heap = this.heap;
    const e = heap[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pe = heap[p]!;
      if (pe.at <= e.at) break;
      heap[i] = pe;
      pe.slot = i;
      i = p;
    }
    heap[i] = e;
    e.slot = i;
  }

  private down(i: number): void {
    const heap = this.heap;
    const n = heap.length;
    const e = heap[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && heap[r]!.at < heap[l]!.at ? r : l;
      const ce = heap[c]!;
      if (ce.at >= e.at) break;
      heap[i] = ce;
      ce.slot = i;
      i = c;
    }
    heap[i] = e;
    e.slot = i;
  }
}

/** The process's clock for driver polls. */
export const pollClock = new PollClock();
