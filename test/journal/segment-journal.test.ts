import { mkdtemp, readdir, rm, stat, symlink, truncate, writeFile, readFile, open } from "node:fs/promises";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { isFloorgateError } from "../../src/core/errors.js";
import type { JournalEvent } from "../../src/journal/journal.js";
import { openJournal } from "../../src/journal/segment-journal.js";
import type { SegmentJournalOptions } from "../../src/journal/segment-journal.js";
import { inspectJournal, formatInspect } from "../../src/journal/inspect.js";
import { journalConformance, sampleAt, samples } from "./journal-conformance.js";

journalConformance("segment", (opts) => openJournal(opts));

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});
async function freshDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "fg-journal-"));
  dirs.push(d);
  return d;
}

function opts(dir: string, more: Partial<SegmentJournalOptions> = {}): SegmentJournalOptions {
  return {
    dir,
    maxBytes: 64 * 1024 * 1024,
    overflow: "drop-oldest",
    fsync: "batch",
    fsyncIntervalMs: 2,
    outputs: ["cloud"],
    ...more,
  };
}

async function segFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.endsWith(".seg")).sort();
}

async function diskBytes(dir: string): Promise<number> {
  let n = 0;
  for (const f of await segFiles(dir)) n += (await stat(join(dir, f))).size;
  return n;
}

function strip<T extends { pos: number }>(s: T): Omit<T, "pos"> {
  const { pos: _pos, ...rest } = s;
  return rest;
}

describe("segment journal: segments", () => {
  it("rolls segments, names them by first position, reads a backlog across them from disk", async () => {
    const dir = await freshDir();
    const j = await openJournal(opts(dir, { segmentBytes: 2048, cacheSamples: 0 }));
    for (let i = 0; i < 100; i++) await j.append(samples(i * 10, 10));
    const files = await segFiles(dir);
    expect(files.length).toBeGreaterThan(3);
    expect(files[0]).toBe("00000000000000000001.seg");
    // every name is a frame boundary
    for (const f of files) expect((Number(f.slice(0, 20)) - 1) % 10).toBe(0);
    const got = [];
    let after = 0;
    for (;;) {
      const batch = await j.read(after, 77);
      if (batch.length === 0) break;
      got.push(...batch);
      after = batch[batch.length - 1]!.pos;
    }
    expect(got.map((s) => s.pos)).toEqual(Array.from({ length: 1000 }, (_, k) => k + 1));
    expect(got.map(strip)).toEqual(samples(0, 1000));
    expect(j.stats().segments).toBe(files.length);
    await j.close();
  });

  it("serves two readers at their own positions from disk through the read-ahead, exactly, across segments", async () => {
    const dir = await freshDir();
    // Columns of one device per append (the poller's shape), so frames decode straight to runs.
    const poll = (i: number): ReturnType<typeof samples> => samples(i * 50, 50).map((x) => ({ ...x, device: "press-1" }));
    const j = await openJournal(opts(dir, { segmentBytes: 64 * 1024, cacheSamples: 0, outputs: ["a", "b"] }));
    const polls = 2000; // 100,000 samples: past one read-ahead (65,536) and across many segments
    for (let i = 0; i < polls; i++) await j.append(poll(i));
    const expected = Array.from({ length: polls }, (_, i) => poll(i)).flat();
    // c starts inside what a has read ahead, so it takes from a's stash part-way in and cuts it.
    const readers = {
      a: { after: 0, got: [] as number[], n: 4000 },
      c: { after: 10_000, got: [] as number[], n: 1000 },
      b: { after: 40_000, got: [] as number[], n: 333 },
    };
    let active = true;
    while (active) {
      active = false;
      for (const r of Object.values(readers)) {
        const batch = (await j.readBatch(r.after, r.n)).toArray();
        if (batch.length === 0) continue;
        active = true;
        // Full batches until the end: a read never comes back short while more is stored.
        if (r.after + r.n <= polls * 50) expect(batch.length).toBe(r.n);
        for (const x of batch) {
          r.got.push(x.pos);
          expect(strip(x)).toEqual(expected[x.pos - 1]);
        }
        r.after = batch[batch.length - 1]!.pos;
      }
    }
    expect(readers.a.got).toEqual(Array.from({ length: polls * 50 }, (_, k) => k + 1));
    expect(readers.b.got).toEqual(Array.from({ length: polls * 50 - 40_000 }, (_, k) => k + 40_001));
    expect(readers.c.got).toEqual(Array.from({ length: polls * 50 - 10_000 }, (_, k) => k + 10_001));
    await j.close();
  });

  it("deletes sealed segments once every output passed them; with no outputs at once", async () => {
    const dir = await freshDir();
    const j = await openJournal(opts(dir, { segmentBytes: 1024, outputs: ["a", "b"] }));
    for (let i = 0; i < 40; i++) await j.append(samples(i * 5, 5));
    const before = (await segFiles(dir)).length;
    expect(before).toBeGreaterThan(3);
    j.commit("a", 200);
    await j.append(samples(200, 1)); // lets housekeeping run in the I/O loop
    expect((await segFiles(dir)).length).toBe(before);
    j.commit("b", 100);
    await j.append(samples(201, 1));
    const mid = await segFiles(dir);
    expect(mid.length).toBeLessThan(before);
    expect(Number(mid[0]!.slice(0, 20))).toBeLessThanOrEqual(101);
    expect(j.stats().oldestPos).toBe(Number(mid[0]!.slice(0, 20)));
    await j.close();

    const k = await openJournal(opts(dir, { segmentBytes: 1024, outputs: [] }));
    await k.append(samples(202, 1));
    expect((await segFiles(dir)).length).toBe(1);
    expect(k.stats().newestPos).toBe(203);
    await k.close();
    // positions survive even with every old segment gone
    const m = await openJournal(opts(dir, { segmentBytes: 1024, outputs: [] }));
    expect(await m.append(samples(203, 1))).toBe(204);
    await m.close();
  });
});

describe("segment journal: slow disk operations", () => {
  it("reports commits and deletions at or over slowIoMs, with a commit's phases", async () => {
    const dir = await freshDir();
    const events: JournalEvent[] = [];
    // threshold 0: every operation counts as slow, so the wiring is seen without a slow disk
    const j = await openJournal(opts(dir, { segmentBytes: 1024, outputs: ["a"], slowIoMs: 0, onEvent: (e) => events.push(e) }));
    for (let i = 0; i < 20; i++) await j.append(samples(i * 5, 5));
    j.commit("a", 100);
    await j.append(samples(100, 1));
    const slow = events.filter((e) => e.kind === "slow-io");
    const commits = slow.filter((e) => e.op === "commit");
    expect(commits.length).toBeGreaterThanOrEqual(21);
    for (const c of commits) {
      expect(c.segment).toMatch(/^\d{20}\.seg$/);
      const p = c.phases!;
      expect(p.create + p.room + p.write + p.sync).toBeLessThanOrEqual(c.ms + 4); // rounding per phase
    }
    expect(slow.some((e) => e.op === "delete")).toBe(true);
    await j.close();
  });
});

describe("segment journal: cap", () => {
  it("drop-oldest keeps disk within maxBytes + one segment and counts every lost sample per output", async () => {
    const dir = await freshDir();
    const events: JournalEvent[] = [];
    const segmentBytes = 1024;
    const maxBytes = 8 * 1024;
    const j = await openJournal(
      opts(dir, { segmentBytes, maxBytes, outputs: ["fast", "slow"], onEvent: (e) => events.push(e) }),
    );
    let appended = 0;
    for (let i = 0; i < 300; i++) {
      await j.append(samples(i * 4, 4));
      appended += 4;
      const st = j.stats();
      j.commit("fast", st.newestPos);
      expect(await diskBytes(dir)).toBeLessThanOrEqual(maxBytes + segmentBytes);
      expect(st.bytes).toBe(await diskBytes(dir));
    }
    const st = j.stats();
    const slow = st.outputs["slow"]!;
    const fast = st.outputs["fast"]!;
    expect(slow.dropped).toBeGreaterThan(0);
    expect(fast.dropped).toBe(0);
    expect(slow.delivered + slow.dropped + slow.lag).toBe(appended);
    expect(fast.delivered + fast.dropped + fast.lag).toBe(appended);
    const drops = events.filter((e) => e.kind === "dropped-oldest");
    expect(drops.reduce((n, e) => n + (e.kind === "dropped-oldest" ? (e.perOutput["slow"] ?? 0) : 0), 0)).toBe(slow.dropped);
    // the slow output continues at the oldest stored sample
    const next = await j.read(j.cursor("slow"), 5);
    expect(next[0]!.pos).toBe(st.oldestPos);
    expect(next.map(strip)).toEqual(samples(st.oldestPos - 1, 5));
    await j.close();
  });

  it("drop-oldest still accepts a single append larger than the whole cap", async () => {
    const dir = await freshDir();
    const j = await openJournal(opts(dir, { segmentBytes: 1024, maxBytes: 4096 }));
    await j.append(samples(0, 20));
    const big = await j.append(samples(20, 1000));
    expect(big).toBe(1020);
    expect((await j.read(1019, 1))[0]).toMatchObject({ pos: 1020 });
    await j.close();
  });

  it("reject refuses the whole append with JOURNAL_FULL, counts it, and stores nothing of it", async () => {
    const dir = await freshDir();
    const j = await openJournal(opts(dir, { segmentBytes: 1024, maxBytes: 4096, overflow: "reject" }));
    let accepted = 0;
    let err: unknown = null;
    for (let i = 0; i < 1000 && err === null; i++) {
      try {
        await j.append(samples(accepted, 8));
        accepted += 8;
      } catch (e) {
        err = e;
      }
    }
    expect(isFloorgateError(err, "JOURNAL_FULL")).toBe(true);
    const st = j.stats();
    expect(st.rejected).toBe(8);
    expect(st.newestPos).toBe(accepted);
    expect(st.records).toBe(accepted);
    expect(await diskBytes(dir)).toBeLessThanOrEqual(4096);
    // positions stay dense: the refused call took none
    j.commit("cloud", accepted); // frees sealed segments
    const pos = await j.append(samples(accepted, 8));
    expect(pos).toBe(accepted + 8);
    expect((await j.read(accepted, 100)).map(strip)).toEqual(samples(accepted, 8));
    await j.close();
  });
});

describe("segment journal: recovery", () => {
  it("drops only a torn tail, at any cut offset, counts it, and continues positions", async () => {
    const dir = await freshDir();
    const j = await openJournal(opts(dir));
    const ends: number[] = [];
    for (let i = 0; i < 12; i++) {
      await j.append(samples(i * 3, 3));
      ends.push(await diskBytes(dir));
    }
    await j.close();
    const file = join(dir, (await segFiles(dir))[0]!);
    const original = await readFile(file);
    const total = original.length;
    // every offset inside the last two frames, plus some random ones across the file
    const offsets = new Set<number>();
    for (let o = ends[9]!; o < total; o++) offsets.add(o);
    for (let k = 0; k < 40; k++) offsets.add(Math.floor(Math.random() * total));
    for (const cut of offsets) {
      await writeFile(file, original.subarray(0, cut));
      const complete = ends.filter((e) => e <= cut).length; // frames wholly before the cut
      const torn = ends.includes(cut) || cut === 0 ? 0 : 1;
      const events: JournalEvent[] = [];
      const r = await openJournal(opts(dir, { onEvent: (e) => events.push(e) }));
      expect((await stat(file)).size).toBe(complete > 0 ? ends[complete - 1]! : 0);
      expect(r.stats().tornRecords).toBe(torn);
      expect(events.length).toBe(torn);
      const all = await r.read(0, 1000);
      expect(all.map(strip)).toEqual(samples(0, complete * 3));
      expect(await r.append(samples(complete * 3, 2))).toBe(complete * 3 + 2);
      await r.close();
    }
  });

  it("skips corruption in the middle of an older segment and keeps everything after it", async () => {
    const dir = await freshDir();
    // an output that never confirms keeps every segment
    const k = await openJournal(opts(dir, { segmentBytes: 1024, outputs: ["cloud"] }));
    for (let i = 0; i < 60; i++) await k.append(samples(i * 5, 5));
    await k.close();
    const files = await segFiles(dir);
    expect(files.length).toBeGreaterThan(3);
    const victim = join(dir, files[1]!);
    const fh = await open(victim, "r+");
    await fh.write(Buffer.from([0xde, 0xad, 0xbe, 0xef]), 0, 4, 200); // flip bytes inside a frame
    await fh.close();
    const events: JournalEvent[] = [];
    const r = await openJournal(opts(dir, { segmentBytes: 1024, outputs: ["cloud"], onEvent: (e) => events.push(e) }));
    // one frame (5 samples) is lost, counted once for the output that had not read it
    expect(r.stats().corruptRecords).toBe(5);
    expect(r.stats().tornRecords).toBe(0);
    expect(events).toEqual([expect.objectContaining({ kind: "corrupt", segment: files[1], samples: 5, perOutput: { cloud: 5 } })]);
    expect(r.stats().outputs.cloud).toMatchObject({ corrupt: 5, lag: 295, dropped: 0 });
    const all = await r.read(0, 10_000);
    const pos = all.map((s) => s.pos);
    expect(pos[pos.length - 1]).toBe(300); // the newer segments are intact
    expect(pos).toContain(Number(files[2]!.slice(0, 20)));
    expect(pos.length).toBe(295);
    // what is missing is exactly one frame's five consecutive positions inside the damaged segment
    const missing = Array.from({ length: 300 }, (_, i) => i + 1).filter((p) => !pos.includes(p));
    expect(missing.length).toBe(5);
    expect(missing[4]! - missing[0]!).toBe(4);
    expect(missing[0]!).toBeGreaterThanOrEqual(Number(files[1]!.slice(0, 20)));
    expect(missing[4]!).toBeLessThan(Number(files[2]!.slice(0, 20)));
    // frames after the bad one in the same segment were kept
    expect(pos).toContain(missing[4]! + 1);
    for (const s of all) expect(strip(s)).toEqual(sampleAt(s.pos - 1));
    // reading past the hole and confirming counts the delivered samples without the lost ones
    r.commit("cloud", 300);
    expect(r.stats().outputs.cloud).toMatchObject({ delivered: 295, lag: 0, corrupt: 5 });
    expect(await r.append(samples(300, 1))).toBe(301);
    await r.close();
    // once the output passed it, the damaged segment is collected like any other
    const again = await openJournal(opts(dir, { segmentBytes: 1024, outputs: ["cloud"] }));
    expect(again.stats().corruptRecords).toBe(0);
    expect((await again.read(300, 10)).map((s) => s.pos)).toEqual([301]);
    await again.close();
  });

  it("refuses appends with JOURNAL_UNAVAILABLE while a segment cannot be written (ENOSPC), saying why", async () => {
    const dir = await freshDir();
    // a segment that lives on /dev/full: every write fails with ENOSPC
    await symlink("/dev/full", join(dir, "00000000000000000001.seg"));
    const events: JournalEvent[] = [];
    const j = await openJournal(opts(dir, { onEvent: (e) => events.push(e) }));
    const err = await j.append(samples(0, 2)).then(
      () => null,
      (e: unknown) => e,
    );
    expect(isFloorgateError(err, "JOURNAL_UNAVAILABLE")).toBe(true);
    expect(j.stats()).toMatchObject({ writable: false, unwritable: "disk full (ENOSPC)", failed: false });
    expect(events).toContainEqual(expect.objectContaining({ kind: "unwritable", reason: "disk full (ENOSPC)" }));
    // refused at once while the gate is shut, nothing stored, positions unchanged
    const again = await j.append(samples(0, 1)).then(
      () => null,
      (e: unknown) => e,
    );
    expect(isFloorgateError(again, "JOURNAL_UNAVAILABLE")).toBe(true);
    expect(j.stats().newestPos).toBe(0);
    await j.close();
  });

  it("refuses a second writer on the same directory and takes over a lock left by a dead process", async () => {
    const dir = await freshDir();
    const j = await openJournal(opts(dir));
    const err = await openJournal(opts(dir)).then(
      async (k) => {
        await k.close();
        return null;
      },
      (e: unknown) => e,
    );
    expect(isFloorgateError(err, "JOURNAL_IO")).toBe(true);
    expect((err as Error).message).toContain(String(process.pid));
    await j.append(samples(0, 1));
    await j.close();
    // a lock whose owner died (kill -9): the pid of a child that has exited
    const dead = spawn(process.execPath, ["-e", ""]);
    const deadPid = dead.pid!;
    await once(dead, "exit");
    await writeFile(join(dir, "LOCK"), `${deadPid}\n`);
    const k = await openJournal(opts(dir));
    expect(k.stats().newestPos).toBe(1);
    await k.close();
  });

  it("survives a cursors.json that does not parse (replays rather than losing)", async () => {
    const dir = await freshDir();
    const j = await openJournal(opts(dir));
    await j.append(samples(0, 5));
    j.commit("cloud", 5);
    await j.close();
    await writeFile(join(dir, "cursors.json"), "{not json");
    const k = await openJournal(opts(dir));
    expect(k.cursor("cloud")).toBe(0);
    await k.close();
    await truncate(join(dir, "cursors.json"), 0);
    const m = await openJournal(opts(dir));
    expect(m.cursor("cloud")).toBe(0);
    await m.close();
  });
});

describe("journal inspect", () => {
  it("reports records, bytes, positions and each output's lag without opening for writing", async () => {
    const dir = await freshDir();
    const j = await openJournal(opts(dir, { outputs: ["cloud", "historian"], segmentBytes: 1024 }));
    for (let i = 0; i < 20; i++) await j.append(samples(i * 5, 5));
    j.commit("cloud", 60);
    await j.close();
    const before = await Promise.all((await readdir(dir)).map(async (f) => [f, (await stat(join(dir, f))).mtimeMs]));
    const rep = await inspectJournal(dir);
    expect(rep.records).toBe(100);
    expect(rep.oldestPos).toBe(1);
    expect(rep.newestPos).toBe(100);
    expect(rep.oldestTs).toBe(sampleAt(0).ts);
    expect(rep.newestTs).toBe(sampleAt(99).ts);
    expect(rep.bytes).toBe(await diskBytes(dir));
    expect(rep.segments.length).toBe((await segFiles(dir)).length);
    expect(rep.outputs).toEqual([
      { name: "cloud", cursor: 60, lag: 40 },
      { name: "historian", cursor: 0, lag: 100 },
    ]);
    const text = formatInspect(rep);
    expect(text).toContain("records");
    expect(text).toMatch(/cloud\s+60\s+40/);
    const after = await Promise.all((await readdir(dir)).map(async (f) => [f, (await stat(join(dir, f))).mtimeMs]));
    expect(after).toEqual(before);
  });

  it("fails clearly on a missing directory", async () => {
    const err = await inspectJournal(join(await freshDir(), "nope")).then(
      () => null,
      (e: unknown) => e,
    );
    expect(isFloorgateError(err, "JOURNAL_IO")).toBe(true);
  });
});

