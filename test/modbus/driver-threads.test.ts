import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../src/core/logger.js";
import { DriverThreads } from "../../src/runtime/driver-threads.js";
import { startFaultServer, type FaultServer } from "../helpers/modbus-servers.js";
import { makeContext, makeDevice, tcp } from "./context.js";

/** The worker runs built code: these tests run from source, and `npm test` builds first. */
const WORKER = new URL("../../dist/src/runtime/driver-worker.js", import.meta.url);

function capturingLogger(): { log: ReturnType<typeof createLogger>; lines: string[] } {
  const lines: string[] = [];
  return { log: createLogger({ level: "info", destination: { write: (l: string) => { lines.push(l); } } }), lines };
}

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
    const threads = new DriverThreads(1, log, WORKER);
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
    const threads = new DriverThreads(1, log, WORKER);
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
    const threads = new DriverThreads(1, log, WORKER);
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
});
