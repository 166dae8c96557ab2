import { resolve } from "node:path";
import type {
  DeviceConfig,
  GatewayConfig,
  IngestConfig,
  IngestDeviceConfig,
  ModbusConnection,
  ModbusDeviceConfig,
  ModbusTagConfig,
  OpcuaDeviceConfig,
  OpcuaTagConfig,
  OutputConfig,
  TagCommon,
} from "./types.js";
import { parseHostPort } from "./net.js";
import { parseSize } from "./sizes.js";

type Obj = Record<string, unknown>;

/** Defaults of spec §2 and `types.ts`, in one place. */
export const DEFAULTS = {
  dataDir: "./data",
  httpListen: "127.0.0.1:8080",
  journal: { maxBytes: 1024 ** 3, overflow: "drop-oldest", fsync: "batch", fsyncIntervalMs: 50 },
  reconnectMaxMs: 10_000,
  modbus: { pollMs: 1000, maxGap: 8, tagByTag: false, maxTimeouts: 3, port: 502, unitId: 1, timeoutMs: 1000, byteOrder: "ABCD" },
  rtu: { baudRate: 9600, parity: "none", dataBits: 8, stopBits: 1 },
  opcua: { samplingMs: 1000, pollMs: 1000, mode: "subscribe", securityMode: "None", securityPolicy: "None" },
  ingest: { maxPayloadBytes: 262_144, ratePerDevice: 200, maxDevices: 20_000 },
  mqtt: { maxBatch: 500, format: "json" },
  influx: { maxBatch: 5000 },
} as const;

const obj = (v: unknown): Obj => (v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Obj) : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const opt = <T>(v: unknown): T | undefined => (v === undefined || v === null ? undefined : (v as T));
const or = <T>(v: unknown, d: T): T => (v === undefined || v === null ? d : (v as T));

/**
 * Builds the typed config with every default applied. Only called on data that passed the schema
 * and the semantic checks, so it trusts shapes; paths become absolute against `baseDir`.
 */
export function buildConfig(data: unknown, baseDir: string): GatewayConfig {
  const interner = new TagInterner();
  const root = obj(data);
  const gw = obj(root.gateway);
  const gatewayId = gw.id as string;

  const http = obj(root.http);
  const listen = or<string>(http.listen, DEFAULTS.httpListen);
  const hp = parseHostPort(listen);
  if (typeof hp === "string") throw new Error(`unchecked listen address ${listen}`);

  const journal = obj(root.journal);
  return {
    gateway: {
      id: gatewayId, group: gw.group as string, dataDir: resolve(baseDir, or<string>(gw.dataDir, DEFAULTS.dataDir)),
      driverThreads: or<number>(gw.driverThreads, 0),
    },
    http: {
      listen,
      host: hp.host,
      port: hp.port,
      operatorTokens: arr(http.operatorTokens) as string[],
      allowedOrigins: (arr(http.allowedOrigins) as string[]).map((o) => o.replace(/\/$/, "")),
    },
    journal: {
      maxBytes: journal.maxBytes === undefined ? DEFAULTS.journal.maxBytes : (parseSize(journal.maxBytes) as number),
      overflow: or(journal.overflow, DEFAULTS.journal.overflow),
      fsync: or(journal.fsync, DEFAULTS.journal.fsync),
      fsyncIntervalMs: or(journal.fsyncIntervalMs, DEFAULTS.journal.fsyncIntervalMs),
    },
    devices: arr(root.devices).map((d) => buildDevice(obj(d), interner)),
    ingest: buildIngest(root.ingest),
    outputs: arr(root.outputs).map((o) => buildOutput(obj(o), gatewayId, baseDir)),
  };
}

function tagCommon(t: Obj): TagCommon {
  const out: TagCommon = { name: t.name as string, scale: or(t.scale, 1), offset: or(t.offset, 0), writable: or(t.writable, false) };
  if (t.unit !== undefined) out.unit = t.unit as string;
  if (t.deadband !== undefined) out.deadband = t.deadband as number;
  return out;
}

/**
 * Identical Modbus tags — and identical tag lists — across devices become one shared object.
 * Why: plants configure hundreds of machines of the same model from one template (a YAML anchor,
 * or generated files); 2,000 devices × 100 tags as separate objects held ~100 MB of duplicate
 * config and read plans that every major GC had to mark. The runtime keys its per-tag-list caches
 * (read plans, normalize rules) on the shared list. Config objects are therefore immutable.
 */
class TagInterner {
  private readonly tags = new Map<string, ModbusTagConfig>();
  private readonly lists = new Map<string, readonly ModbusTagConfig[]>();
  /** By the parsed array itself: the devices of one template (templates.ts) hand in the same array. */
  private readonly byRaw = new Map<unknown[], readonly ModbusTagConfig[]>();

  list(raw: unknown[]): readonly ModbusTagConfig[] {
    const done = this.byRaw.get(raw);
    if (done) return done;
    const list = this.build(raw);
    this.byRaw.set(raw, list);
    return list;
  }

  private build(raw: unknown[]): readonly ModbusTagConfig[] {
    const keys: string[] = [];
    const built = raw.map((t) => {
      const tag = buildModbusTag(obj(t));
      const key = JSON.stringify(tag);
      keys.push(key);
      const known = this.tags.get(key);
      if (known) return known;
      this.tags.set(key, tag);
      return tag;
    });
    const listKey = keys.join("\n");
    const known = this.lists.get(listKey);
    if (known) return known;
    const frozen = Object.freeze(built);
    this.lists.set(listKey, frozen);
    return frozen;
  }
}

function buildDevice(d: Obj, interner: TagInterner): DeviceConfig {
  const common = { id: d.id as string, reconnectMaxMs: or(d.reconnectMaxMs, DEFAULTS.reconnectMaxMs), disabled: or(d.disabled, false) };
  if (d.driver === "modbus") {
    const dev: ModbusDeviceConfig = {
      ...common,
      driver: "modbus",
      connection: buildModbusConnection(obj(d.connection)),
      pollMs: or(d.pollMs, DEFAULTS.modbus.pollMs),
      maxGap: or(d.maxGap, DEFAULTS.modbus.maxGap),
      tagByTag: or(d.tagByTag, DEFAULTS.modbus.tagByTag),
      maxTimeouts: or(d.maxTimeouts, DEFAULTS.modbus.maxTimeouts),
      tags: interner.list(arr(d.tags)),
    };
    return dev;
  }
  const c = obj(d.connection);
  const connection: OpcuaDeviceConfig["connection"] = {
    endpoint: c.endpoint as string,
    securityMode: or(c.securityMode, DEFAULTS.opcua.securityMode),
    securityPolicy: or(c.securityPolicy, DEFAULTS.opcua.securityPolicy),
  };
  if (c.username !== undefined) connection.username = c.username as string;
  if (c.password !== undefined) connection.password = c.password as string;
  const dev: OpcuaDeviceConfig = {
    ...common,
    driver: "opcua",
    connection,
    mode: or(d.mode, DEFAULTS.opcua.mode),
    samplingMs: or(d.samplingMs, DEFAULTS.opcua.samplingMs),
    pollMs: or(d.pollMs, DEFAULTS.opcua.pollMs),
    tags: arr(d.tags).map((raw) => {
      const t = obj(raw);
      const tag: OpcuaTagConfig = { ...tagCommon(t), nodeId: t.nodeId as string };
      if (t.samplingMs !== undefined) tag.samplingMs = t.samplingMs as number;
      return tag;
    }),
  };
  return dev;
}

function buildModbusConnection(c: Obj): ModbusConnection {
  const unitId = or<number>(c.unitId, DEFAULTS.modbus.unitId);
  const timeoutMs = or<number>(c.timeoutMs, DEFAULTS.modbus.timeoutMs);
  if (c.transport === "rtu") {
    return {
      transport: "rtu",
      path: c.path as string,
      baudRate: or(c.baudRate, DEFAULTS.rtu.baudRate),
      parity: or(c.parity, DEFAULTS.rtu.parity),
      dataBits: or(c.dataBits, DEFAULTS.rtu.dataBits),
      stopBits: or(c.stopBits, DEFAULTS.rtu.stopBits),
      unitId,
      timeoutMs,
    };
  }
  return {
    transport: c.transport === "rtu-over-tcp" ? "rtu-over-tcp" : "tcp",
    host: c.host as string,
    port: or(c.port, DEFAULTS.modbus.port),
    unitId,
    timeoutMs,
  };
}

function buildModbusTag(t: Obj): ModbusTagConfig {
  const area = t.area as ModbusTagConfig["area"];
  const tag: ModbusTagConfig = {
    ...tagCommon(t),
    area,
    address: t.address as number,
    type: or(t.type, "bool"),
    byteOrder: or(t.byteOrder, DEFAULTS.modbus.byteOrder),
  };
  for (const k of ["bit", "length", "pollMs", "unitId"] as const) {
    const v = opt<number>(t[k]);
    if (v !== undefined) tag[k] = v;
  }
  return tag;
}

function buildIngest(raw: unknown): IngestConfig {
  const present = raw !== undefined;
  const i = obj(raw);
  const out: IngestConfig = {
    http: or(i.http, present),
    maxPayloadBytes: i.maxPayloadBytes === undefined ? DEFAULTS.ingest.maxPayloadBytes : (parseSize(i.maxPayloadBytes) as number),
    ratePerDevice: or(i.ratePerDevice, DEFAULTS.ingest.ratePerDevice),
    maxDevices: or(i.maxDevices, DEFAULTS.ingest.maxDevices),
    devices: arr(i.devices).map((raw) => {
      const d = obj(raw);
      const dev: IngestDeviceConfig = { id: d.id as string };
      if (d.token !== undefined) dev.token = d.token as string;
      if (d.tokenHash !== undefined) dev.tokenHash = (d.tokenHash as string).toLowerCase();
      return dev;
    }),
  };
  const mqtt = obj(i.mqtt);
  if (typeof mqtt.listen === "string") {
    const hp = parseHostPort(mqtt.listen);
    if (typeof hp !== "string") out.mqtt = { listen: mqtt.listen, host: hp.host, port: hp.port };
  }
  return out;
}

function buildOutput(o: Obj, gatewayId: string, baseDir: string): OutputConfig {
  const name = or<string>(o.name, o.type as string);
  if (o.type === "influx") {
    const out: OutputConfig = { type: "influx", name, url: o.url as string, database: o.database as string, maxBatch: or(o.maxBatch, DEFAULTS.influx.maxBatch) };
    if (o.retentionPolicy !== undefined) out.retentionPolicy = o.retentionPolicy as string;
    if (o.username !== undefined) out.username = o.username as string;
    if (o.password !== undefined) out.password = o.password as string;
    return out;
  }
  const format = or<"json" | "sparkplug-b">(o.format, DEFAULTS.mqtt.format);
  const out: OutputConfig = {
    type: "mqtt",
    name,
    url: o.url as string,
    clientId: or(o.clientId, gatewayId),
    format,
    topicPrefix: or(o.topicPrefix, `floorgate/${gatewayId}`),
    qos: or(o.qos, format === "json" ? 1 : 0),
    maxBatch: or(o.maxBatch, DEFAULTS.mqtt.maxBatch),
  };
  if (o.username !== undefined) out.username = o.username as string;
  if (o.password !== undefined) out.password = o.password as string;
  if (o.primaryHostId !== undefined) out.primaryHostId = o.primaryHostId as string;
  for (const k of ["ca", "cert", "key"] as const) {
    if (typeof o[k] === "string") out[k] = resolve(baseDir, o[k] as string);
  }
  return out;
}
