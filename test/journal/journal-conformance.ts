import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { isFloorgateError } from "../../src/core/errors.js";
import type { Sample } from "../../src/core/sample.js";
import { ColumnsBuilder } from "../../src/core/sample-columns.js";
import type { Journal, JournalOptions } from "../../src/journal/journal.js";

export type JournalFactory = (opts: JournalOptions) => Promise<Journal>;

/** A varied sample: every value kind, optional unit and reason, non-ASCII text. */
export function sampleAt(i: number): Sample {
  const kinds: Sample["value"][] = [i * 1.25, i % 2 === 0, `s-${i}-ü€`, null, -i, 2 ** 40 + i];
  const s: Sample = {
    device: `dev-${i % 3}`,
    tag: `tag.${i % 7}`,
    value: kinds[i % kinds.length] ?? null,
    quality: (["good", "uncertain", "bad"] as const)[i % 3]!,
    ts: 1_700_000_000_000 + i,
  };
  if (i % 4 === 1) s.unit = "°C";
  if (i % 5 === 2) s.reason = "modbus exception 2: illegal data address";
  return s;
}

export function samples(from: number, n: number): Sample[] {
  return Array.from({ length: n }, (_, k) => sampleAt(from + k));
}

function strip<T extends { pos: number }>(s: T): Omit<T, "pos"> {
  const { pos: _pos, ...rest } = s;
  return rest;
}

/**
 * The contract every Journal implementation must meet (spec §7), run against a real directory.
 * `factory` opens (or reopens) a journal with the given options.
 */
export function journalConformance(name: string, factory: JournalFactory): void {
  const dirs: string[] = [];
  afterAll(async () => {
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });
  const freshDir = async (): Promise<string> => {
    const d = await mkdtemp(join(tmpdir(), "fg-journal-conf-"));
    dirs.push(d);
    return d;
  };

  describe.each(["batch", "always"] as const)(`${name} journal conformance (fsync: %s)`, (fsync) => {
    const optsFor = (dir: string, more: Partial<JournalOptions> = {}): JournalOptions => ({
      dir,
      maxBytes: 64 * 1024 * 1024,
      overflow: "drop-oldest",
      fsync,
      fsyncIntervalMs: 5,
      outputs: ["cloud", "historian"],
      ...more,
    });

    it("assigns consecutive positions in call order and reads back exactly what was appended", async () => {
      const j = await factory(optsFor(await freshDir()));
      try {
        expect(await j.append(samples(0, 3))).toBe(3);
        expect(await j.append(samples(3, 1))).toBe(4);
        // concurrent appends keep call order
        const ps = await Promise.all(Array.from({ length: 20 }, (_, k) => j.append(samples(4 + k * 2, 2))));
        expect(ps).toEqual(Array.from({ length: 20 }, (_, k) => 6 + k * 2));
        const all = await j.read(0, 1000);
        expect(all.map((s) => s.pos)).toEqual(Array.from({ length: 44 }, (_, k) => k + 1));
        expect(all.map(strip)).toEqual(samples(0, 44));
        const st = j.stats();
        expect(st.records).toBe(44);
        expect(st.appended).toBe(44);
        expect(st.oldestPos).toBe(1);
        expect(st.newestPos).toBe(44);
        expect(st.oldestTs).toBe(sampleAt(0).ts);
        expect(st.newestTs).toBe(sampleAt(43).ts);
        expect(st.writable).toBe(true);
      } finally {
        await j.close();
      }
    });

    it("readBatch gives what read gives, as runs of contiguous positions, from the cache and from disk; columns are appended as given", async () => {
      const dir = await freshDir();
      const check = async (j: Journal, after: number, max: number): Promise<void> => {
        const batch = await j.readBatch(after, max);
        const arr = await j.read(after, max);
        expect(batch.toArray()).toEqual(arr);
        expect(batch.length).toBe(arr.length);
        expect(batch.lastPos).toBe(arr[arr.length - 1]?.pos);
        for (const r of batch.runs) {
          expect(r.count).toBeGreaterThan(0);
          expect(r.from + r.count).toBeLessThanOrEqual(r.cols.length);
        }
      };
      const j1 = await factory(optsFor(dir));
      await j1.append(samples(0, 6));
      const w = new ColumnsBuilder("cols-dev", 3);
      w.set(0, 1.25, 0, 1000);
      w.set(1, "text", 1, 1001);
      w.set(2, null, 2, 1002);
      w.setUnit(0, "bar");
      w.setReason(2, "modbus exception 2");
      const cols = w.done(["a", "b", "c"]);
      expect(await j1.append(cols)).toBe(9);
      await j1.append(samples(6, 4));
      expect((await j1.read(6, 3)).map(strip)).toEqual(cols.toSamples());
      for (const [after, max] of [[0, 100], [2, 5], [6, 3], [7, 1], [12, 10], [13, 10]] as const) await check(j1, after, max);
      await j1.close();
      const j2 = await factory(optsFor(dir));
      try {
        expect((await j2.read(6, 3)).map(strip)).toEqual(cols.toSamples());
        for (const [after, max] of [[0, 100], [2, 5], [6, 3], [7, 1], [12, 10], [13, 10]] as const) await check(j2, after, max);
        expect((await j2.readBatch(13, 10)).length).toBe(0);
      } finally {
        await j2.close();
      }
    });

    it("reads after a position, at most max, and nothing past the newest", async () => {
      const j = await factory(optsFor(await freshDir()));
      try {
        await j.append(samples(0, 10));
        expect((await j.read(2, 3)).map((s) => s.pos)).toEqual([3, 4, 5]);
        expect((await j.read(8, 100)).map((s) => s.pos)).toEqual([9, 10]);
        expect(await j.read(10, 100)).toEqual([]);
        expect(await j.read(0, 0)).toEqual([]);
        expect((await j.read(-5, 1)).map((s) => s.pos)).toEqual([1]);
      } finally {
        await j.close();
      }
    });

    it("resolves an empty append at once with the newest position and stores nothing", async () => {
      const j = await factory(optsFor(await freshDir()));
      try {
        expect(await j.append([])).toBe(0);
        await j.append(samples(0, 4));
        expect(await j.append([])).toBe(4);
        expect(j.stats().records).toBe(4);
      } finally {
        await j.close();
      }
    });

    it("makes samples visible to read only once their append resolved", async () => {
      const j = await factory(optsFor(await freshDir(), { fsyncIntervalMs: 200 }));
      try {
        const p = j.append(samples(0, 2));
        const early = await j.read(0, 10);
        const pos = await p;
        const late = await j.read(0, 10);
        expect(pos).toBe(2);
        // in `always` mode the append may already be durable; never part of it, though
        expect([0, 2]).toContain(early.length);
        expect(late.length).toBe(2);
      } finally {
        await j.close();
      }
    });

    it("keeps positions and data across close and reopen", async () => {
      const dir = await freshDir();
      const j1 = await factory(optsFor(dir));
      await j1.append(samples(0, 5));
      await j1.close();
      await j1.close(); // idempotent
      const j2 = await factory(optsFor(dir));
      try {
        expect(j2.stats().newestPos).toBe(5);
        expect(await j2.append(samples(5, 2))).toBe(7);
        const all = await j2.read(0, 100);
        expect(all.map((s) => s.pos)).toEqual([1, 2, 3, 4, 5, 6, 7]);
        expect(all.map(strip)).toEqual(samples(0, 7));
      } finally {
        await j2.close();
      }
    });

    it("keeps cursors per output across reopen, never moves them backward, forgets unconfigured outputs", async () => {
      const dir = await freshDir();
      const j1 = await factory(optsFor(dir));
      await j1.append(samples(0, 10));
      expect(j1.cursor("cloud")).toBe(0);
      expect(j1.cursor("never-seen")).toBe(0);
      j1.commit("cloud", 7);
      j1.commit("cloud", 3); // backward: ignored
      j1.commit("historian", 2);
      expect(j1.cursor("cloud")).toBe(7);
      const st = j1.stats().outputs;
      expect(st["cloud"]).toMatchObject({ cursor: 7, lag: 3, dropped: 0 });
      expect(st["historian"]).toMatchObject({ cursor: 2, lag: 8, dropped: 0 });
      await j1.close();

      const j2 = await factory(optsFor(dir));
      expect(j2.cursor("cloud")).toBe(7);
      expect(j2.cursor("historian")).toBe(2);
      await j2.close();

      const j3 = await factory(optsFor(dir, { outputs: ["historian"] }));
      try {
        expect(j3.cursor("historian")).toBe(2);
        expect(Object.keys(j3.stats().outputs)).toEqual(["historian"]);
        expect(j3.cursor("cloud")).toBe(0); // forgotten: starts before the oldest again
      } finally {
        await j3.close();
      }
      const j4 = await factory(optsFor(dir, { outputs: ["historian", "cloud"] }));
      try {
        expect(j4.cursor("cloud")).toBe(0);
      } finally {
        await j4.close();
      }
    });

    it("waitFor resolves when a newer durable sample exists, and on abort", async () => {
      const j = await factory(optsFor(await freshDir()));
      try {
        await j.append(samples(0, 2));
        await j.waitFor(1, new AbortController().signal); // already there: resolves at once
        let woke = false;
        const w = j.waitFor(2, new AbortController().signal).then(() => {
          woke = true;
        });
        await j.read(0, 10); // give the waiter a turn: it must still be waiting
        expect(woke).toBe(false);
        const pos = await j.append(samples(2, 1));
        await w;
        expect(woke).toBe(true);
        expect((await j.read(2, 10)).map((s) => s.pos)).toEqual([pos]);

        const ac = new AbortController();
        const aborted = j.waitFor(100, ac.signal);
        ac.abort();
        await aborted;
      } finally {
        await j.close();
      }
    });

    it("refuses appends after close with JOURNAL_CLOSED", async () => {
      const j = await factory(optsFor(await freshDir()));
      await j.append(samples(0, 1));
      await j.close();
      const err = await j.append(samples(1, 1)).then(
        () => null,
        (e: unknown) => e,
      );
      expect(isFloorgateError(err, "JOURNAL_CLOSED")).toBe(true);
    });

    it("close waits for appends still in flight", async () => {
      const dir = await freshDir();
      const j = await factory(optsFor(dir, { fsyncIntervalMs: 100 }));
      const inflight = [j.append(samples(0, 3)), j.append(samples(3, 3))];
      await j.close();
      expect(await Promise.all(inflight)).toEqual([3, 6]);
      const j2 = await factory(optsFor(dir));
      try {
        expect((await j2.read(0, 100)).map(strip)).toEqual(samples(0, 6));
      } finally {
        await j2.close();
      }
    });
  });
}
