/**
 * The OPC UA driver under a wall clock that steps (NTP correcting an edge box's time): the
 * subscription's keep-alive watchdog must not take an hour's step forward for an hour of silence
 * (and recreate a healthy subscription), and the read-polling loop must not wait out an hour's step
 * back. Against the real node-opcua test server, with `Date.now()` stepped inside the process
 * (the server shares it: what it does with the step is part of the test).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { startOpcuaServer, type OpcuaTestServer } from "../helpers/opcua-server.js";
import { HOUR, stepWallClock } from "../helpers/wall-clock.js";
import { opcuaDevice, running, tag, type Recorder } from "./context.js";

let server: OpcuaTestServer;
beforeAll(async () => { server = await startOpcuaServer(); });
afterAll(async () => { await server?.dispose(); });
afterEach(() => { vi.restoreAllMocks(); });


const counters = (r: Recorder): number => r.samples.filter((s) => s.tag === "counter" && s.quality === "good").length;

describe("opcua: a wall clock that steps", () => {
  it("an hour forward: the subscription is kept (no watchdog recreate), values keep coming", async () => {
    const { r, stop } = await running(opcuaDevice("step-sub", server.endpoint, { tags: [tag("counter", "ns=1;s=Counter")] }));
    try {
      await r.until(() => counters(r) >= 3, 10_000, "first values");
      stepWallClock(HOUR);
      // the watchdog checks every second (keep-alive 1 s): three of its rounds, values flowing
      const from = counters(r);
      const t0 = performance.now();
      await r.until(() => performance.now() - t0 > 3_200 && counters(r) > from + 10, 10_000, "values for 3 s after the step");
      expect(r.counts.get("subscription_recreated") ?? 0).toBe(0);
      expect(r.states.at(-1)!.state).toBe("online");
    } finally {
      await stop();
    }
  });

  it("an hour back while read-polling every 200 ms: the reads go on at their rate", async () => {
    const { r, stop } = await running(opcuaDevice("step-poll", server.endpoint, { mode: "poll", pollMs: 200, tags: [tag("counter", "ns=1;s=Counter")] }));
    try {
      await r.until(() => counters(r) >= 2, 10_000, "first reads");
      stepWallClock(-HOUR);
      const from = counters(r);
      const t0 = performance.now();
      await r.until(() => counters(r) >= from + 5, 5_000, "five reads after the step (they would wait the hour out)");
      expect(performance.now() - t0).toBeLessThan(5 * 200 + 1_500);
      expect(r.counts.get("skipped_poll") ?? 0).toBe(0);
    } finally {
      await stop();
    }
  });
});
