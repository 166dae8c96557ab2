import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import { CONFIG_SCHEMA, PATTERN_TEXT, type JsonSchema } from "./schema.js";
import type { ConfigProblem } from "./types.js";
import type { ConfigSource, Pos } from "./source.js";
import { describeFound, formatPath, pointer, segmentsOf } from "./paths.js";

let compiled: ValidateFunction | undefined;

/** Compiled once per process: compiling the schema costs far more than validating a file. */
function validator(): ValidateFunction {
  if (!compiled) {
    const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, strictTypes: false, strictRequired: false, allowUnionTypes: true });
    compiled = ajv.compile(CONFIG_SCHEMA);
  }
  return compiled;
}

/** Security policies people still configure, and why they are refused. */
const REFUSED_POLICIES: Readonly<Record<string, string>> = {
  Basic128Rsa15: "Basic128Rsa15 is deprecated and cannot work: Node >= 20.11 refuses RSA PKCS#1 v1.5 decryption (CVE-2023-46809); use Basic256Sha256 or Aes128_Sha256_RsaOaep",
  Basic256: "Basic256 is deprecated and cannot work: it needs RSA PKCS#1 v1.5, which Node >= 20.11 refuses (CVE-2023-46809); use Basic256Sha256 or Aes128_Sha256_RsaOaep",
};

/** Keys whose values are secrets: never echoed in a message. */
const SECRET_KEY = /token|password|secret/i;

/**
 * Structural validation against the JSON Schema, mapped to the contract's problem form. A plain
 * scalar that was exactly one `${env:NAME}` is a string after substitution; where the schema wants
 * a number or boolean and the variable's text is one, it is coerced (so `port: ${env:PORT}` works)
 * and the data validated again.
 */
export function validateStructure(source: ConfigSource): ConfigProblem[] {
  const validate = validator();
  let errors: ErrorObject[] = [];
  for (let pass = 0; pass < 4; pass++) {
    validate(source.data);
    errors = validate.errors ?? [];
    let changed = false;
    for (const e of errors) {
      if (e.keyword === "type" && source.wholeEnv.has(e.instancePath)) changed = coerceAt(source, e) || changed;
    }
    if (!changed) break;
  }
  const problems: ConfigProblem[] = [];
  for (const e of errors) {
    const p = toProblem(e, source);
    if (p) problems.push(p);
  }
  return problems;
}

export function coerceAt(source: ConfigSource, e: ErrorObject): boolean {
  const segs = segmentsOf(e.instancePath, source.data);
  const last = segs[segs.length - 1];
  if (last === undefined) return false;
  let parent: unknown = source.data;
  for (const s of segs.slice(0, -1)) parent = (parent as Record<string | number, unknown>)[s];
  const holder = parent as Record<string | number, unknown>;
  const raw = holder[last];
  if (typeof raw !== "string") return false;
  const wanted = ([] as string[]).concat((e.params as { type: string | string[] }).type);
  const text = raw.trim();
  let value: unknown;
  if ((wanted.includes("integer") || wanted.includes("number")) && /^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$/.test(text)) value = Number(text);
  else if (wanted.includes("boolean") && (text === "true" || text === "false")) value = text === "true";
  if (value === undefined) return false;
  holder[last] = value;
  source.wholeEnv.delete(e.instancePath);
  return true;
}

export function toProblem(e: ErrorObject, source: ConfigSource): ConfigProblem | null {
  // `if` only says "the matching branch failed"; that branch's own errors are reported.
  if (e.keyword === "if") return null;
  const segs = segmentsOf(e.instancePath, source.data);
  const here: Pos = source.valuePos.get(e.instancePath) ?? { line: 0, col: 0 };
  const found = foundText(e.instancePath, segs, e.data, source);
  const params = e.params as Record<string, unknown>;
  const parent = (e.parentSchema ?? {}) as JsonSchema;
  const make = (path: (string | number)[], pos: Pos, message: string): ConfigProblem => ({ path: formatPath(path), line: pos.line, col: pos.col, message });

  switch (e.keyword) {
    case "additionalProperties": {
      const key = String(params.additionalProperty);
      const allowed = Object.keys((parent.properties ?? {}) as object);
      const pos = source.keyPos.get(`${e.instancePath}/${pointer(key)}`) ?? here;
      const hint = closest(key, allowed);
      return make([...segs, key], pos, `unknown key "${key}"${hint ? ` (did you mean "${hint}"?)` : ""}; allowed keys: ${allowed.join(", ")}`);
    }
    case "required": {
      const key = String(params.missingProperty);
      const prop = ((parent.properties ?? {}) as Record<string, JsonSchema>)[key];
      const allowed = prop?.enum ? `; allowed: ${(prop.enum as unknown[]).map(String).join(" | ")}` : prop?.description ? ` (${String(prop.description)})` : "";
      return make([...segs, key], here, `missing required key "${key}"${allowed}`);
    }
    case "type":
      return make(segs, here, `expected ${typeText(params.type)}, found ${found}`);
    case "enum": {
      const refused = typeof e.data === "string" ? REFUSED_POLICIES[e.data] : undefined;
      if (refused && segs[segs.length - 1] === "securityPolicy") return make(segs, here, `${refused}; allowed: ${(params.allowedValues as unknown[]).join(" | ")}`);
      return make(segs, here, `found ${found}; allowed: ${(params.allowedValues as unknown[]).map(String).join(" | ")}`);
    }
    case "const":
      return make(segs, here, `found ${found}; allowed: ${String(params.allowedValue)}`);
    case "pattern": {
      const pattern = String(params.pattern);
      return make(segs, here, `found ${found}; allowed: ${PATTERN_TEXT[pattern] ?? `a string matching ${pattern}`}`);
    }
    case "minimum":
    case "maximum":
    case "exclusiveMinimum":
    case "exclusiveMaximum": {
      const words: Record<string, string> = { ">=": "at least", "<=": "at most", ">": "more than", "<": "less than" };
      return make(segs, here, `found ${found}; allowed: ${words[String(params.comparison)] ?? String(params.comparison)} ${String(params.limit)}`);
    }
    case "minLength":
      return make(segs, here, Number(params.limit) === 1 ? "must not be empty" : `found ${found}; allowed: at least ${String(params.limit)} characters`);
    case "maxLength":
      return make(segs, here, `found ${found}; allowed: at most ${String(params.limit)} characters`);
    case "minItems":
      return make(segs, here, `found ${Array.isArray(e.data) ? e.data.length : 0} items; allowed: at least ${String(params.limit)}`);
    default:
      return make(segs, here, e.message ?? `fails ${e.keyword}`);
  }
}

function foundText(ptr: string, segs: (string | number)[], value: unknown, source: ConfigSource): string {
  const names = source.fromEnv.get(ptr);
  if (names) return `the value of ${names.map((n) => `\${env:${n}}`).join(", ")} (${typeof value})`;
  if (typeof value === "string" && segs.some((s) => typeof s === "string" && SECRET_KEY.test(s))) return "a secret value (string, not shown)";
  return describeFound(value);
}

function typeText(type: unknown): string {
  const names: Record<string, string> = { integer: "an integer", number: "a number", string: "a string", boolean: "true or false", object: "a map", array: "a list", null: "nothing" };
  const list = Array.isArray(type) ? type : String(type).split(",");
  return list.map((t) => names[String(t)] ?? String(t)).join(" or ");
}

/** The allowed key a typo most likely meant, when it is close enough to say so. */
export function closest(key: string, allowed: string[]): string | undefined {
  let best: string | undefined;
  let bestDist = Infinity;
  for (const a of allowed) {
    const d = distance(key.toLowerCase(), a.toLowerCase());
    if (d < bestDist) {
      bestDist = d;
      best = a;
    }
  }
  return best !== undefined && bestDist <= Math.max(1, Math.floor(key.length / 3)) ? best : undefined;
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}
