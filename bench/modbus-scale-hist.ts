/**
 * A fixed-resolution histogram for latencies and jitter: constant memory however many values are
 * recorded (millions per run at scale), so measuring never grows the measurer's heap.
 */
export class Histogram {
  private readonly buckets: Uint32Array;
  private n = 0;
  private max = 0;
  private sum = 0;

  /** `resolutionMs` per bucket up to `rangeMs`; larger values land in the last bucket (max is exact). */
  constructor(private readonly resolutionMs = 0.1, rangeMs = 60_000) {
    this.buckets = new Uint32Array(Math.ceil(rangeMs / resolutionMs) + 1);
  }

  record(ms: number): void {
    if (!(ms >= 0)) ms = 0;
    const i = Math.min(this.buckets.length - 1, Math.floor(ms / this.resolutionMs));
    this.buckets[i]!++;
    this.n++;
    this.sum += ms;
    if (ms > this.max) this.max = ms;
  }

  reset(): void {
    this.buckets.fill(0);
    this.n = 0;
    this.max = 0;
    this.sum = 0;
  }

  get count(): number {
    return this.n;
  }

  /** Upper edge of the bucket holding quantile `q` (0..1); NaN when empty. */
  quantile(q: number): number {
    if (this.n === 0) return Number.NaN;
    const rank = Math.ceil(q * this.n);
    let seen = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      seen += this.buckets[i]!;
      if (seen >= rank) return Math.min(this.max, (i + 1) * this.resolutionMs);
    }
    return this.max;
  }

  summary(): { count: number; p50: number; p99: number; max: number; mean: number } {
    return { count: this.n, p50: this.quantile(0.5), p99: this.quantile(0.99), max: this.max, mean: this.n ? this.sum / this.n : Number.NaN };
  }
}
