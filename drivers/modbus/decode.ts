/**
 * Pure conversions between Modbus register/bit images and tag values. No I/O, no config defaults:
 * callers pass fully defaulted tags. Register images are Buffers in wire order (2 bytes per
 * register, high byte first), exactly as they arrive in a read reply.
 */
import { FloorgateError } from "../../src/core/errors.js";
import type { ByteOrder, ModbusArea, ModbusType } from "./config.js";
import type { Quality, SampleValue } from "../../src/core/sample.js";

/** The parts of a tag that decoding depends on. */
export interface CodecTag {
  name: string;
  area: ModbusArea;
  type: ModbusType;
  byteOrder: ByteOrder;
  bit?: number;
  length?: number;
}

export interface Decoded {
  value: SampleValue;
  quality: Quality;
  reason?: string;
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);

export function isBitArea(area: ModbusArea): boolean {
  return area === "coil" || area === "discrete";
}

/** Registers (register areas) or bits (bit areas) a tag occupies. */
export function tagWidth(tag: Pick<CodecTag, "area" | "type" | "length">): number {
  if (isBitArea(tag.area)) return 1;
  switch (tag.type) {
    case "bool": case "int16": case "uint16": return 1;
    case "int32": case "uint32": case "float32": return 2;
    case "int64": case "uint64": case "float64": return 4;
    case "string": return Math.max(1, tag.length ?? 1);
  }
}

/**
 * Turns `words` registers in device order into big-endian bytes. The four names describe a 32-bit
 * value; for 64-bit values the same two operations extend to four registers: `CDAB` reverses the
 * register order (GH EF CD AB), `BADC` swaps the bytes inside each register (BA DC FE HG), `DCBA`
 * does both (fully little-endian).
 */
export function toBigEndian(src: Buffer, byteOrder: ByteOrder): Buffer {
  const words = src.length >> 1;
  const out = Buffer.allocUnsafe(words * 2);
  const reverseWords = byteOrder === "CDAB" || byteOrder === "DCBA";
  const swapBytes = byteOrder === "BADC" || byteOrder === "DCBA";
  for (let i = 0; i < words; i++) {
    const from = reverseWords ? words - 1 - i : i;
    const hi = src[from * 2]!;
    const lo = src[from * 2 + 1]!;
    out[i * 2] = swapBytes ? lo : hi;
    out[i * 2 + 1] = swapBytes ? hi : lo;
  }
  return out;
}

/** The inverse of `toBigEndian` (both operations are involutions). */
export function fromBigEndian(be: Buffer, byteOrder: ByteOrder): Buffer {
  return toBigEndian(be, byteOrder);
}

function good(value: SampleValue): Decoded {
  return { value, quality: "good" };
}

function bigToDecoded(v: bigint, type: string): Decoded {
  if (v <= MAX_SAFE && v >= MIN_SAFE) return good(Number(v));
  // A JS number would silently round this; the exact value travels as a decimal string instead.
  return { value: v.toString(), quality: "uncertain", reason: `${type} beyond 2^53 sent as exact decimal string` };
}

function floatDecoded(v: number): Decoded {
  if (Number.isNaN(v)) return { value: null, quality: "bad", reason: "float is NaN" };
  if (!Number.isFinite(v)) return { value: null, quality: "bad", reason: "float is infinite" };
  return good(v);
}

/**
 * Decodes one register-area tag from `regs` (a register image) starting at register `offset`.
 * Never throws for a well-sized image: odd values (NaN floats, huge 64-bit integers) come back
 * with a quality and reason.
 */
export function decodeRegisters(tag: CodecTag, regs: Buffer, offset: number): Decoded {
  const width = tagWidth(tag);
  const start = offset * 2;
  if (start + width * 2 > regs.length) {
    return { value: null, quality: "bad", reason: "reply shorter than the tag" };
  }
  // Big-endian data (the common case) is read in place; other orders are reordered into a copy.
  const inPlace = tag.byteOrder === "ABCD" || (width === 1 && tag.byteOrder === "CDAB");
  const be = inPlace ? regs : toBigEndian(regs.subarray(start, start + width * 2), tag.byteOrder);
  const at = inPlace ? start : 0;
  switch (tag.type) {
    case "bool": {
      const word = regs.readUInt16BE(start);
      return good(tag.bit === undefined ? word !== 0 : ((word >> tag.bit) & 1) === 1);
    }
    case "int16": return good(be.readInt16BE(at));
    case "uint16": return good(be.readUInt16BE(at));
    case "int32": return good(be.readInt32BE(at));
    case "uint32": return good(be.readUInt32BE(at));
    case "float32": return floatDecoded(be.readFloatBE(at));
    case "float64": return floatDecoded(be.readDoubleBE(at));
    case "int64": return bigToDecoded(be.readBigInt64BE(at), "int64");
    case "uint64": return bigToDecoded(be.readBigUInt64BE(at), "uint64");
    case "string": {
      // Strings only honour the byte swap inside registers; register order is always ascending.
      const raw = regs.subarray(start, start + width * 2);
      const swap = tag.byteOrder === "BADC" || tag.byteOrder === "DCBA";
      const bytes = swap ? toBigEndian(raw, "BADC") : raw;
      return good(bytes.toString("latin1").replace(/[\0 ]+$/, ""));
    }
  }
}

/**
 * The common cases of `decodeRegisters` without the result object: 16- and 32-bit integers and
 * finite floats in a byte order that reads in place. Returns undefined for anything else (other
 * types or orders, NaN or infinite floats, a short image) — call `decodeRegisters` then, which
 * gives the same value or the quality and reason.
 */
export function decodeNumberFast(tag: CodecTag, regs: Buffer, offset: number): number | undefined {
  const start = offset * 2;
  switch (tag.type) {
    case "uint16":
    case "int16": {
      if (start + 2 > regs.length || (tag.byteOrder !== "ABCD" && tag.byteOrder !== "CDAB")) return undefined;
      const w = (regs[start]! << 8) | regs[start + 1]!;
      return tag.type === "uint16" ? w : (w << 16) >> 16;
    }
    case "uint32":
    case "int32":
    case "float32": {
      if (start + 4 > regs.length || tag.byteOrder !== "ABCD") return undefined;
      if (tag.type === "uint32") return regs.readUInt32BE(start);
      if (tag.type === "int32") return regs.readInt32BE(start);
      const f = regs.readFloatBE(start);
      return Number.isFinite(f) ? f : undefined;
    }
    default:
      return undefined;
  }
}

/** Reads bit `index` of a coil/discrete reply's packed bit field (LSB first, as on the wire). */
export function decodeBit(bits: Buffer, index: number): Decoded {
  const byte = bits[index >> 3];
  if (byte === undefined) return { value: null, quality: "bad", reason: "reply shorter than the tag" };
  return good(((byte >> (index & 7)) & 1) === 1);
}

function refuse(tag: CodecTag, msg: string): FloorgateError {
  return new FloorgateError("WRITE_REFUSED", `tag ${tag.name}: ${msg}`);
}

function toInteger(tag: CodecTag, raw: SampleValue, min: bigint, max: bigint): bigint {
  let v: bigint;
  if (typeof raw === "number" && Number.isInteger(raw)) v = BigInt(raw);
  else if (typeof raw === "string" && /^-?\d+$/.test(raw.trim())) v = BigInt(raw.trim());
  else if (typeof raw === "boolean") v = raw ? 1n : 0n;
  else throw refuse(tag, `${tag.type} needs an integer, got ${JSON.stringify(raw)}`);
  if (v < min || v > max) throw refuse(tag, `${v} is outside the ${tag.type} range ${min}..${max}`);
  return v;
}

/** Encodes a value for a coil write (FC5). */
export function encodeCoil(tag: CodecTag, raw: SampleValue): boolean {
  if (typeof raw === "boolean") return raw;
  if (raw === 0 || raw === 1) return raw === 1;
  throw refuse(tag, `a coil takes true/false (or 0/1), got ${JSON.stringify(raw)}`);
}

/**
 * Encodes a value into a register image in wire order, ready for FC6 (one register) or FC16.
 * Throws WRITE_REFUSED for values that do not fit the type, never truncating silently.
 */
export function encodeRegisters(tag: CodecTag, raw: SampleValue): Buffer {
  const be = Buffer.alloc(tagWidth(tag) * 2);
  switch (tag.type) {
    case "bool":
      if (tag.bit !== undefined) throw refuse(tag, "a bit inside a register cannot be written without a read-modify-write");
      be.writeUInt16BE(encodeCoil(tag, raw) ? 1 : 0, 0);
      return be;
    case "int16": be.writeInt16BE(Number(toInteger(tag, raw, -32768n, 32767n)), 0); break;
    case "uint16": be.writeUInt16BE(Number(toInteger(tag, raw, 0n, 65535n)), 0); break;
    case "int32": be.writeInt32BE(Number(toInteger(tag, raw, -(2n ** 31n), 2n ** 31n - 1n)), 0); break;
    case "uint32": be.writeUInt32BE(Number(toInteger(tag, raw, 0n, 2n ** 32n - 1n)), 0); break;
    case "int64": be.writeBigInt64BE(toInteger(tag, raw, -(2n ** 63n), 2n ** 63n - 1n), 0); break;
    case "uint64": be.writeBigUInt64BE(toInteger(tag, raw, 0n, 2n ** 64n - 1n), 0); break;
    case "float32":
    case "float64": {
      if (typeof raw !== "number" || !Number.isFinite(raw)) throw refuse(tag, `${tag.type} needs a finite number, got ${JSON.stringify(raw)}`);
      if (tag.type === "float32") be.writeFloatBE(raw, 0); else be.writeDoubleBE(raw, 0);
      break;
    }
    case "string": {
      if (typeof raw !== "string") throw refuse(tag, `string needs a string, got ${JSON.stringify(raw)}`);
      const bytes = Buffer.from(raw, "latin1");
      if (bytes.length > be.length) throw refuse(tag, `"${raw}" is longer than ${be.length} characters`);
      bytes.copy(be);
      const swap = tag.byteOrder === "BADC" || tag.byteOrder === "DCBA";
      return swap ? toBigEndian(be, "BADC") : be;
    }
  }
  return fromBigEndian(be, tag.byteOrder);
}
