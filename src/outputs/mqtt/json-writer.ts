import type { Quality } from "../../core/sample.js";
import { QUALITY_CODES } from "../../core/sample-columns.js";
import type { TelemetryMessage } from "./json-plan.js";
import { NUMBER_ROOM, putNumber, putNumberAt } from "./json-number.js";

/** Marks "the value is in `nums`" (no entry in `other`). */
const NUMBER = Symbol("number");

const QUALITY: Record<Quality, string> = { good: '"good"', uncertain: '"uncertain"', bad: '"bad"' };

/** Cache entries per map before it is cleared: names are a fixed set from config and pushing devices. */
const CACHE_LIMIT = 50_000;

/**
 * `map`'s entry for `key`, made by `make` on first use. Bounded by clearing at CACHE_LIMIT:
 * device, tag and unit names are a fixed set from config and pushing devices, so the clear only
 * guards against a flood of new names.
 */
export function cachedIn<K, V>(map: Map<K, V>, key: K, make: (key: K) => V): V {
  let v = map.get(key);
  if (v === undefined) {
    if (map.size >= CACHE_LIMIT) map.clear();
    v = make(key);
    map.set(key, v);
  }
  return v;
}

function makePrefix(tag: string): Buffer {
  return Buffer.from(`,{"tag":${JSON.stringify(tag)},"value":`);
}

/** Slab size: payloads are carved out of slabs this big (a message that needs more gets its own). */
const SLAB = 1024 * 1024;
/**
 * Free slabs kept for reuse. At 2,000 messages/s of 9 KB, a slab fills in 60 ms and is free again
 * once its last PUBACK came, so a handful circulate; more only after a burst of unacked writes.
 */
const POOL_MAX = 16;
/** Sample positions the positional prefix cache covers (a message holds at most maxBatch, default 500). */
const POSITIONS = 4096;
/** Suffix cache slots (a power of two): see TelemetryEncoder's slotTs. */
const SUFFIX_SLOTS = 64;

/** The `[` is written over the first sample's leading comma, or on its own for no samples. */
const SAMPLES_OPEN = Buffer.from(',"samples":');
const CLOSE = Buffer.from("]}");
const C_OPEN = 0x5b;
const NULL_BYTES = Buffer.from("null");
const TRUE_BYTES = Buffer.from("true");
const FALSE_BYTES = Buffer.from("false");

/**
 * Copies `src` to `dst` at `at`; returns the position after it. The caller made room. `TypedArray#set`
 * even for 4-50 byte runs: measured on Node 20 it beats a JS byte loop about 4× (and
 * `Buffer#copy` by about 20%), so a run must be a whole Uint8Array, never a `subarray` made per call.
 */
function put(dst: Buffer, at: number, src: Uint8Array): number {
  dst.set(src, at);
  return at + src.length;
}

/**
 * Builds telemetry payloads as UTF-8 bytes: exactly `Buffer.from(JSON.stringify(specObject))`, where
 * the spec object is `{gateway, device, batch, samples: [{tag, value, quality, ts, unit?}]}` with
 * NaN/±Infinity as null and ts as ISO 8601 with ms (null if invalid).
 *
 * Contract: each `encode` returns a view of its own bytes, which later messages never write over,
 * so a payload may be held (until its PUBACK) while the next message is encoded. Without
 * `recycle` a payload stays valid for as long as it is referenced. With `recycle`, the caller
 * hands every payload back through `release` once nothing can read it any more (for QoS 1, once
 * its PUBACK came: the broker cannot acknowledge bytes that have not left the socket); its bytes
 * may be overwritten from then on. One encoder per session; its caches are bounded.
 */
export class TelemetryEncoder {
  /**
   * Bytes rather than a string because MQTT.js would otherwise flatten every payload and encode it
   * again into the socket, and the flattened strings live until PUBACK, long enough to reach V8's
   * old generation at 200,000 values/s. Messages are written straight into this slab from cached
   * byte runs: per device the head `{"gateway":…,"device":…,"batch":`, per tag `,{"tag":…,"value":`,
   * and for the last (quality, ts, unit) the suffix `,"quality":…,"ts":…,"unit":…}` — a poll gives
   * every sample of a message the same ts and quality, and tag names repeat every poll. Integers and
   * values with up to 6 decimals are written digit by digit (json-number.ts). Why a slab: a Buffer
   * of its own per 9 KB payload (malloc, free and external-memory accounting 2,000 times a second)
   * and the copy into it cost more than a fifth of the encoding; a slab is freed by the GC once no
   * payload in it is held.
   */
  private slab: Buffer = Buffer.allocUnsafeSlow(SLAB);
  /**
   * Payloads handed out and not yet released, per recycled slab (only SLAB-sized slabs; a slab
   * grown for one huge message is left to the GC). Empty unless `recycle`. Why recycle at all: V8
   * counts the ArrayBuffer bytes allocated since the last full GC against the old generation's
   * room, and 15 MB/s of fresh slabs at 2,000 messages/s started a full mark every 1.5 s; the
   * concurrent marking of the gateway's ~55 MB of config and state then cost more CPU than the
   * encoding itself.
   */
  private readonly holds = new Map<ArrayBufferLike, number>();
  /** slabs with no payload held, ready for reuse */
  private readonly free: Buffer[] = [];
  /** where the next message starts in `slab`; bytes before it belong to payloads handed out */
  private base = 0;
  /** how far `room` moved the message being written (to the start of a new slab) */
  private moved = 0;
  private readonly gatewayHead: string;
  /** device → `{"gateway":…,"device":…,"batch":` */
  private readonly heads = new Map<string, Buffer>();
  /** tag → `,{"tag":…,"value":` (on the first sample of a message, `[` overwrites the comma) */
  private readonly prefixes = new Map<string, Buffer>();
  /**
   * The tag and prefix seen at each sample position of the previous message. Devices of one model
   * poll the same tags in the same order, and the journal hands out one string per tag name, so
   * `===` usually hits here before any hashing; a miss falls back to `prefixes`.
   */
  private readonly posTags: string[] = [];
  private readonly posPrefixes: Buffer[] = [];
  /** unit → its JSON string */
  private readonly units = new Map<string, string>();
  private sufTs = Number.NaN;
  /** QUALITY_CODES index of the cached suffix; -1 before the first */
  private sufQuality = -1;
  private sufUnit: string | undefined = undefined;
  private suffix: Buffer = Buffer.alloc(0);
  /**
   * Recent suffixes, direct-mapped on the ts's low bits: a message does not always hold one ts. An
   * OPC UA publish lists each monitored item's queued values item by item (v1@t1, v1@t2, v2@t1, …),
   * so with a queue of n values the ts cycles through n values sample after sample; building the
   * suffix anew each time (a Date, toISOString, a UTF-8 write) cost more than the rest of the
   * encoding (bench/opcua.ts).
   */
  private readonly slotTs = new Float64Array(SUFFIX_SLOTS).fill(Number.NaN);
  private readonly slotQuality = new Int32Array(SUFFIX_SLOTS).fill(-1);
  private readonly slotUnit: (string | undefined)[] = new Array<string | undefined>(SUFFIX_SLOTS).fill(undefined);
  /** each slot's bytes: a store of its own, reused while its suffix fits */
  private readonly slotStore: Buffer[] = [];
  private readonly slotSuffix: Buffer[] = [];

  constructor(gatewayId: string, private readonly recycle = false) {
    this.gatewayHead = `{"gateway":${JSON.stringify(gatewayId)},"device":`;
  }

  /**
   * Hands a payload of `encode` back: its bytes may be overwritten from now on. Only with
   * `recycle`; call it exactly once per payload, and never for one that a socket or a store may
   * still read. A payload never released only keeps its slab out of reuse.
   */
  release(payload: Buffer): void {
    const ab = payload.buffer;
    const n = this.holds.get(ab);
    if (n === undefined) return;
    if (n > 1) this.holds.set(ab, n - 1);
    else {
      this.holds.delete(ab);
      if (ab !== this.slab.buffer) this.retire(ab);
    }
  }

  /** Slabs waiting in the pool (for tests). */
  get pooled(): number {
    return this.free.length;
  }

  /** A slab no payload is held from: into the pool, unless the pool is full. */
  private retire(ab: ArrayBufferLike): void {
    if (this.free.length < POOL_MAX) this.free.push(Buffer.from(ab));
  }

  /** A fresh SLAB-sized slab: from the pool when it has one. */
  private newSlab(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(SLAB);
  }

  /** The current slab is being replaced: back to the pool at once if nothing is held from it. */
  private leaveSlab(): void {
    const ab = this.slab.buffer;
    if (this.recycle && this.slab.length === SLAB && !this.holds.has(ab)) this.retire(ab);
  }

  encode(msg: TelemetryMessage): Buffer {
    const head = this.headOf(msg.device);
    let p = this.base;
    let buf = this.room(p, head.length + NUMBER_ROOM + SAMPLES_OPEN.length + 1);
    p -= this.moved;
    p = put(buf, p, head);
    p = putNumber(buf, p, msg.batch);
    p = put(buf, p, SAMPLES_OPEN);
    let m = 0; // sample index within the message
    for (const run of msg.runs) {
      const { cols, from } = run;
      const tags = cols.tags;
      const nums = cols.nums;
      const other = cols.other;
      const qualities = cols.qualities;
      const tsCol = cols.ts;
      const units = cols.units;
      const end = from + run.count;
      for (let i = from; i < end; i++, m++) {
        const tag = tags[i]!;
        let prefix: Buffer;
        if (this.posTags[m] === tag) prefix = this.posPrefixes[m]!;
        else {
          prefix = this.prefixOf(tag);
          if (m < POSITIONS) {
            this.posTags[m] = tag;
            this.posPrefixes[m] = prefix;
          }
        }
        const q = qualities[i]!;
        const ts = tsCol[i]!;
        const unit = units === undefined ? undefined : units[i];
        if (!(ts === this.sufTs && q === this.sufQuality && unit === this.sufUnit)) this.setSuffix(q, ts, unit);
        // A number is read from `nums` by the writer itself, never held in a variable that may also
        // hold a string: such a variable, or a double passed to a call, is a heap box per value.
        const v = other !== undefined && other.has(i) ? other.get(i)! : NUMBER;
        const text = typeof v === "string" ? JSON.stringify(v) : undefined;
        // UTF-8 takes at most 3 bytes per UTF-16 unit (a surrogate pair is 4 bytes for 2 units).
        const need = prefix.length + this.suffix.length + (text === undefined ? NUMBER_ROOM : 3 * text.length);
        if (p + need > buf.length) { buf = this.room(p, need); p -= this.moved; }
        p = put(buf, p, prefix);
        if (m === 0) buf[p - prefix.length] = C_OPEN;
        if (v === NUMBER) p = putNumberAt(buf, p, nums, i);
        else if (typeof v === "number") p = putNumber(buf, p, v);
        else if (text !== undefined) p += buf.write(text, p, "utf8");
        else {
          const lit = v === true ? TRUE_BYTES : v === false ? FALSE_BYTES : NULL_BYTES;
          p = put(buf, p, lit);
        }
        p = put(buf, p, this.suffix);
      }
    }
    if (m === 0) buf[p++] = C_OPEN;
    if (p + CLOSE.length > buf.length) { buf = this.room(p, CLOSE.length); p -= this.moved; }
    p = put(buf, p, CLOSE);
    const out = buf.subarray(this.base, p);
    // A slab grown for one huge message is not kept for the next ones.
    if (buf.length > SLAB) { this.slab = this.newSlab(); this.base = 0; }
    else {
      this.base = p;
      if (this.recycle) this.holds.set(buf.buffer, (this.holds.get(buf.buffer) ?? 0) + 1);
    }
    return out;
  }

  /**
   * The slab, with at least `need` bytes free after position `p` of the message being written
   * (which started at `base`). When the slab is full, the message so far moves to the start of a
   * new slab; `moved` tells the caller how far back `p` went.
   */
  private room(p: number, need: number): Buffer {
    const old = this.slab;
    if (p + need <= old.length) {
      this.moved = 0;
      return old;
    }
    const used = p - this.base;
    let size = SLAB;
    while (size < used + need) size *= 2;
    const fresh = size === SLAB ? this.newSlab() : Buffer.allocUnsafeSlow(size);
    old.copy(fresh, 0, this.base, p);
    this.moved = this.base;
    this.leaveSlab();
    this.slab = fresh;
    this.base = 0;
    return fresh;
  }

  // Makers made once: a closure per call would be an allocation per sample on a miss.
  private readonly makeHead = (device: string): Buffer => Buffer.from(`${this.gatewayHead}${JSON.stringify(device)},"batch":`);

  private headOf(device: string): Buffer {
    return cachedIn(this.heads, device, this.makeHead);
  }

  private prefixOf(tag: string): Buffer {
    return cachedIn(this.prefixes, tag, makePrefix);
  }

  private unitOf(unit: string): string {
    return cachedIn(this.units, unit, JSON.stringify);
  }

  /** RFC 3339, ms, UTC; an invalid time (should never reach the journal) travels as null. */
  private setSuffix(code: number, ms: number, unit: string | undefined): void {
    this.sufTs = ms;
    this.sufQuality = code;
    this.sufUnit = unit;
    const slot = ms & (SUFFIX_SLOTS - 1); // NaN and fractions land in some slot; only an exact match hits
    if (this.slotTs[slot] === ms && this.slotQuality[slot] === code && this.slotUnit[slot] === unit) {
      this.suffix = this.slotSuffix[slot]!;
      return;
    }
    const quality: Quality = QUALITY_CODES[code] ?? "bad";
    const d = new Date(ms);
    const ts = Number.isNaN(d.getTime()) ? "null" : `"${d.toISOString()}"`;
    const text = `,"quality":${QUALITY[quality] ?? JSON.stringify(quality)},"ts":${ts}${unit === undefined ? "" : `,"unit":${this.unitOf(unit)}`}}`;
    let store = this.slotStore[slot];
    if (store === undefined || 3 * text.length > store.length) {
      store = Buffer.allocUnsafe(Math.max(128, 3 * text.length));
      this.slotStore[slot] = store;
    }
    this.suffix = store.subarray(0, store.write(text, 0, "utf8"));
    this.slotSuffix[slot] = this.suffix;
    this.slotTs[slot] = ms;
    this.slotQuality[slot] = code;
    this.slotUnit[slot] = unit;
  }
}
