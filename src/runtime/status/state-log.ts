/**
 * Log lines for pushing devices' state changes, bounded. Why: a plant's fleet reconnecting together
 * (a 5G cell outage, a gateway restart) changes thousands of states within a second; a line each
 * (10,000 devices: ~20,000 lines) costs the event loop that the pollers share, and buries the log.
 * Only the log lines are summarised: every change still reaches the device table, /metrics, /live
 * and the outputs' status topics one by one.
 */
import type { Logger } from "../../core/logger.js";

export interface StateChangeLogOptions {
  /** changes logged one line each per interval; the rest go into the interval's summary (default 5) */
  perInterval?: number;
  /** the interval, ms (default 1,000) */
  intervalMs?: number;
}

/** Device ids named in a summary line, at most. */
const SUMMARY_IDS = 5;

/**
 * Logs the first `perInterval` changes of each interval one line each (as before: "device X
 * offline: why"); past that, counts them by state and logs one summary line when the interval
 * ends: "312 devices went offline, 298 online in the last 1 s (…)". Interval windows start at the
 * first change after a quiet spell. `flush` writes a pending summary now (at stop).
 */
export class StateChangeLog {
  private readonly perInterval: number;
  private readonly intervalMs: number;
  private windowStart = Number.NEGATIVE_INFINITY;
  private lines = 0;
  private readonly held = new Map<string, number>();
  private readonly heldIds: string[] = [];
  private heldTotal = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly log: Pick<Logger, "info">, opts: StateChangeLogOptions = {}) {
    this.perInterval = opts.perInterval ?? 5;
    this.intervalMs = opts.intervalMs ?? 1000;
  }

  change(id: string, state: string, error: string | null): void {
    const now = Date.now();
    if (now - this.windowStart >= this.intervalMs) {
      this.flush();
      this.windowStart = now;
      this.lines = 0;
    }
    if (this.lines < this.perInterval) {
      this.lines++;
      this.log.info({ device: id }, `device ${id} ${state}${error ? `: ${error}` : ""}`);
      return;
    }
    this.held.set(state, (this.held.get(state) ?? 0) + 1);
    if (this.heldIds.length < SUMMARY_IDS) this.heldIds.push(id);
    if (this.heldTotal++ === 0) {
      this.timer = setTimeout(() => this.flush(), Math.max(0, this.windowStart + this.intervalMs - now));
      this.timer.unref();
    }
  }

  /** Writes the summary of the changes held so far, if any. */
  flush(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.heldTotal === 0) return;
    const seconds = Math.round(this.intervalMs / 100) / 10;
    const counts = Object.fromEntries(this.held);
    const parts = [...this.held].map(([state, n], i) => (i === 0 ? `${n} device${n === 1 ? "" : "s"} went ${state}` : `${n} ${state}`));
    this.log.info(
      { stateChanges: counts, devices: [...this.heldIds] },
      `${parts.join(", ")} in the last ${seconds} s (a line each for the first ${this.perInterval} per ${seconds} s; every change is in /api/v1/devices, /metrics and /live)`,
    );
    this.held.clear();
    this.heldIds.length = 0;
    this.heldTotal = 0;
  }
}
