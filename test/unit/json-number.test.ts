import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { NUMBER_ROOM, putNumber } from "../../src/outputs/mqtt/json-number.js";

/**
 * What the json encoder wrote for a number before the digit-by-digit path (and what the oracle,
 * test/oracles/json-encoder.ts, writes): `String(v)`, null for NaN and ±Infinity.
 */
const reference = (v: number): string => (Number.isFinite(v) ? String(v) : "null");

const SENTINEL = 0xee;

/** putNumber's bytes at an offset into a buffer; also checks that nothing past them was written. */
function written(v: number, offset = 3): string {
  const buf = Buffer.alloc(offset + NUMBER_ROOM + 8, SENTINEL);
  const end = putNumber(buf, offset, v);
  expect(buf[end]).toBe(SENTINEL);
  expect(buf.subarray(0, offset).every((b) => b === SENTINEL)).toBe(true);
  return buf.toString("latin1", offset, end);
}

const check = (v: number): void => {
  const got = written(v);
  if (got !== reference(v)) expect.fail(`putNumber(${reference(v)}) wrote ${got}`);
};

describe("putNumber: the bytes of String(v)", () => {
  it("any double (NaN, ±Infinity, -0, subnormals included)", () => {
    fc.assert(fc.property(fc.double(), (v) => check(v)), { numRuns: 5_000 });
  });

  it("values with a few decimals, as sensors send them (the fast path), of any magnitude and sign", () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.integer({ min: -1_000_000, max: 1_000_000 }), fc.maxSafeInteger(), fc.maxSafeInteger().map((i) => -i)),
        fc.integer({ min: 0, max: 9 }),
        (i, d) => check(i / 10 ** d),
      ),
      { numRuns: 5_000 },
    );
  });

  it("float32 readings widened to doubles (Modbus and OPC UA floats)", () => {
    fc.assert(fc.property(fc.float({ noNaN: false }), (v) => check(Math.fround(v))), { numRuns: 3_000 });
  });

  it("sums and products of decimals (values that need all 17 digits)", () => {
    fc.assert(
      fc.property(fc.integer({ min: -99_999, max: 99_999 }), fc.integer({ min: -99_999, max: 99_999 }), fc.integer({ min: 1, max: 6 }), (a, b, d) => {
        check(a / 10 ** d + b / 10 ** d);
        check((a / 10 ** d) * 0.1);
      }),
      { numRuns: 3_000 },
    );
  });

  it("edges: exponent thresholds, 15 and 16 digits, the int32 and safe-integer limits", () => {
    const edges = [
      0, -0, 0.1, 0.2, 0.3, 0.1 + 0.2, 1.005, 2.675, 0.5, -0.5, 12.5, -12.25, 1e-6, -1e-6, 9.99e-7, 1.5e-6, 0.000001, 0.0000015,
      1e-7, 123456.123456, 123456789.123456, 99999999999999.9, 999999999999999.9, 999999999.999999, 1e14 + 0.5, 1e15 + 0.5,
      2 ** 31, 2 ** 31 - 1, -(2 ** 31), 2 ** 31 + 0.5, 2 ** 32 + 0.25, 2 ** 53 - 1, 2 ** 53, 2 ** 53 + 2, 1e21, 1e21 - 65536, 1.7976931348623157e308,
      5e-324, -5e-324, Number.EPSILON, 1 / 3, 2 / 3, Math.PI, -Math.E, 4.35, 0.07, 1.0000001, 100.000001, 23.399999618530273,
      Number.NaN, Infinity, -Infinity,
    ];
    for (const v of edges) check(v);
  });
});
