import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../src/core/logger.js";
import { DriverThreads } from "../../src/runtime/threads/driver-threads.js";
import { startFaultServer, type FaultServer } from "../helpers/modbus-servers.js";
import { makeContext, makeDevice, tcp } from "./context.js";

/** The worker runs built code: these tests run from source, and `npm test` builds first. */
const WORKER = new URL("../../dist/src/runtime/threads/driver-worker.js", import.meta.url);

function capturingLogger(): { log: ReturnType<typeof createLogger>; lines: string[] } {
  const lines: string[] = [];
  return { log: createLogger({ level: "info", destination: { write: (l: string) => { lines.push(l); } } }), lines };
}

/**
 * A thread ended by terminate() may take the samples of the poll it was in with it; any other
 * loss (samples arriving after their driver stopped) fails the test.
 */
const noLoss = (reason: string, n: number): void => {
  if (reason !== "driver_thread_failed") throw new Error(`unexpected loss: ${n} samples, ${reason}`);
};

const tags = [
  { name: "a", area: "holding" as const, address: 5, type: "uint16" as const },
  { name: "b", area: "holding" as const, address: 6, type: "uint16" as const, writable: true },
];

describe("driver threads: a thread that dies", () => {
  let server: FaultServer;
  beforeAll(async () => {
    server = await startFaultServer({ register: (_u, _a, addr) => addr + 7 });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("is restarted with its drivers, logged once, and its devices poll and write again", async () => {
    const { log, lines } = capturingLogger();
    const threads = new DriverThreads(1, log, { onLost: noLoss, workerUrl: WORKER });
    const ctx = makeContext();
    const driver = threads.driver(makeDevice("t1", tcp(server.port, 1, 300), tags, { pollMs: 50 }), "k1");
    const done = driver.run(ctx);
    await ctx.waitFor((s) => s.tag === "a" && s.value === 12, 10_000);
    expect(await ctx.waitState("online", 5000)).toBeGreaterThanOrEqual(0);

    expect(await threads.crash(0)).toBe(1); // terminated, as a crash
    const after = ctx.samples.length;
    const connectingAt = await ctx.waitState("connecting", 5000, ctx.states.length - 1);
    expect(ctx.states[connectingAt]!.error).toMatch(/driver thread restarting/);
    await ctx.waitFor((s) => s.tag === "a" && s.value === 12, 15_000, after);
    await ctx.waitState("online", 5000, connectingAt + 1);
    expect(lines.filter((l) => l.includes("driver thread failed; restarting it"))).toHaveLength(1);
    expect(ctx.counts.get("thread_restart")).toBe(1);

    await driver.write!("b", 99);
    expect(server.writes.get("1/holding/6")).toBe(99);

    ctx.controller.abort();
    await done;
    await threads.close();
    await expect.poll(() => server.openSockets, { timeout: 5000 }).toBe(0);
  });

  it("stops at once, without restarting, when the gateway stops during the backoff", async () => {
    const { log } = capturingLogger();
    const threads = new DriverThreads(1, log, { onLost: noLoss, workerUrl: WORKER });
    const ctx = makeContext();
    const done = threads.driver(makeDevice("t2", tcp(server.port, 2, 300), tags, { pollMs: 50 }), "k2").run(ctx);
    await ctx.waitFor((s) => s.tag === "a", 10_000);
    await threads.crash(0);
    await ctx.waitState("connecting", 5000, ctx.states.length - 1);
    const requests = server.requests;
    ctx.controller.abort();
    await done;
    await threads.close();
    // The restart (at least 250 ms away) never comes.
    await new Promise((r) => setTimeout(r, 1000));
    expect(server.requests).toBe(requests);
  });

  it("fails a write with DRIVER_TRANSPORT while its thread is down, not with a hang", async () => {
    const { log } = capturingLogger();
    const threads = new DriverThreads(1, log, { onLost: noLoss, workerUrl: WORKER });
    const ctx = makeContext();
    const driver = threads.driver(makeDevice("t3", tcp(server.port, 3, 300), tags, { pollMs: 50 }), "k3");
    const done = driver.run(ctx);
    await ctx.waitFor((s) => s.tag === "a", 10_000);
    const crashed = threads.crash(0);
    const write = driver.write!("b", 5);
    await crashed;
    await expect(write).rejects.toMatchObject({ code: "DRIVER_TRANSPORT" });
    ctx.controller.abort();
    await done;
    await threads.close();
  });

  it("counts the samples that die with a thread as dropped, and loses none it had already sent", async () => {
    const { log, lines } = capturingLogger();
    const lost: { reason: string; n: number }[] = [];
    const threads = new DriverThreads(1, log, { onLost: (reason, n) => lost.push({ reason, n }), workerUrl: WORKER });
    const ctx = makeContext();
    const driver = threads.driver(makeDevice("t4", tcp(server.port, 4, 300), tags, { pollMs: 50 }), "k4");
    const done = driver.run(ctx);
    await ctx.waitFor((s) => s.tag === "a", 10_000);
    // The thread exits inside an emit, after counting it and before sending it: that poll's two
    // samples (and nothing that had already been sent) are the loss.
    expect(await threads.crash(0, true)).toBe(1);
    await ctx.waitState("connecting", 5000, ctx.states.length - 1);
    expect(lost).toEqual([{ reason: "driver_thread_failed", n: 2 }]);
    const line = lines.find((l) => l.includes("driver thread failed; restarting it"));
    expect(JSON.parse(line!)).toMatchObject({ lostSamples: 2 });
    // polling resumes on the new thread, and its samples are not counted as lost
    const after = ctx.samples.length;
    await ctx.waitFor((s) => s.tag === "a", 15_000, after);
    ctx.controller.abort();
    await done;
    await threads.close();
    expect(lost).toHaveLength(1);
  });

  it("keeps polling while its samples await durability, up to the in-flight window, then waits for them", async () => {
    const { log } = capturingLogger();
    // a window of 6 samples: three polls of two tags
    const threads = new DriverThreads(1, log, { onLost: noLoss, workerUrl: WORKER, inFlightSamples: 6 });
    const ctx = makeContext();
    // A journal that does not commit: emits are held until released.
    const held: (() => void)[] = [];
    const collect = ctx.emit.bind(ctx);
    ctx.emit = async (batch) => {
      await collect(batch);
      await new Promise<void>((r) => held.push(r));
    };
    const driver = threads.driver(makeDevice("t5", tcp(server.port, 5, 300), tags, { pollMs: 40 }), "k5");
    const done = driver.run(ctx);
    // Polls go on while their samples are in flight: the fourth emit (8 samples) is past the
    // window and is the last until something is released.
    await expect.poll(() => held.length, { timeout: 10_000 }).toBe(4);
    // Nothing more for ten poll periods: the poller waits for its fourth emit.
    const requests = server.requests;
    await new Promise((r) => setTimeout(r, 400));
    expect(held).toHaveLength(4);
    expect(ctx.samples).toHaveLength(8);
    expect(server.requests).toBe(requests);
    // Durable again: polling resumes, and the ticks it waited through are counted as skipped.
    for (const r of held.splice(0)) r();
    await expect.poll(() => held.length, { timeout: 10_000 }).toBeGreaterThanOrEqual(2);
    expect(ctx.samples.length).toBeGreaterThanOrEqual(12);
    expect(ctx.counts.get("skipped_poll") ?? 0).toBeGreaterThan(0);
    for (const r of held.splice(0)) r();
    ctx.controller.abort();
    // Emits held at the end are released as the journal would, so run() can return.
    const release = setInterval(() => { for (const r of held.splice(0)) r(); }, 10);
    await done;
    clearInterval(release);
    await threads.close();
  });
});
