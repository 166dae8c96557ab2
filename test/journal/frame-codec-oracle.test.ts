import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Sample, SampleValue } from "../../src/core/sample.js";
import { FrameEncoder } from "../../src/journal/frame-codec.js";
import { baselineEncodeFrame, baselineStringCount } from "../oracles/frame-encoder.js";
import { text } from "./frame-arbitraries.js";

/** One encoder for the file, as a journal keeps one: the oracle's table is module state, so is this one's use. */
const encoder = new FrameEncoder();
const encodeFrame = (samples: readonly Sample[], firstPos: number): Buffer => encoder.encode(samples, firstPos);
const encoderStringCount = (): number => encoder.stringCount;

/*
 * Against the encoder as it was before the fast paths (kept in test/oracles/frame-encoder.ts): the same
 * sequence of frames must give the same bytes frame by frame. Sequences, not single frames, since
 * the new encoder caches per string and per device across frames.
 */
const STR_SLOTS_MAX = 100_000;
let freshNo = 0;

function freshFrame(n: number): Sample[] {
  const samples: Sample[] = [];
  for (let i = 0; i < n; i++) samples.push({ device: "filler", tag: `fresh-${freshNo++}`, value: i, quality: "good", ts: 1 });
  return samples;
}

/**
 * Brings both string tables to the same content, which decides when they clear: each is filled
 * to the cap, one shared frame of new strings clears both, and then both get the same strings up to
 * the cap again (after `warm`, frames whose strings must be known when the cap is reached), so the
 * next new string clears both. From then on they stay in step as long as
 * every encode goes to both.
 */
function lockstep(warm: readonly (readonly Sample[])[] = []): void {
  const fill = (encode: (samples: readonly Sample[], firstPos: number) => Buffer, count: () => number): void => {
    while (count() < STR_SLOTS_MAX) encode(freshFrame(Math.min(5_000, STR_SLOTS_MAX - count())), 0);
  };
  fill(encodeFrame, encoderStringCount);
  fill(baselineEncodeFrame, baselineStringCount);
  sameBytes([freshFrame(1)]);
  expect(encoderStringCount()).toBe(1);
  expect(baselineStringCount()).toBe(1);
  sameBytes(warm);
  while (encoderStringCount() < STR_SLOTS_MAX) sameBytes([freshFrame(Math.min(5_000, STR_SLOTS_MAX - encoderStringCount()))]);
  expect(encoderStringCount()).toBe(STR_SLOTS_MAX);
  expect(baselineStringCount()).toBe(STR_SLOTS_MAX);
}

function sameBytes(frames: readonly (readonly Sample[])[], firstPos = 0): void {
  let pos = firstPos;
  for (const samples of frames) {
    const want = baselineEncodeFrame(samples, pos).toString("hex");
    expect(encodeFrame(samples, pos).toString("hex")).toBe(want);
    pos += samples.length;
  }
}

const pooled = (pool: readonly string[]): fc.Arbitrary<string> => fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...pool) }, { weight: 1, arbitrary: text });
const DEVICES = ["d123", "press-1", "agv-07", "r1"];
const TAGS = Array.from({ length: 12 }, (_, i) => `r${i}`).concat(["line1.station3.state_37", "Temperatur_Öl", "rpm"]);
const UNITS = ["rpm", "°C", "bar", "kW", "mm/s"];
const STATES = ["RUNNING", "IDLE", "Störung", "🔥 hot", "x".repeat(300)];

const pooledSample: fc.Arbitrary<Sample> = fc.record(
  {
    device: pooled(DEVICES),
    tag: pooled(TAGS),
    value: fc.oneof(fc.double(), fc.integer(), fc.boolean(), fc.constant(null), pooled(STATES), fc.string({ unit: "binary", maxLength: 3000 })),
    quality: fc.constantFrom("good", "uncertain", "bad"),
    ts: fc.oneof(fc.constant(0), fc.constant(-0), fc.integer({ min: 0, max: 2 ** 45 }), fc.double()),
    unit: pooled(UNITS),
    reason: pooled(["timeout", "modbus exception 2: illegal data address"]),
  },
  { requiredKeys: ["device", "tag", "value", "quality", "ts"] },
);

/** A device's poll repeated over frames, the shape the per-device caches are built for, with changes. */
const pollSequence: fc.Arbitrary<Sample[][]> = fc
  .record({
    template: fc.array(pooledSample, { minLength: 1, maxLength: 40 }),
    frames: fc.array(fc.record({ drop: fc.nat(5), swap: fc.nat(40), value: fc.oneof(fc.double(), pooled(STATES)) }), { minLength: 1, maxLength: 8 }),
  })
  .map(({ template, frames }) =>
    frames.map(({ drop, swap, value }) => {
      const poll = template.slice(drop === 0 ? 1 : 0).map((s, i) => ({ ...s, value: i === swap ? value : s.value }));
      if (poll.length > 2 && swap % 3 === 0) [poll[0], poll[1]] = [poll[1]!, poll[0]!];
      return poll;
    }),
  );

describe("frame codec against the encoder before the fast paths", () => {
  it("writes the same bytes for random sequences of frames", () => {
    lockstep();
    fc.assert(
      fc.property(fc.array(fc.array(pooledSample, { maxLength: 50 }), { minLength: 1, maxLength: 6 }), fc.nat(2 ** 40), (frames, firstPos) => {
        sameBytes(frames, firstPos);
      }),
      { numRuns: 300 },
    );
  });

  it("writes the same bytes for polls repeated with changes", () => {
    lockstep();
    fc.assert(
      fc.property(fc.array(pollSequence, { minLength: 1, maxLength: 3 }), (sequences) => {
        // interleave the devices' polls frame by frame, as concurrent pollers append
        const frames: Sample[][] = [];
        for (let f = 0; f < 8; f++) for (const seq of sequences) if (seq[f]) frames.push(seq[f]!);
        sameBytes(frames);
      }),
      { numRuns: 200 },
    );
  });

  it("writes the same bytes across a frame that grows past its chunk", () => {
    lockstep();
    const frames: Sample[][] = [];
    for (let f = 0; f < 40; f++) {
      const n = 50 + ((f * 37) % 400);
      frames.push(Array.from({ length: n }, (_, i): Sample => ({ device: `dev-${i % 3}`, tag: `t${i}`, value: i % 5 === 0 ? "é".repeat((f * i) % 700) : i, quality: "good", ts: f })));
    }
    // Samples of about 43 bytes, all short new strings, against the 32 per sample a chunk is sized for:
    // the chunk runs out inside the short-string paths, not only in the long-string one.
    const dense = Array.from({ length: 4000 }, (_, i): Sample => {
      const id = i.toString(36).padStart(3, "0") + "_".repeat(i % 4);
      return { device: `d${id}`, tag: `t${id}`, value: i, quality: "bad", ts: i, unit: `u${id}`, reason: `x${id}` };
    });
    for (let skip = 0; skip < 40; skip += 3) sameBytes([dense.slice(0, skip), dense.slice(skip)]);
    sameBytes(frames);
  });

  it("writes the same bytes while per-device caches outgrow their budget and are dropped", () => {
    lockstep();
    // 260 devices of 4,096 tags: past the million entries the per-device caches may hold in total.
    const tags = Array.from({ length: 4096 }, (_, i) => `tag-${i}`);
    const poll = (d: number, round: number): Sample[] =>
      tags.map((tag, i) => ({ device: `bulk-${d}`, tag, value: i === d ? "Störung" : round * i, quality: "good", ts: round, unit: i % 2 ? "°C" : "rpm" }));
    let pos = 0;
    for (let round = 0; round < 2; round++) {
      for (let d = 0; d < 260; d += round * 3 + 1) {
        const samples = poll(d, round);
        expect(encodeFrame(samples, pos).equals(baselineEncodeFrame(samples, pos))).toBe(true);
        pos += samples.length;
      }
    }
  });

  it("writes the same bytes when the string table is cleared in the middle of a frame", () => {
    const UNIT_AT = ["rpm", "°C", "bar", "kW", "mm/s", "rpm", "bar"];
    const poll = (tags: string[], values: SampleValue[]): Sample[] =>
      values.map((value, i) => ({ device: "sync", tag: tags[i]!, value, quality: "good", ts: 7, unit: UNIT_AT[i]! }));
    const TAG_AT = ["r0", "r1", "r2", "r3", "r4", "r5", "r6"];
    const VALUES: SampleValue[] = [1, "RUNNING", 3, 4, "RUNNING", 6, "IDLE"];
    // Warm frames fill the per-device caches: position 4 holds "RUNNING", position 5 the unit "rpm".
    const warm = poll(TAG_AT, VALUES);
    // The first new string clears both tables; strings written before it in the same frame are then
    // written anew, not referenced, in the rest of that sample too:
    lockstep([warm, warm]);
    // ...cleared at a tag: the value at that position ("RUNNING", written at position 1) is new again,
    const freshTag = TAG_AT.map((t, i) => (i === 4 ? `fresh-${freshNo++}` : t));
    sameBytes([poll(freshTag, VALUES), warm]);
    expect(encoderStringCount()).toBeLessThan(100);
    lockstep([warm, warm]);
    // ...cleared at a value: the unit at that position ("rpm", written at position 0) is new again.
    const freshValue = VALUES.map((v, i) => (i === 5 ? `fresh-${freshNo++}` : v));
    sameBytes([poll(TAG_AT, freshValue), warm, poll(TAG_AT, freshValue)]);
    expect(encoderStringCount()).toBeLessThan(100);
    expect(encoderStringCount()).toBe(baselineStringCount());
  });

  // The plain path (one device, numbers only: polls and pushes) writes a string already in the
  // frame's table as a one-byte reference inline, up to table index 63; from 64 on a reference
  // takes two bytes. A push body repeats its tags once per message.
  it("writes the same bytes for numbers-only frames of one device that repeat more than 64 strings", () => {
    lockstep();
    const TAGS_N = 150;
    const body = (ts: number, shift: number): Sample[] => {
      const out: Sample[] = [];
      for (let m = 0; m < 3; m++) {
        for (let i = 0; i < TAGS_N; i++) out.push({ device: "agv-1", tag: `v${(i + shift) % TAGS_N}`, value: i * 0.5 - m, quality: m === 2 ? "uncertain" : "good", ts: ts + m });
      }
      return out;
    };
    sameBytes([body(1, 0), body(2, 0), body(3, 7), body(4, 0)]);
    // ...and when the table is cleared in the middle of such a frame (its first new string)
    lockstep([body(1, 0)]);
    const withFresh = body(5, 0);
    withFresh[200] = { ...withFresh[200]!, tag: `fresh-${freshNo++}` };
    sameBytes([withFresh, body(6, 0)]);
    expect(encoderStringCount()).toBe(baselineStringCount());
  });
});
