/**
 * The codec's string tables, one per encoder and one per decoder (so per journal: nothing here is
 * shared between journals). Both only make repeated names cheap; neither changes a frame's
 * meaning, and the encoder's changes its bytes only where the format says (see `EncoderStrings`).
 */

/**
 * One known string: where it sits in the current frame's table, and its bytes for when it is new in
 * a frame. Slots are kept across frames so that encoding builds no table per frame; a slot whose
 * `frame` is not the current one is just stale.
 */
export interface StrSlot {
  /** frame the string was last written in, and its table index there */
  frame: number;
  idx: number;
  /**
   * Bytes of its new-string form (varint prefix + UTF-8) when cached: up to 8 in `w0`/`w1`, more
   * in `words`. NOT_CACHED, then SEEN_ONCE, until the string is written new a second time (a
   * free-text value seen once is not worth encoding twice); TOO_BIG over the size or memory cap.
   */
  len: number;
  /** the new form's bytes 0-3 and 4-7 as little-endian words, written with two stores */
  w0: number;
  w1: number;
  /** the new form as little-endian words (zero-padded), when longer than 8 bytes */
  words: Int32Array | null;
  /** the per-device tag order, for a string used as a device id */
  seq: DeviceSeq | null;
}
export const NOT_CACHED = -1;
export const SEEN_ONCE = -2;
export const TOO_BIG = -3;

/**
 * A device's strings by their place among its samples in a frame: a poll lists the same tags (and
 * units, and often the same state strings) in the same order every time, so the n-th sample of a
 * device usually carries the string the n-th one did last frame, and an identity compare finds its
 * slot without hashing it. Valid only for the table generation `gen` it was built in.
 */
export interface DeviceSeq {
  gen: number;
  frame: number;
  next: number;
  tags: (string | undefined)[];
  tagSlots: (StrSlot | undefined)[];
  units: (string | undefined)[];
  unitSlots: (StrSlot | undefined)[];
  values: (string | undefined)[];
  valueSlots: (StrSlot | undefined)[];
}

/** Bound on known strings; reaching it clears the table (see `EncoderStrings`). */
export const STR_SLOTS_MAX = 100_000;
/** Cached encoded bytes are capped in total and per string; beyond that strings are encoded per write. */
const ENC_STR_MAX = 256;
const ENC_BUDGET = 4 * 1024 * 1024;
/** Per device, at most this many samples per frame keep their place in `DeviceSeq`. */
const SEQ_MAX = 4096;
/**
 * Entries over all `DeviceSeq`s (2,000 devices of 100 tags with units take 400,000); past this, all
 * are dropped at the next frame and rebuilt by the polls that come back. Device ids seen once
 * would otherwise keep theirs until the string table is cleared.
 */
const SEQ_BUDGET = 1_000_000;

/**
 * The encoder's known strings: every string's slot, and per device the order its strings came in.
 * Bounded: cleared when it reaches STR_SLOTS_MAX (free-text values could otherwise grow it without
 * end), exactly where the encoder before the fast paths cleared it, since a clear inside a frame
 * makes a string already in that frame's table be written anew: the bytes of such a frame depend
 * on it. One per encoder.
 */
export class EncoderStrings {
  private readonly slots = new Map<string, StrSlot>();
  /** bumped by every clear: slots and sequences of an older generation must not be used */
  gen = 0;
  /** the previous sample's device and its slot: polls put one device in a run of samples */
  prevDev: string | undefined = undefined;
  prevDevSlot: StrSlot | undefined = undefined;
  private encBytes = 0;
  private seqEntries = 0;
  /** the device slots that carry a `DeviceSeq` */
  private seqOwners: StrSlot[] = [];
  private readonly wordBuf = new Int32Array(ENC_STR_MAX / 4 + 2);
  private readonly wordBytes = Buffer.from(this.wordBuf.buffer);

  /** Strings the table knows (bounded by its clearing). */
  get size(): number {
    return this.slots.size;
  }

  clear(): void {
    this.slots.clear();
    this.gen++;
    this.encBytes = 0;
    this.seqOwners = [];
    this.seqEntries = 0;
    this.prevDev = undefined;
    this.prevDevSlot = undefined;
  }

  slotOf(s: string): StrSlot {
    const known = this.slots.get(s);
    if (known !== undefined) return known;
    if (this.slots.size >= STR_SLOTS_MAX) this.clear();
    const slot: StrSlot = { frame: 0, idx: 0, len: NOT_CACHED, w0: 0, w1: 0, words: null, seq: null };
    this.slots.set(s, slot);
    // After the insert, as the old encoder failed on a non-string only once it was in the table: the
    // table's size, and so where it is cleared, stays the same. Its slot fails again in putLong.
    if (typeof s !== "string") throw new TypeError(`expected a string, got ${typeof s}`);
    return slot;
  }

  /** Fills in the cached new-string form of `slot`, or marks it TOO_BIG. */
  cacheBytes(slot: StrSlot, s: string): void {
    const bytes = Buffer.byteLength(s, "utf8");
    const v = bytes * 2 + 1;
    const head = v < 0x80 ? 1 : v < 0x4000 ? 2 : 3;
    const len = head + bytes;
    if (len > ENC_STR_MAX || this.encBytes + len > ENC_BUDGET) {
      slot.len = TOO_BIG;
      return;
    }
    const wordBuf = this.wordBuf;
    const wordBytes = this.wordBytes;
    wordBuf.fill(0);
    let at = 0;
    for (let x = v; ; x = Math.floor(x / 128)) {
      if (x < 0x80) {
        wordBytes[at++] = x;
        break;
      }
      wordBytes[at++] = (x & 0x7f) | 0x80;
    }
    wordBytes.write(s, head, bytes, "utf8");
    // Word i holds bytes 4i..4i+3 in host order; the writers store words little-endian, so on a
    // big-endian host fix them up here.
    const nWords = (len + 3) >> 2;
    const dv = new DataView(wordBuf.buffer);
    for (let i = 0; i < nWords; i++) wordBuf[i] = dv.getInt32(i * 4, true);
    if (len <= 8) {
      slot.w0 = wordBuf[0]!;
      slot.w1 = wordBuf[1]!;
    } else {
      slot.words = wordBuf.slice(0, nWords);
      this.encBytes += nWords * 4 + 64; // the 64: a typed array's own overhead, roughly
    }
    slot.len = len;
  }

  /** The device's string order for frame `frameNo` of the current generation, from its first place. */
  seqOf(devSlot: StrSlot, frameNo: number): DeviceSeq {
    let seq = devSlot.seq;
    if (seq === null || seq.gen !== this.gen) {
      seq = { gen: this.gen, frame: 0, next: 0, tags: [], tagSlots: [], units: [], unitSlots: [], values: [], valueSlots: [] };
      devSlot.seq = seq;
      this.seqOwners.push(devSlot);
    }
    if (seq.frame !== frameNo) {
      seq.frame = frameNo;
      seq.next = 0;
    }
    return seq;
  }

  /** The slot of device id `dev`: the previous sample's device's without a lookup. */
  deviceSlot(dev: string): StrSlot {
    if (dev === this.prevDev) return this.prevDevSlot!;
    const slot = this.slotOf(dev);
    this.prevDev = dev;
    this.prevDevSlot = slot;
    return slot;
  }

  /**
   * The slot of `s`, the string at place `j` of a device's order (`strs`/`slots`, one of `seq`'s
   * lists): found there by identity while the table is of the order's generation, else looked up
   * (which may clear the table) and remembered there if the generation still holds.
   */
  slotAt(seq: DeviceSeq, strs: (string | undefined)[], slots: (StrSlot | undefined)[], j: number, s: string): StrSlot {
    if (seq.gen === this.gen && strs[j] === s) return slots[j]!;
    const slot = this.slotOf(s);
    if (seq.gen === this.gen) this.remember(strs, slots, j, s, slot);
    return slot;
  }

  /** Records `s` and its slot at place `j`, padding so the arrays stay packed when samples lack the field. */
  remember(strs: (string | undefined)[], slots: (StrSlot | undefined)[], j: number, s: string, slot: StrSlot): void {
    if (j >= SEQ_MAX) return;
    while (strs.length < j) {
      strs.push(undefined);
      slots.push(undefined);
      this.seqEntries++;
    }
    if (j === strs.length) this.seqEntries++;
    strs[j] = s;
    slots[j] = slot;
  }

  /** At a frame's start: drops every device's order when together they outgrew their budget. */
  trimSeqs(): void {
    if (this.seqEntries <= SEQ_BUDGET) return;
    for (const owner of this.seqOwners) owner.seq = null;
    this.seqOwners = [];
    this.seqEntries = 0;
  }
}

const INTERN_MAX = 50_000;

/**
 * Decoded short ASCII strings, keyed by a hash of their bytes: the same few thousand device ids and
 * tag names recur in every frame, so a backlog read shares one string per name instead of decoding
 * (and allocating) it again per frame. Bounded; cleared when full. One per decoder.
 */
export class DecoderStrings {
  private readonly intern = new Map<number, string>();

  /** The `len` bytes at `at` as a string: a shared one for short ASCII, else freshly decoded UTF-8. */
  read(buf: Buffer, at: number, len: number): string {
    if (len <= 48) {
      // FNV-1a over the bytes, with the length mixed in; verified below, so a collision only costs a decode.
      let h = 0x811c9dc5 ^ len;
      let ascii = true;
      for (let i = at; i < at + len; i++) {
        const c = buf[i]!;
        if (c > 0x7f) ascii = false;
        h = Math.imul(h ^ c, 0x01000193);
      }
      if (ascii) {
        let s = this.intern.get(h);
        if (s !== undefined && s.length === len) {
          for (let i = 0; i < len; i++) {
            if (s.charCodeAt(i) !== buf[at + i]) {
              s = undefined;
              break;
            }
          }
        } else s = undefined;
        if (s === undefined) {
          s = buf.toString("latin1", at, at + len);
          if (this.intern.size >= INTERN_MAX) this.intern.clear();
          this.intern.set(h, s);
        }
        return s;
      }
    }
    return buf.toString("utf8", at, at + len);
  }
}
