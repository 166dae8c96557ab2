/**
 * Numbers as JSON bytes, written straight into a payload buffer: exactly the bytes of `String(v)`
 * for a finite number, `null` for NaN and ±Infinity (spec §6). `String(v)` (V8's shortest
 * round-trip) is exact but makes a string per value, and the copy of its characters into the
 * payload is a loop of its own: together the most expensive part of the json encoder at maximum
 * ingest (PROFILE-mqtt-ingest-max). Sensor values are mostly integers or have a few decimals,
 * which are written here digit by digit; anything else goes through `String(v)` as before.
 * test/unit/json-number.test.ts checks the bytes against `String(v)` (fast-check).
 */

const C_MINUS = 0x2d;
const C_DOT = 0x2e;
const C_ZERO = 0x30;
const NULL_BYTES = Buffer.from("null");

/** Most decimals the fast path tries before falling back to `String(v)`. */
const MAX_DECIMALS = 6;
/** 10^d, exact as doubles. */
const POW10 = [1, 10, 100, 1000, 10_000, 100_000, 1_000_000];
/**
 * Digits the fast path writes at most. Two different decimals of at most 15 significant digits
 * never parse to the same double (DBL_DIG), so a 15-digit candidate that parses back to `v` is
 * the only one of its length: the one `String(v)` prints when it is also the shortest.
 */
const MAX_DIGITS_VALUE = 1e15;

/** Room any call needs after `at`: `String(-Number.MIN_VALUE)` is 24 characters. */
export const NUMBER_ROOM = 32;

/**
 * Writes `v` as JSON at `at` (the caller made NUMBER_ROOM bytes of room); returns the position
 * after it. The bytes are those of `String(v)`, or `null` for NaN and ±Infinity.
 */
export function putNumber(dst: Uint8Array, at: number, v: number): number {
  ONE[0] = v;
  return putNumberAt(dst, at, ONE, 0);
}

const ONE = new Float64Array(1);

/**
 * `putNumber` of `src[i]`. The hot path (a column of numbers): the double is read here and in
 * `putDecimal`, never passed as an argument, which would box every value that is not a small
 * integer (a heap object per sample, a fifth of the gateway's allocations when forwarding).
 */
export function putNumberAt(dst: Uint8Array, at: number, src: Float64Array, i: number): number {
  const v = src[i]!;
  if ((v | 0) === v) return putInteger(dst, at, v);
  if (v !== v || v === Infinity || v === -Infinity) { dst.set(NULL_BYTES, at); return at + 4; }
  if (Number.isSafeInteger(v)) return putInteger(dst, at, v);
  const p = putDecimal(dst, at, src, i);
  return p >= 0 ? p : putAscii(dst, at, String(v));
}

/**
 * Writes a safe integer as `String(v)` would (no exponent below 1e21, -0 as "0"); returns the position
 * after it. Digits go right to left into their final place, so no string is made.
 */
export function putInteger(dst: Uint8Array, at: number, v: number): number {
  if (v < 0) {
    dst[at++] = C_MINUS;
    v = -v;
  }
  return putDigits(dst, at, v, digitCount(v));
}

/**
 * `v` (finite, not an integer) with at most MAX_DECIMALS decimals and 15 significant digits, in
 * fixed notation as `String(v)` writes it; -1 (nothing written) for any other value. The first d
 * for which round(|v|·10^d) / 10^d gives back |v| is the fewest decimals any decimal parsing to v
 * has (the division of an integer below 2^53 by an exact power of ten is correctly rounded, as is
 * parsing), so these digits are the shortest round trip. |v| ≥ 1e-6: below it `String` writes an
 * exponent.
 */
function putDecimal(dst: Uint8Array, at: number, src: Float64Array, i: number): number {
  const v = src[i]!;
  const neg = v < 0;
  const a = neg ? -v : v;
  if (!(a >= 1e-6 && a < MAX_DIGITS_VALUE)) return -1;
  for (let d = 1; d <= MAX_DECIMALS; d++) {
    const p = POW10[d]!;
    const s = Math.round(a * p);
    if (s >= MAX_DIGITS_VALUE) return -1; // more digits than the fast path may write
    if (s / p !== a) continue;
    if (neg) dst[at++] = C_MINUS;
    const frac = s % p; // exact: s is a safe integer
    const whole = (s - frac) / p;
    at = putDigits(dst, at, whole, digitCount(whole));
    dst[at++] = C_DOT;
    let f = frac | 0; // below 10^MAX_DECIMALS
    for (let q = at + d; q > at;) {
      const next = (f / 10) | 0;
      dst[--q] = C_ZERO + (f - next * 10);
      f = next;
    }
    return at + d;
  }
  return -1;
}

/** Decimal digits of a non-negative safe integer. */
function digitCount(x: number): number {
  if (x < 1e9) return x < 10 ? 1 : x < 100 ? 2 : x < 1000 ? 3 : x < 10000 ? 4 : x < 100000 ? 5 : x < 1000000 ? 6 : x < 10000000 ? 7 : x < 100000000 ? 8 : 9;
  let len = 10;
  for (let t = 1e10; t <= x; t *= 10) len++;
  return len;
}

/** Writes the `len` digits of the non-negative safe integer `x` at `at`; returns the position after them. */
function putDigits(dst: Uint8Array, at: number, x: number, len: number): number {
  const end = at + len;
  let q = end;
  // Above int32: `%` and the subtraction are exact for safe integers, so the division is too.
  while (x > 0x7fffffff) {
    const d = x % 10;
    dst[--q] = C_ZERO + d;
    x = (x - d) / 10;
  }
  // int32 arithmetic only: a float `%` is a call into the runtime, and this runs per sample.
  let y = x | 0; // -0 becomes 0
  do {
    const next = (y / 10) | 0;
    dst[--q] = C_ZERO + (y - next * 10);
    y = next;
  } while (y !== 0);
  return end;
}

/** Writes an ASCII string (the text of a number); returns the position after it. */
function putAscii(dst: Uint8Array, at: number, s: string): number {
  for (let i = 0; i < s.length; i++) dst[at++] = s.charCodeAt(i);
  return at;
}
