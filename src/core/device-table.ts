import type { DeviceState, Quality, Sample, SampleValue } from "../core/sample.js";
import type { SampleColumns } from "../core/sample-columns.js";
import { isoTs } from "../core/sample.js";
import type { DeviceInfo, TagValue } from "./status.js";

interface DeviceEntry {
  id: string;
  driver: string;
  state: DeviceState;
  error: string | null;
  lastSampleTs: number | null;
  counters: Record<string, number>;
  /** latest value per tag: the live view */
  latest: LatestValues;
}

export type DeviceStateListener = (id: string, state: DeviceState, error: string | null, ts: number) => void;
/**
 * Every configured device and every device that has pushed: state, counters and the latest value
 * per tag. It is the live view's tap: it holds one sample per tag, never a queue.
 */
export class DeviceRegistry {
  private readonly devices = new Map<string, DeviceEntry>();
  private readonly stateListeners = new Set<DeviceStateListener>();

  /** A configured device; it starts `connecting` (or `disabled`). */
  addConfigured(id: string, driver: string, disabled = false): void {
    this.devices.set(id, this.entry(id, driver, disabled ? "disabled" : "connecting"));
  }

  /** A pushing device is `online` from its first accepted push. */
  ensurePushed(id: string): void {
    if (!this.devices.has(id)) {
      this.devices.set(id, this.entry(id, "ingest", "online"));
      this.notifyState(id, "online", null);
    }
  }

  setState(id: string, state: DeviceState, error: string | null = null): boolean {
    const d = this.devices.get(id);
    if (!d || (d.state === state && d.error === error)) return false;
    d.state = state;
    d.error = error;
    this.notifyState(id, state, error);
    return true;
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
    // A batch is almost always one device's poll: look the device up once per run of samples.
    let d: DeviceEntry | undefined;
    let dev: string | undefined;
    for (let i = 0; i < samples.length; i++) {
      const s = samples[i]!;
      if (s.device !== dev) { dev = s.device; d = this.devices.get(dev); }
      if (!d) continue;
      d.latest.set(s);
      if (d.lastSampleTs === null || s.ts > d.lastSampleTs) d.lastSampleTs = s.ts;
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
  }

  onState(l: DeviceStateListener): () => void {
    this.stateListeners.add(l);
    return () => this.stateListeners.delete(l);
  }

  states(): { id: string; state: DeviceState; error: string | null }[] {
    return [...this.devices.values()].map((d) => ({ id: d.id, state: d.state, error: d.error }));
  }

  list(): DeviceInfo[] {
    return [...this.devices.values()].map((d) => ({
      id: d.id,
      driver: d.driver,
      state: d.state,
      error: d.error,
      lastSampleTs: d.lastSampleTs === null ? null : isoTs(d.lastSampleTs),
      counters: { ...d.counters },
    }));
  }

  tags(id: string): TagValue[] | undefined {
    const d = this.devices.get(id);
    if (!d) return undefined;
    return d.latest.list();
  }

  private entry(id: string, driver: string, state: DeviceState): DeviceEntry {
    return { id, driver, state, error: null, lastSampleTs: null, counters: {}, latest: new LatestValues() };
  }

  private notifyState(id: string, state: DeviceState, error: string | null): void {
    const ts = Date.now();
    for (const l of this.stateListeners) l(id, state, error, ts);
  }
}

const QUALITIES: readonly Quality[] = ["good", "uncertain", "bad"];

/**
 * The latest value per tag of one device, in columns instead of one retained Sample per tag.
 * Why: a Sample kept for a whole poll period outlives V8's young generation and is promoted, so
 * at 200,000 values/s the live view alone fed the old-generation collector 200,000 objects a
 * second. Numbers go into a Float64Array (no allocation per update); other values, units and
 * reasons are references to strings the sample already carried.
 */
export class LatestValues {
  private readonly slots = new Map<string, number>();
  private readonly tags: string[] = [];
  private num = new Float64Array(16);
  private ts = new Float64Array(16);
  private quality = new Uint8Array(16);
  /** non-numeric values; `undefined` where the value is the number in `num` */
  private readonly other: (SampleValue | undefined)[] = [];
  private readonly units: (string | undefined)[] = [];

  get size(): number {
    this.flush();
    return this.tags.length;
  }

  /** slot after the one last written: polls repeat the same tag order, so this usually hits */
  private hint = 0;

  set(s: Sample): void {
    this.flush();
    let i: number | undefined = this.hint;
    if (this.tags[i] !== s.tag) i = this.slots.get(s.tag);
    if (i === undefined) {
      i = this.tags.length;
      if (i === this.num.length) this.grow();
      this.slots.set(s.tag, i);
      this.tags.push(s.tag);
      this.other.push(undefined);
      this.units.push(undefined);
    }
    const v = s.value;
    if (typeof v === "number") {
      this.num[i] = v;
      if (this.other[i] !== undefined) this.other[i] = undefined;
    } else {
      this.other[i] = v;
    }
    this.ts[i] = s.ts;
    this.quality[i] = s.quality === "good" ? 0 : s.quality === "uncertain" ? 1 : 2;
    if (this.units[i] !== s.unit) this.units[i] = s.unit;
    this.hint = i + 1;
  }

  /**
   * Columns not yet copied into the slots. Why: a device's polls hand over the same tag list
   * every time, and each poll supersedes the previous one whole; keeping the newest column set
   * and copying it only when read (or when a poll of another shape comes) makes the live view's
   * tap one assignment per poll instead of a hundred slot updates.
   */
  private pending: SampleColumns | undefined;

  /** `set` for every sample of `cols` (all of this device). */
  setColumns(cols: SampleColumns): void {
    const p = this.pending;
    if (p !== undefined && p.tags !== cols.tags) this.copy(p);
    this.pending = cols;
  }

  private flush(): void {
    const p = this.pending;
    if (p === undefined) return;
    this.pending = undefined;
    this.copy(p);
  }

  private copy(cols: SampleColumns): void {
    const tags = cols.tags;
    const nums = cols.nums;
    const tsCol = cols.ts;
    const qualities = cols.qualities;
    const other = cols.other;
    const units = cols.units;
    let hint = this.hint;
    for (let k = 0; k < cols.length; k++) {
      const tag = tags[k]!;
      let i: number | undefined = hint;
      if (this.tags[i] !== tag) i = this.slots.get(tag);
      if (i === undefined) {
        i = this.tags.length;
        if (i === this.num.length) this.grow();
        this.slots.set(tag, i);
        this.tags.push(tag);
        this.other.push(undefined);
        this.units.push(undefined);
      }
      if (other !== undefined && other.has(k)) this.other[i] = other.get(k);
      else {
        this.num[i] = nums[k]!;
        if (this.other[i] !== undefined) this.other[i] = undefined;
      }
      this.ts[i] = tsCol[k]!;
      this.quality[i] = qualities[k]!;
      const unit = units === undefined ? undefined : units[k];
      if (this.units[i] !== unit) this.units[i] = unit;
      hint = i + 1;
    }
    this.hint = hint;
  }

  /** Every tag's latest value, in the order tags were first seen. */
  list(): TagValue[] {
    this.flush();
    const out: TagValue[] = [];
    for (let i = 0; i < this.tags.length; i++) {
      const o = this.other[i];
      const t: TagValue = { tag: this.tags[i]!, value: o === undefined ? this.num[i]! : o, quality: QUALITIES[this.quality[i]!]!, ts: isoTs(this.ts[i]!) };
      const unit = this.units[i];
      if (unit !== undefined) t.unit = unit;
      out.push(t);
    }
    return out;
  }

  private grow(): void {
    const n = this.num.length * 2;
    const num = new Float64Array(n); num.set(this.num); this.num = num;
    const ts = new Float64Array(n); ts.set(this.ts); this.ts = ts;
    const q = new Uint8Array(n); q.set(this.quality); this.quality = q;
  }
}
