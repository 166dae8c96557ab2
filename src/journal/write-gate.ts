import { describeDiskError, UNWRITABLE_RETRY_MAX_MS, UNWRITABLE_RETRY_MIN_MS } from "./disk-errors.js";
import type { JournalEvent } from "./journal.js";

/**
 * Whether the journal takes appends while the disk refuses writes (see disk-errors.ts). Closed
 * by a transient failure; a probe (a small file written, synced and removed) then runs with
 * backoff, and the gate opens again when one succeeds. Appends arriving meanwhile are refused at
 * once and counted, so devices get a quick 503 instead of waiting on a disk that is full.
 */
export class WriteGate {
  private reason: string | null = null;
  private since = 0;
  private refused = 0;
  private retryMs = UNWRITABLE_RETRY_MIN_MS;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    private readonly probe: () => Promise<void>,
    private readonly emit: (e: JournalEvent) => void,
  ) {}

  get open(): boolean {
    return this.reason === null;
  }

  /** why appends are refused now, or null */
  get why(): string | null {
    return this.reason;
  }

  refuse(samples: number): void {
    this.refused += samples;
  }

  /** A write failed for a transient reason: refuse appends until a probe succeeds. */
  shut(err: unknown): void {
    const reason = describeDiskError(err);
    if (this.reason === null) {
      this.since = Date.now();
      this.refused = 0;
    }
    if (this.reason !== reason) this.emit({ kind: "unwritable", reason, error: String((err as Error)?.message ?? err) });
    this.reason = reason;
    this.arm();
  }

  private arm(): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.closed) return;
      this.probe().then(
        () => this.reopen(),
        (err: unknown) => {
          this.retryMs = Math.min(UNWRITABLE_RETRY_MAX_MS, this.retryMs * 2);
          this.shut(err);
        },
      );
    }, this.retryMs);
    this.timer.unref();
  }

  /**
   * A commit succeeded: the next failure starts its retries from the shortest wait again. Until
   * then the wait keeps growing, also across a probe that passed while the commit that followed
   * failed again (a probe file can be written while a segment still cannot).
   */
  succeeded(): void {
    if (this.retryMs !== UNWRITABLE_RETRY_MIN_MS && this.reason === null) this.retryMs = UNWRITABLE_RETRY_MIN_MS;
  }

  private reopen(): void {
    if (this.reason === null || this.closed) return;
    this.reason = null;
    this.emit({ kind: "writable", unwritableMs: Date.now() - this.since, refusedSamples: this.refused });
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
