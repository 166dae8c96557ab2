import type { DeviceState, Sample } from "./sample.js";
import type { SampleColumns } from "./sample-columns.js";
import { isoTs } from "./sample.js";
import type { DeviceInfo, TagValue } from "./status.js";
import { LatestValues } from "./latest-values.js";
import { TapMailbox, type DeviceStateChange, type TapOptions, type TapSubscription } from "./device-tap.js";

export type { DeviceStateChange, TapBatch, TapOptions, TapSubscription } from "./device-tap.js";

/** How a device reaches the gateway: polled by a configured driver, or pushing to the ingest. */
export type DeviceKind = "polled" | "pushed";

interface DeviceEntry {
  id: string;
  kind: DeviceKind;
  /** the driver name shown in /api/v1/devices ("ingest" for pushing devices) */
  driver: string;
  state: DeviceState;
  error: string | null;
  /** gateway clock: when the entry was made */
  firstSeen: number;
  /** gateway clock: the last acknowledged push (pushing devices; shown, with its wall time) */
  lastPush: number | null;
  /** the same moment on the table's monotonic clock: what the silence rule measures from */
  pushedAt: number;
  /** a pushing device holding a connection open (MQTT): its presence shows by the connection, not by silence */
  connected: boolean;
  /** source clock: the newest sample ts seen */
  lastSampleTs: number | null;
  counters: Record<string, number>;
  latest: LatestValues;
}

/** A pushing device's entry as the ingest reads it back. */
export interface PushedEntryView {
  id: string;
  state: DeviceState;
  error: string | null;
  firstSeen: number;
  lastPush: number | null;
  lastSampleTs: number | null;
  counters: Readonly<Record<string, number>>;
}

export type DeviceStateListener = (id: string, state: DeviceState, error: string | null, ts: number) => void;

export interface DeviceTableOptions {
  /** the silence rule's limit: a pushing device silent longer than this is `offline`; default 60 s */
  silenceMs?: number;
  /** gateway clock, replaceable for tests; default Date.now */
  clock?: () => number;
  /**
   * What the silence rule measures silence with; default performance.now(), or `clock` when one is
   * given (a test driving time). Not the wall clock: a clock stepped back by NTP would keep a silent
   * device online for as long, one stepped forward would show every pushing device offline at once.
   */
  monotonic?: () => number;
}

/** Default silence limit (spec §1: a pushing device that stops is shown unreachable). */
export const DEFAULT_SILENCE_MS = 60_000;

/**
 * The one owner of device state, for polled and pushing devices alike: state and error, first and
 * last seen, the latest value per tag, and every per-device counter (the driver's events, the
 * runtime's samples in and drops, the ingest's pushes and refusals). `/api/v1/devices`, `/healthz`,
 * `/metrics`, the outputs' status topics and the `/live` feed all read it; nothing else keeps a
 * copy. It holds one value per tag, never a queue.
 *
 * The silence rule (one, for every device whose presence shows only by its arrivals): a pushing
 * device is `online` from each acknowledged push and becomes `offline` ("no push for N s") once
 * it has been silent longer than `silenceMs`, as seen by `sweep`, which the owner calls on a timer.
 * A polled device's state is set by its driver, which knows why a device is silent (timeouts,
 * refused connects, exceptions) and says so; silence does not override it. A pushing device
 * that holds a connection (the MQTT listener's `connected`/`disconnected`) shows by it instead:
 * `online` while connected, however quiet, `offline` once the connection is gone.
 *
 * Bounded by its writers: configured devices come from the config, pushing devices only once the
 * ingest has admitted them (at most `ingest.maxDevices`).
 *
 * Listeners: `onState` for in-process parts that need every change at once (outputs' status
 * topics); `subscribe` for consumers that may fall behind (the live feed), with a bounded mailbox.
 */
export class DeviceTable {
  private readonly devices = new Map<string, DeviceEntry>();
  private readonly stateListeners = new Set<DeviceStateListener>();
  private readonly taps = new Set<TapMailbox>();
  readonly silenceMs: number;
  private readonly clock: () => number;
  private readonly monotonic: () => number;

  constructor(opts: DeviceTableOptions = {}) {
    this.silenceMs = opts.silenceMs ?? DEFAULT_SILENCE_MS;
    this.clock = opts.clock ?? Date.now;
    this.monotonic = opts.monotonic ?? opts.clock ?? ((): number => performance.now());
  }

  /** A configured device; it starts `connecting` (or `disabled`). */
  addConfigured(id: string, driver: string, disabled = false): void {
    this.devices.set(id, this.entry(id, "polled", driver, disabled ? "disabled" : "connecting"));
  }

  /**
   * A pushing device the ingest admitted: `connecting` until its first acknowledged push, with
   * `counters` at 0. False when the id already has an entry (nothing changes then).
   */
  addPushed(id: string, counters: readonly string[] = []): boolean {
    if (this.devices.has(id)) return false;
    const e = this.entry(id, "pushed", "ingest", "connecting");
    for (const c of counters) e.counters[c] = 0;
    this.devices.set(id, e);
    return true;
  }

  has(id: string): boolean {
    return this.devices.has(id);
  }

  kindOf(id: string): DeviceKind | undefined {
    return this.devices.get(id)?.kind;
  }

  /** How many devices of `kind` have an entry. */
  size(kind?: DeviceKind): number {
    if (kind === undefined) return this.devices.size;
    let n = 0;
    for (const d of this.devices.values()) if (d.kind === kind) n++;
    return n;
  }

  /** Sets a device's state; false (and nothing notified) when unknown or unchanged. */
  setState(id: string, state: DeviceState, error: string | null = null): boolean {
    const d = this.devices.get(id);
    if (!d || (d.state === state && d.error === error)) return false;
    d.state = state;
    d.error = error;
    this.notifyState(id, state, error);
    return true;
  }

  /**
   * A push acknowledged at `at` (gateway clock), whose newest sample ts was `newestSampleTs` (null
   * when it stored nothing new, e.g. only repeated msgIds): the device is alive, so `online`.
   * True when that changed its state.
   */
  pushed(id: string, at: number = this.clock(), newestSampleTs: number | null = null): boolean {
    const d = this.devices.get(id);
    if (!d) return false;
    d.lastPush = at;
    d.pushedAt = this.monotonic();
    if (newestSampleTs !== null && (d.lastSampleTs === null || newestSampleTs > d.lastSampleTs)) d.lastSampleTs = newestSampleTs;
    return this.setState(id, "online", null);
  }

  /**
   * A pushing device opened a connection (MQTT CONNECT accepted): `online`, and the silence rule
   * leaves it alone until `disconnected`. True when that changed its state.
   */
  connected(id: string): boolean {
    const d = this.devices.get(id);
    if (!d) return false;
    d.connected = true;
    return this.setState(id, "online", null);
  }

  /**
   * The device's connection is gone (a DISCONNECT, its will, a refusal, a lost socket): `offline`
   * with `why`. True when that changed its state.
   */
  disconnected(id: string, why: string): boolean {
    const d = this.devices.get(id);
    if (!d) return false;
    d.connected = false;
    return this.setState(id, "offline", why);
  }

  /**
   * The silence rule (see the class comment): every pushing device that is `online` and has not
   * pushed for more than `silenceMs` goes `offline` (unless it holds a connection open). Returns the ids that changed, so the caller
   * can log each change once.
   */
  sweep(): string[] {
    const now = this.monotonic();
    const changed: string[] = [];
    const why = `no push for ${this.silenceMs / 1000} s`;
    for (const d of this.devices.values()) {
      if (d.kind !== "pushed" || d.connected || d.lastPush === null || now - d.pushedAt <= this.silenceMs) continue;
      if (this.setState(d.id, "offline", why)) changed.push(d.id);
    }
    return changed;
  }

  count(id: string, counter: string, n = 1): void {
    const d = this.devices.get(id);
    if (d) d.counters[counter] = (d.counters[counter] ?? 0) + n;
  }

  /** One counter of every device, for /metrics. */
  counter(name: string): { device: string; count: number }[] {
    return [...this.devices.values()].map((d) => ({ device: d.id, count: d.counters[name] ?? 0 }));
  }

  /** Records samples that entered the journal (or were offered to it) as the latest values. */
  observe(samples: readonly Sample[]): void {
    const tapped = this.taps.size !== 0;
    // A batch is almost always one device's poll: look the device up once per run of samples.
    let d: DeviceEntry | undefined;
    let dev: string | undefined;
    let marks: TapMarks | undefined;
    for (let i = 0; i < samples.length; i++) {
      const s = samples[i]!;
      if (s.device !== dev) {
        dev = s.device;
        d = this.devices.get(dev);
        if (tapped && d) marks = this.marksOf(dev);
      }
      if (!d) continue;
      d.latest.set(s);
      if (d.lastSampleTs === null || s.ts > d.lastSampleTs) d.lastSampleTs = s.ts;
      if (marks !== undefined) for (const m of marks) m.box.mark(m.set, s.tag);
    }
  }

  /** `observe` for one column set. */
  observeColumns(cols: SampleColumns): void {
    const n = cols.length;
    if (n === 0) return;
    if (typeof cols.device !== "string") {
      this.observe(cols.toSamples());
      return;
    }
    const d = this.devices.get(cols.device);
    if (!d) return;
    const ts = cols.ts;
    let newest = d.lastSampleTs;
    for (let i = 0; i < n; i++) if (newest === null || ts[i]! > newest) newest = ts[i]!;
    d.lastSampleTs = newest;
    d.latest.setColumns(cols);
    if (this.taps.size !== 0) {
      const tags = cols.tags;
      for (const m of this.marksOf(cols.device)) for (let i = 0; i < n; i++) m.box.mark(m.set, tags[i]!);
    }
  }

  /** Every state change, synchronously, to an in-process part that must see each one. */
  onState(l: DeviceStateListener): () => void {
    this.stateListeners.add(l);
    return () => this.stateListeners.delete(l);
  }

  /** A bounded mailbox of state changes and latest values: see TapSubscription for the contract. */
  subscribe(opts: TapOptions): TapSubscription {
    const box: TapMailbox = new TapMailbox(opts, (device, tag) => this.devices.get(device)?.latest.get(tag), () => this.taps.delete(box));
    this.taps.add(box);
    return box;
  }

  states(): { id: string; state: DeviceState; error: string | null }[] {
    return [...this.devices.values()].map((d) => ({ id: d.id, state: d.state, error: d.error }));
  }

  list(): DeviceInfo[] {
    return [...this.devices.values()].map(info);
  }

  get(id: string): DeviceInfo | undefined {
    const d = this.devices.get(id);
    return d && info(d);
  }

  /** Pushing devices in the order they were admitted, as the ingest reports them. */
  pushedDevices(): PushedEntryView[] {
    const out: PushedEntryView[] = [];
    for (const d of this.devices.values()) if (d.kind === "pushed") out.push(d);
    return out;
  }

  /** The entry of one device as the ingest reads it (any kind: a glob may match a configured id). */
  pushedDevice(id: string): PushedEntryView | undefined {
    return this.devices.get(id);
  }

  tags(id: string): TagValue[] | undefined {
    const d = this.devices.get(id);
    if (!d) return undefined;
    return d.latest.list();
  }

  private entry(id: string, kind: DeviceKind, driver: string, state: DeviceState): DeviceEntry {
    return { id, kind, driver, state, error: null, firstSeen: this.clock(), lastPush: null, pushedAt: 0, connected: false, lastSampleTs: null, counters: {}, latest: new LatestValues() };
  }

  private marksOf(device: string): TapMarks {
    const out: TapMarks = [];
    for (const box of this.taps) {
      const set = box.tagsOf(device);
      if (set !== undefined) out.push({ box, set });
    }
    return out;
  }

  private notifyState(id: string, state: DeviceState, error: string | null): void {
    const ts = this.clock();
    for (const l of this.stateListeners) l(id, state, error, ts);
    if (this.taps.size !== 0) {
      const change: DeviceStateChange = { id, state, error, ts };
      for (const box of this.taps) box.state(change);
    }
  }
}

type TapMarks = { box: TapMailbox; set: Set<string> }[];

function info(d: DeviceEntry): DeviceInfo {
  return {
    id: d.id,
    driver: d.driver,
    state: d.state,
    error: d.error,
    lastSampleTs: d.lastSampleTs === null ? null : isoTs(d.lastSampleTs),
    counters: { ...d.counters },
  };
}
