import type { DeviceState } from "./sample.js";
import type { TagValue } from "./status.js";

/** A device's state as it changed, with the gateway time of the change. */
export interface DeviceStateChange {
  id: string;
  state: DeviceState;
  error: string | null;
  ts: number;
}

export interface TapOptions {
  /**
   * Called once each time the subscription goes from nothing pending to something pending (and
   * not again until the next `take`). It runs synchronously inside the device table's update, on
   * the hot path of every poll: it must only schedule the subscriber's delivery (a timer, a
   * `setImmediate`), never deliver inline nor call back into the table.
   */
  onReady(): void;
  /**
   * Items that may wait at most: state changes plus distinct tags with a new value. Past it, new
   * items are dropped and counted in `missed` (default 10,000).
   */
  maxPending?: number;
  /** Which devices this subscriber wants (default: all). Asked once per update, keep it cheap. */
  devices?: (id: string) => boolean;
}

/** What waited for a subscriber since its last `take`. */
export interface TapBatch {
  /** state changes in the order they happened (never conflated while there is room) */
  states: DeviceStateChange[];
  /**
   * per device, the latest value of every tag that changed since the last take, read at take
   * time: a tag updated ten times in between is one entry with the newest value (conflated)
   */
  values: { device: string; tags: TagValue[] }[];
  /** items dropped since the last take because `maxPending` were waiting; 0 when none */
  missed: number;
}

/**
 * One subscriber's bounded mailbox on the device table (the tap the `/live` feed reads).
 *
 * Contract: the table *pushes* into the mailbox as things happen (state changes at once, value
 * updates as a "this tag changed" mark), and wakes the subscriber through `onReady`; the
 * subscriber drains it with `take` whenever it can send (the live feed: at most every 100 ms, and
 * only while its socket is not backed up). Memory per subscriber is bounded by `maxPending`
 * whatever the subscriber does: values are conflated per tag, and once the mailbox is full new
 * items are dropped and counted (`missed`, per batch and in total). A subscriber that sees
 * `missed > 0` has lost state changes or value updates and should resend a snapshot (or close).
 */
export interface TapSubscription {
  take(): TapBatch;
  /** items waiting now */
  readonly pending: number;
  /** items dropped over the subscription's life */
  readonly missedTotal: number;
  /** Stops deliveries; pending items are released. Idempotent. */
  close(): void;
}

/** Reads a device's latest value of one tag at take time. */
export type LatestReader = (device: string, tag: string) => TagValue | undefined;

/** @internal the mailbox behind a TapSubscription; the device table feeds it. */
export class TapMailbox implements TapSubscription {
  private states: DeviceStateChange[] = [];
  /** device → tags changed since the last take (a Set per device keeps them conflated) */
  private dirty = new Map<string, Set<string>>();
  private dirtyCount = 0;
  private missed = 0;
  private missedAll = 0;
  private notified = false;
  private readonly max: number;
  private readonly wants: ((id: string) => boolean) | undefined;

  constructor(private readonly opts: TapOptions, private readonly latest: LatestReader, private readonly onClose: () => void) {
    this.max = opts.maxPending ?? 10_000;
    this.wants = opts.devices;
  }

  get pending(): number {
    return this.states.length + this.dirtyCount;
  }

  get missedTotal(): number {
    return this.missedAll;
  }

  /** The tag set of `device` to mark into, or undefined when this subscriber does not want it. */
  tagsOf(device: string): Set<string> | undefined {
    if (this.wants !== undefined && !this.wants(device)) return undefined;
    let set = this.dirty.get(device);
    if (set === undefined) {
      set = new Set();
      this.dirty.set(device, set);
    }
    return set;
  }

  /** Marks `tag` of the device whose set `set` is (from `tagsOf`) as changed. */
  mark(set: Set<string>, tag: string): void {
    if (set.has(tag)) return;
    if (this.pending >= this.max) {
      this.missed++;
      this.missedAll++;
      return;
    }
    set.add(tag);
    this.dirtyCount++;
    this.ready();
  }

  state(change: DeviceStateChange): void {
    if (this.wants !== undefined && !this.wants(change.id)) return;
    if (this.pending >= this.max) {
      this.missed++;
      this.missedAll++;
      return;
    }
    this.states.push(change);
    this.ready();
  }

  take(): TapBatch {
    const states = this.states;
    const values: TapBatch["values"] = [];
    for (const [device, tags] of this.dirty) {
      if (tags.size === 0) continue;
      const out: TagValue[] = [];
      for (const tag of tags) {
        const v = this.latest(device, tag);
        if (v !== undefined) out.push(v);
      }
      if (out.length > 0) values.push({ device, tags: out });
    }
    const batch: TapBatch = { states, values, missed: this.missed };
    this.states = [];
    this.dirty = new Map();
    this.dirtyCount = 0;
    this.missed = 0;
    this.notified = false;
    return batch;
  }

  close(): void {
    this.states = [];
    this.dirty = new Map();
    this.dirtyCount = 0;
    this.onClose();
  }

  private ready(): void {
    if (this.notified) return;
    this.notified = true;
    this.opts.onReady();
  }
}
