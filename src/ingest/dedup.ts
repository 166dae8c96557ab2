/**
 * Remembers which `(deviceId, msgId)` pairs were stored durably during the last `windowMs`
 * (spec §4: 10 minutes), so a device's retry is acknowledged without being stored twice.
 *
 * Exact keys only: a false "seen" would acknowledge a message and not store it, a silent loss.
 *
 * Layout (bench/dedup.ts measures it): one record per device; time is cut into generations of
 * `windowMs / 4`, and an entry is forgotten with its whole generation once the newest moment of that
 * generation is `windowMs` old, so every entry lives at least `windowMs` and at most 1.25 × as long.
 * A msgId that ends in decimal digits (`agv-17-000123`) is kept as a number in a typed-array hash
 * set of its device's "family" (same prefix, same digit count: the pair gives the msgId back
 * exactly), ~10 bytes an entry and no object per entry; nothing is deleted entry by entry: a
 * generation's sets are cleared, and reused by the next generation, at once. Any other msgId is
 * kept as its string in one Set per device (one lookup), and listed in its generation so that it
 * leaves the Set with it.
 *
 * Memory is bounded: past `maxPerDevice` entries of one device, or `maxTotal` of all devices, the
 * oldest generation (of that device, or of all) is forgotten early; every such entry is reported
 * through `onEvict`, because a retry of it would be stored twice.
 *
 * A msgId is only marked seen once its samples are durable (`Claim.done(true)`); while it is in
 * flight, a concurrent duplicate waits for the first attempt's outcome instead of storing again.
 */
export interface DedupOptions {
  /** default 600_000 (10 minutes) */
  windowMs?: number;
  /** default 160_000 (200 msg/s, the default rate, for 12.5 minutes, with headroom) */
  maxPerDevice?: number;
  /** default 8_000_000 (10,000 devices at 1 msg/s for 12.5 minutes, with headroom) */
  maxTotal?: number;
  /** `count` entries of `device` were forgotten before their window was up. */
  onEvict?(reason: "device_cap" | "total_cap", device: string, count: number): void;
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

const DUPLICATE: Claim = Object.freeze({ kind: "duplicate" as const });

/** Generations per window: an entry lives between `windowMs` and `windowMs × (1 + 1/GENS)`. */
const GENS_PER_WINDOW = 4;
/** Numeric families per device; a device's msgIds past them are kept as strings. */
const MAX_FAMILIES = 4;
/** Trailing digits taken as the number: 10^15 < 2^53, so the value is exact in a double. */
const MAX_DIGITS = 15;
/** Up to 9 digits the value + 1 fits a Uint32Array slot. */
const NARROW_DIGITS = 9;
const MIN_CAPACITY = 8;

/**
 * A set of whole numbers 0 ≤ v < 2^53 - 1: open addressing with linear probing in one typed array
 * (slot = v + 1, 0 = free). No deletion: a generation's set is only ever cleared as a whole.
 */
class NumSet {
  n = 0;
  private keys: Uint32Array | Float64Array;
  private shift: number;

  constructor(private readonly wide: boolean, capacity: number) {
    this.keys = wide ? new Float64Array(capacity) : new Uint32Array(capacity);
    this.shift = 32 - Math.log2(capacity);
  }

  get capacity(): number {
    return this.keys.length;
  }

  has(v: number): boolean {
    const keys = this.keys;
    const mask = keys.length - 1;
    const k = v + 1;
    for (let i = this.slot(v); ; i = (i + 1) & mask) {
      const x = keys[i]!;
      if (x === k) return true;
      if (x === 0) return false;
    }
  }

  /** False when `v` was already there. */
  add(v: number): boolean {
    if ((this.n + 1) * 4 > this.keys.length * 3) this.grow();
    const keys = this.keys;
    const mask = keys.length - 1;
    const k = v + 1;
    for (let i = this.slot(v); ; i = (i + 1) & mask) {
      const x = keys[i]!;
      if (x === k) return false;
      if (x === 0) {
        keys[i] = k;
        this.n++;
        return true;
      }
    }
  }

  clear(): void {
    this.keys.fill(0);
    this.n = 0;
  }

  /** Fibonacci hashing of the value's two 32-bit halves; the top bits pick the slot. */
  private slot(v: number): number {
    const h = this.wide ? (v >>> 0) ^ ((v / 4294967296) | 0) : v;
    return Math.imul(h, 0x9e3779b1) >>> this.shift;
  }

  private grow(): void {
    const old = this.keys;
    this.keys = this.wide ? new Float64Array(old.length * 2) : new Uint32Array(old.length * 2);
    this.shift--;
    this.n = 0;
    for (let i = 0; i < old.length; i++) if (old[i] !== 0) this.add(old[i]! - 1);
  }
}

/** A device's msgIds that are `prefix` followed by exactly `digits` decimal digits. */
class Family {
  /** one set per generation slot of the device (see DeviceIds.gens) */
  readonly sets: (NumSet | undefined)[];
  /** a cleared set kept for the next generation: a steady device allocates nothing */
  spare: NumSet | undefined;

  constructor(readonly prefix: string, readonly digits: number, slots: number) {
    this.sets = new Array<NumSet | undefined>(slots).fill(undefined);
  }
}

/** One device's remembered and in-flight msgIds. */
class DeviceIds {
  /** ring of generation slots (index gen % slots): the generation a slot holds, -1 when empty */
  readonly gens: number[];
  /** entries per slot */
  readonly counts: number[];
  /** the msgIds that are no family's, all slots: one lookup answers for the whole window */
  strings: Set<string> | undefined;
  /** per slot, the msgIds of `strings` it holds (to forget them with their generation) */
  readonly stringSlots: (string[] | undefined)[];
  families: Family[] = [];
  count = 0;
  /** the attempt storing a msgId now: most devices have at most one in flight, so no Map for it */
  one: FreshClaim | undefined;
  /** msgId → the attempt storing it now, for the others */
  flying: Map<string, FreshClaim> | undefined;

  busy(): boolean {
    return this.one !== undefined || (this.flying !== undefined && this.flying.size > 0);
  }

  constructor(slots: number) {
    this.gens = new Array<number>(slots).fill(-1);
    this.counts = new Array<number>(slots).fill(0);
    this.stringSlots = new Array<string[] | undefined>(slots).fill(undefined);
  }
}

/** The value of a msgId's trailing digits, set by `digitsAt` (a second return value, no allocation). */
let parsedValue = 0;

/** Where `msgId`'s trailing digits (at most MAX_DIGITS) start; `msgId.length` when there are none. */
function digitsAt(msgId: string): number {
  const len = msgId.length;
  let i = len;
  while (i > 0 && len - i < MAX_DIGITS) {
    const c = msgId.charCodeAt(i - 1);
    if (c < 48 || c > 57) break;
    i--;
  }
  let v = 0;
  for (let j = i; j < len; j++) v = v * 10 + (msgId.charCodeAt(j) - 48);
  parsedValue = v;
  return i;
}

function familyOf(d: DeviceIds, msgId: string, at: number, digits: number): Family | undefined {
  const fams = d.families;
  for (let i = 0; i < fams.length; i++) {
    const f = fams[i]!;
    if (f.digits === digits && f.prefix.length === at && msgId.startsWith(f.prefix)) return f;
  }
  return undefined;
}

export class MsgIdDedup {
  private readonly windowMs: number;
  private readonly genMs: number;
  private readonly slots: number;
  private readonly maxPerDevice: number;
  private readonly maxTotal: number;
  private readonly devices = new Map<string, DeviceIds>();
  /** generation number → entries in it, over all devices (a handful of keys) */
  private readonly genCounts = new Map<number, number>();
  /** new entries never go to an older generation than this (a clock that stepped back) */
  private newestGen = -1;
  /** when the oldest generation expires */
  private nextExpiry = Infinity;
  private total = 0;
  private flying = 0;

  constructor(private readonly clock: () => number = Date.now, private readonly opts: DedupOptions = {}) {
    this.windowMs = opts.windowMs ?? 600_000;
    this.genMs = Math.max(1, Math.ceil(this.windowMs / GENS_PER_WINDOW));
    // live generations span at most windowMs / genMs + 1 numbers; one more slot of slack
    this.slots = Math.ceil(this.windowMs / this.genMs) + 2;
    this.maxPerDevice = Math.max(1, opts.maxPerDevice ?? 160_000);
    this.maxTotal = Math.max(1, opts.maxTotal ?? 8_000_000);
  }

  /** Entries currently remembered (excluding in-flight ones). */
  size(): number {
    this.tick();
    return this.total;
  }

  /** msgIds being stored right now. */
  inFlightCount(): number {
    return this.flying;
  }

  claim(device: string, msgId: string): Claim {
    this.tick();
    let d = this.devices.get(device);
    if (d !== undefined) {
      const pending = d.one !== undefined && d.one.msgId === msgId ? d.one : d.flying?.get(msgId);
      if (pending !== undefined) return { kind: "pending", wait: pending.wait() };
      if (this.lookup(d, msgId)) return DUPLICATE;
    } else this.devices.set(device, (d = new DeviceIds(this.slots)));
    const claim = new FreshClaim(this, d, device, msgId);
    if (d.one === undefined) d.one = claim;
    else (d.flying ??= new Map()).set(msgId, claim);
    this.flying++;
    return claim;
  }

  /** Called once by a FreshClaim: records the outcome and releases the msgId. */
  settle(claim: FreshClaim, durable: boolean): void {
    const now = this.tick();
    const d = claim.ids;
    // d is still in `devices`: a sweep keeps a device with a msgId in flight
    if (durable) this.add(d, claim.device, claim.msgId, now);
    if (d.one === claim) {
      d.one = undefined;
      this.flying--;
    } else if (d.flying?.get(claim.msgId) === claim) {
      d.flying.delete(claim.msgId);
      this.flying--;
    }
  }

  /** True when `(device, msgId)` was stored durably within the window. */
  has(device: string, msgId: string): boolean {
    this.tick();
    const d = this.devices.get(device);
    return d !== undefined && this.lookup(d, msgId);
  }

  /**
   * Remembers `(device, msgId)` as stored durably at `at` (ms): how the memory is rebuilt at
   * startup from the keys the journal kept in its frames, so a retry after a restart or `kill -9`
   * is recognised. Entries older than the window are ignored; call in time order, before any push.
   */
  remember(device: string, msgId: string, at: number): void {
    if (at + this.windowMs <= this.tick()) return;
    let d = this.devices.get(device);
    if (d === undefined) this.devices.set(device, (d = new DeviceIds(this.slots)));
    else if (this.lookup(d, msgId)) return;
    this.add(d, device, msgId, at);
  }

  private tick(): number {
    const now = this.clock();
    if (now >= this.nextExpiry) this.sweep(now);
    return now;
  }

  private lookup(d: DeviceIds, msgId: string): boolean {
    const at = digitsAt(msgId);
    if (at < msgId.length) {
      const f = familyOf(d, msgId, at, msgId.length - at);
      if (f !== undefined) {
        const v = parsedValue;
        const sets = f.sets;
        for (let s = 0; s < sets.length; s++) if (sets[s]?.has(v) === true) return true;
      }
    }
    // a msgId of a family may still be a string: stored while the families were full
    return d.strings !== undefined && d.strings.has(msgId);
  }

  private add(d: DeviceIds, device: string, msgId: string, at: number): void {
    if (d.count >= this.maxPerDevice) this.evictDevice(d, device);
    if (this.total >= this.maxTotal) this.evictOldest();
    let gen = Math.floor(at / this.genMs);
    // A clock that stepped back files the entry in the newest generation: it then lives a bit
    // longer, never shorter.
    if (gen < this.newestGen) gen = this.newestGen;
    else this.newestGen = gen;
    const s = this.slotOf(d, gen);
    let added: boolean;
    const digitsFrom = digitsAt(msgId);
    const digits = msgId.length - digitsFrom;
    let f = digits > 0 ? familyOf(d, msgId, digitsFrom, digits) : undefined;
    if (f === undefined && digits > 0 && d.families.length < MAX_FAMILIES) {
      d.families.push((f = new Family(msgId.slice(0, digitsFrom), digits, this.slots)));
    }
    if (f !== undefined) {
      let set = f.sets[s];
      if (set === undefined) {
        set = f.spare ?? new NumSet(digits > NARROW_DIGITS, MIN_CAPACITY);
        f.spare = undefined;
        f.sets[s] = set;
      }
      added = set.add(parsedValue);
    } else {
      const strs = (d.strings ??= new Set());
      const before = strs.size;
      added = strs.add(msgId).size > before;
      if (added) (d.stringSlots[s] ??= []).push(msgId);
    }
    if (!added) return;
    d.counts[s]!++;
    d.count++;
    this.total++;
    const g = this.genCounts.get(gen);
    if (g === undefined) {
      this.genCounts.set(gen, 1);
      const expires = (gen + 1) * this.genMs + this.windowMs;
      if (expires < this.nextExpiry) this.nextExpiry = expires;
    } else this.genCounts.set(gen, g + 1);
  }

  /** The device's slot for generation `gen`; a slot still holding another generation is merged into the newer one. */
  private slotOf(d: DeviceIds, gen: number): number {
    const s = gen % this.slots;
    const held = d.gens[s]!;
    if (held === gen) return s;
    if (held === -1) d.gens[s] = gen;
    else if (held < gen) {
      // Not reached while the clock moves forward (live generations fit the ring); kept exact anyway.
      const n = d.counts[s]!;
      this.countGen(held, -n);
      this.countGen(gen, n);
      d.gens[s] = gen;
    }
    return s;
  }

  private countGen(gen: number, delta: number): void {
    const n = (this.genCounts.get(gen) ?? 0) + delta;
    if (n > 0) this.genCounts.set(gen, n);
    else this.genCounts.delete(gen);
    if (delta > 0) this.nextExpiry = Math.min(this.nextExpiry, (gen + 1) * this.genMs + this.windowMs);
  }

  /** Forgets every generation whose newest moment is `windowMs` old. */
  private sweep(now: number): void {
    const last = Math.floor((now - this.windowMs) / this.genMs) - 1;
    for (const [device, d] of this.devices) {
      for (let s = 0; s < d.gens.length; s++) {
        const g = d.gens[s]!;
        if (g !== -1 && g <= last) this.total -= this.clearSlot(d, s);
      }
      if (d.count === 0 && !d.busy()) this.devices.delete(device);
    }
    let next = Infinity;
    for (const g of this.genCounts.keys()) {
      if (g <= last) this.genCounts.delete(g);
      else next = Math.min(next, (g + 1) * this.genMs + this.windowMs);
    }
    this.nextExpiry = next;
  }

  /** Empties slot `s` of `d`; returns how many entries it held (the caller fixes `total`). */
  private clearSlot(d: DeviceIds, s: number): number {
    const n = d.counts[s]!;
    const fams = d.families;
    for (let i = 0; i < fams.length; i++) {
      const f = fams[i]!;
      const set = f.sets[s];
      if (set === undefined) continue;
      f.sets[s] = undefined;
      // keep it for the next generation unless it is far larger than this one needed
      if (set.n * 4 >= set.capacity || set.capacity <= 64) {
        set.clear();
        f.spare = set;
      }
    }
    const ids = d.stringSlots[s];
    if (ids !== undefined) {
      const strs = d.strings!;
      for (let i = 0; i < ids.length; i++) strs.delete(ids[i]!);
      if (strs.size === 0) d.strings = undefined;
      d.stringSlots[s] = undefined;
    }
    d.counts[s] = 0;
    d.gens[s] = -1;
    d.count -= n;
    if (fams.some((f) => f.sets.every((x) => x === undefined))) {
      d.families = fams.filter((f) => f.sets.some((x) => x !== undefined));
    }
    return n;
  }

  /** `maxPerDevice`: the device's oldest generation goes, even if it is the newest. */
  private evictDevice(d: DeviceIds, device: string): void {
    let s = -1;
    for (let i = 0; i < d.gens.length; i++) {
      if (d.gens[i] !== -1 && d.counts[i]! > 0 && (s === -1 || d.gens[i]! < d.gens[s]!)) s = i;
    }
    if (s === -1) {
      d.count = 0; // counts disagree: resynchronise rather than loop
      return;
    }
    const gen = d.gens[s]!;
    const n = this.clearSlot(d, s);
    this.total -= n;
    this.countGen(gen, -n);
    this.opts.onEvict?.("device_cap", device, n);
  }

  /** `maxTotal`: the oldest generation of every device goes (all of them, if only one is in use). */
  private evictOldest(): void {
    let oldest = Infinity;
    for (const g of this.genCounts.keys()) if (g < oldest) oldest = g;
    if (oldest === Infinity) {
      this.total = 0; // counts disagree: resynchronise rather than loop
      return;
    }
    for (const [device, d] of this.devices) {
      for (let s = 0; s < d.gens.length; s++) {
        if (d.gens[s] !== oldest) continue;
        const n = this.clearSlot(d, s);
        this.total -= n;
        if (n > 0) this.opts.onEvict?.("total_cap", device, n);
      }
    }
    this.genCounts.delete(oldest);
    let next = Infinity;
    for (const g of this.genCounts.keys()) next = Math.min(next, (g + 1) * this.genMs + this.windowMs);
    this.nextExpiry = next;
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

  constructor(
    private readonly owner: MsgIdDedup,
    readonly ids: DeviceIds,
    readonly device: string,
    readonly msgId: string,
  ) {}

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
