/**
 * Known encodings used by both the unit tests and the server tests: each value's big-endian bytes
 * and, spelled out letter by letter, where each byte goes on the wire for each byte order.
 */
import type { ByteOrder, ModbusType } from "../../drivers/modbus/config.js";

export const ORDERS: ByteOrder[] = ["ABCD", "CDAB", "BADC", "DCBA"];

/** Wire position → big-endian byte letter, per order and width (spelled out, not computed). */
export const LAYOUT: Record<2 | 4 | 8, Record<ByteOrder, string>> = {
  2: { ABCD: "AB", CDAB: "AB", BADC: "BA", DCBA: "BA" },
  4: { ABCD: "ABCD", CDAB: "CDAB", BADC: "BADC", DCBA: "DCBA" },
  8: { ABCD: "ABCDEFGH", CDAB: "GHEFCDAB", BADC: "BADCFEHG", DCBA: "HGFEDCBA" },
};

export function wire(be: number[], order: ByteOrder): number[] {
  const layout = LAYOUT[be.length as 2 | 4 | 8][order];
  return [...layout].map((ch) => be[ch.charCodeAt(0) - 65]!);
}

/** bytes → register values (high byte first) */
export function words(bytes: number[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < bytes.length; i += 2) out.push((bytes[i]! << 8) | bytes[i + 1]!);
  return out;
}

export interface Vector {
  type: ModbusType;
  be: number[];
  value: number | string;
  quality?: "good" | "uncertain";
}

export const VECTORS: Vector[] = [
  { type: "int16", be: [0xfe, 0x0c], value: -500 },
  { type: "uint16", be: [0xc3, 0x50], value: 50000 },
  { type: "int32", be: [0xf8, 0xa4, 0x32, 0xeb], value: -123456789 },
  { type: "uint32", be: [0xb2, 0xd0, 0x5e, 0x00], value: 3000000000 },
  { type: "float32", be: [0x42, 0xf6, 0xe9, 0x79], value: Math.fround(123.456) },
  { type: "float64", be: [0x40, 0x93, 0x4a, 0x45, 0x6d, 0x5c, 0xfa, 0xad], value: 1234.5678 },
  { type: "int64", be: [0xff, 0xff, 0xfe, 0xe0, 0x8e, 0x04, 0xfb, 0x35], value: -1234567890123 },
  { type: "uint64", be: [0x00, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], value: 9007199254740991 },
  { type: "uint64", be: [0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05], value: "9223372036854775813", quality: "uncertain" },
  { type: "int64", be: [0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00], value: "-9223372036854775808", quality: "uncertain" },
];
