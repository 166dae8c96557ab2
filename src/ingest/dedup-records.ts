/**
 * The records the msgId dedup (dedup.ts) keeps: per device its remembered msgIds by family and
 * generation and the attempts in flight, and the `fresh` claim an attempt holds until it settles.
 * Their rules live in MsgIdDedup; these are its data, apart so that each file stays readable.
 */
import type { NumSet } from "./dedup-ids.js";
import type { MsgIdDedup } from "./dedup.js";

/** A device's msgIds with the same prefix and tail shape (see dedup-ids.ts `parsed`). */
export class Family {
  /** one set per generation slot of the device (see DeviceIds.gens) */
  readonly sets: (NumSet | undefined)[];
  /** a cleared set kept for the next generation: a steady device allocates nothing */
  spare: NumSet | undefined;
  /** dropped from its device (all its generations gone): a claim holding it looks again */
  dead = false;

  constructor(readonly prefix: string, readonly shape: number, slots: number) {
    this.sets = new Array<NumSet | undefined>(slots).fill(undefined);
  }

  has(v: number): boolean {
    const sets = this.sets;
    for (let s = 0; s < sets.length; s++) {
      const set = sets[s];
      if (set !== undefined && set.has(v)) return true;
    }
    return false;
  }
}

/** One device's remembered and in-flight msgIds. */
export class DeviceIds {
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
  /** the attempts storing a numeric msgId now (up to FLY_LIST), each at its `flyAt`: compared by number */
  readonly fly: FreshClaim[] = [];
  /** msgId → the attempt storing it now: string msgIds, and numeric ones past FLY_LIST */
  flyMap: Map<string, FreshClaim> | undefined;
  /**
   * At least the largest parsed value in flight (-1: none), until nothing is in flight: a counter's
   * next msgId is above it, and then nothing in flight can be it (same msgId, same value).
   */
  flyHi = -1;

  busy(): boolean {
    return this.fly.length > 0 || this.flyMap !== undefined;
  }

  /** The attempt storing `msgId` now (`num`: its parsed value, -1 if none). */
  flying(msgId: string, num: number): FreshClaim | undefined {
    if (num > this.flyHi) return undefined;
    if (num >= 0) {
      const fly = this.fly;
      for (let i = 0; i < fly.length; i++) {
        const c = fly[i]!;
        if (c.num === num && c.msgId === msgId) return c;
      }
    }
    return this.flyMap?.get(msgId);
  }

  constructor(
    /** the dedup it belongs to, and its device: kept here rather than in each claim */
    readonly owner: MsgIdDedup,
    readonly device: string,
    slots: number,
  ) {
    this.gens = new Array<number>(slots).fill(-1);
    this.counts = new Array<number>(slots).fill(0);
    this.stringSlots = new Array<string[] | undefined>(slots).fill(undefined);
  }
}

export function familyOf(d: DeviceIds, msgId: string, prefixLen: number, shape: number): Family | undefined {
  const fams = d.families;
  for (let i = 0; i < fams.length; i++) {
    const f = fams[i]!;
    if (f.shape === shape && f.prefix.length === prefixLen && (prefixLen === 0 || msgId.startsWith(f.prefix))) return f;
  }
  return undefined;
}

/**
 * The `fresh` claim. A class rather than closures, and the promise a concurrent duplicate waits on
 * is made only when one asks: almost every msgId is claimed and settled with nobody waiting. It
 * carries the msgId's split and family from the claim to the settle: the msgId is parsed once.
 * Ten of these live per pushed body until it is durable, so it holds only what differs per
 * message (its dedup and device are its DeviceIds').
 */
export class FreshClaim {
  /** an own field, not a prototype getter: `kind` is read on every claim of three shapes */
  readonly kind = "fresh" as const;
  /** its index in its device's `fly` list, -1 when in `flyMap` */
  flyAt = -1;
  /** made only if someone waits for the outcome (almost nobody does) */
  private waiter: { promise: Promise<boolean>; resolve: ((durable: boolean) => void) | undefined } | undefined;
  /** The outcome, once `done` (undefined until then: not yet settled). */
  private result: boolean | undefined;

  constructor(
    readonly ids: DeviceIds,
    readonly msgId: string,
    /** the parsed value, -1 for a msgId kept as a string */
    readonly num: number,
    readonly prefixLen: number,
    readonly shape: number,
    /** the family found at the claim (may be dead by the settle) */
    readonly fam: Family | undefined,
  ) {}

  /** `now`: the clock's reading when the caller has one (settling a body's claims together). */
  done(durable: boolean, now?: number): void {
    if (this.result !== undefined) return;
    this.result = durable;
    this.ids.owner.settle(this, durable, now);
    this.waiter?.resolve?.(durable);
  }

  /** Resolves with this attempt's outcome (true = durable); never rejects. */
  wait(): Promise<boolean> {
    if (this.waiter !== undefined) return this.waiter.promise;
    if (this.result !== undefined) {
      this.waiter = { promise: Promise.resolve(this.result), resolve: undefined };
      return this.waiter.promise;
    }
    let resolve: ((durable: boolean) => void) | undefined;
    const promise = new Promise<boolean>((r) => { resolve = r; });
    this.waiter = { promise, resolve };
    return promise;
  }
}
