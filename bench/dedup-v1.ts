/**
 * The msgId dedup as it was before issue 15 (src/ingest/dedup.ts at 1310cca), kept only so that
 * bench/dedup.ts can compare the current structure against it in the same run. Not used by the gateway.
 */
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
  | { kind: "fresh"; readonly msgId: string; done(durable: boolean): void }
  | { kind: "duplicate" }
  | { kind: "pending"; wait: Promise<boolean> };

interface Bucket {
  /** minute number (ms / 60_000) */
  minute: number;
  byDevice: Map<string, IdList>;
}

/** msgIds of one device in one bucket, oldest first; `ids[head…]` are live (eviction advances head). */
interface IdList {
  ids: string[];
  head: number;
}

const MINUTE = 60_000;

export class MsgIdDedupV1 {
  private readonly windowMs: number;
  private readonly maxPerDevice: number;
  private readonly maxTotal: number;
  private readonly buckets: Bucket[] = [];
  /**
   * device → every msgId it has in any bucket: one lookup answers `has`, however many minute
   * buckets the window spans (a msgId is in at most one bucket). Its size is the per-device count.
   */
  private readonly perDevice = new Map<string, Set<string>>();
  /** device → msgId → the attempt storing it now (nested maps: no key string built per msgId) */
  private readonly inFlight = new Map<string, Map<string, FreshClaim>>();
  private flying = 0;
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
    return this.flying;
  }

  claim(device: string, msgId: string): Claim {
    let flying = this.inFlight.get(device);
    const pending = flying?.get(msgId);
    if (pending) return { kind: "pending", wait: pending.wait() };
    if (this.has(device, msgId)) return { kind: "duplicate" };
    if (!flying) this.inFlight.set(device, (flying = new Map()));
    const claim = new FreshClaim(this, device, msgId);
    flying.set(msgId, claim);
    this.flying++;
    return claim;
  }

  /** Called once by a FreshClaim: records the outcome and releases the msgId. */
  settle(claim: FreshClaim, durable: boolean): void {
    if (durable) this.add(claim.device, claim.msgId);
    const flying = this.inFlight.get(claim.device);
    if (flying?.get(claim.msgId) === claim) {
      flying.delete(claim.msgId);
      this.flying--;
      if (flying.size === 0) this.inFlight.delete(claim.device);
    }
  }

  /** True when `(device, msgId)` was stored durably within the window. */
  has(device: string, msgId: string): boolean {
    this.expire();
    return this.perDevice.get(device)?.has(msgId) === true;
  }

  /**
   * Remembers `(device, msgId)` as stored durably at `at` (ms): how the memory is rebuilt at
   * startup from the keys the journal kept in its frames, so a retry after a restart or `kill -9`
   * is recognised. Entries older than the window are ignored; call in time order, before any push.
   */
  remember(device: string, msgId: string, at: number): void {
    if (at + this.windowMs <= this.clock()) return;
    if (this.perDevice.get(device)?.has(msgId)) return;
    this.add(device, msgId, at);
  }

  private add(device: string, msgId: string, at = this.clock()): void {
    let all = this.perDevice.get(device);
    // claim() checked after expiring, and the msgId stayed in flight since: this only guards the counts.
    if (all?.has(msgId)) return;
    if (all !== undefined && all.size >= this.maxPerDevice) {
      while ((this.perDevice.get(device)?.size ?? 0) >= this.maxPerDevice) this.evictOldest("device_cap", device);
      all = this.perDevice.get(device);
    }
    if (this.total >= this.maxTotal) {
      while (this.total >= this.maxTotal) this.evictOldest("total_cap");
      all = this.perDevice.get(device);
    }
    const minute = Math.floor(at / MINUTE);
    let b = this.buckets[this.buckets.length - 1];
    // A clock that stepped back files the entry in the newest bucket: it then lives a bit longer, never shorter.
    if (!b || b.minute < minute) {
      b = { minute, byDevice: new Map() };
      this.buckets.push(b);
    }
    let list = b.byDevice.get(device);
    if (!list) b.byDevice.set(device, (list = { ids: [], head: 0 }));
    list.ids.push(msgId);
    if (!all) this.perDevice.set(device, (all = new Set()));
    all.add(msgId);
    this.total++;
  }

  /** Drops whole buckets whose every entry is older than the window. */
  private expire(): void {
    const now = this.clock();
    while (this.buckets.length > 0 && (this.buckets[0]!.minute + 1) * MINUTE + this.windowMs <= now) {
      const b = this.buckets.shift()!;
      for (const [device, list] of b.byDevice) {
        const all = this.perDevice.get(device);
        if (all) {
          for (let i = list.head; i < list.ids.length; i++) all.delete(list.ids[i]!);
          if (all.size === 0) this.perDevice.delete(device);
        }
        this.total -= list.ids.length - list.head;
      }
    }
  }

  private forget(device: string, msgId: string): void {
    this.total--;
    const all = this.perDevice.get(device);
    if (!all) return;
    all.delete(msgId);
    if (all.size === 0) this.perDevice.delete(device);
  }

  private evictOldest(reason: "device_cap" | "total_cap", device?: string): void {
    for (let i = 0; i < this.buckets.length; i++) {
      const b = this.buckets[i]!;
      const entry = device !== undefined ? b.byDevice.get(device) : b.byDevice.values().next().value;
      const dev = device ?? b.byDevice.keys().next().value;
      if (!entry || dev === undefined) continue;
      const first = entry.head < entry.ids.length ? entry.ids[entry.head++] : undefined;
      if (entry.head >= entry.ids.length) b.byDevice.delete(dev);
      else if (entry.head > 1024 && entry.head * 2 > entry.ids.length) {
        // compact now and then so a list evicted from the front does not keep its dead half
        entry.ids = entry.ids.slice(entry.head);
        entry.head = 0;
      }
      if (b.byDevice.size === 0) this.buckets.splice(i, 1);
      if (first === undefined) this.total--;
      else this.forget(dev, first);
      this.opts.onEvict?.(reason, dev);
      return;
    }
    // Counts and buckets disagree: resynchronise rather than loop forever.
    if (device !== undefined) this.perDevice.delete(device);
    else this.total = 0;
  }
}

/**
 * The `fresh` claim. A class rather than closures, and the promise a concurrent duplicate waits on
 * is made only when one asks: almost every msgId is claimed and settled with nobody waiting.
 */
class FreshClaim {
  readonly kind = "fresh" as const;
  private settled = false;
  private outcome: Promise<boolean> | undefined;
  private resolve: ((durable: boolean) => void) | undefined;

  constructor(private readonly owner: MsgIdDedupV1, readonly device: string, readonly msgId: string) {}

  done(durable: boolean): void {
    if (this.settled) return;
    this.settled = true;
    this.owner.settle(this, durable);
    if (this.resolve) this.resolve(durable);
    else this.outcome = Promise.resolve(durable);
  }

  /** Resolves with this attempt's outcome (true = durable); never rejects. */
  wait(): Promise<boolean> {
    return (this.outcome ??= new Promise<boolean>((r) => { this.resolve = r; }));
  }
}
