/**
 * Fault: the disk refuses writes.
 *
 * Pass lines:
 * - Disk full (a 3 MiB tmpfs mounted here, the daemon as a process): pushes get 503 with the
 *   reason while it lasts and /healthz says why; once space is freed the journal accepts again
 *   by itself within seconds (no restart), and every acknowledged sample is in the journal.
 * - Under drop-oldest a full disk drops the oldest whole segments, counted as disk_full, before
 *   it refuses anything: appends keep succeeding, and per output
 *   appended + lag at open = delivered + dropped + lag, exactly.
 * - EMFILE at a segment roll (injected): refused with JOURNAL_UNAVAILABLE, then recovers by
 *   itself; positions stay contiguous and every acknowledged sample reads back.
 * - A failed fsync (EIO, injected): fatal — the journal accepts nothing more, /healthz answers 503
 *   with the reason, the gateway reports it as fatal (the daemon exits 2 on it), and what was
 *   acknowledged before is intact after a restart.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { open, rm, unlink } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import { isFloorgateError } from "../../src/core/errors.js";
import { createLogger } from "../../src/core/logger.js";
import type { Sample } from "../../src/core/sample.js";
import type { JournalEvent } from "../../src/journal/journal.js";
import { openJournal } from "../../src/journal/segment-journal.js";
import { Gateway } from "../../src/runtime/gateway.js";
import { http, startGateway, writeConfig } from "../helpers/gateway-process.js";
import { freePort } from "../helpers/ports.js";

const mounts: string[] = [];
const dirs: string[] = [];

/** A tmpfs of `size` mounted by the test (the suite runs as root); fails loudly when it cannot. */
function mountTmpfs(size: string): string {
  const dir = mkdtempSync(join(tmpdir(), "fg-tmpfs-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir], { stdio: "pipe" });
  } catch (err) {
    throw new Error(`cannot mount a tmpfs for the disk-full tests (they need root): ${(err as Error).message}`);
  }
  mounts.push(dir);
  return dir;
}

/** Fills the filesystem of `dir` with a file until ENOSPC; returns its path. */
function fill(dir: string): string {
  const path = join(dir, "filler");
  try {
    execFileSync("dd", ["if=/dev/zero", `of=${path}`, "bs=64k"], { stdio: "pipe" });
  } catch {
    // dd stops with "No space left on device": that is the point
  }
  return path;
}

afterAll(async () => {
  for (const m of mounts) {
    try {
      execFileSync("umount", [m], { stdio: "pipe" });
    } catch {
      execFileSync("umount", ["-l", m], { stdio: "pipe" });
    }
    await rm(m, { recursive: true, force: true });
  }
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const sample = (i: number, dev = "press-1"): Sample => ({ device: dev, tag: `t${i % 50}`, value: i, quality: "good", ts: 1_700_000_000_000 + i });
const batchOf = (from: number, n: number): Sample[] => Array.from({ length: n }, (_, k) => sample(from + k));

describe("disk full on a small tmpfs, the daemon as a process", () => {
  const TOKEN = "disk-test-token";
  let mnt: string;
  let port: number;
  let configFile: string;

  beforeAll(async () => {
    mnt = mountTmpfs("3m");
    port = await freePort();
    const dead = await freePort(); // an output whose broker never answers: nothing is ever confirmed
    const cfgDir = mkdtempSync(join(tmpdir(), "fg-disk-cfg-"));
    dirs.push(cfgDir);
    configFile = await writeConfig(cfgDir, `
gateway: { id: disk-edge, group: t, dataDir: ${mnt}/data }
http: { listen: "127.0.0.1:${port}" }
journal: { maxBytes: 64MiB, overflow: reject, fsync: batch, fsyncIntervalMs: 5 }
ingest:
  http: true
  ratePerDevice: 100000
  devices:
    - { id: "agv-*", token: "${TOKEN}" }
outputs:
  - { type: mqtt, name: cloud, url: "mqtt://127.0.0.1:${dead}", qos: 1 }
`);
  });

  it("answers 503 with the reason while the disk is full, says why in /healthz, and accepts again by itself once space is freed", async () => {
    const gw = await startGateway(configFile, port);
    try {
      const base = `http://127.0.0.1:${port}`;
      const acked: number[] = [];
      let n = 0;
      const push = async (): Promise<{ status: number; body: string }> => {
        const first = n;
        const values: Record<string, number> = {};
        for (let i = 0; i < 20; i++) values[`v${i}`] = first + i;
        const r = await http("POST", `${base}/api/v1/ingest/agv-1`, {
          body: JSON.stringify({ msgId: `m${first}`, values }),
          headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
        });
        if (r.status === 202) {
          for (let i = 0; i < 20; i++) acked.push(first + i);
          n += 20;
        }
        return r;
      };
      // leave ~200 KiB free, then push until the disk refuses
      const filler = fill(mnt);
      await unlink(filler);
      writeFileSync(filler, Buffer.alloc(Number(execFileSync("df", ["--output=avail", "-B1", mnt]).toString().split("\n")[1]) - 200 * 1024));
      let refused: { status: number; body: string } | null = null;
      for (let k = 0; k < 5000 && !refused; k++) {
        const r = await push();
        if (r.status !== 202) refused = r;
      }
      expect(refused?.status).toBe(503);
      expect(refused?.body).toContain("disk full (ENOSPC)");
      const h = await http("GET", `${base}/healthz`);
      expect(h.status).toBe(503);
      expect(JSON.parse(h.body).journal).toMatchObject({ writable: false, unwritable: "disk full (ENOSPC)", failed: false });
      expect(acked.length).toBeGreaterThan(1000);

      // space comes back: the journal reopens by itself (no restart), within its retry backoff
      await unlink(filler);
      const freedAt = Date.now();
      let ok = false;
      while (Date.now() - freedAt < 15_000 && !ok) {
        ok = (await push()).status === 202;
        if (!ok) await new Promise((r) => setTimeout(r, 50));
      }
      expect(ok).toBe(true);
      expect(Date.now() - freedAt).toBeLessThan(8_000);
      expect((await http("GET", `${base}/healthz`)).status).toBe(200);
      for (let k = 0; k < 50; k++) expect((await push()).status).toBe(202);
      expect(gw.output.join("")).toContain("journal writes again");
      const stopped = await gw.stop();
      expect(stopped.code).toBe(0);

      // every acknowledged sample is in the journal, once
      const j = await openJournal({ dir: join(mnt, "data", "journal"), maxBytes: 64 * 1024 * 1024, overflow: "reject", fsync: "batch", fsyncIntervalMs: 5, outputs: [] });
      const values = (await j.read(0, 1_000_000)).map((s) => s.value as number);
      await j.close();
      expect(values.sort((a, b) => a - b)).toEqual(acked.sort((a, b) => a - b));
    } finally {
      await gw.kill().catch(() => undefined);
    }
  });
});

describe("journal on a full disk under drop-oldest", () => {
  it("drops the oldest whole segments (disk_full) before refusing anything, counted per output, accounting exact", async () => {
    const mnt = mountTmpfs("1m");
    const events: JournalEvent[] = [];
    // the cap is far above the disk: only the disk can be full
    const j = await openJournal({ dir: join(mnt, "j"), maxBytes: 256 * 1024 * 1024, segmentBytes: 64 * 1024, overflow: "drop-oldest", fsync: "batch", fsyncIntervalMs: 0, outputs: ["slow", "fast"], onEvent: (e) => events.push(e) });
    let pos = 0;
    let fastRead = 0;
    for (let i = 0; i < 600; i++) {
      const last = await j.append(batchOf(i * 100, 100)); // never refused
      expect(last).toBe(pos + 100);
      pos = last;
      // "fast" reads and confirms as it goes; "slow" never does
      const got = await j.read(j.cursor("fast"), 1000);
      fastRead += got.length;
      if (got.length > 0) j.commit("fast", got[got.length - 1]!.pos);
    }
    const st = j.stats();
    expect(st.appended).toBe(60_000);
    const dropped = events.filter((e) => e.kind === "dropped-oldest");
    expect(dropped.length).toBeGreaterThan(0);
    expect(dropped.every((e) => e.kind === "dropped-oldest" && e.reason === "disk_full")).toBe(true);
    expect(st.outputs.slow!.droppedDiskFull).toBeGreaterThan(0);
    expect(st.outputs.slow!.dropped).toBe(st.outputs.slow!.droppedDiskFull);
    for (const o of ["slow", "fast"]) {
      const so = st.outputs[o]!;
      expect(st.appended).toBe(so.delivered + so.dropped + so.lag);
    }
    expect(st.writable).toBe(true);
    // what is left reads back in order, contiguous, ending at the newest
    const rest = await j.read(j.cursor("slow"), 1_000_000);
    expect(rest.length).toBe(st.outputs.slow!.lag);
    rest.forEach((s, k) => expect(s.pos).toBe(rest[0]!.pos + k));
    expect(rest[rest.length - 1]!.pos).toBe(60_000);
    expect(fastRead).toBeGreaterThan(0);
    await j.close();
  });
});

/** fs `open`, with faults switched on by the test: EMFILE from open, EIO from datasync. */
function faultyOpen(faults: { emfile: number; eio: boolean }) {
  return async (path: string, flags: string): Promise<FileHandle> => {
    if (faults.emfile > 0) {
      faults.emfile--;
      throw Object.assign(new Error(`EMFILE: too many open files, open '${path}'`), { code: "EMFILE", errno: -24 });
    }
    const fh = await open(path, flags);
    const datasync = fh.datasync.bind(fh);
    fh.datasync = async () => {
      if (faults.eio) throw Object.assign(new Error("EIO: i/o error, fdatasync"), { code: "EIO", errno: -5 });
      return datasync();
    };
    return fh;
  };
}

describe("injected EMFILE and EIO", () => {
  it("EMFILE at a segment roll refuses appends for a while, then the journal recovers by itself with contiguous positions", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fg-emfile-"));
    dirs.push(dir);
    const faults = { emfile: 0, eio: false };
    const events: JournalEvent[] = [];
    const j = await openJournal({ dir, maxBytes: 64 * 1024 * 1024, segmentBytes: 8 * 1024, overflow: "reject", fsync: "batch", fsyncIntervalMs: 0, outputs: ["o"], openFile: faultyOpen(faults), onEvent: (e) => events.push(e) });
    const acked: number[] = [];
    let refused = 0;
    let v = 0;
    const deadline = Date.now() + 30_000;
    for (let i = 0; i < 400 || !events.some((e) => e.kind === "writable"); i++) {
      expect(Date.now()).toBeLessThan(deadline);
      if (i === 100) faults.emfile = 4; // the next opens fail: the roll, then the first probes
      const vals = batchOf(v, 10);
      try {
        await j.append(vals);
        for (const s of vals) acked.push(s.value as number);
        v += 10;
      } catch (err) {
        expect(isFloorgateError(err, "JOURNAL_UNAVAILABLE")).toBe(true);
        expect((err as Error).message).toContain("too many open files (EMFILE)");
        refused++;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    expect(refused).toBeGreaterThan(0);
    expect(faults.emfile).toBe(0);
    expect(events).toContainEqual(expect.objectContaining({ kind: "unwritable", reason: "too many open files (EMFILE)" }));
    expect(events).toContainEqual(expect.objectContaining({ kind: "writable" }));
    expect(j.stats().writable).toBe(true);
    const all = await j.read(0, 1_000_000);
    expect(all.map((s) => s.pos)).toEqual(all.map((_, k) => k + 1));
    expect(all.map((s) => s.value)).toEqual(acked);
    await j.close();
    // and after a restart (scan checks position continuity across the failed roll)
    const k = await openJournal({ dir, maxBytes: 64 * 1024 * 1024, overflow: "reject", fsync: "batch", fsyncIntervalMs: 0, outputs: ["o"] });
    expect(k.stats()).toMatchObject({ tornRecords: 0, corruptRecords: 0, newestPos: acked.length });
    await k.close();
  });

  it("a failed fsync (EIO) is fatal: nothing more is accepted, /healthz says why, the gateway reports it, and what was acknowledged survives", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fg-eio-"));
    dirs.push(dir);
    mkdirSync(join(dir, "cfg"));
    const port = await freePort();
    const cfgFile = await writeConfig(join(dir, "cfg"), `
gateway: { id: eio-edge, group: t, dataDir: ${dir}/data }
http: { listen: "127.0.0.1:${port}" }
ingest:
  http: true
  devices:
    - { id: "agv-1", token: "tok-eio" }
`);
    const loaded = loadConfig(cfgFile);
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
    const faults = { emfile: 0, eio: false };
    const log = createLogger({ pretty: false, level: "silent" });
    const gw = await Gateway.start(loaded.config, log, { journalOpenFile: faultyOpen(faults) });
    const base = `http://127.0.0.1:${port}`;
    const push = (k: number) =>
      http("POST", `${base}/api/v1/ingest/agv-1`, { body: JSON.stringify({ values: { x: k } }), headers: { "content-type": "application/json", authorization: "Bearer tok-eio" } });
    try {
      for (let k = 0; k < 10; k++) expect((await push(k)).status).toBe(202);
      faults.eio = true;
      expect((await push(10)).status).toBe(503);
      expect(await gw.fatal).toContain("EIO");
      faults.eio = false; // a later fsync would "succeed": it must not matter
      expect((await push(11)).status).toBe(503);
      const raw = await http("GET", `${base}/healthz`);
      expect(raw.status).toBe(503);
      expect(JSON.parse(raw.body).journal).toMatchObject({ failed: true, writable: false, unwritable: "stopped after a fatal disk error" });
    } finally {
      await gw.stop();
    }
    const j = await openJournal({ dir: join(dir, "data", "journal"), maxBytes: 1024 * 1024, overflow: "reject", fsync: "batch", fsyncIntervalMs: 5, outputs: [] });
    const vals = (await j.read(0, 100)).map((s) => s.value);
    await j.close();
    expect(vals.slice(0, 10)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });
});
