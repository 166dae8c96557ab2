import { describe, it, expect } from "vitest";
import fc from "fast-check";
import { decodeBit, decodeRegisters, encodeCoil, encodeRegisters, tagWidth, type CodecTag } from "../../drivers/modbus/decode.js";
import { isFloorgateError } from "../../src/core/errors.js";
import { ORDERS, VECTORS, wire } from "./vectors.js";

const tag = (t: Partial<CodecTag> & Pick<CodecTag, "type">): CodecTag => ({ name: "t", area: "holding", byteOrder: "ABCD", ...t });

describe("decodeRegisters: every type in every byte order", () => {
  for (const v of VECTORS) {
    for (const order of ORDERS) {
      it(`${v.type} ${order} → ${v.value}`, () => {
        // pad in front so the offset path is exercised too
        const regs = Buffer.from([0xaa, 0xbb, ...wire(v.be, order)]);
        const d = decodeRegisters(tag({ type: v.type, byteOrder: order }), regs, 1);
        expect(d.value).toBe(v.value);
        expect(d.quality).toBe(v.quality ?? "good");
        if (v.quality === "uncertain") expect(d.reason).toMatch(/beyond 2\^53/);
      });
    }
  }

  it("strings: ASCII, trailing NULs and spaces trimmed, BADC swaps bytes", () => {
    const t = tag({ type: "string", length: 4 });
    expect(decodeRegisters(t, Buffer.from("PRESS-1 \0\0", "latin1").subarray(0, 8), 0).value).toBe("PRESS-1");
    expect(decodeRegisters({ ...t, byteOrder: "BADC" }, Buffer.from("RPSE-S 1", "latin1"), 0).value).toBe("PRESS-1");
    expect(decodeRegisters(t, Buffer.from("AB\0\0\0\0\0\0", "latin1"), 0).value).toBe("AB");
  });

  it("bool: whole register or one bit", () => {
    const regs = Buffer.from([0x80, 0x04]);
    expect(decodeRegisters(tag({ type: "bool" }), regs, 0).value).toBe(true);
    expect(decodeRegisters(tag({ type: "bool", bit: 2 }), regs, 0).value).toBe(true);
    expect(decodeRegisters(tag({ type: "bool", bit: 3 }), regs, 0).value).toBe(false);
    expect(decodeRegisters(tag({ type: "bool", bit: 15 }), regs, 0).value).toBe(true);
    expect(decodeRegisters(tag({ type: "bool" }), Buffer.from([0, 0]), 0).value).toBe(false);
  });

  it("coil/discrete bits are LSB first", () => {
    const bits = Buffer.from([0b0000_0101, 0b1000_0000]);
    expect([0, 1, 2, 15].map((i) => decodeBit(bits, i).value)).toEqual([true, false, true, true]);
    expect(decodeBit(bits, 16).quality).toBe("bad");
  });

  it("NaN and infinity floats are bad, not numbers", () => {
    expect(decodeRegisters(tag({ type: "float32" }), Buffer.from([0x7f, 0xc0, 0, 0]), 0)).toMatchObject({ value: null, quality: "bad", reason: "float is NaN" });
    expect(decodeRegisters(tag({ type: "float32" }), Buffer.from([0x7f, 0x80, 0, 0]), 0).quality).toBe("bad");
  });

  it("a short reply is bad, never garbage", () => {
    expect(decodeRegisters(tag({ type: "float64" }), Buffer.alloc(6), 0)).toMatchObject({ quality: "bad" });
  });

  it("widths", () => {
    expect(tagWidth(tag({ type: "float64" }))).toBe(4);
    expect(tagWidth(tag({ type: "string", length: 10 }))).toBe(10);
    expect(tagWidth({ area: "coil", type: "bool" })).toBe(1);
  });
});

describe("encodeRegisters", () => {
  for (const v of VECTORS) {
    for (const order of ORDERS) {
      it(`${v.type} ${order} encodes ${v.value} to the known wire bytes`, () => {
        expect([...encodeRegisters(tag({ type: v.type, byteOrder: order }), v.value)]).toEqual(wire(v.be, order));
      });
    }
  }

  it("round-trips random values for every numeric type and order", () => {
    const gens = {
      int16: fc.integer({ min: -32768, max: 32767 }), uint16: fc.integer({ min: 0, max: 65535 }),
      int32: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), uint32: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
      int64: fc.maxSafeInteger(), uint64: fc.maxSafeNat(),
      float64: fc.double({ noNaN: true, noDefaultInfinity: true }),
      float32: fc.float({ noNaN: true, noDefaultInfinity: true }).map((f) => Math.fround(f)),
    } as const;
    for (const [type, gen] of Object.entries(gens)) {
      fc.assert(fc.property(gen, fc.constantFrom(...ORDERS), (value, byteOrder) => {
        const t = tag({ type: type as CodecTag["type"], byteOrder });
        const d = decodeRegisters(t, encodeRegisters(t, value), 0);
        expect(Object.is(d.value, value) || d.value === value).toBe(true);
      }), { numRuns: 200 });
    }
  });

  it("refuses out-of-range and wrong-typed values with WRITE_REFUSED", () => {
    const cases: [CodecTag, unknown][] = [
      [tag({ type: "int16" }), 40000], [tag({ type: "uint16" }), -1], [tag({ type: "int32" }), 1.5],
      [tag({ type: "float32" }), "x"], [tag({ type: "string", length: 1 }), "abc"], [tag({ type: "bool", bit: 3 }), true],
      [tag({ type: "uint64" }), "-1"],
    ];
    for (const [t, v] of cases) {
      let err: unknown;
      try { encodeRegisters(t, v as never); } catch (e) { err = e; }
      expect(isFloorgateError(err, "WRITE_REFUSED"), `${t.type} ${String(v)}`).toBe(true);
    }
    expect(() => encodeCoil(tag({ type: "bool", area: "coil" }), 2)).toThrow(/coil takes/);
    expect(encodeCoil(tag({ type: "bool", area: "coil" }), 1)).toBe(true);
  });

  it("64-bit integers beyond 2^53 can be written exactly as decimal strings", () => {
    const t = tag({ type: "uint64", byteOrder: "DCBA" });
    expect(decodeRegisters(t, encodeRegisters(t, "18446744073709551615"), 0).value).toBe("18446744073709551615");
  });
});
