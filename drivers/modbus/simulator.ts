/**
 * Simulated Modbus TCP machines, served by modbus-serial's ServerTCP (one server, i.e. one port,
 * per machine or gateway):
 *
 * - `startModbusSimulator`: fixed presses for `floorgate demo` and the tests, with the register
 *   map below (the one `drivers/modbus/sample.yaml` was written against); values move over time so
 *   dashboards have something to show.
 * - `startConfiguredSimulator`: `floorgate simulate --config FILE`, which serves whatever tags a
 *   config names, on the devices' own host:port and unit ids (see SIMULATED_VALUES).
 *
 * The presses' register map:
 *
 *  area      address  type     order  tag
 *  holding   0-1      float32  ABCD   spindle_rpm
 *  holding   2        int16    -      temp_c      (×10: scale 0.1)
 *  holding   3        int16    -      oil_temp_c  (×10: scale 0.1)
 *  input     10-11    uint32   CDAB   part_count
 *  holding   20-23    float64  DCBA   energy_kwh
 *  holding   30-37    string   ABCD   model       (8 registers)
 *  holding   40       bits     -      running (bit 0), fault (bit 1)
 *  discrete  3        bool     -      door_open
 *  coil      0        bool     -      lamp        (writable)
 */
import net from "node:net";
import ModbusRTU from "modbus-serial";
import { encodeRegisters, isBitArea, tagWidth, type CodecTag } from "./decode.js";

export interface ModbusSimulatorOptions {
  /** how many presses; default 3 */
  presses?: number;
  /** port of the first press, the others follow; 0 (default) picks free ports */
  basePort?: number;
  host?: string;
  /** value update period; default 200 ms */
  tickMs?: number;
}

export interface ModbusSimulator {
  /** one port per press, in order press-1, press-2, … */
  ports: number[];
  stop(): Promise<void>;
}

interface Press {
  holding: Uint16Array;
  input: Uint16Array;
  coils: Uint8Array;
  discrete: Uint8Array;
  parts: number;
  energy: number;
}

const SIZE = 100;

function putWords(dst: Uint16Array, at: number, bytes: Buffer): void {
  for (let i = 0; i < bytes.length; i += 2) dst[at + i / 2] = bytes.readUInt16BE(i);
}

function update(p: Press, n: number, t: number): void {
  const phase = t / 1000 + n * 1.7;
  const running = Math.sin(phase / 20) > -0.6;
  const rpm = running ? 1450 + 120 * Math.sin(phase / 3) + 5 * Math.sin(phase * 7) : 0;
  const b4 = Buffer.alloc(4);
  b4.writeFloatBE(rpm); // ABCD
  putWords(p.holding, 0, b4);
  p.holding[2] = Math.round((62 + 8 * Math.sin(phase / 30) + n) * 10) & 0xffff;
  p.holding[3] = Math.round((41 + 3 * Math.sin(phase / 45)) * 10) & 0xffff;
  if (running && Math.random() < 0.3) p.parts = (p.parts + 1) >>> 0;
  p.input[10] = p.parts & 0xffff; // CDAB: low word first
  p.input[11] = p.parts >>> 16;
  p.energy += rpm / 1e6;
  const b8 = Buffer.alloc(8);
  b8.writeDoubleLE(p.energy); // DCBA: fully little-endian, i.e. the big-endian bytes reversed
  putWords(p.holding, 20, b8);
  p.holding[40] = (running ? 1 : 0) | (p.holding[40]! & 2);
  p.discrete[3] = Math.sin(phase / 11) > 0.85 ? 1 : 0;
}

function newPress(n: number): Press {
  const p: Press = { holding: new Uint16Array(SIZE), input: new Uint16Array(SIZE), coils: new Uint8Array(SIZE), discrete: new Uint8Array(SIZE), parts: 1000 * n, energy: 500 * n };
  putWords(p.holding, 30, Buffer.from(`PRESS-${n}`.padEnd(16, "\0"), "latin1"));
  update(p, n, Date.now());
  return p;
}

async function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, host, () => { const { port } = s.address() as net.AddressInfo; s.close(() => resolve(port)); });
  });
}

function illegal(addr: number): void {
  if (addr < 0 || addr >= SIZE) throw Object.assign(new Error("illegal data address"), { modbusErrorCode: 2 });
}

/** Starts the presses; resolves once every port accepts connections. */
export async function startModbusSimulator(opts: ModbusSimulatorOptions = {}): Promise<ModbusSimulator> {
  const count = opts.presses ?? 3;
  const host = opts.host ?? "127.0.0.1";
  const presses = Array.from({ length: count }, (_, i) => newPress(i + 1));
  const servers: InstanceType<typeof ModbusRTU.ServerTCP>[] = [];
  const ports: number[] = [];
  for (const [i, p] of presses.entries()) {
    const port = opts.basePort ? opts.basePort + i : await freePort(host);
    const vector = {
      getHoldingRegister: (a: number) => { illegal(a); return p.holding[a]!; },
      getInputRegister: (a: number) => { illegal(a); return p.input[a]!; },
      getCoil: (a: number) => { illegal(a); return p.coils[a] === 1; },
      getDiscreteInput: (a: number) => { illegal(a); return p.discrete[a] === 1; },
      setCoil: (a: number, v: boolean) => { illegal(a); p.coils[a] = v ? 1 : 0; },
      setRegister: (a: number, v: number) => { illegal(a); p.holding[a] = v; },
    };
    const server = new ModbusRTU.ServerTCP(vector, { host, port, unitID: 255 });
    server.on("socketError", () => {});
    await new Promise<void>((resolve, reject) => {
      server.once("initialized", () => resolve());
      server.once("serverError", (e: unknown) => reject(e instanceof Error ? e : new Error(String(e))));
    });
    servers.push(server);
    ports.push(port);
  }
  const timer = setInterval(() => { const t = Date.now(); presses.forEach((p, i) => update(p, i + 1, t)); }, opts.tickMs ?? 200);
  timer.unref();
  return {
    ports,
    stop: async () => {
      clearInterval(timer);
      await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Simulated devices for any config (`floorgate simulate --config FILE`)
// ---------------------------------------------------------------------------------------------

/** One tag as the configured simulator serves it: the driver's codec view plus what animates it. */
export interface SimulatedTag extends CodecTag {
  address: number;
  /** the unit id the tag is read from (its own, else its device's) */
  unitId: number;
  /** writable tags are never animated: they hold what a client wrote (0/false at start) */
  writable: boolean;
  scale: number;
  offset: number;
}

/** Everything served on one host:port, i.e. by one simulated TCP gateway or device. */
export interface SimulatedEndpoint {
  host: string;
  port: number;
  devices: { id: string; tags: readonly SimulatedTag[] }[];
}

export interface ConfiguredSimulator {
  stop(): Promise<void>;
}

/** What the served values are, in one sentence for `floorgate simulate` and the docs. */
export const SIMULATED_VALUES =
  "strings hold the device id in capitals; writable tags hold what a client writes (0/false at start); " +
  "32- and 64-bit integers count up by one a second from 1000; other numbers swing between 25 and 75 " +
  "(after scale and offset) with a period of 20-60 s; bools toggle every 5-30 s; a register two tags " +
  "share holds the first tag's value (writable tags first), so both read one consistent value; registers no tag " +
  "covers read 0, addresses past a unit's highest tag answer exception 2 (illegal data address), " +
  "and unit ids no device uses answer exception 11 (gateway target failed to respond).";

/** One Modbus unit's memory: each area as long as its highest configured tag reaches. */
interface Unit {
  holding: Uint16Array;
  input: Uint16Array;
  coil: Uint8Array;
  discrete: Uint8Array;
}

interface Animated {
  tag: SimulatedTag;
  device: string;
  words: Uint16Array | null;
  bits: Uint8Array | null;
  /** 0..1, from the device id and tag name: spreads periods and phases */
  seed: number;
}

const COUNTER_TYPES = new Set(["int32", "uint32", "int64", "uint64"]);
const INT_RANGE: Partial<Record<string, [number, number]>> = { int16: [-32768, 32767], uint16: [0, 65535] };

function seedOf(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return (h >>> 0) / 2 ** 32;
}

function unitFor(units: Map<number, Unit>, tags: readonly SimulatedTag[], unitId: number): Unit {
  let u = units.get(unitId);
  if (u) return u;
  const size = { holding: 0, input: 0, coil: 0, discrete: 0 };
  for (const t of tags) if (t.unitId === unitId) size[t.area] = Math.max(size[t.area], t.address + tagWidth(t));
  u = { holding: new Uint16Array(size.holding), input: new Uint16Array(size.input), coil: new Uint8Array(size.coil), discrete: new Uint8Array(size.discrete) };
  units.set(unitId, u);
  return u;
}

/** The raw value a tag serves at `elapsedS` seconds after the start (see SIMULATED_VALUES). */
function rawValue(a: Animated, elapsedS: number): number | boolean | string {
  const { tag, seed } = a;
  if (tag.type === "string") return a.device.toUpperCase();
  if (tag.type === "bool" || isBitArea(tag.area)) {
    const period = 10 + 50 * seed;
    return Math.sin((2 * Math.PI * elapsedS) / period + seed * 7) > 0;
  }
  if (COUNTER_TYPES.has(tag.type)) return 1000 + Math.floor(elapsedS);
  const period = 20 + 40 * seed;
  const eng = 50 + 25 * Math.sin((2 * Math.PI * elapsedS) / period + seed * 11);
  const raw = (eng - tag.offset) / (tag.scale === 0 ? 1 : tag.scale);
  const range = INT_RANGE[tag.type];
  return range ? Math.min(range[1], Math.max(range[0], Math.round(raw))) : raw;
}

function serve(a: Animated, raw: number | boolean | string): void {
  const { tag } = a;
  if (a.bits) {
    a.bits[tag.address] = raw ? 1 : 0;
  } else if (a.words && tag.type === "bool" && tag.bit !== undefined) {
    const mask = 1 << tag.bit;
    a.words[tag.address] = raw ? a.words[tag.address]! | mask : a.words[tag.address]! & ~mask;
  } else if (a.words) {
    const value = tag.type === "string" && typeof raw === "string"
      ? Buffer.from(raw, "latin1").subarray(0, tagWidth(tag) * 2).toString("latin1")
      : raw;
    putWords(a.words, tag.address, encodeRegisters(tag, value));
  }
}

function gatewayTargetFailed(): never {
  throw Object.assign(new Error("gateway target device failed to respond"), { modbusErrorCode: 11 });
}

function at<T extends Uint16Array | Uint8Array>(area: T | undefined, a: number): number {
  if (area === undefined) gatewayTargetFailed();
  if (a < 0 || a >= area.length) throw Object.assign(new Error("illegal data address"), { modbusErrorCode: 2 });
  return area[a]!;
}

/**
 * Serves every tag of every device of `endpoints`, one modbus-serial ServerTCP per host:port,
 * answering each unit id its devices use. Resolves once every port accepts connections; on a
 * failure (a port taken) the servers already started are closed and the error is rethrown.
 */
export async function startConfiguredSimulator(endpoints: readonly SimulatedEndpoint[], opts: { tickMs?: number } = {}): Promise<ConfiguredSimulator> {
  const servers: InstanceType<typeof ModbusRTU.ServerTCP>[] = [];
  const animated: Animated[] = [];
  const closeAll = (): Promise<void> => Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r())))).then(() => undefined);
  try {
    for (const e of endpoints) {
      const units = new Map<number, Unit>();
      const all = e.devices.flatMap((d) => d.tags);
      // Writable tags first: a register they share with a read-only tag must keep what a client wrote.
      const ordered = e.devices.flatMap((d) => d.tags.map((tag) => ({ d, tag })))
        .sort((x, y) => Number(y.tag.writable) - Number(x.tag.writable));
      const claimed = new Set<string>();
      for (const { d, tag } of ordered) {
        const u = unitFor(units, all, tag.unitId);
        const a: Animated = { tag, device: d.id, words: null, bits: null, seed: seedOf(`${d.id}/${tag.name}`) };
        if (tag.area === "holding" || tag.area === "input") a.words = u[tag.area]; else a.bits = u[tag.area];
        // One owner per register (per bit for bit tags): overlapping tags then read one consistent value.
        const cells = Array.from({ length: tagWidth(tag) }, (_, i) => `${tag.unitId}/${tag.area}/${tag.address + i}${tag.bit === undefined ? "" : `.${tag.bit}`}`);
        const whole = cells.map((c) => c.replace(/\.\d+$/, ""));
        const taken = tag.bit === undefined ? whole.some((c) => claimed.has(c) || claimed.has(`${c}.*`)) : claimed.has(whole[0]!) || claimed.has(cells[0]!);
        if (taken) continue;
        for (const c of cells) claimed.add(c);
        if (tag.bit !== undefined) claimed.add(`${whole[0]}.*`);
        serve(a, tag.writable ? (tag.type === "string" ? "" : tag.type === "bool" || isBitArea(tag.area) ? false : 0) : rawValue(a, 0));
        if (!tag.writable && tag.type !== "string") animated.push(a);
      }
      const vector = {
        getHoldingRegister: (a: number, unit: number) => at(units.get(unit)?.holding, a),
        getInputRegister: (a: number, unit: number) => at(units.get(unit)?.input, a),
        getCoil: (a: number, unit: number) => at(units.get(unit)?.coil, a) === 1,
        getDiscreteInput: (a: number, unit: number) => at(units.get(unit)?.discrete, a) === 1,
        setCoil: (a: number, v: boolean, unit: number) => { at(units.get(unit)?.coil, a); units.get(unit)!.coil[a] = v ? 1 : 0; },
        setRegister: (a: number, v: number, unit: number) => { at(units.get(unit)?.holding, a); units.get(unit)!.holding[a] = v; },
      };
      const server = new ModbusRTU.ServerTCP(vector, { host: e.host, port: e.port, unitID: 255 });
      server.on("socketError", () => {});
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once("initialized", () => resolve());
        server.once("serverError", (err: unknown) => reject(err instanceof Error ? err : new Error(String(err))));
      });
    }
  } catch (err) {
    await closeAll();
    throw err;
  }
  const t0 = Date.now();
  const timer = setInterval(() => {
    const s = (Date.now() - t0) / 1000;
    for (const a of animated) serve(a, rawValue(a, s));
  }, opts.tickMs ?? 500);
  timer.unref();
  return {
    stop: async () => {
      clearInterval(timer);
      await closeAll();
    },
  };
}
