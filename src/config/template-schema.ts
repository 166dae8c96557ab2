/**
 * The JSON Schema of device templates, derived from the device schema so that every driver's keys,
 * ranges and descriptions are stated once (in `schema.ts` or a driver's fragment) and templates
 * follow them. What is derived (rules in `src/config/README.md`, "Device templates"):
 *
 * - `templates.<name>`: a device without `id`; of its `required` keys only `driver` and `tags`
 *   stay (a device supplies the rest, e.g. the address in `connection`); `connection` keeps its keys and
 *   branches but requires none.
 * - `devices[]` with a `template` key: `id` and `template` required, `tags` not allowed, every
 *   other device key of any driver allowed (the driver comes from the template; `templates.ts`
 *   validates the merged device against that driver's schema, which says what a driver refuses).
 *
 * Assumed shape of the device schema: an object with `properties.driver` and `allOf` of
 * `{ if, then: <one driver's device object> }` (see `schema.ts`).
 */
import type { JsonSchema } from "../core/plugin.js";

type Branch = { if?: JsonSchema; then?: JsonSchema };

const clone = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T;
const props = (s: JsonSchema | undefined): Record<string, JsonSchema> => (s?.properties ?? {}) as Record<string, JsonSchema>;

/** The driver branches of the device schema: one device object per driver. */
export function driverBranches(device: JsonSchema): JsonSchema[] {
  const all = (device.allOf ?? []) as Branch[];
  const out = all.map((b) => b.then).filter((t): t is JsonSchema => t !== undefined && typeof t === "object");
  if (out.length === 0) throw new Error("template-schema: the device schema has no driver branches (allOf: [{ if, then }])");
  return out;
}

/** A schema with `required` removed from it and from its if/then/else and allOf branches (not from nested properties). */
function withoutRequired(s: JsonSchema): JsonSchema {
  const out = clone(s);
  const strip = (x: unknown): void => {
    if (x === null || typeof x !== "object") return;
    const o = x as JsonSchema;
    delete o.required;
    strip(o.then);
    strip(o.else);
    for (const b of (o.allOf ?? []) as unknown[]) strip((b as Branch).then);
  };
  strip(out);
  return out;
}

/** One template: a device without `id`, needing only `driver` and `tags`. */
export function templateSchema(device: JsonSchema): JsonSchema {
  const branches = ((device.allOf ?? []) as Branch[]).map((b) => {
    // a driver's own if/then between device keys requires nothing of a template either
    const t = withoutRequired(b.then ?? {});
    const p = props(t);
    delete p.id;
    if (p.connection) p.connection = withoutRequired(p.connection);
    t.required = ((b.then?.required ?? []) as string[]).filter((k) => k === "driver" || k === "tags");
    t.description = `Template: ${String(t.description ?? "a device")}, without id; devices that use it state the rest (their id and what the template leaves out)`;
    return { ...b, then: t };
  });
  return {
    type: "object",
    description: "A device template: the driver, tags and defaults shared by many devices. Every device key but id; none required but driver and tags",
    required: ["driver"],
    properties: clone(props(device)),
    allOf: branches,
  };
}

/** `templates:` at the top level of the file. */
export function templatesSchema(device: JsonSchema): JsonSchema {
  const name = props(driverBranches(device)[0]).id;
  return {
    type: ["object", "null"],
    description:
      "Device templates by name (extension): a device with `template: NAME` takes the template's driver, tags and defaults, and states its id, its connection (merged key by key over the template's) and any key it wants different. Such a device may not list tags",
    propertyNames: { ...(name?.pattern ? { pattern: name.pattern } : {}) },
    additionalProperties: templateSchema(device),
  };
}

/**
 * Keys present in several drivers with different constraints keep only their description here;
 * the merged device is validated against its own driver's schema anyway.
 */
function unionOf(schemas: Record<string, JsonSchema>[]): Record<string, JsonSchema> {
  const out: Record<string, JsonSchema> = {};
  const bare = (s: JsonSchema): string => JSON.stringify({ ...s, description: undefined, default: undefined });
  for (const p of schemas) {
    for (const [k, s] of Object.entries(p)) {
      const known = out[k];
      if (!known) out[k] = clone(s);
      else if (bare(known) !== bare(s)) out[k] = { description: String(known.description ?? s.description ?? k) };
    }
  }
  return out;
}

/** A device written with `template: NAME`. */
export function templatedDeviceSchema(device: JsonSchema): JsonSchema {
  const branches = driverBranches(device);
  const keys = unionOf(branches.map(props));
  delete keys.tags;
  const connections = branches.map((b) => props(b).connection).filter((c): c is JsonSchema => c !== undefined);
  // every branch of every driver's connection (a driver may have several kinds of connection): their keys, none required
  const connBranches = connections.flatMap((c) => [c, c.then, c.else].filter((x): x is JsonSchema => x !== undefined && typeof x === "object"));
  const id = keys.id ?? { type: "string" };
  delete keys.id;
  const driver = props(device).driver ?? {};
  return {
    type: "object",
    description: "A device made from a template: its id, its template, and only what differs from the template (device keys win; connection is merged key by key). No tags: they come from the template",
    additionalProperties: false,
    required: ["id", "template"],
    properties: {
      id,
      template: { type: "string", description: "Name of a template under templates; the device takes its driver, tags and defaults", ...(typeof id.pattern === "string" ? { pattern: id.pattern } : {}) },
      ...keys,
      driver: { ...driver, description: "Optional with a template; if given, the template's driver" },
      connection: {
        type: "object",
        description: "Connection keys of this device (those of the template's driver), merged over the template's connection key by key",
        additionalProperties: false,
        properties: unionOf(connBranches.map(props)),
      },
    },
  };
}

/**
 * `devices[]` items: a device written out in full (`else`), or one made from a template (`then`).
 * `driver` is stated at the top as well, since either form may name one and it must be a built
 * driver: editors offer the names, and the schema's top level says which drivers there are.
 */
export function deviceItemSchema(device: JsonSchema): JsonSchema {
  return {
    description: "A device: written out in full, or made from a template (template: NAME)",
    properties: { driver: props(device).driver ?? {} },
    if: { type: "object", required: ["template"] },
    then: templatedDeviceSchema(device),
    else: device,
  };
}

/** The same device schema without `tags` (neither allowed nor required): a merged device is checked against it, its tags once in the template. */
export function deviceWithoutTagsSchema(device: JsonSchema): JsonSchema {
  const out = clone(device);
  for (const b of (out.allOf ?? []) as Branch[]) {
    if (!b.then) continue;
    delete props(b.then).tags;
    b.then.required = ((b.then.required ?? []) as string[]).filter((k) => k !== "tags");
  }
  return out;
}
