/**
 * The push-body parser as it was before the hand-written RFC 3339 parser and the allocation cuts
 * (commit 1310cca, src/ingest/payload.ts), kept verbatim as the reference the property tests in
 * payload.test.ts hold the current one to. Not used by the gateway.
 */
import { TAG_NAME_RE, type SampleValue } from "../../src/core/sample.js";
import { MAX_MSG_ID, MAX_PROBLEMS, MAX_STRING_VALUE, isTagName, type ParseResult, type PayloadProblem, type PushMessage } from "../../src/ingest/payload.js";

const MESSAGE_KEYS = new Set(["msgId", "ts", "values"]);
const RFC3339_RE = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|([+-])(\d{2}):(\d{2}))$/;

/**
 * Parses an RFC 3339 timestamp strictly (calendar-valid date, no leap second, explicit offset).
 * `Date.parse` alone would accept `2026-02-30` and non-RFC forms, hence the explicit checks.
 * Returns ms since the epoch or undefined.
 */
export function refParseRfc3339(s: string): number | undefined {
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

/**
 * The happy path of `validateMessage`: one walk, no paths, no copies. Returns undefined at the
 * first irregularity of any kind; the caller then runs `validateMessage`, which is the authority
 * on what is wrong (and on what is right: it accepts anything this one does, with the same result).
 */
function fastMessage(raw: unknown): PushMessage | undefined {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return undefined;
  const o = raw as Record<string, unknown>;
  let msgId: string | undefined;
  let ts: number | undefined;
  let values: unknown;
  let seen = 0;
  for (const k in o) {
    if (k === "values") values = o.values;
    else if (k === "msgId") {
      const id = o.msgId;
      if (typeof id !== "string" || id.length < 1 || id.length > MAX_MSG_ID) return undefined;
      msgId = id;
    } else if (k === "ts") {
      const t = o.ts;
      if (typeof t !== "string") return undefined;
      ts = refParseRfc3339(t);
      if (ts === undefined) return undefined;
    } else return undefined;
    seen++;
  }
  if (values === undefined || typeof values !== "object" || values === null || Array.isArray(values)) return undefined;
  // for…in also walks inherited enumerable keys: a count mismatch means a polluted prototype
  if (seen !== Object.keys(o).length) return undefined;
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
      const t = refParseRfc3339(ts);
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
export function refParsePushBody(body: Buffer | string): ParseResult {
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
