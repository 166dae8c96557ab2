import { TAG_NAME_RE, type SampleValue } from "../core/sample.js";
import { PushBatch, scanPushBody } from "./push-scan.js";

export { PushBatch } from "./push-scan.js";

/** One problem in a push body, located by a JSON-ish path (`values.x_m`, `[2].ts`, `` for the whole body). */
export interface PayloadProblem {
  path: string;
  message: string;
}

/**
 * One validated device message: at least one tag, every name and value checked. The tags and
 * their values are kept as parsed (no per-value copy: this runs for every pushed sample).
 */
export interface PushMessage {
  msgId?: string | undefined;
  /** ms since the epoch, as sent by the device (skew correction happens later) */
  ts?: number | undefined;
  /** tag names in body order; each one is an own key of `values` */
  tags: readonly string[];
  /**
   * tag → value; read it only through `tags` (`values[tag]`): it is the parsed JSON object, whose
   * own `__proto__` key (JSON.parse defines it as a plain property) is then just a tag name.
   */
  values: Readonly<Record<string, SampleValue>>;
}

export type ParseResult = { ok: true; messages: PushMessage[] } | { ok: false; problems: PayloadProblem[] };
export type BatchResult = { ok: true; batch: PushBatch } | { ok: false; problems: PayloadProblem[] };

export const MAX_MSG_ID = 128;
export const MAX_STRING_VALUE = 1024;
/** Problems listed in one answer; beyond it a last entry says how many were left out. */
export const MAX_PROBLEMS = 50;

const MESSAGE_KEYS = new Set(["msgId", "ts", "values"]);
/** Value of the ASCII digit at `i` of `s`, or -1 (`\\d` in a RegExp without the u flag is 0-9 only). */
function digit(s: string, i: number): number {
  const d = s.charCodeAt(i) - 48;
  return d >= 0 && d <= 9 ? d : -1;
}

/** Two digits at `i` as a number, or -1. */
function two(s: string, i: number): number {
  const a = digit(s, i), b = digit(s, i + 1);
  return a < 0 || b < 0 ? -1 : a * 10 + b;
}

/** Days from 1970-01-01 to y-m-d (proleptic Gregorian; y ≥ 0, m 1–12). */
function daysFromCivil(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const POW10 = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000, 1_000_000_000];

/**
 * The last `YYYY-MM-DDTHH` prefix parsed and its epoch ms: a device sends consecutive timestamps,
 * so most calls share the previous one's date and hour and skip the calendar work.
 */
let cachedPrefix = "";
let cachedPrefixMs = 0;

/**
 * Epoch ms of a `YYYY-MM-DDTHH` prefix, or NaN when it is not a calendar-valid date and hour.
 * Exactly what the former RegExp + `Date.UTC` version computed, quirks included: `Date.UTC` reads
 * years 0–99 as 1900–1999 (so `0050-…` is 1950 and `0000-02-29` is refused, 1900 not being leap).
 */
function prefixMs(s: string): number {
  if (cachedPrefix.length === 13 && s.startsWith(cachedPrefix)) return cachedPrefixMs;
  const y0 = digit(s, 0), y1 = digit(s, 1), y2 = digit(s, 2), y3 = digit(s, 3);
  if (y0 < 0 || y1 < 0 || y2 < 0 || y3 < 0) return NaN;
  if (s.charCodeAt(4) !== 45 || s.charCodeAt(7) !== 45) return NaN; // '-'
  const t = s.charCodeAt(10);
  if (t !== 84 && t !== 116) return NaN; // 'T' or 't'
  const month = two(s, 5), day = two(s, 8), hour = two(s, 11);
  if (month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23) return NaN;
  let year = y0 * 1000 + y1 * 100 + y2 * 10 + y3;
  if (year < 100) year += 1900;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const dim = month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1]!;
  if (day > dim) return NaN;
  const ms = daysFromCivil(year, month, day) * 86_400_000 + hour * 3_600_000;
  cachedPrefix = s.slice(0, 13);
  cachedPrefixMs = ms;
  return ms;
}

/**
 * Parses an RFC 3339 timestamp strictly (calendar-valid date, no leap second, explicit offset):
 * `YYYY-MM-DD[Tt]hh:mm:ss[.1–9 digits]([Zz]|[+-]hh:mm)`, nothing before or after. `Date.parse`
 * alone would accept `2026-02-30` and non-RFC forms. Hand-written (no RegExp, no Date, no
 * substring but a cached prefix) because it runs for every pushed message; test/ingest holds it
 * to the former RegExp version. Returns ms since the epoch or undefined.
 */
export function parseRfc3339(s: string): number | undefined {
  const n = s.length;
  // 19 fixed characters, then 0 or 2–10 of fraction, then 1 or 6 of zone
  if (n < 20 || n > 35) return undefined;
  const base = prefixMs(s);
  if (base !== base) return undefined; // NaN: not a date and hour (before 1970 is negative, and valid)
  if (s.charCodeAt(13) !== 58 || s.charCodeAt(16) !== 58) return undefined; // ':'
  const min = two(s, 14), sec = two(s, 17);
  if (min < 0 || min > 59 || sec < 0 || sec > 59) return undefined;
  let i = 19;
  let frac = 0;
  if (s.charCodeAt(i) === 46) { // '.'
    i++;
    let f = 0;
    let k = 0;
    for (; k < 9 && i < n; k++, i++) {
      const d = digit(s, i);
      if (d < 0) break;
      f = f * 10 + d;
    }
    if (k === 0) return undefined;
    // f / 10^k is the correctly rounded double Number("0.<digits>") yields (f < 2^53, 10^k exact):
    // the same double, then the same multiply and floor as before.
    frac = Math.floor((f / POW10[k]!) * 1000);
  }
  const z = s.charCodeAt(i);
  let offsetMs = 0;
  if (z === 90 || z === 122) { // 'Z' or 'z'
    if (i + 1 !== n) return undefined;
  } else if (z === 43 || z === 45) { // '+' or '-'
    if (i + 6 !== n || s.charCodeAt(i + 3) !== 58) return undefined;
    const oh = two(s, i + 1), om = two(s, i + 4);
    if (oh < 0 || oh > 23 || om < 0 || om > 59) return undefined;
    offsetMs = (z === 45 ? -1 : 1) * (oh * 60 + om) * 60_000;
  } else return undefined;
  return base + min * 60_000 + sec * 1000 + frac - offsetMs;
}

/** Renders an object key for a path, shortened and quoted when it is not a plain name. */
function keyPath(prefix: string, key: string): string {
  const p = prefix === "" ? "" : `${prefix}.`;
  if (/^[A-Za-z0-9_.-]{1,128}$/.test(key)) return `${p}${key}`;
  const shown = key.length > 40 ? `${key.slice(0, 40)}…` : key;
  return `${prefix}[${JSON.stringify(shown)}]`;
}

function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  return typeof v;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** `[A-Za-z0-9_.-]{1,128}` (TAG_NAME_RE) without a RegExp call: this runs once per pushed value. */
export function isTagName(s: string): boolean {
  const n = s.length;
  if (n < 1 || n > 128) return false;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    // a-z, A-Z, 0-9, '_', '.', '-'
    if ((c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 95 || c === 46 || c === 45) continue;
    return false;
  }
  return true;
}

/**
 * True when Object.prototype has an enumerable key (someone polluted it): `for…in` over a parsed
 * message would then see inherited keys, so `fastMessage` must not be used. Checked once per body.
 */
function prototypePolluted(): boolean {
  for (const _ in Object.prototype) return true;
  return false;
}

/**
 * The happy path of `validateMessage`: one walk, no paths, no copies. Returns undefined at the
 * first irregularity of any kind; the caller then runs `validateMessage`, which is the authority
 * on what is wrong (and on what is right: it accepts anything this one does, with the same result).
 * Only for a body whose Object.prototype is clean (`prototypePolluted`): `for…in` then walks own
 * keys only, without the key array `Object.keys` would allocate for every message.
 */
function fastMessage(raw: unknown): PushMessage | undefined {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return undefined;
  const o = raw as Record<string, unknown>;
  let msgId: string | undefined;
  let ts: number | undefined;
  let values: unknown;
  for (const k in o) {
    if (k === "values") values = o.values;
    else if (k === "msgId") {
      const id = o.msgId;
      if (typeof id !== "string" || id.length < 1 || id.length > MAX_MSG_ID) return undefined;
      msgId = id;
    } else if (k === "ts") {
      const t = o.ts;
      if (typeof t !== "string") return undefined;
      ts = parseRfc3339(t);
      if (ts === undefined) return undefined;
    } else return undefined;
  }
  if (values === undefined || typeof values !== "object" || values === null || Array.isArray(values)) return undefined;
  const vals = values as Record<string, unknown>;
  const tags = Object.keys(vals);
  const n = tags.length;
  if (n === 0) return undefined;
  for (let i = 0; i < n; i++) {
    const tag = tags[i]!;
    if (!isTagName(tag)) return undefined;
    const v = vals[tag];
    if (typeof v === "number") {
      if (v - v !== 0) return undefined; // NaN or ±Infinity
    } else if (typeof v === "string") {
      if (v.length > MAX_STRING_VALUE) return undefined;
    } else if (v !== null && typeof v !== "boolean") return undefined;
  }
  // One object shape for every message (absent fields are undefined, not missing).
  return { msgId, ts, tags, values: vals as Record<string, SampleValue> };
}

function validateMessage(raw: unknown, prefix: string, problems: PayloadProblem[]): PushMessage | undefined {
  const at = (k: string) => keyPath(prefix, k);
  if (!isPlainObject(raw)) {
    problems.push({ path: prefix, message: `expected an object with "values", found ${typeName(raw)}` });
    return undefined;
  }
  const before = problems.length;
  for (const k of Object.keys(raw)) {
    if (!MESSAGE_KEYS.has(k)) problems.push({ path: at(k), message: "unknown key (allowed: msgId, ts, values)" });
  }
  const msg: { msgId?: string; ts?: number; tags: string[]; values: Record<string, SampleValue> } = { tags: [], values: Object.create(null) as Record<string, SampleValue> };
  const put = (tag: string, v: SampleValue) => { msg.tags.push(tag); msg.values[tag] = v; };
  if ("msgId" in raw) {
    const id = raw.msgId;
    if (typeof id !== "string") problems.push({ path: at("msgId"), message: `expected a string, found ${typeName(id)}` });
    else if (id.length < 1 || id.length > MAX_MSG_ID) problems.push({ path: at("msgId"), message: `must be 1–${MAX_MSG_ID} characters, found ${id.length}` });
    else msg.msgId = id;
  }
  if ("ts" in raw) {
    const ts = raw.ts;
    if (typeof ts !== "string") problems.push({ path: at("ts"), message: `expected an RFC 3339 string, found ${typeName(ts)}` });
    else {
      const t = parseRfc3339(ts);
      if (t === undefined) problems.push({ path: at("ts"), message: `not an RFC 3339 timestamp (e.g. 2026-11-21T08:00:00.123Z): ${JSON.stringify(ts.slice(0, 40))}` });
      else msg.ts = t;
    }
  }
  if (!("values" in raw)) {
    problems.push({ path: at("values"), message: "required: an object of tag → value" });
  } else if (!isPlainObject(raw.values)) {
    problems.push({ path: at("values"), message: `expected an object of tag → value, found ${typeName(raw.values)}` });
  } else {
    const vp = at("values");
    const keys = Object.keys(raw.values);
    if (keys.length === 0) problems.push({ path: vp, message: "at least one value is required" });
    for (const tag of keys) {
      const v = (raw.values as Record<string, unknown>)[tag];
      const p = keyPath(vp, tag);
      if (!TAG_NAME_RE.test(tag)) {
        problems.push({ path: p, message: "bad tag name: 1–128 characters of A-Z a-z 0-9 _ . -" });
        continue;
      }
      if (v === null || typeof v === "boolean") put(tag, v);
      else if (typeof v === "number") {
        if (Number.isFinite(v)) put(tag, v);
        else problems.push({ path: p, message: "number out of range (must be finite)" });
      } else if (typeof v === "string") {
        if (v.length <= MAX_STRING_VALUE) put(tag, v);
        else problems.push({ path: p, message: `string longer than ${MAX_STRING_VALUE} characters (${v.length})` });
      } else problems.push({ path: p, message: `expected number, boolean, string or null, found ${typeName(v)}` });
    }
  }
  return problems.length === before ? msg : undefined;
}

/** All messages of a body through `fastMessage`, or undefined as soon as one is irregular. */
function fastBody(raw: unknown): PushMessage[] | undefined {
  if (prototypePolluted()) return undefined;
  if (!Array.isArray(raw)) {
    const m = fastMessage(raw);
    return m === undefined ? undefined : [m];
  }
  const n = raw.length;
  if (n === 0) return undefined;
  const out = new Array<PushMessage>(n);
  for (let i = 0; i < n; i++) {
    const m = fastMessage(raw[i]);
    if (m === undefined) return undefined;
    out[i] = m;
  }
  return out;
}

/**
 * Parses and validates a push body: one message object or a non-empty JSON array of them. Every
 * problem is listed (up to MAX_PROBLEMS) with its path so a device developer can fix all at once;
 * a body is accepted only when it has no problem at all (no partial stores).
 */
export function parsePushBody(body: Buffer | string): ParseResult {
  let raw: unknown;
  try {
    raw = JSON.parse(typeof body === "string" ? body : body.toString("utf8"));
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    return { ok: false, problems: [{ path: "", message: `invalid JSON: ${detail.slice(0, 200)}` }] };
  }
  const fast = fastBody(raw);
  if (fast !== undefined) return { ok: true, messages: fast };
  const problems: PayloadProblem[] = [];
  const messages: PushMessage[] = [];
  if (Array.isArray(raw)) {
    if (raw.length === 0) problems.push({ path: "", message: "empty array: send at least one message" });
    raw.forEach((m, i) => {
      const msg = validateMessage(m, `[${i}]`, problems);
      if (msg) messages.push(msg);
    });
  } else {
    const msg = validateMessage(raw, "", problems);
    if (msg) messages.push(msg);
  }
  if (problems.length > 0) {
    if (problems.length > MAX_PROBLEMS) {
      const more = problems.length - MAX_PROBLEMS;
      problems.length = MAX_PROBLEMS;
      problems.push({ path: "", message: `…and ${more} more problems` });
    }
    return { ok: false, problems };
  }
  return { ok: true, messages };
}

/**
 * `parsePushBody` as columns, for the ingest: the same acceptance, messages and problems. A body
 * (bytes) in the common shape is scanned without JSON.parse and without an object per message or
 * value (push-scan.ts); anything else goes through `parsePushBody`.
 */
export function parsePushBatch(body: Buffer | string): BatchResult {
  if (typeof body !== "string" && !prototypePolluted()) {
    const b = scanPushBody(body, MAX_MSG_ID, MAX_STRING_VALUE, parseRfc3339);
    if (b !== undefined) return { ok: true, batch: b };
  }
  const r = parsePushBody(body);
  return r.ok ? { ok: true, batch: batchOf(r.messages) } : r;
}

function batchOf(messages: readonly PushMessage[]): PushBatch {
  const msgIds: (string | undefined)[] = [];
  const ts: (number | undefined)[] = [];
  const starts = [0];
  const tags: string[] = [];
  const nums: number[] = [];
  let other: Map<number, SampleValue> | undefined;
  for (const m of messages) {
    msgIds.push(m.msgId);
    ts.push(m.ts);
    for (const tag of m.tags) {
      const v = m.values[tag] as SampleValue;
      if (typeof v === "number") nums.push(v);
      else {
        nums.push(0);
        (other ??= new Map()).set(tags.length, v);
      }
      tags.push(tag);
    }
    starts.push(tags.length);
  }
  return new PushBatch(msgIds, ts, starts, tags, Float64Array.from(nums), other);
}
