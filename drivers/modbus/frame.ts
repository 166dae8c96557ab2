/**
 * Modbus PDUs and their two framings (MBAP for Modbus TCP, address+CRC16 for RTU). Pure functions:
 * building requests, checking that a reply really answers the request it is matched to, and CRC.
 */
import type { ModbusArea } from "./config.js";

export const FC = {
  readCoils: 1, readDiscrete: 2, readHolding: 3, readInput: 4,
  writeCoil: 5, writeRegister: 6, writeCoils: 15, writeRegisters: 16,
} as const;

const EXCEPTION_NAMES: Record<number, string> = {
  1: "illegal function", 2: "illegal data address", 3: "illegal data value", 4: "server device failure",
  5: "acknowledge", 6: "server device busy", 8: "memory parity error",
  10: "gateway path unavailable", 11: "gateway target device failed to respond",
};

export const ILLEGAL_ADDRESS = 2;

/** "modbus exception 2: illegal data address" — the reason operators see on a bad sample. */
export function exceptionText(code: number): string {
  return `modbus exception ${code}: ${EXCEPTION_NAMES[code] ?? "unknown exception"}`;
}

export function readFunction(area: ModbusArea): number {
  switch (area) {
    case "coil": return FC.readCoils;
    case "discrete": return FC.readDiscrete;
    case "holding": return FC.readHolding;
    case "input": return FC.readInput;
  }
}

export function readPdu(fc: number, start: number, count: number): Buffer {
  const b = Buffer.allocUnsafe(5);
  b[0] = fc;
  b.writeUInt16BE(start, 1);
  b.writeUInt16BE(count, 3);
  return b;
}

export function writeCoilPdu(address: number, on: boolean): Buffer {
  const b = Buffer.allocUnsafe(5);
  b[0] = FC.writeCoil;
  b.writeUInt16BE(address, 1);
  b.writeUInt16BE(on ? 0xff00 : 0x0000, 3);
  return b;
}

export function writeRegisterPdu(address: number, word: Buffer): Buffer {
  const b = Buffer.allocUnsafe(5);
  b[0] = FC.writeRegister;
  b.writeUInt16BE(address, 1);
  word.copy(b, 3, 0, 2);
  return b;
}

export function writeRegistersPdu(address: number, regs: Buffer): Buffer {
  const b = Buffer.allocUnsafe(6 + regs.length);
  b[0] = FC.writeRegisters;
  b.writeUInt16BE(address, 1);
  b.writeUInt16BE(regs.length >> 1, 3);
  b[5] = regs.length;
  regs.copy(b, 6);
  return b;
}

/** Length of the normal reply PDU a request calls for. */
export function expectedReplyLength(req: Buffer): number {
  const fc = req[0]!;
  if (fc >= 1 && fc <= 4) {
    const count = req.readUInt16BE(3);
    return 2 + (fc <= 2 ? Math.ceil(count / 8) : count * 2);
  }
  return 5; // FC5/6/15/16 echo address and value/quantity
}

/** The outcome of matching a reply PDU against its request PDU. */
export type ReplyCheck =
  | { kind: "data"; data: Buffer }
  | { kind: "exception"; code: number }
  | { kind: "mismatch"; why: string };

/**
 * Checks a reply PDU against its request: function code (or its exception form), byte count and,
 * for writes, the echoed address and value. Only `data` may be handed to decoding.
 */
export function checkReply(req: Buffer, reply: Buffer): ReplyCheck {
  const fc = req[0]!;
  const rfc = reply[0];
  if (rfc === (fc | 0x80)) {
    if (reply.length !== 2) return { kind: "mismatch", why: `exception reply of ${reply.length} bytes` };
    return { kind: "exception", code: reply[1]! };
  }
  if (rfc !== fc) return { kind: "mismatch", why: `function code ${rfc} for a request with ${fc}` };
  const want = expectedReplyLength(req);
  if (reply.length !== want) return { kind: "mismatch", why: `reply of ${reply.length} bytes, expected ${want}` };
  if (fc >= 1 && fc <= 4) {
    if (reply[1] !== want - 2) return { kind: "mismatch", why: `byte count ${reply[1]}, expected ${want - 2}` };
    return { kind: "data", data: reply.subarray(2) };
  }
  // Single writes echo the request; multiple writes echo address and quantity.
  if (!reply.subarray(1, 5).equals(req.subarray(1, 5))) return { kind: "mismatch", why: "write echo differs from the request" };
  return { kind: "data", data: reply.subarray(1) };
}

/** MBAP header + PDU. */
export function mbapFrame(tid: number, unitId: number, pdu: Buffer): Buffer {
  const b = Buffer.allocUnsafe(7 + pdu.length);
  b.writeUInt16BE(tid, 0);
  b.writeUInt16BE(0, 2);
  b.writeUInt16BE(pdu.length + 1, 4);
  b[6] = unitId;
  pdu.copy(b, 7);
  return b;
}

const CRC_TABLE = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xa001 : c >>> 1;
    t[i] = c;
  }
  return t;
})();

/** Modbus CRC16 (poly 0xA001, init 0xFFFF); sent low byte first. */
export function crc16(buf: Buffer, start = 0, end = buf.length): number {
  let crc = 0xffff;
  for (let i = start; i < end; i++) crc = (crc >>> 8) ^ CRC_TABLE[(crc ^ buf[i]!) & 0xff]!;
  return crc;
}

export function rtuFrame(unitId: number, pdu: Buffer): Buffer {
  const b = Buffer.allocUnsafe(pdu.length + 3);
  b[0] = unitId;
  pdu.copy(b, 1);
  b.writeUInt16LE(crc16(b, 0, pdu.length + 1), pdu.length + 1);
  return b;
}

/**
 * Finds the reply to `req` for `unitId` at the start of `buf` (RTU has no length field, so the
 * expected length comes from the request). Returns the PDU and bytes consumed, `need` when more
 * bytes may complete a frame, or `skip` when the first byte cannot start a valid reply (noise,
 * another unit's or a late reply) so the caller drops one byte and retries.
 */
export function scanRtuReply(buf: Buffer, unitId: number, req: Buffer):
  { kind: "frame"; pdu: Buffer; used: number } | { kind: "need" } | { kind: "skip" } {
  if (buf.length < 2) return { kind: "need" };
  const fc = req[0]!;
  if (buf[0] !== unitId) return { kind: "skip" };
  let len: number;
  if (buf[1] === (fc | 0x80)) len = 5;
  else if (buf[1] === fc) len = 1 + expectedReplyLength(req) + 2;
  else return { kind: "skip" };
  if (buf.length < len) return { kind: "need" };
  if (crc16(buf, 0, len - 2) !== buf.readUInt16LE(len - 2)) return { kind: "skip" };
  return { kind: "frame", pdu: Buffer.from(buf.subarray(1, len - 2)), used: len };
}
