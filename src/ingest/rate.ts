/**
 * Token bucket per device (spec §2 `ingest.ratePerDevice`, messages/s). A push of n messages takes
 * n tokens, all or nothing: a body is stored whole or refused whole, never cut at the rate.
 * The bucket holds at most `max(1, rate)` tokens (one second's worth; at least one message, so a
 * rate below 1/s still lets a message through now and then), and a new bucket starts with `rate`.
 * A body of more messages than the bucket can ever hold is refused with `tooMany`: waiting does
 * not help, it has to be split.
 *
 * Buckets are kept only for devices the ingest admitted (at most `ingest.maxDevices`); past
 * `maxBuckets` idle full buckets are swept, then the oldest, as a second bound.
 */
export type RateDecision = { ok: true } | { ok: false; retryAfterSec: number; tooMany?: true };

interface Bucket {
  tokens: number;
  at: number;
}

const OK: RateDecision = { ok: true };

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  /** most tokens a bucket holds: the largest body that can ever pass */
  readonly capacity: number;

  /** `ratePerSec` ≤ 0 or not finite means unlimited. */
  constructor(
    private readonly ratePerSec: number,
    private readonly clock: () => number = Date.now,
    private readonly maxBuckets = 100_000,
  ) {
    this.capacity = this.limited() ? Math.max(1, ratePerSec) : Infinity;
  }

  /** Takes `n` tokens (n messages) or none. */
  take(device: string, n = 1): RateDecision {
    if (!this.limited()) return OK;
    const b = this.bucket(device, true)!;
    if (b.tokens >= n) {
      b.tokens -= n;
      return OK;
    }
    const rate = this.ratePerSec;
    if (n > this.capacity) return { ok: false, retryAfterSec: Math.max(1, Math.ceil(n / rate)), tooMany: true };
    return { ok: false, retryAfterSec: Math.max(1, Math.ceil((n - b.tokens) / rate)) };
  }

  /**
   * Refuses when the device cannot afford even one message right now; takes nothing. Lets the
   * HTTP side refuse before reading a body that `take` would refuse anyway.
   */
  check(device: string): RateDecision {
    if (!this.limited()) return OK;
    const b = this.bucket(device, false);
    if (b === undefined || b.tokens >= 1) return OK;
    return { ok: false, retryAfterSec: Math.max(1, Math.ceil((1 - b.tokens) / this.ratePerSec)) };
  }

  /** Devices with a bucket (for tests and diagnostics). */
  size(): number {
    return this.buckets.size;
  }

  private limited(): boolean {
    const rate = this.ratePerSec;
    return rate > 0 && Number.isFinite(rate);
  }

  /** The device's bucket refilled to now; created (with `rate` tokens) when `create`. */
  private bucket(device: string, create: boolean): Bucket | undefined {
    const now = this.clock();
    let b = this.buckets.get(device);
    if (!b) {
      if (!create) return undefined;
      if (this.buckets.size >= this.maxBuckets) this.sweep(now);
      b = { tokens: this.ratePerSec, at: now };
      this.buckets.set(device, b);
      return b;
    }
    // max(0, …): a clock that steps back neither refills nor drains.
    b.tokens = Math.min(this.capacity, b.tokens + (Math.max(0, now - b.at) * this.ratePerSec) / 1000);
    b.at = now;
    return b;
  }

  private sweep(now: number): void {
    const rate = this.ratePerSec;
    for (const [id, b] of this.buckets) {
      if (b.tokens + (Math.max(0, now - b.at) * rate) / 1000 >= this.capacity) this.buckets.delete(id);
    }
    // Still full of active devices: drop the oldest entries (a reset bucket only grants a burst).
    while (this.buckets.size >= this.maxBuckets) {
      const first = this.buckets.keys().next();
      if (first.done) break;
      this.buckets.delete(first.value);
    }
  }
}
