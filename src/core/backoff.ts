/**
 * Exponential backoff with full jitter, capped. Used by the runtime for output reconnects and by
 * drivers for transport reconnects, so every retry loop in Floorgate behaves the same way.
 */
export interface BackoffOptions {
  initialMs?: number;
  maxMs: number;
  factor?: number;
  /** Replaceable for tests. */
  random?: () => number;
}

export class Backoff {
  private attempt = 0;
  private readonly initialMs: number;
  private readonly factor: number;
  private readonly random: () => number;
  constructor(private readonly opts: BackoffOptions) {
    this.initialMs = opts.initialMs ?? 100;
    this.factor = opts.factor ?? 2;
    this.random = opts.random ?? Math.random;
  }
  /** The next wait: a random point in [ceiling/2, ceiling], ceiling growing to maxMs. */
  next(): number {
    const ceiling = Math.min(this.opts.maxMs, this.initialMs * this.factor ** this.attempt);
    if (ceiling < this.opts.maxMs) this.attempt++;
    return Math.round(ceiling / 2 + (this.random() * ceiling) / 2);
  }
  reset(): void {
    this.attempt = 0;
  }
  get attempts(): number {
    return this.attempt;
  }
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason ?? new Error("aborted"));
    const t = setTimeout(() => { signal?.removeEventListener("abort", onAbort); resolve(); }, ms);
    const onAbort = (): void => { clearTimeout(t); reject(signal?.reason ?? new Error("aborted")); };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
