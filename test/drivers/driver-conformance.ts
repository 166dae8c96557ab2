import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DeviceConfig } from "../../src/config/types.js";
import type { Driver } from "../../src/core/driver.js";
import { recorder, type Recorder } from "../helpers/driver-recorder.js";

/**
 * A real server for one driver, started once per test file, that the suite can take away and
 * bring back. Every device it hands out talks to it with short timeouts, so that a lost server is
 * noticed within `timing.lossMs` and a returned one within `timing.returnMs`.
 */
export interface ConformanceFixture {
  /** Starts the server(s); resolves once they accept. */
  start(): Promise<void>;
  /** Ends everything started. */
  stop(): Promise<void>;
  /** The server goes away: open connections are dropped and nothing answers until `restore`. */
  breakServer(): Promise<void>;
  /** The server is back, at the same address. */
  restore(): Promise<void>;
  /** A device (config defaults applied) that reads at least one tag from the server. */
  device(id: string): DeviceConfig;
  /** A device whose server accepts requests and never answers them. */
  silentDevice(id: string): DeviceConfig;
  /** Connections the server side holds open now, when the transport has such a thing (TCP). */
  openConnections?(): number;
  /** The driver's name for the timeout event it counts (`DriverContext.count`); default "timeout". */
  timeoutEvent?: string;
  timing: {
    /** longest wait for a loss to show in the device's state */
    lossMs: number;
    /** longest wait for good samples again once the server is back */
    returnMs: number;
  };
}

/** `p` settled within `ms`, else a rejection saying what hung. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_, reject) => { t = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms); }),
  ]);
}

/** Polls `probe` (for things no driver call announces, like a socket closing on the server). */
async function eventually(probe: () => boolean, ms: number, what: string): Promise<void> {
  const until = Date.now() + ms;
  while (!probe()) {
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const STOP_MS = 3_000;

/**
 * The contract of `Driver` (src/core/driver.ts) run against a real server: start and stop, state
 * changes, emit shape, timeouts, reconnect, and no unhandled rejection through all of it. Call it
 * at the top level of a test file; `factory` makes the driver for one device config.
 */
export function driverConformance(name: string, factory: (cfg: DeviceConfig) => Driver, fixture: ConformanceFixture): void {
  describe(`driver conformance: ${name}`, () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => { unhandled.push(reason); };
    let n = 0;
    const nextId = (what: string): string => `conf-${what}-${++n}`;
    /** runs left behind by a failed test, stopped in afterAll */
    const running = new Set<Recorder>();

    const start = (cfg: DeviceConfig): { ctx: Recorder; done: Promise<void> } => {
      const ctx = recorder();
      running.add(ctx);
      const done = factory(cfg).run(ctx);
      done.catch(() => undefined).finally(() => running.delete(ctx));
      return { ctx, done };
    };
    const stop = async (r: { ctx: Recorder; done: Promise<void> }): Promise<void> => {
      r.ctx.controller.abort();
      await within(r.done, STOP_MS, "run() after abort");
    };
    const goodSince = (ctx: Recorder, from: number): boolean => ctx.samples.slice(from).some((s) => s.quality === "good");

    beforeAll(async () => {
      process.on("unhandledRejection", onUnhandled);
      await fixture.start();
    });

    afterAll(async () => {
      for (const ctx of running) ctx.controller.abort();
      await fixture.stop();
      process.off("unhandledRejection", onUnhandled);
    });

    it("start and stop: connecting, then online; run() resolves soon after abort and releases its connection", async () => {
      const before = fixture.openConnections?.() ?? 0;
      const r = start(fixture.device(nextId("start")));
      await r.ctx.until(() => r.ctx.states.some((s) => s.state === "online"), fixture.timing.returnMs, "online");
      expect(r.ctx.states[0]!.state).toBe("connecting");
      await r.ctx.until(() => goodSince(r.ctx, 0), fixture.timing.returnMs, "a good sample");
      if (fixture.openConnections) expect(fixture.openConnections(), "the server sees the driver's connection").toBeGreaterThan(before);
      await stop(r);
      if (fixture.openConnections) await eventually(() => fixture.openConnections!() <= before, STOP_MS, "the server to see the connection closed");
      // Nothing more once stopped.
      const emitted = r.ctx.samples.length;
      await new Promise((res) => setTimeout(res, 300));
      expect(r.ctx.samples.length).toBe(emitted);
    });

    it("a run aborted before it starts resolves at once", async () => {
      const ctx = recorder();
      ctx.controller.abort();
      await within(factory(fixture.device(nextId("pre-aborted"))).run(ctx), STOP_MS, "run() with an aborted signal");
    });

    it("emit shape: samples of this device and its tags, ts in ms near now, good quality while online", async () => {
      const cfg = fixture.device(nextId("shape"));
      const r = start(cfg);
      await r.ctx.until(() => r.ctx.samples.filter((s) => s.quality === "good").length >= 3, fixture.timing.returnMs, "three good samples");
      const tags = new Set(cfg.tags.map((t) => t.name));
      const t0 = Date.now();
      for (const s of r.ctx.samples) {
        expect(s.device).toBe(cfg.id);
        expect(tags.has(s.tag), s.tag).toBe(true);
        expect(Number.isFinite(s.ts) && Math.abs(s.ts - t0) < 60_000, `ts ${s.ts}`).toBe(true);
        expect(["good", "uncertain", "bad"]).toContain(s.quality);
        expect(["number", "boolean", "string"].includes(typeof s.value) || s.value === null).toBe(true);
        if (s.quality === "good") expect(s.value).not.toBeNull();
        else expect(typeof s.reason).toBe("string");
      }
      expect(r.ctx.states.at(-1)!.state).toBe("online");
      await stop(r);
    });

    it("state changes: offline or error when the server goes away, online again with good samples once it is back", async () => {
      const r = start(fixture.device(nextId("reconnect")));
      try {
        await r.ctx.until(() => goodSince(r.ctx, 0), fixture.timing.returnMs, "a good sample");
        const statesBefore = r.ctx.states.length;
        await fixture.breakServer();
        await r.ctx.until(() => r.ctx.states.slice(statesBefore).some((s) => s.state === "offline" || s.state === "error"), fixture.timing.lossMs, "offline or error after the server went away");
        const lost = r.ctx.states.slice(statesBefore).find((s) => s.state === "offline" || s.state === "error")!;
        expect(lost.error, "a lost device says why").toEqual(expect.any(String));
        const samplesAtReturn = r.ctx.samples.length;
        const statesAtReturn = r.ctx.states.length;
        await fixture.restore();
        await r.ctx.until(() => r.ctx.states.slice(statesAtReturn).some((s) => s.state === "online"), fixture.timing.returnMs, "online again");
        await r.ctx.until(() => goodSince(r.ctx, samplesAtReturn), fixture.timing.returnMs, "good samples again");
      } finally {
        await fixture.restore();
        await stop(r);
      }
    });

    it("timeouts: a server that accepts and never answers is counted, shown offline, and does not hang the stop", async () => {
      const r = start(fixture.silentDevice(nextId("silent")));
      const event = fixture.timeoutEvent ?? "timeout";
      await r.ctx.until(() => (r.ctx.counts.get(event) ?? 0) >= 1, fixture.timing.lossMs, `a counted ${event}`);
      await r.ctx.until(() => r.ctx.states.some((s) => s.state === "offline"), fixture.timing.lossMs, "offline");
      expect(r.ctx.states.some((s) => s.state === "online")).toBe(false);
      expect(r.ctx.samples.every((s) => s.quality !== "good")).toBe(true);
      await stop(r);
    });

    it("no unhandled rejection through all of the above", () => {
      expect(unhandled.map(String)).toEqual([]);
    });
  });
}
