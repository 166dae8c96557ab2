import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { JournaledSample, Sample } from "../../src/core/sample.js";
import { SampleBatch } from "../../src/core/sample-columns.js";
import { checkFrame, FRAME_HEADER, FrameDecoder, FrameEncoder } from "../../src/journal/frame-codec.js";
import { sampleArb } from "./frame-arbitraries.js";
import { GOLDEN_CASES, GOLDEN_HEX, LARGE, largeFrame } from "./frame-golden.js";

/*
 * The frame format is on disk: journals written by earlier builds must keep reading. Golden bytes
 * (frame-golden.ts) and round trips here; byte for byte against the encoder before the fast paths
 * in frame-codec-oracle.test.ts.
 */

/** One encoder and one decoder for the file, as a journal keeps them: their caches stay warm across tests. */
const encoder = new FrameEncoder();
const decoder = new FrameDecoder();
const encodeFrame = (samples: readonly Sample[], firstPos: number): Buffer => encoder.encode(samples, firstPos);
const decodeFrame = (buf: Buffer, off: number, minPos: number, out: JournaledSample[], limit: number): void => decoder.decode(buf, off, minPos, out, limit);
const decodeFrameRun = (buf: Buffer, off: number, minPos: number, limit: number) => decoder.decodeRun(buf, off, minPos, limit);

/** What the decoder gives back: strings pass through UTF-8, so a lone surrogate comes back as U+FFFD. */
function expected(samples: readonly Sample[], firstPos: number): JournaledSample[] {
  const wf = (s: string): string => Buffer.from(s, "utf8").toString("utf8");
  return samples.map((s, i) => {
    const e: JournaledSample = { ...s, value: typeof s.value === "string" ? wf(s.value) : s.value, pos: firstPos + i };
    if (s.unit !== undefined) e.unit = wf(s.unit);
    if (s.reason !== undefined) e.reason = wf(s.reason);
    return e;
  });
}

function decodeAll(frame: Buffer): JournaledSample[] {
  const check = checkFrame(frame, 0, frame.length);
  expect(check).toMatchObject({ ok: true, header: { size: frame.length } });
  const out: JournaledSample[] = [];
  decodeFrame(frame, 0, 0, out, Number.MAX_SAFE_INTEGER);
  return out;
}

describe("frame codec golden bytes", () => {
  it("covers every case it pins", () => {
    expect(Object.keys(GOLDEN_HEX).sort()).toEqual(GOLDEN_CASES.map((c) => c.name).sort());
  });

  for (const c of GOLDEN_CASES) {
    it(`encodes ${c.name} to the pinned bytes`, () => {
      const hex = GOLDEN_HEX[c.name]!;
      expect(encodeFrame(c.samples, c.firstPos).toString("hex")).toBe(hex);
      // Again with the string cache warm from the first call and from an unrelated frame.
      expect(encodeFrame(c.samples, c.firstPos).toString("hex")).toBe(hex);
      encodeFrame(largeFrame(), 0);
      expect(encodeFrame(c.samples, c.firstPos).toString("hex")).toBe(hex);
    });

    it(`decodes the pinned bytes of ${c.name}`, () => {
      const frame = Buffer.from(GOLDEN_HEX[c.name]!, "hex");
      const header = checkFrame(frame, 0, frame.length);
      expect(header).toEqual({ ok: true, header: { size: frame.length, firstPos: c.firstPos, count: c.samples.length } });
      expect(decodeAll(frame)).toEqual(expected(c.samples, c.firstPos));
    });
  }

  it("encodes a frame larger than the initial 64 KiB scratch to the pinned bytes", () => {
    const samples = largeFrame();
    for (let round = 0; round < 2; round++) {
      const frame = encodeFrame(samples, LARGE.firstPos);
      expect(frame.length).toBe(LARGE.length);
      expect(frame.subarray(0, LARGE.head.length / 2).toString("hex")).toBe(LARGE.head);
      expect(createHash("sha256").update(frame).digest("hex")).toBe(LARGE.sha256);
      expect(decodeAll(frame)).toEqual(expected(samples, LARGE.firstPos));
    }
  });

  it("returns a buffer the caller owns: a later encode does not change it", () => {
    const c = GOLDEN_CASES.find((g) => g.name === "numbers")!;
    const first = encodeFrame(c.samples, c.firstPos);
    encodeFrame(largeFrame(), 1);
    encodeFrame(GOLDEN_CASES.find((g) => g.name === "string values")!.samples, 2);
    expect(first.toString("hex")).toBe(GOLDEN_HEX["numbers"]);
  });

  it("pins the header layout: length, crc, firstPos split at 2^32, count", () => {
    const frame = Buffer.from(GOLDEN_HEX["firstPos above 2^32"]!, "hex");
    expect(frame.readUInt32LE(0)).toBe(frame.length - 8);
    expect(frame.readUInt32LE(8) + frame.readUInt32LE(12) * 2 ** 32).toBe(2 ** 44 + 0xdeadbe);
    expect(frame.readUInt32LE(16)).toBe(1);
    expect(frame.length).toBeGreaterThan(FRAME_HEADER);
  });
});

describe("frame codec round trip", () => {
  it("decodes what it encodes, positions counting from firstPos", () => {
    fc.assert(
      fc.property(fc.array(sampleArb, { maxLength: 60 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER - 100 }), (samples, firstPos) => {
        const frame = encodeFrame(samples, firstPos);
        expect(decodeAll(frame)).toEqual(expected(samples, firstPos));
      }),
      { numRuns: 300 },
    );
  });

  it("decodes only the samples at or after minPos, up to the limit", () => {
    fc.assert(
      fc.property(fc.array(sampleArb, { minLength: 1, maxLength: 30 }), fc.nat(40), fc.integer({ min: 1, max: 40 }), (samples, skip, limit) => {
        const firstPos = 1_000;
        const frame = encodeFrame(samples, firstPos);
        const out: JournaledSample[] = [];
        decodeFrame(frame, 0, firstPos + skip, out, limit);
        expect(out).toEqual(expected(samples, firstPos).slice(skip, skip + limit));
      }),
      { numRuns: 200 },
    );
  });

  it("decodeFrameRun gives the same samples as decodeFrame, as one run of columns, or null for several devices", () => {
    fc.assert(
      fc.property(fc.array(sampleArb, { minLength: 1, maxLength: 30 }), fc.boolean(), fc.nat(40), fc.integer({ min: 1, max: 40 }), (raw, oneDevice, skip, limit) => {
        const samples = oneDevice ? raw.map((s) => ({ ...s, device: "press-1" })) : raw;
        const firstPos = 1_000;
        const frame = encodeFrame(samples, firstPos);
        const want: JournaledSample[] = [];
        decodeFrame(frame, 0, firstPos + skip, want, limit);
        const run = decodeFrameRun(frame, 0, firstPos + skip, limit);
        if (run === null) {
          expect(new Set(want.map((s) => s.device)).size).toBeGreaterThan(1);
          return;
        }
        expect(run.count).toBe(want.length);
        expect(new SampleBatch(run.count > 0 ? [run] : []).toArray()).toEqual(want);
        if (want.length > 0) expect(run.firstPos).toBe(want[0]!.pos);
      }),
      { numRuns: 300 },
    );
  });
});

describe("decodeFrameRun in a row", () => {
  it("frames of one device that repeat, extend, cut or change its tags: every run reads back as decodeFrame's after all were decoded (property)", () => {
    const tag = fc.constantFrom("a", "b", "temp", "state");
    const frameArb = fc.array(fc.tuple(tag, fc.oneof(fc.double(), fc.constantFrom("on", true, null))), { minLength: 1, maxLength: 8 });
    fc.assert(
      fc.property(fc.array(fc.tuple(frameArb, fc.nat(2), fc.nat(3)), { minLength: 1, maxLength: 10 }), (items) => {
        const frames: Buffer[] = [];
        const wants: JournaledSample[][] = [];
        const runs: (ReturnType<typeof decodeFrameRun>)[] = [];
        let prev: [string, Sample["value"]][] | undefined;
        for (const [raw, how, skip] of items) {
          // often the previous frame's tags again (the shared list), or a prefix of them
          const pairs = prev !== undefined && how === 0 ? prev.map(([t], i) => [t, raw[i % raw.length]![1]] as [string, Sample["value"]]) : prev !== undefined && how === 1 ? prev.slice(0, Math.max(1, prev.length - 1)) : raw;
          prev = pairs;
          const samples: Sample[] = pairs.map(([t, v], i) => ({ device: "agv-1", tag: t, value: v, quality: "good", ts: 1_700_000_000_000 + i }));
          const frame = encodeFrame(samples, 100);
          frames.push(frame);
          const want: JournaledSample[] = [];
          decodeFrame(frame, 0, 100 + skip, want, 1_000);
          wants.push(want);
          runs.push(decodeFrameRun(frame, 0, 100 + skip, 1_000));
        }
        for (let i = 0; i < runs.length; i++) {
          const run = runs[i]!;
          expect(run).not.toBeNull();
          expect(new SampleBatch(run!.count > 0 ? [run!] : []).toArray()).toEqual(wants[i]);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe("codec state belongs to one encoder or decoder (one per journal)", () => {
  it("two encoders share no string table: each writes the pinned bytes, interleaved", () => {
    const a = new FrameEncoder();
    const b = new FrameEncoder();
    a.encode(largeFrame(), 0);
    expect(a.stringCount).toBeGreaterThan(1000);
    expect(b.stringCount).toBe(0);
    for (const c of GOLDEN_CASES) {
      expect(a.encode(c.samples, c.firstPos).toString("hex")).toBe(GOLDEN_HEX[c.name]);
      expect(b.encode(c.samples, c.firstPos).toString("hex")).toBe(GOLDEN_HEX[c.name]);
    }
    expect(b.stringCount).toBeLessThan(a.stringCount);
  });

  it("two decoders interleaved give what each gives alone", () => {
    const frames = GOLDEN_CASES.map((c) => Buffer.from(GOLDEN_HEX[c.name]!, "hex"));
    const a = new FrameDecoder();
    const b = new FrameDecoder();
    for (let i = 0; i < frames.length; i++) {
      const fa: JournaledSample[] = [];
      const fb: JournaledSample[] = [];
      a.decode(frames[i]!, 0, 0, fa, Number.MAX_SAFE_INTEGER);
      b.decode(frames[frames.length - 1 - i]!, 0, 0, fb, Number.MAX_SAFE_INTEGER);
      expect(fa).toEqual(expected(GOLDEN_CASES[i]!.samples, GOLDEN_CASES[i]!.firstPos));
      const j = frames.length - 1 - i;
      expect(fb).toEqual(expected(GOLDEN_CASES[j]!.samples, GOLDEN_CASES[j]!.firstPos));
    }
  });

  it("the codec's source files hold no module-level mutable state", () => {
    const dir = join(import.meta.dirname, "../../src/journal");
    const files = readdirSync(dir).filter((f) => /^frame-(codec|encoder|decoder|strings|format)\.ts$/.test(f));
    expect(files).toHaveLength(5);
    for (const f of files) {
      const top = readFileSync(join(dir, f), "utf8").split("\n").filter((l) => /^(export )?(let|var) /.test(l));
      expect(top, f).toEqual([]);
    }
  });
});
