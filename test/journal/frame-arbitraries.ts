import fc from "fast-check";
import type { Sample } from "../../src/core/sample.js";

/** Strings of every kind the codec meets: short, binary (lone surrogates), multi-byte, long. */
export const text = fc.oneof(
  fc.string({ maxLength: 8 }),
  fc.string({ unit: "binary", maxLength: 80 }),
  fc.constantFrom("rpm", "°C", "r1", "d123", "🔥", "x".repeat(70)),
);

export const sampleArb: fc.Arbitrary<Sample> = fc.record(
  {
    device: fc.oneof(fc.constantFrom("d123", "press-1", "r1"), fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/)),
    tag: fc.oneof(fc.constantFrom("r0", "r1", "r2", "rpm"), fc.stringMatching(/^[A-Za-z0-9_.-]{1,128}$/)),
    value: fc.oneof(fc.double(), fc.integer(), fc.boolean(), fc.constant(null), text),
    quality: fc.constantFrom("good", "uncertain", "bad"),
    ts: fc.oneof(fc.integer({ min: 0, max: 2 ** 45 }), fc.double({ noNaN: true })),
    unit: text,
    reason: text,
  },
  { requiredKeys: ["device", "tag", "value", "quality", "ts"] },
);
