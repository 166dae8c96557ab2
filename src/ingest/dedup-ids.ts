/**
 * The pieces of the msgId window (dedup.ts) that know nothing of devices or time: how a msgId is
 * split into an exact (prefix, shape, number) triple, and the typed-array set the numbers go in.
 */

/** Digits taken as the number at most: 10^15 < 2^53, so the value is exact in a double. */
export const MAX_DIGITS = 15;
/** Digit groups taken at most (`17-000123-4` is three); the shape code then fits 25 bits. */
export const MAX_GROUPS = 4;

/**
 * The split of the last `parseMsgId` call (module-level "return values": the parse runs for every
 * message and allocates nothing).
 * - `prefixLen`: the msgId's first `prefixLen` characters are the family's prefix, kept as text;
 * - `shape`: the numeric tail's exact layout: each group's digit count (4 bits, 1–15) and the
 *   separator between groups (3 bits), so `12-34` and `123-4`, or `1-2` and `1.2`, never meet and
 *   leading zeros are kept by the counts;
 * - `value`: the tail's digits read as one decimal number (all groups, separators left out);
 * - `digits`: how many digits that is (≤ MAX_DIGITS).
 * Given the prefix and the shape, `value` gives the msgId back exactly: the split is a bijection,
 * so a family's number set answers for exactly its own msgIds.
 */
export const parsed = { prefixLen: 0, shape: 0, value: 0, digits: 0 };

/** The separators between digit groups, by code (shape bits): `-`, `_`, `.`, `:`, `/`. */
function sepCode(c: number): number {
  switch (c) {
    case 45: return 0; // -
    case 95: return 1; // _
    case 46: return 2; // .
    case 58: return 3; // :
    case 47: return 4; // /
    default: return -1;
  }
}

const isDigit = (c: number): boolean => c >= 48 && c <= 57;

/**
 * Splits `msgId` (see `parsed`): its tail of digit groups joined by single separators, at most
 * MAX_GROUPS groups and MAX_DIGITS digits (the leftmost group taken may be cut short by the digit
 * cap: the rest of it stays in the prefix, which keeps the split exact). False, and `parsed`
 * untouched, when the msgId does not end in a digit.
 */
export function parseMsgId(msgId: string): boolean {
  const len = msgId.length;
  let i = len;
  let digits = 0;
  let groups = 0;
  let shape = 0;
  let value = 0;
  let scale = 1;
  for (;;) {
    // the group ending at i
    let j = i;
    while (j > 0 && digits + (i - j) < MAX_DIGITS && isDigit(msgId.charCodeAt(j - 1))) j--;
    const run = i - j;
    if (run === 0) return false; // only the first group can be empty: later ones start at a digit
    // read right to left: each digit's weight is `scale` (exact: the value stays below 10^15)
    for (let k = i - 1; k >= j; k--) {
      value += (msgId.charCodeAt(k) - 48) * scale;
      scale *= 10;
    }
    digits += run;
    groups++;
    // shape, right to left: this group's count above the separator and groups already read
    // bits, right to left: group 1's count (4), separator (3), group 2's count (4), ...
    shape |= run << (7 * (groups - 1));
    i = j;
    if (groups >= MAX_GROUPS || digits >= MAX_DIGITS || i < 2) break;
    const sep = sepCode(msgId.charCodeAt(i - 1));
    if (sep < 0 || !isDigit(msgId.charCodeAt(i - 2))) break;
    shape |= sep << (7 * groups - 3);
    i--;
  }
  parsed.prefixLen = i;
  parsed.shape = shape;
  parsed.value = value;
  parsed.digits = digits;
  return true;
}

const MIN_CAPACITY = 8;
/** A narrow set keeps `v - base + NARROW_BIAS` (+ 1, 0 = free) in 32 bits: values within ±2^31 of its first. */
const NARROW_BIAS = 2 ** 31;
const NARROW_MAX = 2 ** 32 - 2;

/**
 * A set of whole numbers 0 ≤ v < 2^53 - 1: open addressing with linear probing in one typed array,
 * 0 = free. No deletion: a generation's set is only ever cleared as a whole.
 *
 * Narrow (4 bytes a slot) while its values lie within ±2^31 of the first one (`agv-9999-000123`
 * is 9,999,000,123 but its neighbours are close): a slot holds the offset from that base; the first
 * value out of that range turns it wide (8 bytes a slot, the value itself), for good.
 * It keeps its smallest and largest value: a counter's next msgId is above every value already
 * stored, so most lookups of a fresh msgId end at that comparison, without hashing.
 */
export class NumSet {
  n = 0;
  lo = Infinity;
  hi = -1;
  private keys: Uint32Array | Float64Array;
  private wide = false;
  /** narrow: the value stored as offset NARROW_BIAS (NaN until the first add) */
  private base = NaN;
  private shift: number;

  constructor(capacity = MIN_CAPACITY) {
    this.keys = new Uint32Array(capacity);
    this.shift = 32 - Math.log2(capacity);
  }

  get capacity(): number {
    return this.keys.length;
  }

  get isWide(): boolean {
    return this.wide;
  }

  has(v: number): boolean {
    if (v < this.lo || v > this.hi) return false;
    let t = v;
    if (!this.wide) {
      t = v - this.base + NARROW_BIAS;
      if (!(t >= 0 && t <= NARROW_MAX)) return false; // every value held is in range
    }
    return this.keys[this.probe(t)] !== 0;
  }

  /** False when `v` was already there. */
  add(v: number): boolean {
    if ((this.n + 1) * 4 > this.keys.length * 3) this.rehash(this.keys.length * 2, this.wide);
    let t = v;
    if (!this.wide) {
      if (this.n === 0) this.base = v;
      t = v - this.base + NARROW_BIAS;
      if (!(t >= 0 && t <= NARROW_MAX)) {
        this.rehash(this.keys.length, true);
        t = v;
      }
    }
    if (this.insert(t)) {
      if (v < this.lo) this.lo = v;
      if (v > this.hi) this.hi = v;
      return true;
    }
    return false;
  }

  clear(): void {
    this.keys.fill(0);
    this.n = 0;
    this.lo = Infinity;
    this.hi = -1;
  }

  /** Puts stored form `t` in; false when it was there. */
  private insert(t: number): boolean {
    const i = this.probe(t);
    if (this.keys[i] !== 0) return false;
    this.keys[i] = t + 1;
    this.n++;
    return true;
  }

  /** The slot holding stored form `t`, or the empty slot where it would go (linear probing). */
  private probe(t: number): number {
    const keys = this.keys;
    const mask = keys.length - 1;
    const k = t + 1;
    let i = this.slot(t);
    for (let x = keys[i]!; x !== k && x !== 0; x = keys[i]!) i = (i + 1) & mask;
    return i;
  }

  /** Fibonacci hashing (of the value's two 32-bit halves when wide); the top bits pick the slot. */
  private slot(t: number): number {
    const h = this.wide ? (t >>> 0) ^ ((t / 4294967296) | 0) : t;
    return Math.imul(h, 0x9e3779b1) >>> this.shift;
  }

  /** Moves every value to a new array of `capacity` slots, wide or narrow (narrow → wide only). */
  private rehash(capacity: number, wide: boolean): void {
    const old = this.keys;
    const unbias = this.wide ? 0 : this.base - NARROW_BIAS;
    this.keys = wide ? new Float64Array(capacity) : new Uint32Array(capacity);
    this.shift = 32 - Math.log2(capacity);
    this.wide = wide;
    this.n = 0;
    for (let i = 0; i < old.length; i++) {
      const x = old[i]!;
      if (x === 0) continue;
      const v = x - 1 + unbias;
      this.insert(wide ? v : v - this.base + NARROW_BIAS);
    }
  }
}
