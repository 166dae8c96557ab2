import type { SampleValue } from "../core/sample.js";
import { carveDoubles } from "../core/sample-columns.js";

/**
 * A validated push body as columns: every message's msgId and ts, and every value of every
 * message in body order, with no object per message or per value. What the ingest stores.
 */
export class PushBatch {
  constructor(
    /** per message */
    readonly msgIds: readonly (string | undefined)[],
    /** per message: ms since the epoch as sent, undefined when the message has none */
    readonly ts: readonly (number | undefined)[],
    /** message i's values are `starts[i] … starts[i + 1] - 1`; one more entry than messages */
    readonly starts: readonly number[],
    /**
     * per value: its tag. Never written after the batch is made: the scanner hands the same
     * array to consecutive bodies with the same tag sequence (see `scanPushBody`).
     */
    readonly tags: readonly string[],
    /**
     * per value: the number, where `other` has no entry (0 there); at least as long as `tags`
     * (longer entries are unused). Carved from the column slabs, so the ingest may take it over as
     * its columns' `nums` (ColumnsBuilder) instead of copying it; nobody writes into it afterwards.
     */
    readonly nums: Float64Array,
    /** per value index: the non-numeric values (string, boolean, null); undefined when none */
    readonly other: ReadonlyMap<number, SampleValue> | undefined,
  ) {}

  get messages(): number {
    return this.msgIds.length;
  }

  valueAt(j: number): SampleValue {
    const o = this.other;
    return o !== undefined && o.has(j) ? o.get(j)! : this.nums[j]!;
  }
}

const MAX_TAG = 128;
/** exact powers of ten for the fast number path (10^22 is the largest exact double power) */
const POW10 = Array.from({ length: 23 }, (_, i) => Number(`1e${i}`));

// Scanner state: module-level because a scan is synchronous and this runs for every pushed body.
let buf: Buffer = Buffer.alloc(0);
let pos = 0;
let end = 0;
/** the last message's tags by position: a device sends the same tags in the same order */
const tagCache: string[] = [];
/** tags in the last message scanned whole, and whether they were distinct (false while one is scanned) */
let lastCount = 0;
let lastDistinct = false;
/** the non-numeric values of the body being scanned, by value index */
let other: Map<number, SampleValue> | undefined;
/** values scanned so far in this body (the next one's index in `tags` and `nums`) */
let nv = 0;
/** the numbers column of the body being scanned (grown by carving a larger one) */
let numsOut: Float64Array = new Float64Array(0);
/**
 * The tags of the last body returned, shared as long as this body repeats them value by value:
 * a fleet's devices send the same tags in the same order, so most bodies get no tag array of
 * their own (and the column sets, the live view and the journal's encoder see the very same
 * list). `tagsOwn` is this body's own array once it differs (the prefix copied over).
 */
let prevTags: readonly string[] = [];
let tagsOwn: string[] | undefined;
/** The last `ts` string's bytes and what it parsed to: a device sends the same ts in a body's messages. */
const tsBytes = Buffer.alloc(40);
let tsLen = 0;
let tsMs = 0;
let tsParser: ((s: string) => number | undefined) | undefined;
/**
 * Values in the last body scanned: a device's next body is usually as large, so the arrays are
 * sized once instead of growing (and leaving their smaller copies as garbage) value by value.
 */
let sizeHint = 16;

/**
 * Scans a push body in its common shape straight from the bytes: one message object or a
 * non-empty array of them; keys `msgId` (1–128 characters), `ts` (RFC 3339) and `values` (1 or more
 * tags, each a finite number, a string of at most `maxString` characters, a boolean or null),
 * each key at most once, strings without escapes. Returns undefined for anything else, valid or
 * not (an escape, a repeated key, a tag of digits only, a nested value, a syntax error): the
 * caller then parses the body with JSON.parse, which is the authority. For every body it returns
 * a batch for, JSON.parse and the full validation accept the body with the same messages (the
 * property tests in test/ingest/payload.test.ts hold the two together).
 *
 * Why: JSON.parse builds an object per message, a property and a boxed number per value and a
 * string per key, all garbage a few microseconds later; at 1,000,000 values/s that garbage was
 * a large part of the gateway's GC time. Tag strings are reused from the previous message.
 */
export function scanPushBody(body: Buffer, maxMsgId: number, maxString: number, parseTs: (s: string) => number | undefined): PushBatch | undefined {
  buf = body;
  pos = 0;
  end = body.length;
  other = undefined;
  try {
    return scan(maxMsgId, maxString, parseTs);
  } finally {
    buf = EMPTY;
    other = undefined;
    tagsOwn = undefined;
  }
}

const EMPTY = Buffer.alloc(0);

function scan(maxMsgId: number, maxString: number, parseTs: (s: string) => number | undefined): PushBatch | undefined {
  const msgIds: (string | undefined)[] = [];
  const tss: (number | undefined)[] = [];
  const starts: number[] = [0];
  numsOut = carveDoubles(sizeHint);
  tagsOwn = undefined;
  nv = 0;
  skipWs();
  const array = buf[pos] === 0x5b; // '['
  if (array) {
    pos++;
    skipWs();
  }
  for (;;) {
    // one message object
    if (buf[pos] !== 0x7b) return undefined; // '{'
    pos++;
    let msgId: string | undefined;
    let ts: number | undefined;
    let seenValues = false;
    let seen = 0; // bit per key: 1 msgId, 2 ts, 4 values
    skipWs();
    for (;;) {
      if (buf[pos] !== 0x22) return undefined; // '"'
      const key = messageKey();
      if (key === 0 || (seen & key) !== 0) return undefined;
      seen |= key;
      skipWs();
      if (buf[pos] !== 0x3a) return undefined; // ':'
      pos++;
      skipWs();
      if (key === 4) {
        if (!values(maxString)) return undefined;
        seenValues = true;
      } else if (key === 2) {
        if (buf[pos] !== 0x22) return undefined;
        ts = timestamp(parseTs);
        if (ts === undefined) return undefined;
      } else {
        if (buf[pos] !== 0x22) return undefined;
        const s = string();
        if (s === undefined || s.length < 1 || s.length > maxMsgId) return undefined;
        msgId = s;
      }
      skipWs();
      const c = buf[pos];
      pos++;
      if (c === 0x7d) break; // '}'
      if (c !== 0x2c) return undefined; // ','
      skipWs();
    }
    if (!seenValues) return undefined;
    msgIds.push(msgId);
    tss.push(ts);
    starts.push(nv);
    skipWs();
    if (!array) break;
    const c = buf[pos];
    pos++;
    if (c === 0x5d) { // ']'
      skipWs();
      break;
    }
    if (c !== 0x2c) return undefined;
    skipWs();
  }
  if (pos !== end) return undefined;
  sizeHint = nv;
  let tags: readonly string[];
  const own = tagsOwn as string[] | undefined; // set by putTag, which TypeScript's narrowing cannot see
  if (own !== undefined) {
    own.length = nv;
    tags = own;
  } else tags = nv === prevTags.length ? prevTags : prevTags.slice(0, nv);
  prevTags = tags;
  tagsOwn = undefined;
  return new PushBatch(msgIds, tss, starts, tags, numsOut, other);
}

/** Value `at`'s tag: kept in the shared list while it matches, else in this body's own. */
function putTag(at: number, tag: string): void {
  const own = tagsOwn;
  if (own !== undefined) own[at] = tag;
  else if (prevTags[at] !== tag) {
    const copy = new Array<string>(Math.max(sizeHint, at + 1));
    for (let i = 0; i < at; i++) copy[i] = prevTags[i]!;
    copy[at] = tag;
    tagsOwn = copy;
  }
}

/**
 * At a '"': a `ts` string, parsed; undefined when it is not a valid one (or has an escape: the
 * caller leaves those to JSON.parse). The same bytes as the last ts give its value again without a
 * string or a parse (`parseTs` is pure).
 */
function timestamp(parseTs: (s: string) => number | undefined): number | undefined {
  const s = pos + 1;
  const b = buf;
  // The last ts again (a device's messages in one body mostly share it): its bytes and the closing
  // quote are enough, they held no escape or control character when first parsed.
  const n0 = tsLen;
  if (n0 > 0 && parseTs === tsParser && s + n0 < end && b[s + n0] === 0x22) {
    let k = 0;
    while (k < n0 && tsBytes[k] === b[s + k]) k++;
    if (k === n0) {
      pos = s + n0 + 1;
      return tsMs;
    }
  }
  let e = s;
  for (; e < end; e++) {
    const c = b[e]!;
    if (c === 0x22) break;
    if (c === 0x5c || c < 0x20) return undefined;
  }
  if (e >= end) return undefined;
  const n = e - s;
  const str = string();
  if (str === undefined) return undefined;
  const ms = parseTs(str);
  if (ms !== undefined && n <= tsBytes.length) {
    b.copy(tsBytes, 0, s, e);
    tsLen = n;
    tsMs = ms;
    tsParser = parseTs;
  }
  return ms;
}

function skipWs(): void {
  pos = ws(buf, pos);
}

/** At a '"': which message key (1 msgId, 2 ts, 4 values) or 0 for any other; past its closing quote. */
function messageKey(): number {
  const s = pos + 1;
  let e = s;
  while (e < end && buf[e] !== 0x22) e++;
  if (e >= end) return 0;
  pos = e + 1;
  const n = e - s;
  const b = buf;
  if (n === 6 && b[s] === 0x76 && b[s + 1] === 0x61 && b[s + 2] === 0x6c && b[s + 3] === 0x75 && b[s + 4] === 0x65 && b[s + 5] === 0x73) return 4; // values
  if (n === 5 && b[s] === 0x6d && b[s + 1] === 0x73 && b[s + 2] === 0x67 && b[s + 3] === 0x49 && b[s + 4] === 0x64) return 1; // msgId
  if (n === 2 && b[s] === 0x74 && b[s + 1] === 0x73) return 2; // ts
  return 0;
}

/**
 * At a '"': the string up to the next '"', or undefined when it has an escape or a control
 * character (JSON.parse decides those). Non-ASCII bytes are decoded as UTF-8, as
 * `body.toString("utf8")` does for the whole body (the quotes around are ASCII, so a range
 * decodes the same as within the whole).
 */
function string(): string | undefined {
  const s = pos + 1;
  let e = s;
  let ascii = true;
  for (; e < end; e++) {
    const c = buf[e]!;
    if (c === 0x22) break;
    if (c === 0x5c || c < 0x20) return undefined;
    if (c >= 0x80) ascii = false;
  }
  if (e >= end) return undefined;
  pos = e + 1;
  return buf.toString(ascii ? "latin1" : "utf8", s, e);
}

/**
 * At the value of `values`: the tag → value object, appended to the tags and `numsOut`. The
 * common path (a cached tag, a number) keeps the position in a local: the module-level `pos` is a
 * memory slot that every read and write would go through, several times per value.
 */
function values(maxString: number): boolean {
  const prevCount = lastCount;
  const prevDistinct = lastDistinct;
  lastDistinct = false; // the cache changes below: nothing is known until this message is whole
  const b = buf;
  const e = end;
  let p = pos;
  if (b[p] !== 0x7b) return false; // '{'
  p++;
  const first = nv;
  let hits = 0;
  // Whitespace is skipped only where the expected byte is not found: compact bodies have none.
  for (let j = 0; ; j++) {
    if (b[p] !== 0x22) {
      p = ws(b, p);
      if (b[p] !== 0x22) return false;
    }
    // The same tag as the last message's at this place (the usual case): its bytes and the closing
    // quote are enough, it was checked when first seen.
    let tag: string | undefined;
    const cached = tagCache[j];
    if (cached !== undefined) {
      const s = p + 1;
      const n = cached.length;
      if (s + n < e && b[s + n] === 0x22) {
        let k = 0;
        while (k < n && cached.charCodeAt(k) === b[s + k]) k++;
        if (k === n) {
          p = s + n + 1;
          tag = cached;
          hits++;
        }
      }
    }
    if (tag === undefined) {
      pos = p;
      tag = newTag();
      if (tag === undefined) return false;
      p = pos;
      tagCache[j] = tag;
    }
    if (b[p] !== 0x3a) { // ':'
      p = ws(b, p);
      if (b[p] !== 0x3a) return false;
    }
    p++;
    if (b[p]! <= 0x20) p = ws(b, p);
    const at = nv++;
    putTag(at, tag);
    if (at === numsOut.length) {
      const grown = carveDoubles(Math.max(16, at * 2));
      grown.set(numsOut);
      numsOut = grown;
    }
    const c = b[p]!;
    if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      p = number(b, p, at);
      if (p < 0) return false;
    } else {
      pos = p;
      if (!nonNumber(c, at, maxString)) return false;
      p = pos;
    }
    if (b[p]! <= 0x20) p = ws(b, p);
    const d = b[p++];
    if (d === 0x7d) break; // '}'
    if (d !== 0x2c) return false;
  }
  pos = p;
  // JSON.parse keeps the last of a repeated key at the first one's place: leave that to it.
  const n = nv - first;
  lastCount = n;
  // the previous message's very tags, already found distinct: nothing to check again
  lastDistinct = (n === prevCount && hits === n && prevDistinct) || distinct(first, n);
  return lastDistinct;
}

/** Past JSON whitespace from `p` (compact bodies have none: one compare). */
function ws(b: Buffer, p: number): number {
  for (;;) {
    const c = b[p]!;
    if (c > 0x20 || (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09)) return p;
    p++;
  }
}

/** At `pos`, a value that is not a number (first byte `c`): a string, true, false or null, into `other`. */
function nonNumber(c: number, at: number, maxString: number): boolean {
  let v: SampleValue;
  if (c === 0x22) {
    const s = string();
    if (s === undefined || s.length > maxString) return false;
    v = s;
  } else if (c === 0x74) { // true
    if (!literal(0x74, 0x72, 0x75, 0x65)) return false;
    v = true;
  } else if (c === 0x66) { // false
    if (buf[pos + 4] !== 0x65 || !literal(0x66, 0x61, 0x6c, 0x73)) return false;
    pos++;
    v = false;
  } else if (c === 0x6e) { // null
    if (!literal(0x6e, 0x75, 0x6c, 0x6c)) return false;
    v = null;
  } else return false;
  numsOut[at] = 0;
  (other ??= new Map()).set(at, v);
  return true;
}

function literal(a: number, b: number, c: number, d: number): boolean {
  if (buf[pos] !== a || buf[pos + 1] !== b || buf[pos + 2] !== c || buf[pos + 3] !== d) return false;
  pos += 4;
  return true;
}

function distinct(first: number, n: number): boolean {
  const tags = tagsOwn ?? prevTags;
  if (n > 16) return new Set(tags.slice(first, first + n)).size === n;
  for (let i = first + 1; i < first + n; i++) {
    const t = tags[i];
    for (let k = first; k < i; k++) if (tags[k] === t) return false;
  }
  return true;
}

/**
 * At a '"': a tag name (`[A-Za-z0-9_.-]{1,128}`, not digits only: an integer-like key would be
 * moved to the front by JSON.parse) that is not the cached one for its place.
 */
function newTag(): string | undefined {
  const s = pos + 1;
  let e = s;
  let digits = true;
  for (; e < end; e++) {
    const c = buf[e]!;
    if (c === 0x22) break;
    if (c >= 0x30 && c <= 0x39) continue;
    digits = false;
    if ((c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f || c === 0x2e || c === 0x2d) continue;
    return undefined;
  }
  const n = e - s;
  if (e >= end || n < 1 || n > MAX_TAG || digits) return undefined;
  pos = e + 1;
  return buf.toString("latin1", s, e);
}

/**
 * The JSON number at `p` of `b`, exactly as JSON.parse reads it, into `numsOut[at]`; returns where
 * it ends, or -1 when the text is not one or is not finite. Up to 15 significant digits with a
 * power of ten up to 22 is one exact operation (correctly rounded, as JSON.parse is); anything
 * longer goes through Number(). Stored here rather than returned: a returned double that is not a
 * small integer is a heap object.
 */
function number(b: Buffer, p: number, at: number): number {
  const s = p;
  let i = p;
  const neg = b[i] === 0x2d;
  if (neg) i++;
  let m = 0;
  let nd = 0;
  let c = b[i]!;
  if (c === 0x30) i++;
  else if (c >= 0x31 && c <= 0x39) {
    for (; (c = b[i]!) >= 0x30 && c <= 0x39; i++, nd++) m = m * 10 + (c - 0x30);
  } else return -1;
  let e = 0;
  if (b[i] === 0x2e) {
    i++;
    const f = i;
    for (; (c = b[i]!) >= 0x30 && c <= 0x39; i++) {
      if (m !== 0 || c !== 0x30) nd++;
      m = m * 10 + (c - 0x30);
    }
    if (i === f) return -1;
    e = f - i;
  }
  c = b[i]!;
  if (c === 0x65 || c === 0x45) { // e E
    i++;
    let es = 1;
    if (b[i] === 0x2b) i++;
    else if (b[i] === 0x2d) { es = -1; i++; }
    const f = i;
    let x = 0;
    for (; (c = b[i]!) >= 0x30 && c <= 0x39; i++) x = x * 10 + (c - 0x30);
    if (i === f) return -1;
    if (i - f > 6) nd = 99; // leave absurd exponents to Number()
    else e += es * x;
  }
  let v: number;
  if (nd <= 15 && e >= -22 && e <= 22) v = e >= 0 ? m * POW10[e]! : m / POW10[-e]!;
  else v = Number(b.toString("latin1", neg ? s + 1 : s, i));
  if (v - v !== 0) return -1; // ±Infinity (1e999): the full validation reports it
  numsOut[at] = neg ? -v : v;
  return i;
}
