import { afterEach, describe, expect, it } from "vitest";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FloorgateError } from "../../src/core/errors.js";
import { createLogger } from "../../src/core/logger.js";
import { captureLogger, jsonProblems } from "../outputs/log-lines.js";
import type { JournaledSample, Sample } from "../../src/core/sample.js";
import type { Journal } from "../../src/journal/journal.js";
import { openJournal } from "../../src/journal/segment-journal.js";
import type { Output, OutputSession, WriteResult } from "../../src/core/output.js";
import { Forwarder } from "../../src/runtime/forwarding/forwarder.js";
import { Metrics } from "../../src/runtime/status/metrics.js";

/**
 * The runtime's forwarder against a scripted output (the test decides when each write is
 * acknowledged or fails) and the real segment journal.
 */
interface PendingWrite { batch: readonly JournaledSample[]; resolve(r: WriteResult): void; reject(e: Error): void }

class ScriptedOutput implements Output {
  readonly name = "out";
  readonly type = "scripted";
  sessions = 0;
  connectFailures = 0;
  /** the error code of scripted connect refusals */
  refusal: "OUTPUT_UNAVAILABLE" | "OUTPUT_REJECTED" = "OUTPUT_UNAVAILABLE";
  connectTimes: number[] = [];
  writes: PendingWrite[] = [];
  /** every batch ever written, as [firstPos, lastPos] */
  history: [number, number][] = [];
  private lose: ((e: Error) => void) | null = null;
  private waiters: (() => void)[] = [];
  constructor(readonly maxBatch: number, readonly maxInFlight: number) {}

  connect(): Promise<OutputSession> {
    this.connectTimes.push(performance.now());
    if (this.connectFailures > 0) {
      this.connectFailures--;
      return Promise.reject(new FloorgateError(this.refusal, "scripted refusal"));
    }
    this.sessions++;
    const lost = new Promise<Error>((r) => { this.lose = r; });
    const session: OutputSession = {
      lost,
      write: (columns) => new Promise<WriteResult>((resolve, reject) => {
        const batch = columns.toArray();
        this.writes.push({ batch, resolve, reject });
        this.history.push([batch[0]!.pos, batch[batch.length - 1]!.pos]);
        for (const w of this.waiters.splice(0)) w();
      }),
      close: async () => undefined,
    };
    return Promise.resolve(session);
  }

  /** Breaks the session: outstanding writes reject, `lost` resolves. */
  breakSession(): void {
    const err = new FloorgateError("OUTPUT_UNAVAILABLE", "scripted loss");
    for (const w of this.writes.splice(0)) w.reject(err);
    this.lose?.(err);
  }

  async until(cond: () => boolean, timeoutMs = 5000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!cond()) {
      if (Date.now() > end) throw new Error("condition not met");
      await new Promise<void>((r) => { this.waiters.push(r); setTimeout(r, 10); });
    }
  }
}

function samples(n: number, device = "d"): Sample[] {
  return Array.from({ length: n }, (_, i) => ({ device, tag: "t", value: i, quality: "good" as const, ts: 1_700_000_000_000 + i }));
}

const metrics = () => new Metrics({ deviceStates: () => [], journal: () => ({ bytes: 0, records: 0, segments: 0, lag: {}, torn: 0, writable: true }), outputsUp: () => ({}), samplesIn: () => [] });
const log = createLogger({ level: "silent" });

describe("Forwarder", () => {
  let dir: string;
  let journal: Journal;
  let abort = new AbortController();
  let running: Promise<void> | null = null;

  async function setup(maxBatch: number, maxInFlight: number, opts = {}): Promise<{ out: ScriptedOutput; fwd: Forwarder; m: Metrics }> {
    abort = new AbortController();
    dir = await mkdtemp(join(tmpdir(), "fg-fwd-"));
    journal = await openJournal({ dir, maxBytes: 64 * 1024 * 1024, overflow: "drop-oldest", fsync: "batch", fsyncIntervalMs: 1, outputs: ["out"] });
    const out = new ScriptedOutput(maxBatch, maxInFlight);
    const m = metrics();
    const fwd = new Forwarder(out, journal, m, log, { initialBackoffMs: 20, maxBackoffMs: 200, drainMs: 50, ...opts });
    running = fwd.run(abort.signal);
    return { out, fwd, m };
  }

  afterEach(async () => {
    abort.abort();
    await running;
    await journal.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("keeps at most maxInFlight writes outstanding and commits the cursor only over acknowledged writes, in order", async () => {
    const { out } = await setup(10, 3);
    await journal.append(samples(100));
    await out.until(() => out.writes.length === 3);
    expect(out.writes.map((w) => w.batch.length)).toEqual([10, 10, 10]);
    // Acknowledge the second before the first: the cursor must not move past the first.
    out.writes[1]!.resolve({ dropped: [] });
    await new Promise((r) => setTimeout(r, 20));
    expect(journal.cursor("out")).toBe(0);
    expect(out.writes.length).toBe(3);
    out.writes[0]!.resolve({ dropped: [] });
    await out.until(() => journal.cursor("out") === 20);
    expect(journal.cursor("out")).toBe(20);
  });

  it("after a broken session resends exactly the unacknowledged batches, with the same boundaries", async () => {
    const { out, m } = await setup(10, 4);
    // Live traffic makes partial batches (whatever was durable at read time): 5 samples each here,
    // so a resend that read by maxBatch instead of by the old boundaries would merge two of them.
    for (let i = 1; i <= 4; i++) {
      await journal.append(samples(5));
      await out.until(() => out.writes.length === i);
    }
    const before = out.writes.map((w) => [w.batch[0]!.pos, w.batch[w.batch.length - 1]!.pos]);
    expect(before).toEqual([[1, 5], [6, 10], [11, 15], [16, 20]]);
    out.writes[0]!.resolve({ dropped: [] });
    await out.until(() => journal.cursor("out") === 5);
    // The second write fails on its own, then the session breaks with writes 3 and 4 in flight.
    out.writes[1]!.reject(new FloorgateError("OUTPUT_TIMEOUT", "scripted timeout"));
    out.breakSession();
    await out.until(() => out.sessions === 2 && out.writes.length === 3);
    const resent = out.writes.map((w) => [w.batch[0]!.pos, w.batch[w.batch.length - 1]!.pos]);
    expect(resent).toEqual(before.slice(1));
    await out.until(() => {
      for (const w of out.writes.splice(0)) w.resolve({ dropped: [] });
      return journal.cursor("out") === 20;
    });
    expect(await m.registry.getSingleMetricAsString("floorgate_output_reconnects_total")).toContain('output="out"} 1');
  });

  it("counts poison parts as dropped and moves on", async () => {
    const { out, fwd, m } = await setup(10, 1);
    await journal.append(samples(10));
    await out.until(() => out.writes.length === 1);
    out.writes.shift()!.resolve({ dropped: [{ count: 3, reason: "field type conflict" }] });
    await out.until(() => journal.cursor("out") === 10);
    expect(fwd.health().dropped).toBe(3);
    expect(fwd.health().sent).toBe(7);
    expect(await m.registry.getSingleMetricAsString("floorgate_drops_total")).toContain('reason="poison",output="out"} 3');
  });

  it("counts refused parts under the output's reason code, in /metrics and in health", async () => {
    const { out, fwd, m } = await setup(10, 1);
    await journal.append(samples(10));
    await out.until(() => out.writes.length === 1);
    out.writes.shift()!.resolve({ dropped: [{ count: 2, reason: "partial write: field type conflict … dropped=2", code: "type_conflict" }, { count: 1, reason: "beyond retention", code: "beyond_retention" }] });
    await out.until(() => journal.cursor("out") === 10);
    const h = fwd.health();
    expect(h.dropped).toBe(3);
    expect(h.sent).toBe(7);
    expect(h.refused).toEqual({ type_conflict: 2, beyond_retention: 1 });
    expect(h.lastRefusal).toMatchObject({ reason: "beyond_retention", detail: "beyond retention" });
    const text = await m.registry.getSingleMetricAsString("floorgate_drops_total");
    expect(text).toContain('reason="type_conflict",output="out"} 2');
    expect(text).toContain('reason="beyond_retention",output="out"} 1');
  });

  it("retries a refused connect with growing, jittered waits capped by maxBackoffMs, and shows offline", async () => {
    abort = new AbortController();
    dir = await mkdtemp(join(tmpdir(), "fg-fwd-"));
    journal = await openJournal({ dir, maxBytes: 64 * 1024 * 1024, overflow: "drop-oldest", fsync: "batch", fsyncIntervalMs: 1, outputs: ["out"] });
    const out = new ScriptedOutput(10, 1);
    out.connectFailures = 6;
    const fwd = new Forwarder(out, journal, metrics(), log, { initialBackoffMs: 10, maxBackoffMs: 80, drainMs: 50 });
    running = fwd.run(abort.signal);
    await out.until(() => out.connectTimes.length >= 4);
    expect(fwd.health().state).toBe("offline");
    expect(fwd.health().error).toContain("scripted refusal");
    await out.until(() => out.sessions === 1, 10_000);
    const gaps = out.connectTimes.slice(1).map((t, i) => t - out.connectTimes[i]!);
    // ceilings 10, 20, 40, 80, 80, 80: each wait is within [ceiling/2, ceiling] (+ timer slack)
    const ceilings = [10, 20, 40, 80, 80, 80];
    gaps.forEach((g, i) => {
      expect(g).toBeGreaterThanOrEqual(ceilings[i]! / 2 - 1);
      expect(g).toBeLessThan(ceilings[i]! + 40);
    });
    await out.until(() => fwd.health().state === "online");
  });
  it("logs an outage once however many attempts fail, each key once per line, and its end with the count", async () => {
    abort = new AbortController();
    dir = await mkdtemp(join(tmpdir(), "fg-fwd-"));
    journal = await openJournal({ dir, maxBytes: 64 * 1024 * 1024, overflow: "drop-oldest", fsync: "batch", fsyncIntervalMs: 1, outputs: ["out"] });
    const out = new ScriptedOutput(10, 1);
    const c = captureLogger("debug");
    const fwd = new Forwarder(out, journal, metrics(), c.log, { initialBackoffMs: 5, maxBackoffMs: 10, drainMs: 50 });
    running = fwd.run(abort.signal);
    await out.until(() => fwd.health().state === "online");
    out.connectFailures = 8;
    out.breakSession();
    await out.until(() => out.sessions === 2 && fwd.health().state === "online");
    const info = c.lines.filter((l) => l.level >= 30).map((l) => l.msg);
    expect(info).toEqual(["output out online", "output out offline", "output out still offline, with a new error", "output out online"]);
    expect(c.lines.filter((l) => l.msg === "output connect failed")).toHaveLength(8);
    const back = c.lines.filter((l) => l.msg === "output out online")[1]!;
    expect(back).toMatchObject({ output: "out", failures: 9 }); // the lost session and 8 refused connects
    expect(jsonProblems(c.raw)).toEqual([]);
    expect(c.lines.every((l) => l.output === "out")).toBe(true);
  });

  it("waits the long backoff after OUTPUT_REJECTED", async () => {
    abort = new AbortController();
    dir = await mkdtemp(join(tmpdir(), "fg-fwd-"));
    journal = await openJournal({ dir, maxBytes: 64 * 1024 * 1024, overflow: "drop-oldest", fsync: "batch", fsyncIntervalMs: 1, outputs: ["out"] });
    const out = new ScriptedOutput(10, 1);
    out.refusal = "OUTPUT_REJECTED";
    out.connectFailures = 2;
    const fwd = new Forwarder(out, journal, metrics(), log, { initialBackoffMs: 10, maxBackoffMs: 20, rejectedBackoffMs: 400, drainMs: 50 });
    running = fwd.run(abort.signal);
    await out.until(() => out.sessions === 1, 5000);
    const gaps = out.connectTimes.slice(1).map((t, i) => t - out.connectTimes[i]!);
    expect(gaps).toHaveLength(2);
    for (const g of gaps) expect(g).toBeGreaterThanOrEqual(199);
  });
});
