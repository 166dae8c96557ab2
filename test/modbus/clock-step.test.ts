/**
 * The wall clock of an edge box steps (NTP correcting a box that booted with a wrong time, an
 * operator setting the date). Polls are aligned to the wall clock, but no wait may be measured
 * against it: a clock set back an hour must not stall polling, a reconnect or a demoted device's
 * probe for an hour. Against a real Modbus server, with `Date.now()` stepped inside the process.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { createModbusDriver } from "../../drivers/modbus/index.js";
import { freePort, startFaultServer, type FaultServer } from "../helpers/modbus-servers.js";
import { HOUR, stepWallClock } from "../helpers/wall-clock.js";
import { makeContext, makeDevice, tcp } from "./context.js";

let server: FaultServer;
beforeAll(async () => { server = await startFaultServer({}); });
afterAll(async () => { await server.stop(); });
afterEach(() => { vi.restoreAllMocks(); });


const TAG = [{ name: "a", area: "holding" as const, address: 5, type: "uint16" as const }];

describe("a wall clock that steps", () => {
  it("set back an hour while polling every 100 ms: the polls go on at their rate, realigned, none counted skipped", async () => {
    const pollMs = 100;
    const ctx = makeContext();
    const run = createModbusDriver(makeDevice("step-back", tcp(server.port, 1), TAG, { pollMs })).run(ctx);
    try {
      for (let i = 0; i < 3; i++) await ctx.waitFor(() => true, 3000, ctx.samples.length);
      const before = ctx.samples.length;
      const t0 = performance.now();
      stepWallClock(-HOUR);
      // five more polls in well under a second each (they would wait the hour out)
      for (let i = 0; i < 5; i++) await ctx.waitFor(() => true, 2000, ctx.samples.length);
      const took = performance.now() - t0;
      expect(took).toBeLessThan(5 * pollMs + 1000);
      expect(ctx.samples.length).toBeGreaterThanOrEqual(before + 5);
      // samples carry the new wall time
      expect(ctx.samples.at(-1)!.ts).toBeLessThan(Date.now() + 1000);
      expect(ctx.counts.get("skipped_poll") ?? 0).toBe(0);
    } finally {
      ctx.controller.abort();
      await run;
    }
  });

  it("set back an hour while a PLC is down: the reconnect still comes within reconnectMaxMs + pollMs of its start", async () => {
    const port = await freePort();
    const reconnectMaxMs = 800;
    const pollMs = 100;
    const ctx = makeContext();
    const run = createModbusDriver(makeDevice("late-plc", tcp(port, 1, 200), TAG, { pollMs, reconnectMaxMs })).run(ctx);
    try {
      await ctx.waitState("offline", 3000);
      // let the backoff grow to its cap, then set the clock back while the line waits for its next attempt
      await ctx.waitFor(() => false, 1500).catch(() => {});
      stepWallClock(-HOUR);
      const plc = await startFaultServer({ port });
      try {
        const t = performance.now();
        // the backoff's precision is failures.test.ts's; this one asks that the step adds no wait
        // (a second of slack for a loaded machine, against the hour the step would add)
        await ctx.waitFor((x) => x.quality === "good", reconnectMaxMs + pollMs + 2000);
        expect(performance.now() - t).toBeLessThanOrEqual(reconnectMaxMs + pollMs + 1000);
        expect(ctx.state).toBe("online");
      } finally {
        await plc.stop();
      }
    } finally {
      ctx.controller.abort();
      await run;
    }
  });

  it("set back an hour while a unit is demoted: its probes go on within reconnectMaxMs", async () => {
    // unit 9 never answers: demoted after maxTimeouts, then probed every ≤ reconnectMaxMs
    const silent = await startFaultServer({ behave: (r) => (r.unitId === 9 ? "silent" : "answer") });
    const ctx = makeContext();
    const run = createModbusDriver(makeDevice("silent-unit", tcp(silent.port, 9, 100), TAG, { pollMs: 50, maxTimeouts: 2, reconnectMaxMs: 400 })).run(ctx);
    try {
      await ctx.waitCount("demoted", 1, 5000);
      const probes = (): number => ctx.counts.get("timeout") ?? 0;
      await ctx.waitCount("timeout", probes() + 1, 3000); // a probe after the demotion
      stepWallClock(-HOUR);
      const from = probes();
      // two more probes within their backoff cap (+ the 100 ms timeout each), not an hour
      await ctx.waitCount("timeout", from + 2, 2 * (400 + 100) + 1500);
    } finally {
      ctx.controller.abort();
      await run;
      await silent.stop();
    }
  });
});
