/**
 * Remembers which `(deviceId, msgId)` pairs were stored durably during the last `windowMs`
 * (spec §4: 10 minutes), so a device's retry is acknowledged without being stored twice.
 *
 * Memory is bounded: entries live in one bucket per minute (whole buckets expire at once, no
 * per-entry timers), and both a per-device and an overall cap evict the oldest entries first.
 * Every eviction is reported through `onEvict`, because an evicted msgId can be stored twice.
 *
 * A msgId is only marked seen once its samples are durable (`Claim.done(true)`); while it is in
 * flight, a concurrent duplicate waits for the first attempt's outcome instead of storing again.
 */
export interface DedupOptions {
  /** default 600_000 (10 minutes) */
  windowMs?: number;
  /** default 130_000 (200 msg/s for 10 minutes, with headroom) */
  maxPerDevice?: number;
  /** default 500_000 */
  maxTotal?: number;
  onEvict?(reason: "device_cap" | "total_cap", device: string): void;
}

/**
 * - `fresh`: nobody has this msgId; the caller stores it and must call `done(durable)` exactly once.
 * - `duplicate`: stored durably within the window; acknowledge without storing.
 * - `pending`: another attempt is storing it now; `wait` resolves with that attempt's outcome
 *   (true = durable), never rejects.
 */
export type Claim =
  | { kind: "fresh"; done(durable: boolean): void }
  | { kind: "duplicate" }
  | { kind: "pending"; wait: Promise<boolean> };

interface Bucket {
  /** minute number (ms / 60_000) */
  minute: number;
  byDevice: Map<string, Set<string>>;
}

const MINUTE = 60_000;

export class MsgIdDedup {
  private readonly windowMs: number;
  private readonly maxPerDevice: number;
  private readonly maxTotal: number;
  private readonly buckets: Bucket[] = [];
  private readonly perDevice = new Map<string, number>();
  private readonly inFlight = new Map<string, Promise<boolean>>();
  private total = 0;

  constructor(private readonly clock: () => number = Date.now, private readonly opts: DedupOptions = {}) {
    this.windowMs = opts.windowMs ?? 600_000;
    this.maxPerDevice = Math.max(1, opts.maxPerDevice ?? 130_000);
    this.maxTotal = Math.max(1, opts.maxTotal ?? 500_000);
  }

  /** Entries currently remembered (excluding in-flight ones). */
  size(): number {
    this.expire();
    return this.total;
  }

  /** msgIds being stored right now. */
  inFlightCount(): number {
    return this.inFlight.size;
  }

  claim(device: string, msgId: string): Claim {
    const key = `${device}\n${msgId}`;
    const pending = this.inFlight.get(key);
    if (pending) return { kind: "pending", wait: pending };
    if (this.has(device, msgId)) return { kind: "duplicate" };
    let resolve!: (durable: boolean) => void;
    const wait = new Promise<boolean>((r) => { resolve = r; });
    this.inFlight.set(key, wait);
    let settled = false;
    return {
      kind: "fresh",
      done: (durable) => {
        if (settled) return;
        settled = true;
        if (durable) this.add(device, msgId);
        this.inFlight.delete(key);
        resolve(durable);
      },
    };
  }

  /** True when `(device, msgId)` was stored durably within the window. */
  has(device: string, msgId: string): boolean {
    this.expire();
    for (let i = this.buckets.length - 1; i >= 0; i--) {
      if (this.buckets[i]!.byDevice.get(device)?.has(msgId)) return true;
    }
    return false;
  }

  private add(device: string, msgId: string): void {
    if (this.has(device, msgId)) return;
    while ((this.perDevice.get(device) ?? 0) >= this.maxPerDevice) this.evictOldest("device_cap", device);
    while (this.total >= this.maxTotal) this.evictOldest("total_cap");
    const minute = Math.floor(this.clock() / MINUTE);
    let b = this.buckets[this.buckets.length - 1];
    // A clock that stepped back files the entry in the newest bucket: it then lives a bit longer, never shorter.
    if (!b || b.minute < minute) {
      b = { minute, byDevice: new Map() };
      this.buckets.push(b);
    }
    let set = b.byDevice.get(device);
    if (!set) b.byDevice.set(device, (set = new Set()));
    set.add(msgId);
    this.perDevice.set(device, (this.perDevice.get(device) ?? 0) + 1);
    this.total++;
  }

  /** Drops whole buckets whose every entry is older than the window. */
  private expire(): void {
    const now = this.clock();
    while (this.buckets.length > 0 && (this.buckets[0]!.minute + 1) * MINUTE + this.windowMs <= now) {
      const b = this.buckets.shift()!;
      for (const [device, set] of b.byDevice) this.forget(device, set.size);
    }
  }

  private forget(device: string, n: number): void {
    this.total -= n;
    const left = (this.perDevice.get(device) ?? 0) - n;
    if (left > 0) this.perDevice.set(device, left);
    else this.perDevice.delete(device);
  }

  private evictOldest(reason: "device_cap" | "total_cap", device?: string): void {
    for (let i = 0; i < this.buckets.length; i++) {
      const b = this.buckets[i]!;
      const entry = device !== undefined ? b.byDevice.get(device) : b.byDevice.values().next().value;
      const dev = device ?? b.byDevice.keys().next().value;
      if (!entry || dev === undefined) continue;
      const first = entry.values().next();
      if (!first.done) entry.delete(first.value);
      if (entry.size === 0) b.byDevice.delete(dev);
      if (b.byDevice.size === 0) this.buckets.splice(i, 1);
      this.forget(dev, 1);
      this.opts.onEvict?.(reason, dev);
      return;
    }
    // Counts and buckets disagree: resynchronise rather than loop forever.
    if (device !== undefined) this.perDevice.delete(device);
    else this.total = 0;
  }
}
