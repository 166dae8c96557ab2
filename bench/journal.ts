import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import type { Sample } from "../src/core/sample.js";
import { openJournal } from "../src/journal/segment-journal.js";
import type { SegmentJournalOptions } from "../src/journal/segment-journal.js";

const TAGS = ["battery_pct", "speed_mps", "pos_x", "pos_y", "motor_temp", "load_kg", "state", "fault_code"];

/** One poll of a device: 25 samples shaped like real telemetry. */
function poll(device: number, seq: number): Sample[] {
  const out: Sample[] = new Array(25);
  const ts = Date.now();
  for (let i = 0; i < 25; i++) {
    out[i] = {
      device: `agv-${String(device).padStart(2, "0")}`,
      tag: `${TAGS[i % TAGS.length]}_${i}`,
      value: 81.5 + ((seq + i) % 100) / 10,
      quality: "good",
      ts,
    };
  }
  return out;
}

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;
}

/** `appenders` closed-loop appenders for `ms`: each awaits its append before the next. */
async function appendLoad(
  dir: string,
  fsync: "batch" | "always",
  appenders: number,
  ms: number,
  fsyncIntervalMs = 50,
): Promise<{ samplesPerSec: number; p50Ms: number; p99Ms: number }> {
  const opts: SegmentJournalOptions = {
    dir,
    maxBytes: 4 * 1024 ** 3,
    overflow: "drop-oldest",
    fsync,
    fsyncIntervalMs,
    outputs: [],
  };
  const j = await openJournal(opts);
  const lat: number[] = [];
  let samples = 0;
  const t0 = performance.now();
  const until = t0 + ms;
  await Promise.all(
    Array.from({ length: appenders }, async (_, a) => {
      let seq = 0;
      while (performance.now() < until) {
        const batch = poll(a, seq++);
        const s = performance.now();
        await j.append(batch);
        lat.push(performance.now() - s);
        samples += batch.length;
      }
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  await j.close();
  lat.sort((x, y) => x - y);
  return { samplesPerSec: Math.round(samples / elapsed), p50Ms: round(pct(lat, 50)), p99Ms: round(pct(lat, 99)) };
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

/** Fills a journal with `n` samples, reopens it (cold: nothing cached) and drains it with read(). */
async function backlogRead(dir: string, n: number): Promise<{ fillPerSec: number; openMs: number; readPerSec: number }> {
  const opts: SegmentJournalOptions = {
    dir,
    maxBytes: 4 * 1024 ** 3,
    overflow: "drop-oldest",
    fsync: "batch",
    fsyncIntervalMs: 50,
    outputs: ["cloud"],
  };
  let j = await openJournal(opts);
  const tf = performance.now();
  const polls = n / 25;
  const inflight = 4000; // enough waiting bytes (> 1 MiB) that group commits start at once: CPU-bound
  let next = 0;
  await Promise.all(
    Array.from({ length: inflight }, async () => {
      while (next < polls) {
        const k = next++;
        await j.append(poll(k % 50, k));
      }
    }),
  );
  const fillPerSec = Math.round(n / ((performance.now() - tf) / 1000));
  await j.close();

  const to = performance.now();
  j = await openJournal(opts);
  const openMs = round(performance.now() - to);
  const tr = performance.now();
  let after = j.cursor("cloud");
  let got = 0;
  for (;;) {
    // As a forwarder reads a backlog: columns, no object per sample.
    const batch = await j.readBatch(after, 5000);
    if (batch.lastPos === undefined) break;
    got += batch.length;
    after = batch.lastPos;
  }
  const readPerSec = Math.round(got / ((performance.now() - tr) / 1000));
  await j.close();
  if (got !== n) throw new Error(`backlog read returned ${got} samples, expected ${n}`);
  return { fillPerSec, openMs, readPerSec };
}

/**
 * Journal figures: append throughput and append-to-durable latency under both fsync policies
 * (20 closed-loop appenders of 25-sample polls at the default 50 ms and at 5 ms group-commit
 * interval, plus a 500-appender run), filling 1 M samples with 4,000 appends in flight (CPU-bound),
 * reopening (recovery scan) and draining that 1-million-sample backlog cold from disk.
 *
 * Closed-loop appenders under `batch` wait up to `fsyncIntervalMs` per append by design (one
 * fsync per interval spares flash), so their rate is appenders × 25 / interval, not a disk limit.
 */
export async function benchJournal(dir: string): Promise<Record<string, number>> {
  const sub = async <T>(name: string, f: (d: string) => Promise<T>): Promise<T> => {
    const d = join(dir, name);
    try {
      return await f(d);
    } finally {
      await rm(d, { recursive: true, force: true });
    }
  };
  const out: Record<string, number> = {};
  const b20 = await sub("batch20", (d) => appendLoad(d, "batch", 20, 2000));
  out["journal_batch_20x25_samples_per_s"] = b20.samplesPerSec;
  out["journal_batch_20x25_p50_ms"] = b20.p50Ms;
  out["journal_batch_20x25_p99_ms"] = b20.p99Ms;
  const b5 = await sub("batch20i5", (d) => appendLoad(d, "batch", 20, 2000, 5));
  out["journal_batch_20x25_interval5_samples_per_s"] = b5.samplesPerSec;
  out["journal_batch_20x25_interval5_p99_ms"] = b5.p99Ms;
  const b500 = await sub("batch500", (d) => appendLoad(d, "batch", 500, 2000));
  out["journal_batch_500x25_samples_per_s"] = b500.samplesPerSec;
  out["journal_batch_500x25_p99_ms"] = b500.p99Ms;
  const a20 = await sub("always20", (d) => appendLoad(d, "always", 20, 2000));
  out["journal_always_20x25_samples_per_s"] = a20.samplesPerSec;
  out["journal_always_20x25_p50_ms"] = a20.p50Ms;
  out["journal_always_20x25_p99_ms"] = a20.p99Ms;
  const r = await sub("backlog", (d) => backlogRead(d, 1_000_000));
  out["journal_fill_1m_samples_per_s"] = r.fillPerSec;
  out["journal_open_1m_ms"] = r.openMs;
  out["journal_read_1m_backlog_samples_per_s"] = r.readPerSec;
  return out;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const dir = await mkdtemp(join(tmpdir(), "fg-bench-journal-"));
  try {
    const res = await benchJournal(dir);
    const w = Math.max(...Object.keys(res).map((k) => k.length));
    for (const [k, v] of Object.entries(res)) console.log(`${k.padEnd(w)}  ${v.toLocaleString("en-US")}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
