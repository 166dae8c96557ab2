import { TAG_NAME_RE, type SampleValue } from "../core/sample.js";

/** One problem in a push body, located by a JSON-ish path (`values.x_m`, `[2].ts`, `` for the whole body). */
export interface PayloadProblem {
  path: string;
  message: string;
}

/** One validated device message: `values` has at least one tag, every name and value checked. */
export interface PushMessage {
  msgId?: string;
  /** ms since the epoch, as sent by the device (skew correction happens later) */
  ts?: number;
  /** tag → value pairs in body order (an array, so a tag named `__proto__` is just a name) */
  values: Array<[string, SampleValue]>;
}

export type ParseResult = { ok: true; messages: PushMessage[] } | { ok: false; problems: PayloadProblem[] };

export const MAX_MSG_ID = 128;
export const MAX_STRING_VALUE = 1024;
/** Problems listed in one answer; beyond it a last entry says how many were left out. */
export const MAX_PROBLEMS = 50;

const MESSAGE_KEYS = new Set(["msgId", "ts", "values"]);
const RFC3339_RE = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|([+-])(\d{2}):(\d{2}))$/;

/**
 * Parses an RFC 3339 timestamp strictly (calendar-valid date, no leap second, explicit offset).
 * `Date.parse` alone would accept `2026-02-30` and non-RFC forms, hence the explicit checks.
 * Returns ms since the epoch or undefined.
 */
export function parseRfc3339(s: string): number | undefined {
  const m = RFC3339_RE.exec(s);
  if (!m) return undefined;
  const [year, month, day, hour, min, sec] = [m[1], m[2], m[3], m[4], m[5], m[6]].map(Number) as [number, number, number, number, number, number];
  if (month < 1 || month > 12 || day < 1 || hour > 23 || min > 59 || sec > 59) return undefined;
  const dim = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (day > dim) return undefined;
  let offsetMin = 0;
  if (m[9] !== undefined) {
    const oh = Number(m[10]), om = Number(m[11]);
    if (oh > 23 || om > 59) return undefined;
    offsetMin = (m[9] === "-" ? -1 : 1) * (oh * 60 + om);
  }
  const frac = m[7] ? Math.floor(Number(`0${m[7]}`) * 1000) : 0;
  const t = Date.UTC(year, month - 1, day, hour, min, sec, frac) - offsetMin * 60_000;
  return Number.isFinite(t) ? t : undefined;
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
  const msg: PushMessage = { values: [] };
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
      if (v === null || typeof v === "boolean") msg.values.push([tag, v]);
      else if (typeof v === "number") {
        if (Number.isFinite(v)) msg.values.push([tag, v]);
        else problems.push({ path: p, message: "number out of range (must be finite)" });
      } else if (typeof v === "string") {
        if (v.length <= MAX_STRING_VALUE) msg.values.push([tag, v]);
        else problems.push({ path: p, message: `string longer than ${MAX_STRING_VALUE} characters (${v.length})` });
      } else problems.push({ path: p, message: `expected number, boolean, string or null, found ${typeName(v)}` });
    }
  }
  return problems.length === before ? msg : undefined;
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
