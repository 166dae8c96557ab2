/**
 * The config file's JSON Schema (draft-07): the one description of its structure. ajv validates every
 * file against it (`validate.ts`), `floorgate schema` prints it for editors, and
 * `edge-config/floorgate.schema.json` is a generated copy (a test fails when the copy is stale).
 *
 * Conventions: `additionalProperties: false` on every object that users write; discriminated
 * unions (`driver`, `transport`, `type`) use `if`/`then` so ajv reports errors of the chosen branch
 * only. Checks that need more than one value (duplicates, area/type combinations, files on disk)
 * live in `semantic.ts`, where they get a message of their own. `default` values here are
 * documentation for editors; `build.ts` applies them.
 */

import { deviceItemSchema, templatesSchema } from "./template-schema.js";

/** A JSON Schema node; kept loose because ajv and editors read it, not TypeScript. */
export type JsonSchema = { [keyword: string]: unknown };

export const ID_PATTERN = "^[A-Za-z0-9_-]{1,64}$";
export const TAG_PATTERN = "^[A-Za-z0-9_.-]{1,128}$";
export const GLOB_ID_PATTERN = "^[A-Za-z0-9_*-]{1,64}$";
export const SIZE_PATTERN = "^[0-9]+(\\.[0-9]+)? ?(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?$";
export const TOKEN_HASH_PATTERN = "^sha256:[0-9a-fA-F]{64}$";
export const NODE_ID_PATTERN = "^((ns=[0-9]+|nsu=[^;]+);)?[isgb]=.+$";

/** What each pattern allows, said for people; `validate.ts` uses it in pattern errors. */
export const PATTERN_TEXT: Readonly<Record<string, string>> = {
  [ID_PATTERN]: "1 to 64 characters of A-Z a-z 0-9 _ -",
  [TAG_PATTERN]: "1 to 128 characters of A-Z a-z 0-9 _ . -",
  [GLOB_ID_PATTERN]: "1 to 64 characters of A-Z a-z 0-9 _ - and * as a wildcard",
  [SIZE_PATTERN]: "bytes as an integer, or a string like 512MiB, 1GiB, 64KiB, 10MB (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)",
  [TOKEN_HASH_PATTERN]: "\"sha256:\" followed by 64 hex digits",
  [NODE_ID_PATTERN]: "an OPC UA NodeId such as ns=2;s=Oven.Zone1.Temperature, i=2258, ns=3;g=<guid> or ns=1;b=<base64>",
};

const str = (description: string, extra: JsonSchema = {}): JsonSchema => ({ type: "string", description, ...extra });
const nonEmpty = (description: string, extra: JsonSchema = {}): JsonSchema => str(description, { minLength: 1, ...extra });
const bool = (description: string, dflt?: boolean): JsonSchema =>
  dflt === undefined ? { type: "boolean", description } : { type: "boolean", description, default: dflt };
const durationMs = (description: string, minimum: number, dflt?: number): JsonSchema => ({
  type: "integer",
  description: `${description} (integer milliseconds)`,
  minimum,
  maximum: 86_400_000,
  ...(dflt === undefined ? {} : { default: dflt }),
});
const size = (description: string, dflt: string | number): JsonSchema => ({
  type: ["integer", "string"],
  description: `${description} (bytes as an integer, or a string like 512MiB, 1GiB, 64KiB, 10MB)`,
  minimum: 0,
  pattern: SIZE_PATTERN,
  default: dflt,
});
const enumOf = (description: string, values: readonly (string | number)[], dflt?: string | number): JsonSchema => ({
  description,
  enum: [...values],
  ...(dflt === undefined ? {} : { default: dflt }),
});
const obj = (description: string, properties: Record<string, JsonSchema>, required: string[] = [], extra: JsonSchema = {}): JsonSchema => ({
  type: "object",
  description,
  additionalProperties: false,
  ...(required.length > 0 ? { required } : {}),
  properties,
  ...extra,
});
/** `if` for a discriminated union: applies only to objects whose `key` is exactly `value`. */
const when = (key: string, value: string): JsonSchema => ({
  type: "object",
  required: [key],
  properties: { [key]: { const: value } },
});

const hostPort = (description: string, dflt?: string): JsonSchema =>
  nonEmpty(`${description}; host:port, IPv6 as [::1]:8080`, dflt === undefined ? {} : { default: dflt });

const tagCommon: Record<string, JsonSchema> = {
  name: str("Tag name, unique within its device", { pattern: TAG_PATTERN }),
  unit: nonEmpty("Engineering unit, e.g. rpm or degC"),
  deadband: { type: "number", minimum: 0, description: "Absolute deadband in engineering units: a new value is kept only when it moved at least this much" },
  scale: { type: "number", description: "value = raw × scale + offset", default: 1 },
  offset: { type: "number", description: "value = raw × scale + offset", default: 0 },
  writable: bool("Allow operators to write this tag from the API", false),
};

const modbusTag = obj(
  "A Modbus tag",
  {
    ...tagCommon,
    area: enumOf("Modbus data area", ["holding", "input", "coil", "discrete"]),
    address: { type: "integer", minimum: 0, maximum: 65535, description: "0-based register or bit address" },
    type: enumOf(
      "Value type; coil and discrete are always bool (the default there); holding and input need a type",
      ["bool", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64", "string"],
    ),
    byteOrder: enumOf(
      "Byte order of multi-register types: ABCD big-endian, CDAB word-swapped, BADC byte-swapped, DCBA little-endian (ignored by one-register types)",
      ["ABCD", "CDAB", "BADC", "DCBA"],
      "ABCD",
    ),
    bit: { type: "integer", minimum: 0, maximum: 15, description: "A bool taken from this bit (0 = least significant) of a holding or input register" },
    length: { type: "integer", minimum: 1, maximum: 125, description: "Registers of a string (2 characters each); string only" },
    pollMs: durationMs("Poll period of this tag, overriding the device's", 10),
    unitId: { type: "integer", minimum: 0, maximum: 247, description: "Unit id of this tag when several units sit behind one connection; default: the connection's" },
  },
  ["name", "area", "address"],
  {
    if: { type: "object", required: ["area"], properties: { area: { enum: ["holding", "input"] } } },
    then: {
      required: ["type"],
      properties: { type: { description: "holding and input tags need a type (a bool from a register also needs bit)" } },
    },
  },
);

const modbusTcp = obj(
  "Modbus TCP or RTU-over-TCP connection",
  {
    transport: enumOf("tcp (Modbus TCP), rtu-over-tcp (RTU frames through a TCP gateway) or rtu (serial)", ["tcp", "rtu-over-tcp", "rtu"], "tcp"),
    host: nonEmpty("Host name or IP address"),
    port: { type: "integer", minimum: 1, maximum: 65535, description: "TCP port", default: 502 },
    unitId: { type: "integer", minimum: 0, maximum: 247, description: "Modbus unit id (slave id)", default: 1 },
    timeoutMs: durationMs("Reply timeout", 10, 1000),
  },
  ["host"],
);

const modbusRtu = obj(
  "Modbus RTU serial connection",
  {
    transport: { const: "rtu", description: "Serial Modbus RTU" },
    path: nonEmpty("Serial device, e.g. /dev/ttyUSB0"),
    baudRate: { type: "integer", minimum: 1, description: "Baud rate", default: 9600 },
    parity: enumOf("Parity", ["none", "even", "odd"], "none"),
    dataBits: enumOf("Data bits", [7, 8], 8),
    stopBits: enumOf("Stop bits", [1, 2], 1),
    unitId: { type: "integer", minimum: 1, maximum: 247, description: "Modbus unit id (slave id); 1-247 on a serial line", default: 1 },
    timeoutMs: durationMs("Reply timeout", 10, 1000),
  },
  ["path"],
);

const deviceCommon: Record<string, JsonSchema> = {
  id: str("Device id, unique across devices and ingest devices", { pattern: ID_PATTERN }),
  reconnectMaxMs: durationMs("Longest wait between two attempts to reach the device", 100, 10000),
  disabled: bool("Show the device but never poll it", false),
};

const modbusDevice = obj(
  "A Modbus device (TCP, RTU or RTU over TCP)",
  {
    ...deviceCommon,
    driver: { const: "modbus", description: "Driver" },
    connection: {
      type: "object",
      description: "How to reach the device; transport tcp (default), rtu-over-tcp or rtu",
      if: when("transport", "rtu"),
      then: modbusRtu,
      else: modbusTcp,
    },
    pollMs: durationMs("Poll period", 10, 1000),
    maxGap: { type: "integer", minimum: 0, maximum: 125, description: "Registers (or bits) a merged read may bridge between tags", default: 8 },
    tagByTag: bool("Read tag by tag, for devices that reject merged reads", false),
    maxTimeouts: { type: "integer", minimum: 1, maximum: 1000, description: "Consecutive timeouts before the device is polled less often", default: 3 },
    tags: { type: "array", minItems: 1, description: "Tags to read", items: modbusTag },
  },
  ["id", "driver", "connection", "tags"],
);

const opcuaTag = obj(
  "An OPC UA tag",
  {
    ...tagCommon,
    nodeId: str("NodeId of the variable, e.g. ns=2;s=Oven.Zone1.Temperature", { pattern: NODE_ID_PATTERN }),
    samplingMs: { type: "integer", minimum: 0, maximum: 86_400_000, description: "Sampling interval of this tag, overriding the device's (integer milliseconds; 0 = as fast as the server can)" },
  },
  ["name", "nodeId"],
);

const opcuaDevice = obj(
  "An OPC UA server",
  {
    ...deviceCommon,
    driver: { const: "opcua", description: "Driver" },
    connection: obj(
      "How to reach the OPC UA server",
      {
        endpoint: nonEmpty("Endpoint URL, opc.tcp://host:port[/path]"),
        securityMode: enumOf("Message security mode", ["None", "Sign", "SignAndEncrypt"], "None"),
        securityPolicy: enumOf(
          "Security policy; Basic128Rsa15 and Basic256 are refused (Node >= 20.11 disables RSA PKCS#1 v1.5, CVE-2023-46809)",
          ["None", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"],
          "None",
        ),
        username: nonEmpty("User name; anonymous when absent"),
        password: str("Password of `username`"),
      },
      ["endpoint"],
    ),
    mode: enumOf("subscribe (monitored items) or poll (periodic reads every pollMs)", ["subscribe", "poll"], "subscribe"),
    samplingMs: { type: "integer", minimum: 0, maximum: 86_400_000, description: "Sampling interval of the subscription (integer milliseconds)", default: 1000 },
    pollMs: durationMs("Read period when mode is poll", 10, 1000),
    tags: { type: "array", minItems: 1, description: "Tags to read", items: opcuaTag },
  },
  ["id", "driver", "connection", "tags"],
);

const device: JsonSchema = {
  type: "object",
  description: "A device the gateway polls or subscribes to",
  required: ["driver"],
  properties: { driver: enumOf("Driver", ["modbus", "opcua"]) },
  allOf: [
    { if: when("driver", "modbus"), then: modbusDevice },
    { if: when("driver", "opcua"), then: opcuaDevice },
  ],
};

const tlsFiles: Record<string, JsonSchema> = {
  ca: nonEmpty("CA certificate file (PEM), relative to the config file"),
  cert: nonEmpty("Client certificate file (PEM), relative to the config file; needs key"),
  key: nonEmpty("Client private key file (PEM), relative to the config file; needs cert"),
};

const mqttOutput = obj(
  "Forward to an MQTT broker",
  {
    type: { const: "mqtt", description: "Output type" },
    name: str("Output name, unique; default: the type", { pattern: ID_PATTERN }),
    url: nonEmpty("Broker URL: mqtt://, mqtts://, ws:// or wss://"),
    clientId: str("MQTT client id; default: gateway.id", { minLength: 1, maxLength: 256 }),
    username: str("User name"),
    password: str("Password"),
    ...tlsFiles,
    format: enumOf("Payload format", ["json", "sparkplug-b"], "json"),
    topicPrefix: nonEmpty("Topic prefix (json only); default floorgate/{gateway.id}"),
    primaryHostId: nonEmpty("Sparkplug primary host id (sparkplug-b only): publish only while its STATE is online"),
    qos: enumOf("QoS of data messages; default 1 for json and 0 for sparkplug-b", [0, 1]),
    maxBatch: { type: "integer", minimum: 1, maximum: 100000, description: "Samples per message", default: 500 },
  },
  ["type", "url"],
);

const influxOutput = obj(
  "Forward to InfluxDB 1.x",
  {
    type: { const: "influx", description: "Output type" },
    name: str("Output name, unique; default: the type", { pattern: ID_PATTERN }),
    url: nonEmpty("InfluxDB URL: http:// or https://"),
    database: nonEmpty("Database, created when missing"),
    retentionPolicy: nonEmpty("Retention policy"),
    username: str("User name"),
    password: str("Password"),
    maxBatch: { type: "integer", minimum: 1, maximum: 100000, description: "Points per write", default: 5000 },
  },
  ["type", "url", "database"],
);

const output: JsonSchema = {
  type: "object",
  description: "A northbound destination with its own journal cursor",
  required: ["type"],
  properties: { type: enumOf("Output type", ["mqtt", "influx"]) },
  allOf: [
    { if: when("type", "mqtt"), then: mqttOutput },
    { if: when("type", "influx"), then: influxOutput },
  ],
};

const ingestDevice = obj(
  "A device allowed to push, with its token (exactly one of token and tokenHash)",
  {
    id: str("Device id, or a glob with * shared by several devices", { pattern: GLOB_ID_PATTERN }),
    token: nonEmpty("Token the device presents (use ${env:NAME})"),
    tokenHash: str("sha256 of the token, as sha256:<64 hex digits>", { pattern: TOKEN_HASH_PATTERN }),
  },
  ["id"],
);

/** The whole config file. */
export const CONFIG_SCHEMA: JsonSchema = {
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
            type: "integer", minimum: 0, maximum: 16, default: 0,
            description: "Worker threads that poll the devices (0: in the main thread). Devices on one connection share a thread; 1 or more steadies poll timing at thousands of devices, for extra CPU and memory",
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
        ...obj("Pushes from 5G devices (HTTP and an embedded MQTT listener)", {
          http: bool("Accept POST /api/v1/ingest/{deviceId} on the http listener", true),
          mqtt: obj("Embedded MQTT listener for devices; omit to disable", { listen: hostPort("Listen address") }, ["listen"]),
          maxPayloadBytes: size("Largest accepted push", 262144),
          ratePerDevice: { type: "number", exclusiveMinimum: 0, description: "Messages per second per device (a body of n messages counts n); above it HTTP 429, MQTT disconnect", default: 200 },
          maxDevices: {
            type: "integer", minimum: 1, maximum: 1000000, default: 20000,
            description: "Most pushing devices the gateway keeps state for (device list, metric series, status topics, rate buckets); a new device id past it gets 429. Ids listed exactly in ingest.devices always have a place",
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

/** The schema as `floorgate schema` prints it and `edge-config/floorgate.schema.json` stores it. */
export function schemaJson(): string {
  return `${JSON.stringify(CONFIG_SCHEMA, null, 2)}\n`;
}
