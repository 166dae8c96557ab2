import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MAX_DIGITS, NumSet, parsed, parseMsgId } from "../../src/ingest/dedup-ids.js";

const SEPS = ["-", "_", ".", ":", "/"];

/** The msgId a family (prefix, shape) and a value stand for: the inverse the dedup relies on. */
function unsplit(prefix: string, shape: number, value: number): string {
  const counts: number[] = [];
  const seps: string[] = [];
  for (let g = 1; ; g++) {
    const n = (shape >>> (7 * (g - 1))) & 15;
    if (n === 0) break;
    counts.push(n);
    const rest = shape >>> (7 * g);
    if (rest === 0) break;
    seps.push(SEPS[(shape >>> (7 * g - 3)) & 7]!);
  }
  const total = counts.reduce((a, b) => a + b, 0);
  let digits = String(value).padStart(total, "0");
  expect(digits.length, "value fits the shape").toBe(total);
  let tail = "";
  for (let g = 0; g < counts.length; g++) {
    tail = digits.slice(digits.length - counts[g]!) + (g > 0 ? seps[g - 1]! : "") + tail;
    digits = digits.slice(0, digits.length - counts[g]!);
  }
  return prefix + tail;
}

function keyOf(id: string): string | undefined {
  if (!parseMsgId(id)) return undefined;
  return `${id.slice(0, parsed.prefixLen)}\n${parsed.shape}\n${parsed.value}`;
}

const idArb = fc.oneof(
  fc.stringMatching(/^[a-z0-9\-_.:/]{0,24}$/),
  // digit groups and separators, leading zeros and long groups more often than at random
  fc.tuple(fc.constantFrom("", "dev-17-", "x", "d", "-", "9"), fc.array(fc.tuple(fc.stringMatching(/^[0-9]{1,16}$/), fc.constantFrom(...SEPS, "")), { minLength: 1, maxLength: 6 }))
    .map(([p, gs]) => p + gs.map(([d, s], i) => (i === 0 ? d : s + d)).join("")),
);

describe("msgId split (dedup families)", () => {
  it("takes digit groups joined by separators, exactly reversible, ≤ 15 digits", () => {
    fc.assert(fc.property(idArb, (id) => {
      const numeric = parseMsgId(id);
      expect(numeric).toBe(/[0-9]$/.test(id));
      if (!numeric) return;
      expect(parsed.digits).toBeGreaterThan(0);
      expect(parsed.digits).toBeLessThanOrEqual(MAX_DIGITS);
      expect(Number.isSafeInteger(parsed.value)).toBe(true);
      expect(unsplit(id.slice(0, parsed.prefixLen), parsed.shape, parsed.value)).toBe(id);
    }), { numRuns: 2000 });
  });

  it("never gives two msgIds the same (prefix, shape, value)", () => {
    fc.assert(fc.property(idArb, idArb, (a, b) => {
      if (a !== b) expect(keyOf(a) === undefined || keyOf(a) !== keyOf(b)).toBe(true);
    }), { numRuns: 2000 });
    const same = ["12-34", "123-4", "1-234", "1234", "12_34", "12.34", "0012-34", "012-34", "12-034", "x12-34"];
    expect(new Set(same.map(keyOf)).size).toBe(same.length);
  });

  it("splits the usual shapes as expected", () => {
    const cases: [string, string, number, number][] = [
      ["dev-17-123-4", "dev-", 171234, 3],
      ["d5-123-4", "d", 51234, 3],
      ["agv-17-000123", "agv-", 17000123, 2],
      ["2026-12-02T06:00:00.123", "2026-12-02T", 6000_0123, 4],
      ["12345678901234-5", "", 123456789012345, 2],
      // a 16th digit: the leftmost group is cut, its rest stays in the prefix
      ["123456789012345-6", "1", 234567890123456, 2],
      ["1234567890123456789", "1234", 567890123456789, 1],
      ["a-1-2-3-4-5", "a-1-", 2345, 4],
      ["x-", "", 0, 0],
    ];
    for (const [id, prefix, value, groups] of cases) {
      if (groups === 0) { expect(parseMsgId(id), id).toBe(false); continue; }
      expect(parseMsgId(id), id).toBe(true);
      let n = 0;
      for (let g = 0; g < 4; g++) if (((parsed.shape >>> (7 * g)) & 15) !== 0) n++;
      expect([id.slice(0, parsed.prefixLen), parsed.value, n], id).toEqual([prefix, value, groups]);
    }
  });
});

describe("NumSet", () => {
  it("answers like a Set through growth, clear, and narrow → wide (values near 2^53, clustered or spread)", () => {
    const big = Number.MAX_SAFE_INTEGER - 1;
    const valueArb = fc.oneof(fc.nat({ max: 50 }), fc.nat({ max: 4_294_967_294 }), fc.integer({ min: big - 3000, max: big }), fc.integer({ min: 0, max: big }));
    fc.assert(fc.property(fc.array(fc.array(valueArb, { maxLength: 60 }), { minLength: 1, maxLength: 3 }), (rounds) => {
      const s = new NumSet();
      for (const vs of rounds) {
        const m = new Set<number>();
        for (const v of vs) {
          expect(s.has(v)).toBe(m.has(v));
          expect(s.add(v)).toBe(!m.has(v));
          m.add(v);
          expect(s.n).toBe(m.size);
        }
        for (const v of m) expect(s.has(v)).toBe(true);
        for (const v of [0, 1, big, big - 1, 2 ** 31, 2 ** 32 - 1]) expect(s.has(v)).toBe(m.has(v));
        s.clear(); // reused, as a generation's set is
        for (const v of m) expect(s.has(v)).toBe(false);
      }
    }), { numRuns: 300 });
    const s = new NumSet();
    for (let i = 0; i < 100; i++) s.add(9_999_000_000 + i);
    expect(s.isWide).toBe(false); // agv-9999-000123: large values, close together
    s.add(1);
    expect(s.isWide).toBe(true);
    for (let i = 0; i < 100; i++) expect(s.has(9_999_000_000 + i)).toBe(true);
    expect(s.has(1) && !s.has(2)).toBe(true);
    // the narrow range's edges: first value ± 2^31
    for (const d of [-(2 ** 31), 2 ** 31 - 2, 2 ** 31 - 1, 2 ** 31]) {
      const e = new NumSet();
      const base = 2 ** 40;
      e.add(base);
      expect(e.add(base + d)).toBe(true);
      expect([e.has(base), e.has(base + d), e.has(base + d + 1), e.n]).toEqual([true, true, false, 2]);
      expect(e.isWide).toBe(d >= 2 ** 31 - 1);
    }
  });
});
