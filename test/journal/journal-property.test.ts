import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { isFloorgateError } from "../../src/core/errors.js";
import type { Sample } from "../../src/core/sample.js";
import { inspectJournal } from "../../src/journal/inspect.js";
import type { JournalStats } from "../../src/journal/journal.js";
import { openJournal } from "../../src/journal/segment-journal.js";
import type { SegmentJournal, SegmentJournalOptions } from "../../src/journal/segment-journal.js";

const OUTPUTS = ["a", "b"] as const;
type OutputName = (typeof OUTPUTS)[number];

type Cmd =
  | { op: "append"; samples: Sample[] }
  | { op: "read"; after: number; max: number }
  | { op: "commit"; out: OutputName; frac: number }
  | { op: "reopen" };

const sampleArb: fc.Arbitrary<Sample> = fc.record(
  {
    device: fc.constantFrom("press-1", "agv-07", "robot_2"),
    tag: fc.stringMatching(/^[a-z_.]{1,12}$/),
    value: fc.oneof(fc.double({ noNaN: true }), fc.boolean(), fc.constant(null), fc.string({ maxLength: 20 })),
    quality: fc.constantFrom("good", "uncertain", "bad"),
    ts: fc.integer({ min: 0, max: 2 ** 45 }),
    unit: fc.constantFrom("rpm", "°C"),
    reason: fc.string({ maxLength: 16 }),
  },
  { requiredKeys: ["device", "tag", "value", "quality", "ts"] },
);

const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 6, arbitrary: fc.array(sampleArb, { minLength: 0, maxLength: 8 }).map((samples) => ({ op: "append" as const, samples })) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("read" as const), after: fc.integer({ min: -2, max: 400 }), max: fc.integer({ min: 0, max: 60 }) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("commit" as const), out: fc.constantFrom(...OUTPUTS), frac: fc.double({ min: 0, max: 1.2, noNaN: true }) }) },
  { weight: 1, arbitrary: fc.constant({ op: "reopen" as const }) },
);

/** how often the interesting paths ran, so a too-gentle generator fails the test instead of passing vacuously */
const seen = { drops: 0, rejects: 0, reopens: 0 };

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function segBytes(dir: string): Promise<number> {
  let n = 0;
  for (const f of await readdir(dir)) if (f.endsWith(".seg")) n += (await stat(join(dir, f))).size;
  return n;
}

function strip<T extends { pos: number }>(s: T): Omit<T, "pos"> {
  const { pos: _pos, ...rest } = s;
  return rest;
}

/**
 * Runs `cmds` against a real journal and an array model: every appended sample with its position,
 * each output's cursor, delivered and dropped counts. After each step: contents and positions,
 * per-output accounting (appended = delivered + dropped + pending), and the disk cap.
 */
async function runModel(overflow: "drop-oldest" | "reject", fsync: "batch" | "always", cmds: Cmd[]): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "fg-journal-prop-"));
  dirs.push(dir);
  const segmentBytes = 768;
  const maxBytes = 3072;
  const opts: SegmentJournalOptions = { dir, maxBytes, segmentBytes, overflow, fsync, fsyncIntervalMs: 0, outputs: OUTPUTS };

  const model: Sample[] = []; // model[pos - 1]
  const cursor: Record<OutputName, number> = { a: 0, b: 0 };
  const delivered: Record<OutputName, number> = { a: 0, b: 0 };
  const dropped: Record<OutputName, number> = { a: 0, b: 0 };
  /** stats counters restart at every open: what earlier opens contributed */
  const base = { dropped: { a: 0, b: 0 }, delivered: { a: 0, b: 0 }, rejected: 0 };
  let rejected = 0;
  let oldest = 1; // the oldest position the journal may still hold
  let j: SegmentJournal = await openJournal(opts);

  const check = async (st: JournalStats): Promise<void> => {
    expect(st.newestPos).toBe(model.length);
    // drop-oldest/GC only ever remove a prefix: what is stored is a contiguous suffix
    const stored = st.records > 0 ? st.oldestPos : model.length + 1;
    expect(stored).toBeGreaterThanOrEqual(oldest);
    expect(st.records).toBe(model.length - stored + 1);
    if (stored > oldest) {
      for (const o of OUTPUTS) {
        if (cursor[o] < stored - 1) {
          expect(overflow).toBe("drop-oldest"); // only drop-oldest may remove unread data
          dropped[o] += stored - 1 - cursor[o];
          seen.drops++;
          cursor[o] = stored - 1;
        }
      }
      oldest = stored;
    }
    for (const o of OUTPUTS) {
      const so = st.outputs[o]!;
      expect(so.cursor).toBe(cursor[o]);
      expect(so.dropped + base.dropped[o]).toBe(dropped[o]);
      expect(so.delivered + base.delivered[o]).toBe(delivered[o]);
      expect(so.lag).toBe(model.length - cursor[o]);
      // every sample ever appended is delivered, dropped or still pending for each output
      expect(delivered[o] + dropped[o] + so.lag).toBe(model.length);
    }
    expect(st.rejected + base.rejected).toBe(rejected);
    const disk = await segBytes(dir);
    expect(st.bytes).toBe(disk);
    expect(disk).toBeLessThanOrEqual(overflow === "reject" ? maxBytes : maxBytes + segmentBytes);
  };

  try {
    for (const c of cmds) {
      if (c.op === "append") {
        try {
          const pos = await j.append(c.samples);
          model.push(...c.samples);
          expect(pos).toBe(model.length);
        } catch (err) {
          if (!isFloorgateError(err, "JOURNAL_FULL")) throw err;
          expect(overflow).toBe("reject");
          rejected += c.samples.length;
          seen.rejects++;
        }
      } else if (c.op === "read") {
        const got = await j.read(c.after, c.max);
        const from = Math.max(c.after + 1, oldest, j.stats().oldestPos || model.length + 1);
        const want = Math.max(0, Math.min(c.max, model.length - from + 1));
        expect(got.map((s) => s.pos)).toEqual(Array.from({ length: want }, (_, k) => from + k));
        expect(got.map(strip)).toEqual(model.slice(from - 1, from - 1 + want));
      } else if (c.op === "commit") {
        const target = Math.floor(c.frac * model.length);
        j.commit(c.out, target);
        const to = Math.min(target, model.length);
        if (to > cursor[c.out]) {
          delivered[c.out] += to - cursor[c.out];
          cursor[c.out] = to;
        }
      } else {
        const st = j.stats();
        for (const o of OUTPUTS) {
          base.dropped[o] += st.outputs[o]!.dropped;
          base.delivered[o] += st.outputs[o]!.delivered;
        }
        base.rejected += st.rejected;
        seen.reopens++;
        await j.close();
        const rep = await inspectJournal(dir, OUTPUTS);
        j = await openJournal(opts);
        const st2 = j.stats();
        expect(rep.records).toBe(st2.records);
        expect(rep.newestPos).toBe(st2.newestPos);
        expect(rep.outputs.map((o) => o.cursor)).toEqual(OUTPUTS.map((o) => st2.outputs[o]!.cursor));
        expect(st2.tornRecords).toBe(0);
      }
      await j.idle(); // background segment deletion after a commit, so the files can be counted
      await check(j.stats());
    }
    // everything still stored reads back exactly
    const all = await j.read(0, 1_000_000);
    expect(all.map(strip)).toEqual(model.slice(oldest - 1));
  } finally {
    await j.close();
  }
}

describe("journal against an array model (fast-check)", () => {
  for (const overflow of ["drop-oldest", "reject"] as const) {
    for (const fsync of ["batch", "always"] as const) {
      it(`holds under random appends, reads, commits and reopens (${overflow}, ${fsync})`, async () => {
        const before = { ...seen };
        await fc.assert(
          fc.asyncProperty(fc.array(cmdArb, { minLength: 10, maxLength: 80, size: "max" }), (cmds) => runModel(overflow, fsync, cmds)),
          { numRuns: fsync === "batch" ? 50 : 20, interruptAfterTimeLimit: 45_000, markInterruptAsFailure: true },
        );
        if (overflow === "drop-oldest") expect(seen.drops).toBeGreaterThan(before.drops);
        else expect(seen.rejects).toBeGreaterThan(before.rejects);
        expect(seen.reopens).toBeGreaterThan(before.reopens);
      });
    }
  }
});
