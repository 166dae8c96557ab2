import { NumSet, parsed, parseMsgId } from "./dedup-ids.js";
import { DeviceIds, Family, familyOf, FreshClaim } from "./dedup-records.js";

/**
 * Remembers which `(deviceId, msgId)` pairs were stored durably during the last `windowMs`
 * (spec §4: 10 minutes), so a device's retry is acknowledged without being stored twice.
 *
 * Exact keys only: a false "seen" would acknowledge a message and not store it, a silent loss.
 *
 * Layout (bench/dedup.ts measures it): one record per device; time is cut into generations of
 * `windowMs / 4`, and an entry is forgotten with its whole generation once the newest moment of that
 * generation is `windowMs` old, so every entry lives at least `windowMs` and at most 1.25 × as long.
 * A msgId that ends in decimal digits (`agv-17-000123`), or in digit groups joined by `-` `_` `.`
 * `:` `/` (`dev-17-123-4`: a batch counter and the index in the batch), is kept as a number (its
 * digits, ≤ 15) in a typed-array hash set of its device's "family" (same prefix, same tail shape:
 * each group's digit count and the separators, so the pair gives the msgId back exactly; see
 * dedup-ids.ts), ~10 bytes an entry and no object per entry; nothing is deleted entry by entry: a
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
 *
 * Per message (the ingest's hottest path): the msgId is split once, at the claim, and the claim
 * carries the split and the family found to its settle; the device record of the previous claim is
 * reused without a Map lookup; a device's numeric in-flight msgIds are a list compared by number,
 * skipped altogether when the msgId's number is above all of them (a counter's next one); a set's
 * value range answers most fresh lookups of a counter without hashing.
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
  | { kind: "fresh"; readonly msgId: string; done(durable: boolean, now?: number): void }
  | { kind: "duplicate" }
  | { kind: "pending"; wait: Promise<boolean> };

const DUPLICATE: Claim = Object.freeze({ kind: "duplicate" as const });


/** Generations per window: an entry lives between `windowMs` and `windowMs × (1 + 1/GENS)`. */
const GENS_PER_WINDOW = 4;
/** Numeric families per device; a device's msgIds past them are kept as strings. */
const MAX_FAMILIES = 4;
/** In-flight numeric msgIds a device keeps in a list (scanned by number); more, and strings, go in a Map. */
const FLY_LIST = 128;

export class MsgIdDedup {
  private readonly windowMs: number;
  private readonly genMs: number;
  private readonly slots: number;
  private readonly maxPerDevice: number;
  private readonly maxTotal: number;
  private readonly devices = new Map<string, DeviceIds>();
  /** the device of the last claim and its record: a publish's messages skip the Map */
  private lastDevice: string | undefined;
  private lastIds: DeviceIds | undefined;
  /** generation number → entries in it, over all devices (a handful of keys), except `hotGen`'s */
  private readonly genCounts = new Map<number, number>();
  /** the generation entries go to now, and its entries not yet in `genCounts` (no Map op per entry) */
  private hotGen = -1;
  private hotCount = 0;
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

  /**
   * `now`: the clock's reading, when the caller just took one (a body's messages are claimed
   * together: one reading for all of them instead of one each).
   */
  claim(device: string, msgId: string, now: number = this.clock()): Claim {
    if (now >= this.nextExpiry) this.sweep(now);
    // parsed once: the claim keeps the split and the family for its settle
    const numeric = parseMsgId(msgId);
    const num = numeric ? parsed.value : -1;
    let d = device === this.lastDevice ? this.lastIds : this.devices.get(device);
    let fam: Family | undefined;
    if (d !== undefined) {
      if (d.flyHi >= num) {
        const pending = d.flying(msgId, num);
        if (pending !== undefined) return { kind: "pending", wait: pending.wait() };
      }
      if (numeric) {
        fam = familyOf(d, msgId, parsed.prefixLen, parsed.shape);
        if (fam !== undefined && fam.has(num)) return DUPLICATE;
      }
      // a msgId of a family may still be a string: stored while the families were full
      if (d.strings !== undefined && d.strings.has(msgId)) return DUPLICATE;
    } else this.devices.set(device, (d = new DeviceIds(this, device, this.slots)));
    this.lastDevice = device;
    this.lastIds = d;
    const claim = new FreshClaim(d, msgId, num, numeric ? parsed.prefixLen : 0, numeric ? parsed.shape : 0, fam);
    if (num >= 0 && d.fly.length < FLY_LIST) {
      claim.flyAt = d.fly.length;
      d.fly.push(claim);
    } else (d.flyMap ??= new Map()).set(msgId, claim);
    if (num > d.flyHi) d.flyHi = num;
    this.flying++;
    return claim;
  }

  /** Called once by a FreshClaim: records the outcome (`now`: the clock's reading, if the caller has one) and releases the msgId. */
  settle(claim: FreshClaim, durable: boolean, now: number | undefined): void {
    const d = claim.ids;
    // d is still in `devices`: a sweep keeps a device with a msgId in flight
    if (durable) this.add(d, d.device, claim.msgId, this.tickAt(now ?? this.clock()), claim.num, claim.prefixLen, claim.shape, claim.fam);
    const fly = d.fly;
    const i = claim.flyAt;
    if (i >= 0) {
      if (fly[i] !== claim) return; // not reached: a claim settles once
      const last = fly.pop()!;
      if (last !== claim) {
        fly[i] = last;
        last.flyAt = i;
      }
      this.flying--;
    } else if (d.flyMap?.get(claim.msgId) === claim) {
      d.flyMap.delete(claim.msgId);
      if (d.flyMap.size === 0) d.flyMap = undefined;
      this.flying--;
    } else return;
    if (fly.length === 0 && d.flyMap === undefined) d.flyHi = -1;
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
    if (d === undefined) this.devices.set(device, (d = new DeviceIds(this, device, this.slots)));
    else if (this.lookup(d, msgId)) return;
    if (parseMsgId(msgId)) this.add(d, device, msgId, at, parsed.value, parsed.prefixLen, parsed.shape, undefined);
    else this.add(d, device, msgId, at, -1, 0, 0, undefined);
  }

  private tick(): number {
    return this.tickAt(this.clock());
  }

  private tickAt(now: number): number {
    if (now >= this.nextExpiry) this.sweep(now);
    return now;
  }

  private lookup(d: DeviceIds, msgId: string): boolean {
    if (parseMsgId(msgId)) {
      const f = familyOf(d, msgId, parsed.prefixLen, parsed.shape);
      if (f !== undefined && f.has(parsed.value)) return true;
    }
    return d.strings !== undefined && d.strings.has(msgId);
  }

  /**
   * Files a msgId not yet held; `num` ≥ 0 with its split (`parsed`) for a numeric one, and `fam`
   * its family if the caller found it already.
   */
  private add(d: DeviceIds, device: string, msgId: string, at: number, num: number, prefixLen: number, shape: number, fam: Family | undefined): void {
    if (d.count >= this.maxPerDevice) this.evictDevice(d, device);
    if (this.total >= this.maxTotal) this.evictOldest();
    let gen = Math.floor(at / this.genMs);
    // A clock that stepped back files the entry in the newest generation: it then lives a bit
    // longer, never shorter.
    if (gen < this.newestGen) gen = this.newestGen;
    else this.newestGen = gen;
    const s = this.slotOf(d, gen);
    let added: boolean;
    let f = fam;
    if (num >= 0) {
      if (f === undefined || f.dead) f = familyOf(d, msgId, prefixLen, shape);
      if (f === undefined && d.families.length < MAX_FAMILIES) {
        d.families.push((f = new Family(msgId.slice(0, prefixLen), shape, this.slots)));
      }
    }
    if (f !== undefined) {
      let set = f.sets[s];
      if (set === undefined) {
        set = f.spare ?? new NumSet();
        f.spare = undefined;
        f.sets[s] = set;
      }
      added = set.add(num);
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
    if (gen === this.hotGen) this.hotCount++;
    else {
      this.flushHot();
      this.hotGen = gen;
      this.hotCount = 1;
      if (!this.genCounts.has(gen)) {
        const expires = (gen + 1) * this.genMs + this.windowMs;
        if (expires < this.nextExpiry) this.nextExpiry = expires;
      }
    }
  }

  /** Moves the hot generation's count into `genCounts`: before anything reads or changes it. */
  private flushHot(): void {
    if (this.hotCount > 0) this.genCounts.set(this.hotGen, (this.genCounts.get(this.hotGen) ?? 0) + this.hotCount);
    this.hotGen = -1;
    this.hotCount = 0;
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
    this.flushHot();
    const n = (this.genCounts.get(gen) ?? 0) + delta;
    if (n > 0) this.genCounts.set(gen, n);
    else this.genCounts.delete(gen);
    if (delta > 0) this.nextExpiry = Math.min(this.nextExpiry, (gen + 1) * this.genMs + this.windowMs);
  }

  /** Forgets every generation whose newest moment is `windowMs` old. */
  private sweep(now: number): void {
    this.flushHot();
    this.lastDevice = undefined;
    this.lastIds = undefined;
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
    let emptied = false;
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
      if (f.sets.every((x) => x === undefined)) emptied = f.dead = true;
    }
    if (emptied) d.families = fams.filter((f) => !f.dead);
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
    this.flushHot();
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
