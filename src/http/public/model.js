// What the dashboard knows about the plant: devices, their tags' latest values and a short history
// per numeric tag for the trend. No DOM here: the views read this and are told what changed.
import { parseTs } from "./format.js";

/** Trend history: one point per second (the newest value of that second), five minutes of them. */
export const HISTORY_SLOTS = 300;

/** A value older than this is marked stale even when its device is online. */
export const STALE_MS = 60_000;

/**
 * A tag's latest value and, when it is numeric or boolean, its last minutes as a ring of
 * one-second buckets (allocated on the first numeric value: string tags cost nothing).
 */
export class TagState {
  constructor(device, tag) {
    this.device = device;
    this.tag = tag;
    this.value = null;
    this.quality = "good";
    this.ts = NaN;
    this.unit = "";
    this.writable = false;
    /** the REST tag list has reported this tag (and so whether it is writable) */
    this.listed = false;
    /** history ring: times in seconds, values */
    this.ht = null;
    this.hv = null;
    this.head = 0;
    this.len = 0;
  }

  set(value, quality, tsMs, unit) {
    this.value = value;
    this.quality = quality ?? "good";
    if (Number.isFinite(tsMs)) this.ts = tsMs;
    if (unit) this.unit = unit;
    const y = typeof value === "number" ? value : typeof value === "boolean" ? (value ? 1 : 0) : NaN;
    if (!Number.isFinite(y) || !Number.isFinite(this.ts)) return;
    if (this.ht === null) { this.ht = new Float64Array(HISTORY_SLOTS); this.hv = new Float64Array(HISTORY_SLOTS); }
    const sec = Math.floor(this.ts / 1000);
    if (this.len > 0) {
      const last = (this.head + this.len - 1) % HISTORY_SLOTS;
      const lastSec = this.ht[last];
      if (sec === lastSec) { this.hv[last] = y; return; }
      if (sec < lastSec) return; // out of order: the trend shows time moving forward only
    }
    const at = (this.head + this.len) % HISTORY_SLOTS;
    this.ht[at] = sec;
    this.hv[at] = y;
    if (this.len < HISTORY_SLOTS) this.len++;
    else this.head = (this.head + 1) % HISTORY_SLOTS;
  }

  /** The history as uPlot data: [seconds[], values[]], oldest first. */
  series() {
    const xs = new Array(this.len);
    const ys = new Array(this.len);
    for (let i = 0; i < this.len; i++) {
      const j = (this.head + i) % HISTORY_SLOTS;
      xs[i] = this.ht[j];
      ys[i] = this.hv[j];
    }
    return [xs, ys];
  }

  get numeric() {
    return typeof this.value === "number" || typeof this.value === "boolean";
  }
}

export class DeviceState {
  constructor(id) {
    this.id = id;
    this.driver = "";
    this.state = "connecting";
    this.error = null;
    /** newest sample ts seen, epoch ms */
    this.lastSeen = NaN;
    /** tag name → TagState, in first-seen order */
    this.tags = new Map();
    /** bumped when a tag is added, so a view knows to add rows */
    this.tagsRev = 0;
  }

  tag(name) {
    let t = this.tags.get(name);
    if (!t) {
      t = new TagState(this.id, name);
      this.tags.set(name, t);
      this.tagsRev++;
    }
    return t;
  }
}

/**
 * The plant. Every update lands here and marks what changed; `onChange(kind, device, tag)` is
 * called per change ("devices" when the device set changed, "device" for a device's state or
 * error, "tag" for a value) so the views can batch their DOM work per animation frame.
 */
export class Plant {
  constructor(onChange) {
    this.devices = new Map();
    this.gateway = "";
    this.health = null;
    this.onChange = onChange;
  }

  device(id) {
    let d = this.devices.get(id);
    if (!d) {
      d = new DeviceState(id);
      this.devices.set(id, d);
      this.onChange("devices", d, null);
    }
    return d;
  }

  /** GET /api/v1/devices: drivers, states, errors, last sample times. */
  applyDeviceList(list) {
    for (const x of list) {
      if (!x || typeof x.id !== "string") continue;
      const d = this.device(x.id);
      d.driver = x.driver ?? d.driver;
      this.setState(d, x.state, x.error ?? null);
      const seen = parseTs(x.lastSampleTs);
      if (Number.isFinite(seen) && !(seen <= d.lastSeen)) d.lastSeen = seen;
    }
  }

  /** GET /api/v1/devices/{id}/tags: values, units and which tags are writable. */
  applyTagList(id, tags) {
    const d = this.device(id);
    for (const t of tags) this.applySample(d, t, true);
  }

  setState(d, state, error) {
    if (typeof state !== "string") return;
    if (d.state === state && d.error === error) return;
    d.state = state;
    d.error = error;
    this.onChange("device", d, null);
  }

  applySample(d, s, fromRest = false) {
    if (!s || typeof s.tag !== "string") return;
    const t = d.tag(s.tag);
    const ts = parseTs(s.ts);
    t.set(s.value ?? null, s.quality, ts, s.unit);
    if (fromRest) { t.writable = s.writable === true; t.listed = true; }
    if (Number.isFinite(ts) && !(ts <= d.lastSeen)) d.lastSeen = ts;
    this.onChange("tag", d, t);
  }

  /** One /live frame (contract §5). Unknown frame types are ignored: the protocol may grow. */
  applyFrame(msg) {
    switch (msg.type) {
      case "hello":
        if (typeof msg.gateway === "string") this.gateway = msg.gateway;
        this.onChange("gateway", null, null);
        return;
      case "snapshot":
        for (const x of arr(msg.devices)) {
          if (!x || typeof x.id !== "string") continue;
          const d = this.device(x.id);
          this.setState(d, x.state, x.error === undefined ? d.error : x.error);
          for (const s of arr(x.tags)) this.applySample(d, s);
        }
        return;
      case "samples":
        for (const s of arr(msg.samples)) {
          if (!s) continue;
          // Flat samples carry their device; a grouped form {device, tags:[…]} is read too.
          if (Array.isArray(s.tags)) {
            const d = this.device(String(s.device));
            for (const x of s.tags) this.applySample(d, x);
          } else if (typeof s.device === "string") {
            this.applySample(this.device(s.device), s);
          }
        }
        return;
      case "device":
        if (typeof msg.id === "string") this.setState(this.device(msg.id), msg.state, msg.error ?? null);
        return;
      case "health":
        this.health = msg;
        this.onChange("health", null, null);
        return;
    }
  }

  setHealth(h) {
    this.health = h;
    this.onChange("health", null, null);
  }
}

function arr(x) {
  return Array.isArray(x) ? x : [];
}
