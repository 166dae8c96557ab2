import type { DeviceState, Sample } from "../core/sample.js";
import { isoTs } from "../core/sample.js";
import type { DeviceInfo, TagValue } from "./status.js";

interface DeviceEntry {
  id: string;
  driver: string;
  state: DeviceState;
  error: string | null;
  lastSampleTs: number | null;
  counters: Record<string, number>;
  /** latest sample per tag: the live view */
  latest: Map<string, Sample>;
}

export type DeviceStateListener = (id: string, state: DeviceState, error: string | null, ts: number) => void;
export type SamplesListener = (samples: readonly Sample[]) => void;

/**
 * Every configured device and every device that has pushed: state, counters and the latest value
 * per tag. It is the live view's tap: it holds one sample per tag, never a queue.
 */
export class DeviceRegistry {
  private readonly devices = new Map<string, DeviceEntry>();
  private readonly stateListeners = new Set<DeviceStateListener>();
  private readonly sampleListeners = new Set<SamplesListener>();

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

  /** Records samples that entered the journal (or were offered to it) as the latest values. */
  observe(samples: readonly Sample[]): void {
    for (const s of samples) {
      const d = this.devices.get(s.device);
      if (!d) continue;
      d.latest.set(s.tag, s);
      if (d.lastSampleTs === null || s.ts > d.lastSampleTs) d.lastSampleTs = s.ts;
    }
    for (const l of this.sampleListeners) l(samples);
  }

  onState(l: DeviceStateListener): () => void {
    this.stateListeners.add(l);
    return () => this.stateListeners.delete(l);
  }

  onSamples(l: SamplesListener): () => void {
    this.sampleListeners.add(l);
    return () => this.sampleListeners.delete(l);
  }

  has(id: string): boolean {
    return this.devices.has(id);
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
    return [...d.latest.values()].map((s) => {
      const t: TagValue = { tag: s.tag, value: s.value, quality: s.quality, ts: isoTs(s.ts) };
      if (s.unit !== undefined) t.unit = s.unit;
      return t;
    });
  }

  private entry(id: string, driver: string, state: DeviceState): DeviceEntry {
    return { id, driver, state, error: null, lastSampleTs: null, counters: {}, latest: new Map() };
  }

  private notifyState(id: string, state: DeviceState, error: string | null): void {
    const ts = Date.now();
    for (const l of this.stateListeners) l(id, state, error, ts);
  }
}
