import { describe, it, expect } from "vitest";
import { checkReply, crc16, exceptionText, mbapFrame, readPdu, rtuFrame, scanRtuReply, writeRegistersPdu } from "../../drivers/modbus/frame.js";

describe("frames", () => {
  it("CRC16 matches the Modbus reference example (01 03 00 00 00 0A → C5 CD)", () => {
    expect([...rtuFrame(1, readPdu(3, 0, 10))]).toEqual([0x01, 0x03, 0x00, 0x00, 0x00, 0x0a, 0xc5, 0xcd]);
    expect(crc16(Buffer.from([0x01, 0x03, 0x00, 0x00, 0x00, 0x0a, 0xc5, 0xcd]))).toBe(0); // residue of a valid frame
  });

  it("MBAP header carries a 16-bit transaction id, protocol 0 and the length", () => {
    expect([...mbapFrame(0xbeef, 7, readPdu(4, 1, 2))]).toEqual([0xbe, 0xef, 0, 0, 0, 6, 7, 4, 0, 1, 0, 2]);
  });

  it("checkReply: data, exception, and every kind of mismatch", () => {
    const req = readPdu(3, 0, 2);
    expect(checkReply(req, Buffer.from([3, 4, 0, 1, 0, 2]))).toMatchObject({ kind: "data" });
    expect(checkReply(req, Buffer.from([0x83, 2]))).toEqual({ kind: "exception", code: 2 });
    expect(checkReply(req, Buffer.from([4, 4, 0, 1, 0, 2]))).toMatchObject({ kind: "mismatch", why: /function code/ });
    expect(checkReply(req, Buffer.from([3, 2, 0, 1]))).toMatchObject({ kind: "mismatch", why: /bytes/ });
    expect(checkReply(req, Buffer.from([3, 6, 0, 1, 0, 2]))).toMatchObject({ kind: "mismatch", why: /byte count/ });
    const coils = readPdu(1, 0, 10);
    expect(checkReply(coils, Buffer.from([1, 2, 0xff, 0x03]))).toMatchObject({ kind: "data" });
    const w = writeRegistersPdu(5, Buffer.alloc(4));
    expect(checkReply(w, Buffer.from([16, 0, 5, 0, 2]))).toMatchObject({ kind: "data" });
    expect(checkReply(w, Buffer.from([16, 0, 6, 0, 2]))).toMatchObject({ kind: "mismatch", why: /echo/ });
  });

  it("exception names", () => {
    expect(exceptionText(2)).toBe("modbus exception 2: illegal data address");
    expect(exceptionText(11)).toMatch(/gateway target device failed to respond/);
    expect(exceptionText(99)).toMatch(/unknown/);
  });

  it("scanRtuReply: finds the frame, waits for more, skips noise, other units and bad CRCs", () => {
    const req = readPdu(3, 0, 1);
    const good = rtuFrame(5, Buffer.from([3, 2, 0x12, 0x34]));
    expect(scanRtuReply(good, 5, req)).toMatchObject({ kind: "frame", used: 7 });
    expect(scanRtuReply(good.subarray(0, 4), 5, req)).toEqual({ kind: "need" });
    expect(scanRtuReply(good, 6, req)).toEqual({ kind: "skip" });
    const bad = Buffer.from(good); bad[3] = bad[3]! ^ 1;
    expect(scanRtuReply(bad, 5, req)).toEqual({ kind: "skip" });
    expect(scanRtuReply(rtuFrame(5, Buffer.from([0x83, 2])), 5, req)).toMatchObject({ kind: "frame", used: 5 });
  });
});
