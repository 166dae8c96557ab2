import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isFloorgateError, type ErrorCode } from "../../src/core/errors.js";
import { createLogger } from "../../src/core/logger.js";
import type { JournaledSample, Quality, SampleValue } from "../../src/core/sample.js";
import { SampleBatch, SampleColumns, type SampleRun } from "../../src/core/sample-columns.js";
import { deviceRuns } from "../../src/core/sample-reader.js";
import type { Output, OutputContext, OutputSession } from "../../src/core/output.js";

/** A sample as read back from the destination. */
export interface ReceivedSample {
  device: string;
  tag: string;
  value: SampleValue;
  quality: Quality;
  /** ms since the epoch (whole ms: the suite sends no finer ts) */
  ts: number;
  /** absent when the sample has none */
  unit?: string;
}

/**
 * What an Output implementation gives the conformance suite: outputs aimed at a real destination the
 * test started, control over that destination, and a way to read back what arrived.
 */
export interface ConformanceTarget {
  /** An output aimed at the destination (configured with `connectTimeoutMs` / `writeTimeoutMs` below). */
  output(): Output;
  /** The same kind of output aimed at a loopback port where nothing listens. */
  deadOutput(): Output;
  /** The output's connect bound; the suite allows 2 s on top. */
  connectTimeoutMs: number;
  /** The output's per-write bound; must exceed 500 ms (the suite holds writes that long). */
  writeTimeoutMs: number;
  /** Destination dies abruptly (a crash: its connections drop without a goodbye, nothing more is acknowledged). */
  stop(): Promise<void>;
  /** Destination up again; resolves once it accepts connections and `received` works again. */
  start(): Promise<void>;
  /** Destination hangs: sockets stay open, nothing is answered. */
  pause(): void;
  resume(): void;
  /** Every sample of `device` the destination holds, in arrival order. */
  received(device: string): Promise<ReceivedSample[]>;
  teardown(): Promise<void>;
}

const log = createLogger({ level: process.env.FLOORGATE_TEST_LOG ?? "silent" });

function ctx(signal = new AbortController().signal): OutputContext {
  return { signal, log };
}

/** Journal positions are global per suite so every write is after the previous one, as in the runtime. */
let nextPos = 1;

function makeSamples(device: string, count: number, firstValue: number): JournaledSample[] {
  const base = Date.UTC(2026, 10, 21, 8, 0, 0);
  return Array.from({ length: count }, (_, i) => ({
    device,
    tag: `t${i % 3}`,
    value: firstValue + i,
    quality: "good" as const,
    ts: base + firstValue + i,
    pos: nextPos++,
  }));
}

async function expectCode(p: Promise<unknown>, ...codes: ErrorCode[]): Promise<Error> {
  const err = await p.then(
    () => { throw new Error(`expected rejection with ${codes.join("|")}, got resolution`); },
    (e: unknown) => e,
  );
  expect(isFloorgateError(err), `not a FloorgateError: ${String(err)}`).toBe(true);
  if (isFloorgateError(err)) expect(codes).toContain(err.code);
  return err as Error;
}

/** Re-reads the destination until `cond` holds: a readback may lag the acknowledgement slightly. */
async function eventually<T>(read: () => Promise<T>, cond: (v: T) => boolean, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (cond(v)) return v;
    if (Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
}

function elapsed(start: number): number {
  return Date.now() - start;
}

/**
 * The contract of `Output`/`OutputSession` (src/outputs/output.ts) checked against a real destination.
 * Every implementation runs it: `outputConformance("mqtt json", setupMosquittoTarget)`.
 */
export function outputConformance(name: string, setup: () => Promise<ConformanceTarget>): void {
  describe(`Output conformance: ${name}`, () => {
    let t: ConformanceTarget;
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => { unhandled.push(reason); };
    const sessions: OutputSession[] = [];
    const open = async (o?: Output): Promise<OutputSession> => {
      const s = await (o ?? t.output()).connect(ctx());
      sessions.push(s);
      return s;
    };

    beforeAll(async () => {
      process.on("unhandledRejection", onUnhandled);
      t = await setup();
    });
    afterAll(async () => {
      await Promise.allSettled(sessions.map((s) => s.close()));
      await t?.teardown();
      process.off("unhandledRejection", onUnhandled);
    });

    it("declares a usable batch size and in-flight window", () => {
      const o = t.output();
      expect(o.name).toBeTruthy();
      expect(o.maxBatch).toBeGreaterThanOrEqual(1);
      expect(o.maxInFlight).toBeGreaterThanOrEqual(1);
    });

    it("write resolves only after the destination acknowledged, and the data is there", async () => {
      const s = await open();
      const batch = makeSamples("conf-ack", 7, 0);
      t.pause();
      let resolved = false;
      const p = s.write(SampleBatch.of(batch)).then((r) => { resolved = true; return r; });
      // A negative observation needs a window: nothing may resolve while the destination is silent.
      await new Promise((r) => setTimeout(r, 400));
      expect(resolved).toBe(false);
      t.resume();
      const res = await p;
      expect(res.dropped).toEqual([]);
      const got = await eventually(() => t.received("conf-ack"), (r) => r.length >= 7);
      expect(got.map((g) => g.value)).toEqual(batch.map((b) => b.value));
      await s.close();
    });

    it("keeps many writes in flight, resolves them in issue order, delivers in journal order", async () => {
      const s = await open();
      const n = Math.min(t.output().maxInFlight, 24);
      const order: number[] = [];
      const writes: Promise<unknown>[] = [];
      for (let i = 0; i < n; i++) {
        const batch = [...makeSamples("conf-ord-a", 5, i * 5), ...makeSamples("conf-ord-b", 3, i * 3)];
        writes.push(s.write(SampleBatch.of(batch)).then(() => { order.push(i); }));
      }
      await Promise.all(writes);
      expect(order).toEqual(Array.from({ length: n }, (_, i) => i));
      for (const [dev, per] of [["conf-ord-a", 5], ["conf-ord-b", 3]] as const) {
        const got = await eventually(() => t.received(dev), (r) => r.length >= n * per);
        expect(got.map((g) => g.value)).toEqual(Array.from({ length: n * per }, (_, i) => i));
      }
      await s.close();
    });

    it("delivers every field of every sample as the sample reader reads it, from runs over shared columns", async () => {
      const s = await open();
      // One column set of two devices interleaved, handed out as runs that start inside it (as the
      // journal's cache does), with every kind of value, all qualities and units present and absent.
      const base = Date.UTC(2026, 10, 21, 9, 0, 0);
      const values: SampleValue[] = [21.5, "RUNNING", true, null, -3, false, "Störung ⚠", 0, 65535, "", 1e-7, 42];
      const samples = values.map((value, i) => ({
        device: i % 3 === 0 ? "conf-fields-b" : "conf-fields-a",
        tag: `f${i}`,
        value,
        quality: (["good", "uncertain", "bad"] as const)[i % 3]!,
        ts: base + (i >> 2) * 1000,
        ...(i % 2 === 0 ? { unit: i % 4 === 0 ? "°C" : "rpm" } : {}),
      }));
      const cols = SampleColumns.fromSamples(samples);
      const first = nextPos;
      nextPos += samples.length;
      const runs: SampleRun[] = [
        { cols, from: 0, count: 5, firstPos: first },
        { cols, from: 5, count: 7, firstPos: first + 5 },
      ];
      const batch = new SampleBatch(runs);
      await s.write(batch);
      const want = new Map<string, ReceivedSample[]>();
      for (const run of deviceRuns(batch)) {
        const list = want.get(run.device) ?? [];
        for (const r of run) list.push({ device: run.device, tag: r.tag, value: r.value, quality: r.quality, ts: r.ts, ...(r.unit !== undefined ? { unit: r.unit } : {}) });
        want.set(run.device, list);
      }
      expect([...want.keys()].sort()).toEqual(["conf-fields-a", "conf-fields-b"]);
      for (const [device, list] of want) {
        const got = await eventually(() => t.received(device), (r) => r.length >= list.length);
        expect(got).toEqual(list);
      }
      await s.close();
    });

    it("an empty write resolves", async () => {
      const s = await open();
      await expect(s.write(SampleBatch.of([]))).resolves.toEqual({ dropped: [] });
      await s.close();
    });

    it("a write the destination never acknowledges rejects with OUTPUT_TIMEOUT and the session is lost", async () => {
      const s = await open();
      t.pause();
      try {
        const start = Date.now();
        await expectCode(s.write(SampleBatch.of(makeSamples("conf-timeout", 3, 0))), "OUTPUT_TIMEOUT", "OUTPUT_UNAVAILABLE");
        expect(elapsed(start)).toBeLessThan(t.writeTimeoutMs + 2000);
        await expect(s.lost).resolves.toBeInstanceOf(Error);
        await expectCode(s.write(SampleBatch.of(makeSamples("conf-timeout", 1, 3))), "OUTPUT_UNAVAILABLE");
      } finally {
        t.resume();
      }
      await s.close();
    });

    it("connect to a dead destination rejects with OUTPUT_UNAVAILABLE in bounded time", async () => {
      const start = Date.now();
      await expectCode(t.deadOutput().connect(ctx()), "OUTPUT_UNAVAILABLE");
      expect(elapsed(start)).toBeLessThan(t.connectTimeoutMs + 2000);
    });

    it("connect to a hung destination gives up within its connect timeout", async () => {
      t.pause();
      try {
        const start = Date.now();
        await expectCode(t.output().connect(ctx()), "OUTPUT_UNAVAILABLE");
        expect(elapsed(start)).toBeLessThan(t.connectTimeoutMs + 2000);
      } finally {
        t.resume();
      }
    });

    it("connect gives up at once when its signal aborts", async () => {
      t.pause();
      try {
        const ac = new AbortController();
        const p = t.output().connect(ctx(ac.signal));
        const start = Date.now();
        setTimeout(() => ac.abort(new Error("test abort")), 50);
        await expect(p).rejects.toBeInstanceOf(Error);
        expect(elapsed(start)).toBeLessThan(1000);
        // Already aborted: rejects without trying.
        await expect(t.output().connect(ctx(AbortSignal.abort()))).rejects.toBeInstanceOf(Error);
      } finally {
        t.resume();
      }
    });

    it("close is bounded even when the destination hangs", async () => {
      const s = await open();
      t.pause();
      try {
        const start = Date.now();
        await s.close();
        expect(elapsed(start)).toBeLessThan(4000);
      } finally {
        t.resume();
      }
    });

    it("after close, writes reject with OUTPUT_UNAVAILABLE", async () => {
      const s = await open();
      await s.close();
      await expectCode(s.write(SampleBatch.of(makeSamples("conf-closed", 1, 0))), "OUTPUT_UNAVAILABLE");
    });

    it("when the destination goes away: outstanding writes reject, lost resolves, new writes reject at once; a new session works after", async () => {
      const s = await open();
      t.pause(); // keep the write outstanding
      const outstanding = s.write(SampleBatch.of(makeSamples("conf-down", 4, 0)));
      const outcome = outstanding.then(() => "resolved", (e: unknown) => e);
      await t.stop();
      try {
        const err = await outcome;
        expect(isFloorgateError(err, "OUTPUT_UNAVAILABLE") || isFloorgateError(err, "OUTPUT_TIMEOUT"), String(err)).toBe(true);
        const reason = await s.lost;
        expect(reason).toBeInstanceOf(Error);
        const start = Date.now();
        await expectCode(s.write(SampleBatch.of(makeSamples("conf-down", 1, 4))), "OUTPUT_UNAVAILABLE");
        expect(elapsed(start)).toBeLessThan(200);
        await s.close();
        await expectCode(t.output().connect(ctx()), "OUTPUT_UNAVAILABLE");
      } finally {
        await t.start();
      }
      const s2 = await open();
      const batch = makeSamples("conf-after", 5, 0);
      await s2.write(SampleBatch.of(batch));
      const got = await eventually(() => t.received("conf-after"), (r) => r.length >= 5);
      expect(got.map((g) => g.value)).toEqual(batch.map((b) => b.value));
      await s2.close();
    });

    it("left no unhandled rejections", () => {
      expect(unhandled).toEqual([]);
    });
  });
}
