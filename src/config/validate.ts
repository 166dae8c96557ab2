import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import type { JsonSchema, NotBuilt } from "../core/plugin.js";
import type { ConfigProblem } from "./types.js";
import type { ConfigModel } from "./model.js";
import type { ConfigSource, Pos } from "./source.js";
import { describeFound, formatPath, pointer, segmentsOf } from "../core/config-paths.js";

const compiled = new WeakMap<ConfigModel<unknown, unknown>, ValidateFunction>();

/** Compiled once per model and process: compiling the schema costs far more than validating a file. */
function validator(model: ConfigModel<unknown, unknown>): ValidateFunction {
  let v = compiled.get(model);
  if (!v) {
    const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, strictTypes: false, strictRequired: false, allowUnionTypes: true });
    v = ajv.compile(model.schema);
    compiled.set(model, v);
  }
  return v;
}

/** Keys whose values are secrets: never echoed in a message. */
const SECRET_KEY = /token|password|secret/i;

/**
 * Structural validation against the JSON Schema, mapped to the contract's problem form. A plain
 * scalar that was exactly one `${env:NAME}` is a string after substitution; where the schema wants
 * a number or boolean and the variable's text is one, it is coerced (so `port: ${env:PORT}` works)
 * and the data validated again.
 */
export function validateStructure(source: ConfigSource, model: ConfigModel<unknown, unknown>): ConfigProblem[] {
  const validate = validator(model);
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
    const p = toProblem(e, source, model);
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

export function toProblem(e: ErrorObject, source: ConfigSource, model: ConfigModel<unknown, unknown>): ConfigProblem | null {
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
      const planned = notBuiltAt(model.notBuilt, `${e.instancePath}/${pointer(key)}`, undefined);
      if (planned) return make([...segs, key], pos, notBuiltMessage(planned, key));
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
      const last = segs[segs.length - 1];
      const refused = typeof e.data === "string" && typeof last === "string" ? model.refused[last]?.[e.data] : undefined;
      if (refused) return make(segs, here, `${refused}; allowed: ${(params.allowedValues as unknown[]).join(" | ")}`);
      const planned = typeof e.data === "string" ? notBuiltAt(model.notBuilt, e.instancePath, e.data) : undefined;
      if (planned) return make(segs, here, notBuiltMessage(planned, String(e.data)));
      return make(segs, here, `found ${found}; allowed: ${(params.allowedValues as unknown[]).map(String).join(" | ")}`);
    }
    case "const":
      return make(segs, here, `found ${found}; allowed: ${String(params.allowedValue)}`);
    case "pattern": {
      const pattern = String(params.pattern);
      return make(segs, here, `found ${found}; allowed: ${model.patternText[pattern] ?? `a string matching ${pattern}`}`);
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

/**
 * The planned part refused at `ptr` (an ajv instancePath) with `value` (undefined: the key itself).
 * A rule about a key of any device (`at` under `/devices/` and an index) holds for templates too
 * (`/templates/NAME/` and the same key).
 */
function notBuiltAt(rules: readonly NotBuilt[], ptr: string, value: string | undefined): NotBuilt | undefined {
  const segs = ptr.split("/");
  if (segs[1] === "templates" && segs.length > 2) segs.splice(1, 2, "devices", "0");
  return rules.find((r) => {
    if (r.value !== value) return false;
    const want = r.at.split("/");
    return want.length === segs.length && want.every((w, i) => w === segs[i] || (w === "*" && /^\d+$/.test(segs[i]!)));
  });
}

function notBuiltMessage(r: NotBuilt, shown: string): string {
  const what = r.value !== undefined ? r.value : r.what ?? shown;
  const built = r.built !== undefined ? ` (built: ${r.built.length > 0 ? r.built.join(", ") : "none"})` : "";
  return `${what} is not built into this version${built}`;
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
