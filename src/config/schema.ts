/**
 * The config file's JSON Schema (draft-07): the one description of its structure. ajv validates every
 * file against it (`validate.ts`), `floorgate schema` prints it for editors, and
 * `edge-config/floorgate.schema.json` is a generated copy (a test fails when the copy is stale).
 *
 * The core sections are written here; devices and outputs are composed from the plugins' fragments
 * (`SchemaFragment`), so the schema holds exactly what is built. Checks that need more than one
 * value (duplicates, area/type combinations, files on disk) live in `semantic.ts` and the plugins'
 * `check`, where they get a message of their own. Conventions: see schema-kit.ts.
 */
import type { DeviceConfigBase, DriverConfigPart, OutputConfigBase, OutputConfigPart } from "../core/plugin.js";
import {
  GLOB_ID_PATTERN, ID_PATTERN, TOKEN_HASH_PATTERN,
  bool, durationMs, enumOf, hostPort, nonEmpty, obj, size, str, when, type JsonSchema,
} from "../core/schema-kit.js";
import type { ConfigParts } from "./model.js";
import { builtParts } from "./built.js";
import { deviceItemSchema, templatesSchema } from "./template-schema.js";

export type { JsonSchema };
export { ID_PATTERN, TAG_PATTERN, GLOB_ID_PATTERN, SIZE_PATTERN, TOKEN_HASH_PATTERN, PATTERN_TEXT } from "../core/schema-kit.js";

/** Keys every device has, whatever its driver. */
const deviceCommon: Record<string, JsonSchema> = {
  id: str("Device id, unique across devices and ingest devices", { pattern: ID_PATTERN }),
  reconnectMaxMs: durationMs("Longest wait between two attempts to reach the device", 100, 10000),
  disabled: bool("Show the device but never poll it", false),
};

function deviceSchema(p: DriverConfigPart<DeviceConfigBase>): JsonSchema {
  const f = p.schema;
  return obj(
    f.description,
    { ...deviceCommon, driver: { const: p.name, description: "Driver" }, ...f.properties },
    ["id", "driver", ...(f.required ?? [])],
    f.extra,
  );
}

function outputSchema(p: OutputConfigPart<OutputConfigBase>): JsonSchema {
  const f = p.schema;
  return obj(
    f.description,
    {
      type: { const: p.name, description: "Output type" },
      name: str("Output name, unique; default: the type", { pattern: ID_PATTERN }),
      ...f.properties,
    },
    ["type", ...(f.required ?? [])],
    f.extra,
  );
}

const ingestDevice = obj(
  "A device allowed to push, with its token (exactly one of token and tokenHash)",
  {
    id: str("Device id, or a glob with * shared by several devices", { pattern: GLOB_ID_PATTERN }),
    token: nonEmpty("Token the device presents (use ${env:NAME})"),
    tokenHash: str("sha256 of the token, as sha256:<64 hex digits>", { pattern: TOKEN_HASH_PATTERN }),
  },
  ["id"],
);

/** The whole config file for a composition of plugin parts. */
export function composeSchema(parts: ConfigParts): JsonSchema {
  const device: JsonSchema = {
    type: "object",
    description: "A device the gateway polls or subscribes to",
    required: ["driver"],
    properties: { driver: enumOf("Driver", parts.drivers.map((p) => p.name)) },
    allOf: parts.drivers.map((p) => ({ if: when("driver", p.name), then: deviceSchema(p) })),
  };
  const output: JsonSchema = {
    type: "object",
    description: "A northbound destination with its own journal cursor",
    required: ["type"],
    properties: { type: enumOf("Output type", parts.outputs.map((p) => p.name)) },
    allOf: parts.outputs.map((p) => ({ if: when("type", p.name), then: outputSchema(p) })),
  };
  const listenerParts = parts.ingestListeners ?? [];
  const listeners: Record<string, JsonSchema> = {};
  for (const l of listenerParts) listeners[l.key] = l.schema;
  const pushes = ["HTTP", ...listenerParts.map((l) => l.label)].join(" and ");
  const overRate = ["HTTP 429", ...listenerParts.map((l) => l.overRate)].join(", ");
  return {
    $schema: "http://json-schema.org/draft-07/schema#",
    title: "Floorgate config",
    ...obj(
      "Floorgate edge gateway config. ${env:NAME} in any string is replaced by an environment variable.",
      {
        gateway: obj(
          "This edge node",
          {
            id: str("Edge node id: MQTT client id, Sparkplug edge_node_id", { pattern: ID_PATTERN }),
            group: str("Sparkplug group_id, top of the UNS path", { pattern: ID_PATTERN }),
            dataDir: nonEmpty("Journal and state directory, relative to the config file; created if missing", { default: "./data" }),
            driverThreads: {
              type: "integer", minimum: 0, maximum: 16,
              description: "Worker threads that poll the devices (0: in the main thread). Devices on one connection share a thread; 1 or more steadies poll timing at thousands of devices, for extra CPU and memory. Default: 1 when a device listener (ingest.mqtt) runs beside polled devices, else 0",
            },
          },
          ["id", "group"],
        ),
        http: obj("The HTTP listener: dashboard, /live, /api/v1, /healthz, /metrics", {
          listen: hostPort("Listen address", "127.0.0.1:8080"),
          operatorTokens: {
            type: "array",
            description: "Operator bearer tokens; required when listen is not loopback",
            items: nonEmpty("An operator token (use ${env:NAME})"),
          },
          allowedOrigins: {
            type: "array",
            description: "Extra browser origins allowed on /live, e.g. https://hmi.plant.local",
            items: nonEmpty("An origin: scheme://host[:port]"),
          },
        }),
        journal: obj("The on-disk journal", {
          maxBytes: size("Disk cap for unsent data", "1GiB"),
          overflow: enumOf("What happens at maxBytes: drop-oldest drops whole oldest segments; reject refuses new data", ["drop-oldest", "reject"], "drop-oldest"),
          fsync: enumOf("batch: fsync every fsyncIntervalMs; always: fsync per append", ["batch", "always"], "batch"),
          fsyncIntervalMs: durationMs("fsync period when fsync is batch", 1, 50),
        }),
        templates: templatesSchema(device),
        devices: { type: ["array", "null"], description: "Devices to poll or subscribe to", items: deviceItemSchema(device) },
        ingest: {
          ...obj(`Pushes from 5G devices (${pushes})`, {
            http: bool("Accept POST /api/v1/ingest/{deviceId} on the http listener", true),
            ...listeners,
            maxPayloadBytes: size("Largest accepted push", 262144),
            ratePerDevice: { type: "number", exclusiveMinimum: 0, description: `Messages per second per device (a body of n messages counts n); above it ${overRate}`, default: 200 },
            maxDevices: {
              type: "integer", minimum: 1, maximum: 1000000, default: 20000,
              description: "Most pushing devices the gateway keeps state for (device list, metric series, status topics, rate buckets); a new device id past it gets 429. Ids listed exactly in ingest.devices always have a place",
            },
            dedupMaxEntries: {
              type: "integer", minimum: 1000, maximum: 1000000000, default: 8000000,
              description: "Most msgIds the 10-minute idempotency window remembers, all devices together (~10 bytes each for ids ending in a counter, ~100 for others); past it the oldest are forgotten early, counted in floorgate_ingest_dedup_evictions_total and logged once",
            },
            devices: { type: "array", description: "Devices allowed to push", items: ingestDevice },
          }),
          type: ["object", "null"],
        },
        outputs: { type: ["array", "null"], description: "Where journaled samples are forwarded", items: output },
      },
      ["gateway"],
    ),
  };
}

/** The schema of this build: the core with the plugins listed in src/plugins/. */
export const CONFIG_SCHEMA: JsonSchema = composeSchema(builtParts);

/** A schema as `floorgate schema` prints it and `edge-config/floorgate.schema.json` stores it. */
export function schemaJson(schema: JsonSchema = CONFIG_SCHEMA): string {
  return `${JSON.stringify(schema, null, 2)}\n`;
}
