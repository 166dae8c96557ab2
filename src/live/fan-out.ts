import type { DeviceStateChange, TapOptions, TapSubscription } from "../core/device-tap.js";
import type { Logger } from "../core/logger.js";
import type { DeviceState } from "../core/sample.js";
import type { TagValue } from "../core/status.js";
import { capVerdict, type CapOptions, type CapState } from "./cap-policy.js";
import { PendingUpdates } from "./conflation.js";
import { globsMatcher, matchesEverything, type Matcher } from "./glob.js";
import type { LiveCloseReason, LiveCounters, LiveFrameType } from "./metrics.js";
import { samplesFrame, snapshotFrame, subscriptionKey, type DeviceFrame, type LiveSample, type SnapshotDevice, type Subscription } from "./protocol.js";

/** One client's socket as the fan-out sees it (a `ws` WebSocket in the hub; a fake in the model test). */
export interface LiveSink {
  /** bytes sent but not yet taken by the peer (ws `bufferedAmount`) */
  readonly bufferedAmount: number;
  /** false when the socket is no longer open (nothing was sent) */
  send(data: Buffer): boolean;
  close(code: number, reason: string): void;
}

/** The part of the gateway the fan-out reads: the device table's tap and its current state. */
export interface FanOutSource {
  /** the device-state tap (src/core/device-tap.ts): the fan-out holds at most one subscription */
  subscribe(opts: TapOptions): TapSubscription;
  states(): { id: string; state: DeviceState; error: string | null }[];
  /** latest value of each tag of a device; undefined when unknown */
  tags(device: string): TagValue[] | undefined;
}

export interface FanOutDeps {
  source: FanOutSource;
  counters: LiveCounters;
  log: Logger;
  options: CapOptions & { tapMaxPending: number };
  /**
   * Asks for a `flush` soon (the tap has something, or a client is held). Called from inside the
   * device table's update: it must only schedule, never flush inline.
   */
  requestFlush(): void;
}

/** The clients that asked for the same globs: filtered and encoded once per flush for all of them. */
class Group {
  readonly clients = new Set<FanClient>();
  readonly allDevices: boolean;
  readonly allTags: boolean;
  private readonly deviceOk: Matcher;
  private readonly tagOk: Matcher;
  // Bounded caches of match results: a glob runs once per id, not once per update.
  private readonly devCache = new Map<string, boolean>();
  private readonly tagCache = new Map<string, boolean>();

  constructor(readonly key: string, sub: Subscription) {
    this.deviceOk = globsMatcher(sub.devices);
    this.tagOk = globsMatcher(sub.tags);
    this.allDevices = matchesEverything(this.deviceOk);
    this.allTags = matchesEverything(this.tagOk);
  }

  get all(): boolean {
    return this.allDevices && this.allTags;
  }

  wantsDevice(id: string): boolean {
    return this.allDevices || cached(this.devCache, id, this.deviceOk);
  }

  wantsTag(tag: string): boolean {
    return this.allTags || cached(this.tagCache, tag, this.tagOk);
  }
}

function cached(cache: Map<string, boolean>, key: string, m: Matcher): boolean {
  let v = cache.get(key);
  if (v === undefined) {
    if (cache.size >= 50_000) cache.clear();
    v = m(key);
    cache.set(key, v);
  }
  return v;
}

/** One client's state in the fan-out. */
export class FanClient {
  /** null until the client's first `subscribe` */
  group: Group | null = null;
  /** answered (pong or any frame) since the last heartbeat (kept by the hub) */
  alive = true;
  readonly cap: CapState = { overSince: undefined };
  /** conflated updates held while over the cap */
  readonly pending = new PendingUpdates();
  /** a `snapshot` is owed (after a subscribe, or after the tap missed updates) */
  needsSnapshot = false;
  /** over its cap at the last flush: flushes keep coming until it is not */
  held = false;
  /** set once the server decided to close it; nothing more is sent */
  closing: LiveCloseReason | undefined = undefined;
  /** its close is counted already (a slow close is counted when decided: the socket may linger) */
  counted = false;

  constructor(readonly sink: LiveSink) {}
}

type Encoded = { data: Buffer; type: LiveFrameType };

/**
 * The fan-out of the live feed, without sockets or timers: clients grouped by subscription, ONE
 * tap subscription for all of them (opened with the first subscriber, closed with the last), and
 * per flush the tap's batch filtered and encoded once per group and written to every client of the
 * group that is under its outbound cap. A client over its cap is held: its updates are conflated
 * (newest per tag and per device) and sent once it has drained, or it is closed with 1013 once it
 * has been over for `slowCloseMs`. See src/live/README.md for why one tap subscription.
 */
export class FanOut {
  readonly clients = new Set<FanClient>();
  private readonly groups = new Map<string, Group>();
  /** encoded snapshot per group key; cleared whenever a flush carried anything */
  private readonly snapshots = new Map<string, Buffer>();
  private tap: TapSubscription | null = null;
  private subscribed = 0;
  private stopped = false;

  constructor(private readonly deps: FanOutDeps) {}

  /** true while the fan-out holds its tap subscription */
  get tapOpen(): boolean {
    return this.tap !== null;
  }

  add(sink: LiveSink): FanClient {
    const c = new FanClient(sink);
    this.clients.add(c);
    this.deps.counters.clients = this.clients.size;
    return c;
  }

  /** The client's socket is gone: forget it, count why. */
  remove(c: FanClient): void {
    if (!this.clients.delete(c)) return;
    this.deps.counters.clients = this.clients.size;
    if (!c.counted) this.deps.counters.closed(c.closing ?? "client");
    this.leaveGroup(c);
    c.pending.clear();
  }

  /** The server closes a client (a bad frame, the heartbeat, a stop); counted when its socket ends. */
  closeClient(c: FanClient, reason: LiveCloseReason, code: number, text: string): void {
    if (c.closing !== undefined) return;
    c.closing = reason;
    c.pending.clear();
    c.sink.close(code, text);
  }

  subscribe(c: FanClient, sub: Subscription, now: number): void {
    const key = subscriptionKey(sub);
    if (c.group?.key !== key) {
      this.leaveGroup(c);
      let g = this.groups.get(key);
      if (g === undefined) {
        g = new Group(key, sub);
        this.groups.set(key, g);
      }
      g.clients.add(c);
      c.group = g;
      this.subscribed++;
      this.openTap();
    }
    c.pending.clear();
    c.needsSnapshot = true;
    this.deliverSnapshot(c, now);
  }

  private leaveGroup(c: FanClient): void {
    const g = c.group;
    if (g === null) return;
    g.clients.delete(c);
    if (g.clients.size === 0) {
      this.groups.delete(g.key);
      this.snapshots.delete(g.key);
    }
    c.group = null;
    this.subscribed--;
    if (this.subscribed === 0) this.closeTap();
  }

  /** Sends the owed snapshot now when the client is under its cap; otherwise the flushes retry. */
  private deliverSnapshot(c: FanClient, now: number): void {
    const v = capVerdict(c.cap, c.sink.bufferedAmount, now, this.deps.options);
    if (v === "close") return this.closeSlow(c);
    if (v === "hold") {
      c.held = true;
      this.deps.requestFlush();
      return;
    }
    c.held = false;
    c.needsSnapshot = false;
    c.pending.clear();
    this.send(c, this.snapshotOf(c.group!), "snapshot");
  }

  private snapshotOf(g: Group): Buffer {
    const hit = this.snapshots.get(g.key);
    if (hit !== undefined) return hit;
    const devices: SnapshotDevice[] = [];
    for (const d of this.deps.source.states()) {
      if (!g.wantsDevice(d.id)) continue;
      const tags = this.deps.source.tags(d.id) ?? [];
      devices.push({ id: d.id, state: d.state, error: d.error, tags: g.allTags ? tags : tags.filter((t) => g.wantsTag(t.tag)) });
    }
    const buf = Buffer.from(snapshotFrame(devices));
    this.snapshots.set(g.key, buf);
    return buf;
  }

  private openTap(): void {
    if (this.tap !== null || this.stopped) return;
    this.tap = this.deps.source.subscribe({ onReady: () => this.deps.requestFlush(), maxPending: this.deps.options.tapMaxPending });
  }

  private closeTap(): void {
    this.tap?.close();
    this.tap = null;
  }

  /** One fan-out round: the tap's batch to every subscribed client, held ones retried. */
  flush(now: number): void {
    const states: DeviceFrame[] = [];
    const samples: LiveSample[] = [];
    /** the samples of each device, as slices of `samples`: a group filters devices, not every sample */
    const byDevice: { device: string; from: number; to: number }[] = [];
    if (this.tap !== null) {
      const batch = this.tap.take();
      if (batch.missed > 0) this.resync(batch.missed);
      for (const s of batch.states) states.push(deviceFrame(s));
      for (const { device, tags } of batch.values) {
        const from = samples.length;
        for (const t of tags) samples.push(t.unit === undefined
          ? { device, tag: t.tag, value: t.value, quality: t.quality, ts: t.ts }
          : { device, tag: t.tag, value: t.value, quality: t.quality, ts: t.ts, unit: t.unit });
        byDevice.push({ device, from, to: samples.length });
      }
    }
    if (states.length > 0 || samples.length > 0) this.snapshots.clear();
    let held = 0;
    for (const g of this.groups.values()) {
      const gs = g.allDevices ? states : states.filter((s) => g.wantsDevice(s.id));
      const gv = g.all ? samples : pick(g, samples, byDevice);
      const any = gs.length > 0 || gv.length > 0;
      let shared: Encoded[] | undefined;
      for (const c of g.clients) {
        if (c.closing !== undefined || (!any && !c.held && !c.needsSnapshot)) continue;
        if (this.deliver(c, now, gs, gv, () => (shared ??= encodeUpdates(gs, gv)))) held++;
      }
    }
    if (held > 0) {
      this.deps.counters.held += held;
      this.deps.requestFlush();
    }
  }

  /** One client's share of a flush; true when it is held (over its cap). */
  private deliver(c: FanClient, now: number, states: DeviceFrame[], samples: LiveSample[], shared: () => Encoded[]): boolean {
    const v = capVerdict(c.cap, c.sink.bufferedAmount, now, this.deps.options);
    if (v === "close") {
      this.closeSlow(c);
      return false;
    }
    if (v === "hold") {
      if (!c.needsSnapshot) c.pending.hold(states, samples);
      c.held = true;
      return true;
    }
    c.held = false;
    if (c.needsSnapshot) {
      this.deliverSnapshot(c, now);
      return false;
    }
    if (c.pending.size > 0) {
      c.pending.hold(states, samples);
      const d = c.pending.drain();
      for (const f of encodeUpdates(d.states, d.samples)) this.send(c, f.data, f.type);
      return false;
    }
    for (const f of shared()) this.send(c, f.data, f.type);
    return false;
  }

  /** The tap dropped updates: every subscriber is owed a fresh snapshot instead of what it missed. */
  private resync(missed: number): void {
    this.deps.counters.tapMissed += missed;
    this.deps.log.warn({ missed }, "live: the feed's tap overflowed; subscribers get a fresh snapshot");
    for (const c of this.clients) {
      if (c.group === null) continue;
      c.pending.clear();
      c.needsSnapshot = true;
    }
  }

  /**
   * A frame for every client under its cap (health); skipped for a held one, whose next one
   * supersedes it. The cap check here also closes a client that is over its cap with no updates
   * flowing to it.
   */
  broadcast(frame: Buffer, type: LiveFrameType, now: number): void {
    for (const c of this.clients) {
      if (c.closing !== undefined) continue;
      const v = capVerdict(c.cap, c.sink.bufferedAmount, now, this.deps.options);
      if (v === "close") this.closeSlow(c);
      else if (v === "send") this.send(c, frame, type);
    }
  }

  private closeSlow(c: FanClient): void {
    if (c.closing !== undefined) return;
    c.counted = true;
    this.deps.counters.closed("slow");
    const secs = this.deps.options.slowCloseMs / 1000;
    this.deps.log.info({ buffered: c.sink.bufferedAmount }, `live: a client stayed over its outbound cap for ${secs} s; closed with 1013`);
    this.closeClient(c, "slow", 1013, `over its outbound cap for ${secs} s: reconnect`);
  }

  send(c: FanClient, data: Buffer, type: LiveFrameType): void {
    if (c.sink.send(data)) this.deps.counters.sent(type);
  }

  /** No more subscriptions: the tap is released. */
  stop(): void {
    this.stopped = true;
    this.closeTap();
  }
}

/** The samples a group wants: whole devices skipped by one glob test each, tags tested only within wanted devices. */
function pick(g: Group, samples: LiveSample[], byDevice: { device: string; from: number; to: number }[]): LiveSample[] {
  const out: LiveSample[] = [];
  for (const d of byDevice) {
    if (!g.wantsDevice(d.device)) continue;
    for (let i = d.from; i < d.to; i++) if (g.allTags || g.wantsTag(samples[i]!.tag)) out.push(samples[i]!);
  }
  return out;
}

function deviceFrame(s: DeviceStateChange): DeviceFrame {
  return { type: "device", id: s.id, state: s.state, error: s.error, ts: new Date(s.ts).toISOString() };
}

function encodeUpdates(states: readonly DeviceFrame[], samples: readonly LiveSample[]): Encoded[] {
  const out: Encoded[] = [];
  for (const s of states) out.push({ data: Buffer.from(JSON.stringify(s)), type: "device" });
  if (samples.length > 0) out.push({ data: Buffer.from(samplesFrame(samples)), type: "samples" });
  return out;
}
