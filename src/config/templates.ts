/**
 * Device templates (an extension of spec §2; the rules for users are in `src/config/README.md`,
 * "Device templates"):
 *
 *   templates:
 *     press: { driver: DRIVER, pollMs: 500, connection: { …keys all presses share }, tags: [ … ] }
 *   devices:
 *     - { id: press-1, template: press, connection: { …this press's own keys } }
 *
 * A device made from a template is the template with the device's keys on top (device keys win;
 * `connection` is merged key by key). It may not list `tags`: the template's list is the device's
 * list, so it is validated once, reported at the template's lines, and built into one frozen array
 * that every device of the template shares (the runtime keys its read plans on that array).
 *
 * Where the work happens, so that 10,000 devices of one template cost little more than one:
 * - the schema (ajv, `validate.ts`) checks each template once (`template-schema.ts` derives its
 *   schema from the device schema) and each device's own keys;
 * - `applyTemplates` merges each device without tags and checks the merged device against its
 *   driver's schema without tags (a key a driver refuses, a key neither side gave); runs the
 *   semantic checks (`semantic.ts`, with the plugins' `check`) on each template once, as a device
 *   of its own, and once more per other combination of the device keys its driver's tag rules read
 *   (`ConfigPart.tagRulesRead`) among the devices made from it;
 * - the semantic checks then see the merged devices without tags (`TemplateResult.source`), and
 *   `annotate` points their problems at the device and names the template.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import type { ConfigPath, JsonSchema } from "../core/plugin.js";
import { deviceWithoutTagsSchema } from "./template-schema.js";
import { closest, coerceAt, toProblem } from "./validate.js";
import { checkSemantics } from "./semantic.js";
import type { ConfigModel } from "./model.js";
import type { ConfigSource, Pos } from "./source.js";
import type { ConfigProblem } from "./types.js";
import { formatPath, pointer } from "../core/config-paths.js";

type Obj = Record<string, unknown>;
type Segs = (string | number)[];

const isObj = (v: unknown): v is Obj => v !== null && typeof v === "object" && !Array.isArray(v);
const blank = (): Obj => Object.create(null) as Obj;

/** What `applyTemplates` hands back to the loader. */
export interface TemplateResult {
  /**
   * The document as the semantic checks should see it: devices made from a template are merged
   * (without tags); positions of values a device took from its template point at the device. The
   * input itself when the file uses no templates.
   */
  source: ConfigSource;
  /** The schema's problems (those of merged devices replaced by the merged device's) and every template problem. */
  problems: ConfigProblem[];
  /** Problems of the semantic checks on `source`, pointed at the device and naming the template where it takes part. */
  annotate(problems: ConfigProblem[]): ConfigProblem[];
  /** The data to build: merged devices carry their template's tags (one array per template). Call after the checks. */
  buildData(): unknown;
}

type Model = ConfigModel<unknown, unknown>;

const withoutTags = new WeakMap<Model, ValidateFunction>();

/** The model's device schema (the `else` of `devices.items`, see `template-schema.ts`) without tags, compiled once per model and process. */
function mergedValidator(model: Model): ValidateFunction {
  let v = withoutTags.get(model);
  if (!v) {
    const devices = (model.schema.properties as Record<string, JsonSchema>).devices;
    const device = ((devices?.items ?? {}) as JsonSchema).else as JsonSchema | undefined;
    if (!device) throw new Error("templates: devices.items has no plain device schema (else branch)");
    const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, strictTypes: false, strictRequired: false, allowUnionTypes: true });
    v = ajv.compile(deviceWithoutTagsSchema(device));
    withoutTags.set(model, v);
  }
  return v;
}

/** A formatted path (`devices[2].connection.timeoutMs`, `a["b c"]`) back into segments. */
export function parsePath(path: string): Segs {
  const out: Segs = [];
  const re = /(?:^|\.)([A-Za-z_$][A-Za-z0-9_$-]*)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]/y;
  let m: RegExpExecArray | null;
  while (re.lastIndex < path.length && (m = re.exec(path)) !== null) {
    if (m[1] !== undefined) out.push(m[1]);
    else if (m[2] !== undefined) out.push(Number(m[2]));
    else out.push(JSON.parse(m[3]!) as string);
  }
  return out;
}

const ptrOf = (segs: Segs): string => segs.map((s) => `/${pointer(String(s))}`).join("");

function valueAt(v: unknown, segs: readonly (string | number)[]): unknown {
  let cur = v;
  for (const s of segs) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string | number, unknown>)[s];
  }
  return cur;
}

/** A position map that answers through `lookup` (the merged and the per-template views). */
class ViewMap<V> extends Map<string, V> {
  constructor(private readonly lookup: (ptr: string) => V | undefined) {
    super();
  }

  override get(ptr: string): V | undefined {
    return this.lookup(ptr);
  }
}

interface Merged {
  name: string;
  template: Obj;
  device: Obj;
  merged: Obj;
}

/** Is `rel` (inside device `m`) the device's own value, in an object the template has no part in? */
function ownValue(m: Merged, rel: Segs): boolean {
  if (rel.length === 0 || valueAt(m.device, rel) === undefined) return false;
  for (let n = 1; n < rel.length; n++) {
    // an ancestor object both gave keys to (connection): the template takes part
    if (valueAt(m.template, rel.slice(0, n)) !== undefined) return false;
  }
  return !isObj(valueAt(m.device, rel)) || valueAt(m.template, rel) === undefined;
}

/**
 * Checks templates and expands the devices made from them. `structure` is what the schema of
 * `model` found in `source` (see `validateStructure`). Never throws on bad input: shapes are
 * checked before use.
 */
export function applyTemplates(source: ConfigSource, structure: ConfigProblem[], baseDir: string, model: Model): TemplateResult {
  const root = isObj(source.data) ? source.data : undefined;
  const templates = root && isObj(root.templates) ? root.templates : blank();
  const devices = root && Array.isArray(root.devices) ? (root.devices as unknown[]) : [];
  const names = Object.keys(templates);
  if (names.length === 0 && !devices.some((d) => isObj(d) && d.template !== undefined)) {
    return { source, problems: structure, annotate: (p) => p, buildData: () => source.data };
  }

  const problems: ConfigProblem[] = [];
  const posOf = (ptr: string): Pos => source.valuePos.get(ptr) ?? { line: 0, col: 0 };
  const keyPosOf = (ptr: string): Pos => source.keyPos.get(ptr) ?? posOf(ptr);
  const tplPtr = (name: string): string => `/templates/${pointer(name)}`;
  const add = (segs: Segs, pos: Pos, message: string, template?: ConfigProblem["template"], severity?: ConfigProblem["severity"]): void => {
    problems.push({ path: formatPath(segs), line: pos.line, col: pos.col, message, ...(severity ? { severity } : {}), ...(template ? { template } : {}) });
  };
  /** The line of the template value at `rel` (or of its nearest enclosing value; else the template's name). */
  const templateLine = (name: string, rel: Segs): number => {
    for (let n = rel.length; n > 0; n--) {
      const p = source.valuePos.get(`${tplPtr(name)}${ptrOf(rel.slice(0, n))}`);
      if (p) return p.line;
    }
    return keyPosOf(tplPtr(name)).line;
  };

  // What each template reports about itself, by path inside the template: a device does not
  // report the same value again (2,000 devices would repeat one mistake 2,000 times).
  const templateIssues = new Map<string, Segs[]>();
  const noteIssue = (path: string): void => {
    const segs = parsePath(path);
    if (segs[0] !== "templates" || typeof segs[1] !== "string") return;
    const list = templateIssues.get(segs[1]) ?? [];
    list.push(segs.slice(2));
    templateIssues.set(segs[1], list);
  };
  const reportedByTemplate = (name: string, rel: Segs): boolean => (templateIssues.get(name) ?? []).some((t) => {
    const n = Math.min(t.length, rel.length);
    for (let k = 0; k < n; k++) if (t[k] !== rel[k]) return false;
    return true;
  });
  for (const p of structure) noteIssue(p.path);

  // Template names: ajv reports a bad one at the templates map, twice (pattern, propertyNames);
  // here it is reported once, at the name.
  const namePattern = ((model.schema.properties as Record<string, JsonSchema>).templates?.propertyNames as JsonSchema | undefined)?.pattern;
  const badNames = new Set<string>();
  if (typeof namePattern === "string") {
    const re = new RegExp(namePattern);
    for (const name of names) {
      if (re.test(name)) continue;
      badNames.add(name);
      add(["templates", name], keyPosOf(tplPtr(name)), `found template name ${JSON.stringify(name)}; allowed: ${model.patternText[namePattern] ?? `a name matching ${namePattern}`}`);
    }
  }

  // Devices made from a template, merged without tags.
  const merged = new Map<number, Merged>();
  const dropRaw = new Set<number>();
  const unjudged = new Set<number>();
  devices.forEach((d, i) => {
    if (!isObj(d) || d.template === undefined) return;
    const seg: Segs = ["devices", i];
    const ptr = ptrOf(seg);
    if (d.tags !== undefined) {
      add([...seg, "tags"], keyPosOf(`${ptr}/tags`), `a device made from a template takes the template's tags; remove tags here, or give this device a template (or a full device entry) of its own`);
      dropRaw.add(i);
    }
    const name = d.template;
    if (typeof name !== "string") return; // the schema said what a template name is
    const template = templates[name];
    if (template === undefined) {
      const hint = closest(name, names);
      const known = names.length === 0 ? "no templates are defined (a top-level templates: section)" : `templates: ${names.join(", ")}`;
      add([...seg, "template"], posOf(`${ptr}/template`), `unknown template "${name}"${hint ? ` (did you mean "${hint}"?)` : ""}; ${known}`);
      return;
    }
    // A template the schema refused as a whole (no driver, a driver not built, not a map) is
    // reported at the template; its devices' keys cannot be judged without a driver.
    if (!isObj(template) || typeof template.driver !== "string" || (templateIssues.get(name) ?? []).some((t) => t.length === 0 || (t.length === 1 && t[0] === "driver"))) {
      unjudged.add(i);
      return;
    }
    if (d.driver !== undefined && d.driver !== template.driver) {
      add([...seg, "driver"], posOf(`${ptr}/driver`), `found ${JSON.stringify(d.driver)}; template ${name} is a ${String(template.driver)} template: leave driver out or make it ${String(template.driver)}`,
        { name, line: templateLine(name, ["driver"]) });
    }
    const m = blank();
    for (const [k, v] of Object.entries(d)) if (k !== "template" && k !== "tags") m[k] = v;
    for (const [k, v] of Object.entries(template)) if (k !== "tags" && !(k in m)) m[k] = v;
    m.driver = template.driver;
    if (isObj(template.connection) && isObj(d.connection)) m.connection = Object.assign(blank(), template.connection, d.connection);
    merged.set(i, { name, template, device: d, merged: m });
    dropRaw.add(i);
  });

  // The view: merged devices in place of their entries.
  const mergedOf = (ptr: string): { i: number; m: Merged; rel: string } | undefined => {
    const x = /^\/devices\/(\d+)(\/.*)?$/.exec(ptr);
    if (!x) return undefined;
    const i = Number(x[1]);
    const m = merged.get(i);
    return m ? { i, m, rel: x[2] ?? "" } : undefined;
  };
  const viewPos = (base: Map<string, Pos>) => new ViewMap<Pos>((ptr) => {
    const own = base.get(ptr);
    if (own !== undefined) return own;
    const hit = mergedOf(ptr);
    return hit ? source.valuePos.get(`/devices/${hit.i}`) : undefined;
  });
  const viewRoot = blank();
  if (root) Object.assign(viewRoot, root);
  viewRoot.devices = devices.map((d, i) => merged.get(i)?.merged ?? d);
  const view: ConfigSource = {
    data: viewRoot,
    valuePos: viewPos(source.valuePos),
    keyPos: viewPos(source.keyPos),
    fromEnv: new ViewMap<string[]>((ptr) => {
      const own = source.fromEnv.get(ptr);
      if (own !== undefined) return own;
      const hit = mergedOf(ptr);
      return hit ? source.fromEnv.get(`${tplPtr(hit.m.name)}${hit.rel}`) : undefined;
    }),
    wholeEnv: source.wholeEnv,
  };

  // Each template once as a device of its own (semantic checks), and once per other combination
  // of the device keys its driver's tag rules read (`tagRulesRead`) among its devices.
  for (const name of names) {
    const template = templates[name];
    if (!isObj(template)) continue;
    const own = checkTemplateAlone(source, name, template, baseDir, model);
    for (const p of own) {
      problems.push(p);
      noteIssue(p.path);
    }
    const keys = model.parts.drivers.find((d) => d.name === template.driver)?.tagRulesRead ?? [];
    if (keys.length === 0) continue;
    const seen = new Set(own.map((p) => `${p.path}\n${p.message}`));
    const ownValues = JSON.stringify(keys.map((k) => valueAt(template, k) ?? null));
    const byValues = new Map<string, { device: Obj; changed: ConfigPath[]; users: number[] }>();
    for (const [i, m] of merged) {
      if (m.name !== name) continue;
      const values = keys.map((k) => valueAt(m.merged, k) ?? null);
      const key = JSON.stringify(values);
      if (key === ownValues) continue;
      const known = byValues.get(key);
      if (known) { known.users.push(i); continue; }
      let device = template;
      const changed: ConfigPath[] = [];
      keys.forEach((k, n) => {
        if (JSON.stringify(values[n]) === JSON.stringify(valueAt(template, k) ?? null)) return;
        device = withValueAt(device, k, values[n]);
        changed.push(k);
      });
      byValues.set(key, { device, changed, users: [i] });
    }
    for (const { device, changed, users } of byValues.values()) {
      const first = users[0]!;
      const at = ["devices", first, ...changed[0]!];
      const what = changed.map((k) => `${String(k[k.length - 1])} ${text(valueAt(device, k))}`).join(", ");
      for (const p of checkTemplateAlone(source, name, device, baseDir, model)) {
        if (seen.has(`${p.path}\n${p.message}`)) continue;
        const more = users.length > 1 ? `; ${users.length - 1} more device${users.length > 2 ? "s use" : " uses"} template ${name} with ${what}` : "";
        add(at, view.valuePos.get(ptrOf(at)) ?? posOf(ptrOf(["devices", first])), `with ${what}: ${p.path}: ${p.message}${more}`, { name, line: p.line }, p.severity);
      }
    }
  }

  // Each merged device against its driver's schema without tags.
  const validate = mergedValidator(model);
  for (const [i, m] of merged) {
    const prefix = `/devices/${i}`;
    let errors: ErrorObject[] = [];
    for (let pass = 0; pass < 4; pass++) {
      validate(m.merged);
      errors = (validate.errors ?? []).map((e) => ({ ...e, instancePath: `${prefix}${e.instancePath}` }));
      let changed = false;
      for (const e of errors) if (e.keyword === "type" && view.wholeEnv.has(e.instancePath)) changed = coerceAt(view, e) || changed;
      if (!changed) break;
    }
    for (const e of errors) {
      const p = toProblem(e, view, model);
      if (!p) continue;
      const rel = parsePath(p.path).slice(2);
      if (e.keyword !== "additionalProperties" && ownValue(m, rel)) problems.push(p);
      else if (!ownValue(m, rel) && valueAt(m.device, rel) === undefined && valueAt(m.template, rel) !== undefined && reportedByTemplate(m.name, rel)) continue;
      else problems.push({ ...p, template: { name: m.name, line: templateLine(m.name, rel) } });
    }
  }

  const kept = structure.filter((p) => {
    if (p.path === "templates" && badNames.size > 0 && (p.message === "property name must be valid" || [...badNames].some((n) => p.message.startsWith(`found ${JSON.stringify(n)} (string)`)))) return false;
    const segs = parsePath(p.path);
    if (segs[0] !== "devices" || typeof segs[1] !== "number") return true;
    if (unjudged.has(segs[1]) && segs[2] !== "id" && segs[2] !== "template" && segs[2] !== "tags") return false;
    return !(dropRaw.has(segs[1]) && (merged.has(segs[1]) || segs[2] === "tags"));
  });

  return {
    source: view,
    problems: [...kept, ...problems],
    annotate: (list) => list.flatMap((p) => {
      const segs = parsePath(p.path);
      const m = segs[0] === "devices" && typeof segs[1] === "number" ? merged.get(segs[1]) : undefined;
      if (!m) return [p];
      const rel = segs.slice(2);
      if (ownValue(m, rel)) return [p];
      if (valueAt(m.device, rel) === undefined && valueAt(m.template, rel) !== undefined && reportedByTemplate(m.name, rel)) return [];
      return [{ ...p, template: { name: m.name, line: templateLine(m.name, rel) } }];
    }),
    buildData: () => {
      for (const m of merged.values()) m.merged.tags = m.template.tags;
      return viewRoot;
    },
  };
}

/** A value for a message: strings as written, the rest as JSON. */
const text = (v: unknown): string => (typeof v === "string" ? v : JSON.stringify(v) ?? "nothing");

/** A copy of `o` with `value` at `path` (objects on the way copied, or made where missing); `o` is left as it is. */
function withValueAt(o: Obj, path: readonly (string | number)[], value: unknown): Obj {
  const [head, ...rest] = path;
  if (head === undefined) return o;
  const out = Object.assign(blank(), o);
  out[String(head)] = rest.length === 0 ? value : withValueAt(isObj(o[String(head)]) ? (o[String(head)] as Obj) : blank(), rest, value);
  return out;
}

/**
 * The semantic checks (the core's and the driver's `check`) on one template as if it were the only
 * device (`device`: the template, or a copy with some device's values of the keys its tag rules
 * read), problems pointed at the template. Only what the template holds is judged: a device-level
 * check that needs a device's own keys (its id, the line it shares with others) finds nothing to say here.
 */
function checkTemplateAlone(source: ConfigSource, name: string, device: Obj, baseDir: string, model: Model): ConfigProblem[] {
  const base = `/templates/${pointer(name)}`;
  const redirect = <V>(map: Map<string, V>) => new ViewMap<V>((ptr) => (ptr.startsWith("/devices/0") ? map.get(`${base}${ptr.slice("/devices/0".length)}`) : undefined));
  const alone: ConfigSource = {
    data: Object.assign(blank(), { devices: [device] }),
    valuePos: redirect(source.valuePos),
    keyPos: redirect(source.keyPos),
    fromEnv: redirect(source.fromEnv),
    wholeEnv: new Set(),
  };
  const path = formatPath(["templates", name]);
  const rename = (s: string): string => s.replace(/devices\[0\](?=[.[ ]|$)/g, path).replace(/\bin this device\b/g, "in this template");
  return checkSemantics(alone, baseDir, model)
    .filter((p) => p.path === "devices[0]" || p.path.startsWith("devices[0].") || p.path.startsWith("devices[0]["))
    .map((p) => ({ ...p, path: rename(p.path), message: rename(p.message) }));
}
