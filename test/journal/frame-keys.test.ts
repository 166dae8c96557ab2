import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { JournaledSample, Sample } from "../../src/core/sample.js";
import { checkFrame, decodeFrame, decodeFrameRun, encodeFrame, readHeader } from "../../src/journal/frame-codec.js";
import { FrameEncoder } from "../../src/journal/frame-encoder.js";
import { readFrameKeys, withKeys } from "../../src/journal/frame-keys.js";

const sampleArb: fc.Arbitrary<Sample> = fc.record({
  device: fc.constantFrom("agv-1", "agv-2"),
  tag: fc.stringMatching(/^[a-z]{1,8}$/),
  value: fc.oneof(fc.double({ noNaN: true }), fc.boolean(), fc.constant(null), fc.string({ maxLength: 10 })),
  quality: fc.constantFrom("good" as const, "bad" as const),
  ts: fc.integer({ min: 0, max: 2 ** 45 }),
});

describe("idempotency keys in a frame's trailer", () => {
  it("leave the samples exactly as without keys, and read back exactly (any keys, any samples)", () => {
    fc.assert(
      fc.property(fc.array(sampleArb, { minLength: 1, maxLength: 20 }), fc.array(fc.string({ maxLength: 40 }), { maxLength: 30 }), fc.integer({ min: 1, max: 2 ** 40 }), (samples, keys, pos) => {
        const plain = Buffer.from(encodeFrame(samples, pos));
        const keyed = withKeys(Buffer.from(encodeFrame(samples, pos)), keys, 1_750_000_000_123);
        const check = checkFrame(keyed, 0, keyed.length);
        expect(check.ok).toBe(true);
        expect(readHeader(keyed, 0)).toMatchObject({ firstPos: pos, count: samples.length, size: keyed.length });
        const a: JournaledSample[] = [];
        const b: JournaledSample[] = [];
        decodeFrame(plain, 0, 0, a, 1e9);
        decodeFrame(keyed, 0, 0, b, 1e9);
        expect(b).toEqual(a);
        const ra = decodeFrameRun(plain, 0, 0, 1e9);
        const rb = decodeFrameRun(keyed, 0, 0, 1e9);
        expect(rb === null ? null : rb.cols.toSamples()).toEqual(ra === null ? null : ra.cols.toSamples());
        expect(readFrameKeys(keyed, 0)).toEqual({ at: 1_750_000_000_123, keys });
        expect(readFrameKeys(plain, 0)).toBeNull();
      }),
      { numRuns: 300 },
    );
  });

  it("encoded in place by the encoder are byte for byte what withKeys adds, frame after frame (shared string table, chunk growth)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.array(sampleArb, { minLength: 1, maxLength: 20 }), fc.array(fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: "binary", maxLength: 40 })), { maxLength: 30 })), { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 1, max: 2 ** 40 }),
        (frames, pos) => {
          const plain = new FrameEncoder();
          const inPlace = new FrameEncoder();
          for (const [samples, keys] of frames) {
            const bare = Buffer.from(plain.encode(samples, pos));
            const got = inPlace.encode(samples, pos, keys, 1_750_000_000_123);
            // no keys: no trailer at all (the journal appends such a frame as a plain one)
            const want = keys.length > 0 ? withKeys(bare, keys, 1_750_000_000_123) : bare;
            expect(got.toString("hex")).toBe(want.toString("hex"));
            if (keys.length > 0) expect(readFrameKeys(got, 0)).toEqual({ at: 1_750_000_000_123, keys });
            pos += samples.length;
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it("with a key prefix, are byte for byte the joined keys (prefix + key), ASCII or not", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.array(sampleArb, { minLength: 1, maxLength: 10 }), fc.oneof(fc.string({ maxLength: 20 }), fc.string({ unit: "binary", maxLength: 20 })), fc.array(fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: "binary", maxLength: 40 })), { minLength: 1, maxLength: 30 })), { minLength: 1, maxLength: 6 }),
        fc.integer({ min: 1, max: 2 ** 40 }),
        (frames, pos) => {
          const joined = new FrameEncoder();
          const prefixed = new FrameEncoder();
          for (const [samples, prefix, keys] of frames) {
            const want = joined.encode(samples, pos, keys.map((k) => prefix + k), 1_750_000_000_123).toString("hex");
            expect(prefixed.encode(samples, pos, keys, 1_750_000_000_123, prefix).toString("hex")).toBe(want);
            pos += samples.length;
          }
        },
      ),
      { numRuns: 200 },
    );
    // the 65,535-byte limit counts the prefix
    const s: Sample = { device: "agv-1", tag: "x", value: 1, quality: "good", ts: 5 };
    expect(() => new FrameEncoder().encode([s], 1, ["k".repeat(40_000)], 1, "p".repeat(30_000))).toThrow(RangeError);
  });

  it("a key over 65,535 bytes is refused by the encoder as by withKeys, and the encoder goes on", () => {
    const enc = new FrameEncoder();
    const s: Sample = { device: "agv-1", tag: "x", value: 1, quality: "good", ts: 5 };
    expect(() => enc.encode([s], 1, ["k".repeat(70_000)], 1)).toThrow(RangeError);
    expect(() => withKeys(Buffer.from(encodeFrame([s], 1)), ["k".repeat(70_000)], 1)).toThrow(RangeError);
    const again = enc.encode([s], 1, ["agv-1\nm-1"], 1);
    expect(checkFrame(again, 0, again.length).ok).toBe(true);
    expect(readFrameKeys(again, 0)?.keys).toEqual(["agv-1\nm-1"]);
  });

  it("a flipped byte anywhere in the trailer fails the CRC", () => {
    const keyed = withKeys(Buffer.from(encodeFrame([{ device: "agv-1", tag: "x", value: 1, quality: "good", ts: 5 }], 7)), ["agv-1\nm-1"], 42);
    for (let i = keyed.length - 20; i < keyed.length; i++) {
      const bad = Buffer.from(keyed);
      bad[i] = bad[i]! ^ 0xff;
      expect(checkFrame(bad, 0, bad.length).ok).toBe(false);
    }
  });
});

describe("recentKeys after a reopen", () => {
  it("lists the keys of appends within the window, in their frames, once; older ones are left out", async () => {
    const { mkdtemp, rm } = await import("node:fs/promises");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const { openJournal } = await import("../../src/journal/segment-journal.js");
    const dir = await mkdtemp(join(tmpdir(), "fg-keys-"));
    const opts = { dir, maxBytes: 1 << 24, segmentBytes: 512, overflow: "reject" as const, fsync: "batch" as const, fsyncIntervalMs: 0, outputs: ["o"] };
    const j = await openJournal(opts);
    const s = (v: number): Sample => ({ device: "agv-1", tag: "x", value: v, quality: "good", ts: v });
    // even appends give whole keys, odd ones a prefix and the msgIds (stored joined, read back joined)
    for (let i = 0; i < 40; i++) await j.append([s(i), s(i + 1000)], i % 2 === 0 ? { keys: [`agv-1\nm${i}`] } : { keys: [`m${i}`], keyPrefix: "agv-1\n" });
    await j.close();
    const k = await openJournal(opts);
    const keys = k.recentKeys().flatMap((f) => f.keys);
    expect(keys).toEqual(Array.from({ length: 40 }, (_, i) => `agv-1\nm${i}`));
    expect(k.recentKeys()).toEqual([]); // taken once
    expect((await k.read(0, 1000)).length).toBe(80);
    await k.close();
    await new Promise((r) => setTimeout(r, 30));
    const old = await openJournal({ ...opts, keyWindowMs: 10 });
    expect(old.recentKeys()).toEqual([]);
    await old.close();
    await rm(dir, { recursive: true, force: true });
  });
});
