/**
 * Token bucket per device (spec §2 `ingest.ratePerDevice`, messages/s, burst = rate). One push
 * (an HTTP request or an MQTT publish) takes one token, whatever number of messages it carries —
 * the body size is already capped by `maxPayloadBytes`.
 *
 * Buckets are kept only for devices that passed auth; idle full buckets are swept when the map
 * grows past `maxBuckets`, so a flood of glob ids cannot grow memory without bound.
 */
export type RateDecision = { ok: true } | { ok: false; retryAfterSec: number };

interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  /** `ratePerSec` ≤ 0 or not finite means unlimited. */
  constructor(
    private readonly ratePerSec: number,
    private readonly clock: () => number = Date.now,
    private readonly maxBuckets = 100_000,
  ) {}

  take(device: string): RateDecision {
    const rate = this.ratePerSec;
    if (!(rate > 0) || !Number.isFinite(rate)) return { ok: true };
    const now = this.clock();
    let b = this.buckets.get(device);
    if (!b) {
      if (this.buckets.size >= this.maxBuckets) this.sweep(now);
      b = { tokens: rate, at: now };
      this.buckets.set(device, b);
    } else {
      // max(0, …): a clock that steps back neither refills nor drains.
      b.tokens = Math.min(rate, b.tokens + (Math.max(0, now - b.at) * rate) / 1000);
      b.at = now;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterSec: Math.max(1, Math.ceil((1 - b.tokens) / rate)) };
  }

  /** Devices with a bucket (for tests and diagnostics). */
  size(): number {
    return this.buckets.size;
  }

  private sweep(now: number): void {
    const rate = this.ratePerSec;
    for (const [id, b] of this.buckets) {
      if (b.tokens + (Math.max(0, now - b.at) * rate) / 1000 >= rate) this.buckets.delete(id);
    }
    // Still full of active devices: drop the oldest entries (a reset bucket only grants a burst).
    while (this.buckets.size >= this.maxBuckets) {
      const first = this.buckets.keys().next();
      if (first.done) break;
      this.buckets.delete(first.value);
    }
  }
}
