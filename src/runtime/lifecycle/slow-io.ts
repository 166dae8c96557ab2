import type { Logger } from "../../core/logger.js";
import type { JournalEvent } from "../../journal/journal.js";

type SlowIo = Extract<JournalEvent, { kind: "slow-io" }>;

/**
 * Slow journal disk operations: each is counted (`floorgate_journal_slow_io_total{op}`), but a disk
 * that stays slow must not fill the log, so a warning is written for the first one and then at
 * most once per `everyMs`, with how many came in between and the slowest of them.
 */
export class SlowIoReporter {
  private lastLogAt = -Infinity;
  private since = 0;
  private slowestSince: SlowIo | undefined;
  /** operations reported before `countInto` (the journal opens before the gateway's metrics) */
  private early: SlowIo["op"][] = [];
  private count: (op: SlowIo["op"]) => void = (op) => { this.early.push(op); };

  constructor(private readonly log: Logger, private readonly everyMs = 60_000, private readonly now = (): number => Date.now()) {}

  /** Where counts go from now on; those reported before are counted there at once. */
  countInto(count: (op: SlowIo["op"]) => void): void {
    this.count = count;
    for (const op of this.early.splice(0)) count(op);
  }

  report(e: SlowIo): void {
    this.count(e.op);
    const t = this.now();
    if (t - this.lastLogAt < this.everyMs) {
      this.since++;
      if (!this.slowestSince || e.ms > this.slowestSince.ms) this.slowestSince = e;
      return;
    }
    const { kind: _k, ...rest } = e;
    const more = this.since > 0 ? { slowSinceLastLine: this.since, slowestSinceLastLine: this.slowestSince!.ms } : {};
    this.log.warn({ ...rest, ...more }, `journal: slow disk, ${e.op} took ${e.ms} ms`);
    this.lastLogAt = t;
    this.since = 0;
    this.slowestSince = undefined;
  }
}
