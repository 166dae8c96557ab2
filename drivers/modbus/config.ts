/**
 * The Modbus device config: its types (the protocol's vocabulary), its JSON Schema fragment, the
 * checks the schema cannot express, and the builder that applies the defaults. The rules are
 * documented in README.md ("Configuration", "Addressing").
 */
import type { ConfigIssue, ConfigPath, DeviceCommon, DriverConfigPart, RawItem, RawObject } from "../../src/core/plugin.js";
import type { TagCommon } from "../../src/core/tag.js";
import { bool, durationMs, enumOf, nonEmpty, obj, tagCommonSchema, when, type JsonSchema } from "../../src/core/schema-kit.js";
import { buildTagCommon, intOf, isObj, listOf, objOf, opt, or, strOf } from "../../src/core/config-kit.js";

export type ModbusArea = "holding" | "input" | "coil" | "discrete";
export type ModbusType =
  | "bool" | "int16" | "uint16" | "int32" | "uint32" | "int64" | "uint64" | "float32" | "float64" | "string";
export type ByteOrder = "ABCD" | "CDAB" | "BADC" | "DCBA";

export interface ModbusTagConfig extends TagCommon {
  area: ModbusArea;
  address: number;
  type: ModbusType;
  /** default ABCD */
  byteOrder: ByteOrder;
  bit?: number;
  /** registers of a `string` */
  length?: number;
  pollMs?: number;
  /** unit id override for this tag (several unit ids behind one gateway); default: the connection's */
  unitId?: number;
}

export type ModbusConnection =
  | { transport: "tcp"; host: string; port: number; unitId: number; timeoutMs: number }
  | { transport: "rtu-over-tcp"; host: string; port: number; unitId: number; timeoutMs: number }
  | {
      transport: "rtu";
      path: string;
      baudRate: number;
      parity: "none" | "even" | "odd";
      dataBits: 7 | 8;
      stopBits: 1 | 2;
      unitId: number;
      timeoutMs: number;
    };

export interface ModbusDeviceConfig extends DeviceCommon {
  driver: "modbus";
  connection: ModbusConnection;
  /** default 1000 */
  pollMs: number;
  /** registers (or bits) a merged read may bridge; default 8 */
  maxGap: number;
  /** read tag by tag for devices that reject merged reads; default false */
  tagByTag: boolean;
  /** consecutive timeouts before the device is demoted; default 3 */
  maxTimeouts: number;
  /** Shared by every device with an identical tag list (see TagInterner): never mutate. */
  tags: readonly ModbusTagConfig[];
}

/** Defaults of spec §2 for Modbus devices, in one place. */
export const MODBUS_DEFAULTS = {
  device: { pollMs: 1000, maxGap: 8, tagByTag: false, maxTimeouts: 3 },
  connection: { port: 502, unitId: 1, timeoutMs: 1000 },
  tag: { byteOrder: "ABCD" },
  rtu: { baudRate: 9600, parity: "none", dataBits: 8, stopBits: 1 },
} as const;

/** Registers each Modbus type occupies (strings: `length`). */
export const REGISTERS: Readonly<Record<string, number>> = {
  bool: 1, int16: 1, uint16: 1, int32: 2, uint32: 2, float32: 2, int64: 4, uint64: 4, float64: 4,
};

const modbusTag = obj(
  "A Modbus tag",
  {
    ...tagCommonSchema,
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

const connectionSchema: JsonSchema = {
  type: "object",
  description: "How to reach the device; transport tcp (default), rtu-over-tcp or rtu",
  if: when("transport", "rtu"),
  then: modbusRtu,
  else: modbusTcp,
};

type Segs = ConfigPath;
type Add = (segs: Segs, message: string) => void;

/**
 * 5-digit PLC register notation (Modicon "4xxxx"): the leading digit names the table, the rest is
 * 1-based. Coils (0xxxx) cannot be told from a 0-based address, so they are never flagged.
 */
const PLC_NOTATION: Readonly<Record<string, { from: number; to: number; base: number; area: ModbusArea; what: string }[]>> = {
  holding: [
    { from: 40001, to: 49999, base: 40001, area: "holding", what: "4xxxx: holding register" },
    { from: 30001, to: 39999, base: 30001, area: "input", what: "3xxxx: input register" },
  ],
  input: [
    { from: 30001, to: 39999, base: 30001, area: "input", what: "3xxxx: input register" },
    { from: 40001, to: 49999, base: 40001, area: "holding", what: "4xxxx: holding register" },
  ],
  discrete: [{ from: 10001, to: 19999, base: 10001, area: "discrete", what: "1xxxx: discrete input" }],
};

/**
 * The warning for `address: 40001`-style notation. A warning, not an error: a few devices do
 * document 0-based offsets this high, and for them the config is right.
 */
export function plcNotationWarning(area: string | undefined, address: number | undefined): string | undefined {
  if (area === undefined || address === undefined) return undefined;
  const hit = PLC_NOTATION[area]?.find((r) => address >= r.from && address <= r.to);
  if (!hit) return undefined;
  const n = address - hit.base;
  const as = hit.area === area ? `address: ${n}` : `area: ${hit.area}, address: ${n}`;
  return `address ${address} looks like PLC register notation (${hit.what} ${n + 1}); addresses here are 0-based register offsets, so ${address} is written ${as}. Keep ${address} only if the device's manual gives 0-based offsets this high`;
}

function checkTags(d: RawObject, segs: Segs, add: Add, warn: Add): void {
  const conn = objOf(d.connection);
  const rtu = conn.transport === "rtu";
  listOf(d.tags).forEach((t, j) => {
    if (!isObj(t)) return;
    const ts: Segs = [...segs, "tags", j];
    const area = strOf(t.area);
    const bitArea = area === "coil" || area === "discrete";
    const type = strOf(t.type) ?? (bitArea ? "bool" : undefined);
    if (bitArea && t.type !== undefined && t.type !== "bool") {
      add([...ts, "type"], `found ${JSON.stringify(t.type)}; a ${area} is a single bit, so its type is bool (or leave type out)`);
    }
    if (t.bit !== undefined) {
      if (bitArea) add([...ts, "bit"], `bit selects a bit of a register; a ${area} is already a single bit: remove bit`);
      else if (type !== undefined && type !== "bool") add([...ts, "bit"], `bit is only for type bool (a bool taken from one bit of a register); this tag is ${type}`);
    } else if ((area === "holding" || area === "input") && type === "bool") {
      add(ts, `a bool from a ${area} register needs bit (0-15) to say which bit`);
    }
    if (type === "string" && t.length === undefined) add(ts, "a string tag needs length (registers, 2 characters each)");
    if (type !== undefined && type !== "string" && t.length !== undefined) add([...ts, "length"], `length is only for type string; this tag is ${type}`);
    if (t.writable === true && (area === "input" || area === "discrete")) {
      add([...ts, "writable"], `${area === "input" ? "input registers" : "discrete inputs"} are read-only in Modbus; only holding and coil tags can be writable`);
    }
    if ((type === "bool" || type === "string") && ((t.scale !== undefined && t.scale !== 1) || (t.offset !== undefined && t.offset !== 0))) {
      add([...ts, t.scale !== undefined && t.scale !== 1 ? "scale" : "offset"], `scale and offset apply to numbers; this tag is ${type}`);
    }
    if (t.scale === 0) add([...ts, "scale"], "scale 0 would turn every reading into the offset; use a non-zero scale");
    const address = intOf(t.address);
    const regs = type === "string" ? intOf(t.length) : type !== undefined ? REGISTERS[type] : undefined;
    if (address !== undefined && regs !== undefined && address >= 0 && address <= 65535 && address + regs - 1 > 65535) {
      add([...ts, "address"], `a ${type} at ${address} spans ${regs} registers and ends at ${address + regs - 1}; the last register must be at most 65535`);
    }
    if (rtu && t.unitId === 0) add([...ts, "unitId"], "unit id 0 is broadcast on a serial line (no replies); allowed: 1-247");
    const notation = plcNotationWarning(area, address);
    if (notation !== undefined) warn([...ts, "address"], notation);
  });
}

/**
 * Devices on one serial port share one line, opened once: with different baud rates or framing
 * the first device to open it would silently decide for all of them.
 */
function checkSerialLine(
  d: RawObject, segs: Segs, lines: Map<string, { segs: Segs; settings: Record<string, unknown> }>, add: Add, where: (s: Segs) => string,
): void {
  const conn = objOf(d.connection);
  const path = strOf(conn.path);
  if (conn.transport !== "rtu" || path === undefined) return;
  const settings: Record<string, unknown> = {};
  for (const k of ["baudRate", "parity", "dataBits", "stopBits"] as const) settings[k] = conn[k] ?? MODBUS_DEFAULTS.rtu[k];
  const first = lines.get(path);
  if (!first) { lines.set(path, { segs: [...segs, "connection"], settings }); return; }
  for (const k of Object.keys(settings)) {
    if (settings[k] === first.settings[k]) continue;
    add([...segs, "connection", ...(conn[k] === undefined ? [] : [k])],
      `serial port ${path} is also used by ${where(first.segs)} with ${k} ${String(first.settings[k])}, here ${String(settings[k])}; devices on one serial line must use the same baudRate, parity, dataBits and stopBits`);
  }
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
  /**
   * By the raw array itself: the devices of one template hand in the template's array (see
   * `ConfigPart.builder`), so 10,000 of them build and compare its tags once.
   */
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
      const tag = buildModbusTag(objOf(t));
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

function buildModbusConnection(c: RawObject): ModbusConnection {
  const unitId = or<number>(c.unitId, MODBUS_DEFAULTS.connection.unitId);
  const timeoutMs = or<number>(c.timeoutMs, MODBUS_DEFAULTS.connection.timeoutMs);
  if (c.transport === "rtu") {
    return {
      transport: "rtu",
      path: c.path as string,
      baudRate: or(c.baudRate, MODBUS_DEFAULTS.rtu.baudRate),
      parity: or(c.parity, MODBUS_DEFAULTS.rtu.parity),
      dataBits: or(c.dataBits, MODBUS_DEFAULTS.rtu.dataBits),
      stopBits: or(c.stopBits, MODBUS_DEFAULTS.rtu.stopBits),
      unitId,
      timeoutMs,
    };
  }
  return {
    transport: c.transport === "rtu-over-tcp" ? "rtu-over-tcp" : "tcp",
    host: c.host as string,
    port: or(c.port, MODBUS_DEFAULTS.connection.port),
    unitId,
    timeoutMs,
  };
}

function buildModbusTag(t: RawObject): ModbusTagConfig {
  const tag: ModbusTagConfig = {
    ...buildTagCommon(t),
    area: t.area as ModbusArea,
    address: t.address as number,
    type: or(t.type, "bool"),
    byteOrder: or(t.byteOrder, MODBUS_DEFAULTS.tag.byteOrder),
  };
  for (const k of ["bit", "length", "pollMs", "unitId"] as const) {
    const v = opt<number>(t[k]);
    if (v !== undefined) tag[k] = v;
  }
  return tag;
}

/** The Modbus driver's config half (the descriptor in plugin.ts adds the runtime half). */
export const modbusConfig: DriverConfigPart<ModbusDeviceConfig> = {
  name: "modbus",
  schema: {
    description: "A Modbus device (TCP, RTU or RTU over TCP)",
    properties: {
      connection: connectionSchema,
      pollMs: durationMs("Poll period", 10, 1000),
      maxGap: { type: "integer", minimum: 0, maximum: 125, description: "Registers (or bits) a merged read may bridge between tags", default: 8 },
      tagByTag: bool("Read tag by tag, for devices that reject merged reads", false),
      maxTimeouts: { type: "integer", minimum: 1, maximum: 1000, description: "Consecutive timeouts before the device is polled less often", default: 3 },
      tags: { type: "array", minItems: 1, description: "Tags to read", items: modbusTag },
    },
    required: ["connection", "tags"],
  },

  // checkTags reads the transport: a tag's unitId 0 is broadcast on a serial line
  tagRulesRead: [["connection", "transport"]],

  check(devices: readonly RawItem[], ctx): ConfigIssue[] {
    const issues: ConfigIssue[] = [];
    const add: Add = (path, message) => issues.push({ path, message });
    const warn: Add = (path, message) => issues.push({ path, message, severity: "warning" });
    const serialLines = new Map<string, { segs: Segs; settings: Record<string, unknown> }>();
    for (const d of devices) {
      checkTags(d.value, d.path, add, warn);
      checkSerialLine(d.value, d.path, serialLines, add, (s) => ctx.where(s));
    }
    return issues;
  },

  builder() {
    const interner = new TagInterner();
    return (d, common) => ({
      ...common,
      driver: "modbus",
      connection: buildModbusConnection(objOf(d.connection)),
      pollMs: or(d.pollMs, MODBUS_DEFAULTS.device.pollMs),
      maxGap: or(d.maxGap, MODBUS_DEFAULTS.device.maxGap),
      tagByTag: or(d.tagByTag, MODBUS_DEFAULTS.device.tagByTag),
      maxTimeouts: or(d.maxTimeouts, MODBUS_DEFAULTS.device.maxTimeouts),
      tags: interner.list(listOf(d.tags)),
    });
  },
};
