/**
 * Pass line (field note "Modbus late replies past the timeout, over 65,536 transactions"): a server
 * that answers every tenth request after the driver's timeout, over more than 65,536
 * transactions on one connection (so 16-bit transaction ids wrap): no value may ever reach the
 * wrong tag. Each register holds a value derived from its own unit id and address, so any
 * mismatch is visible.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { createModbusDriver } from "../../drivers/modbus/index.js";
import { startFaultServer, type FaultServer } from "../helpers/modbus-servers.js";
import { makeContext, makeDevice, tcp } from "../modbus/context.js";

const TIMEOUT = 3;
const value = (unitId: number, address: number): number => (unitId === 1 ? address : address + 20_000);

let server: FaultServer;
beforeAll(async () => {
  server = await startFaultServer({
    register: (u, _area, a) => value(u, a),
    // every tenth reply arrives after the timeout; the next one is slow enough that the late
    // reply lands while it is in flight — the case that fools a client matching by arrival order
    behave: (r) => (r.n % 10 === 0 ? { lateMs: TIMEOUT + 1 } : r.n % 10 === 1 ? { lateMs: 2 } : "answer"),
  });
});
afterAll(async () => { await server.stop(); });

describe("late replies", () => {
  it("over 65,536+ transactions, zero values given to the wrong tag", async () => {
    // two devices (unit ids 1 and 2) behind one gateway share one connection; tags far apart so
    // every tag is its own request with its own expected value
    const addrs = [0, 1000, 2000, 3000, 4000, 5000, 6000, 7000];
    const mk = (id: string, unitId: number) => makeDevice(id, tcp(server.port, unitId, TIMEOUT),
      addrs.map((a) => ({ name: `r${a}`, area: "holding" as const, address: a + unitId, type: "uint16" as const })),
      { pollMs: 5, maxGap: 0, maxTimeouts: 1000 });
    const devs = [mk("gw-a", 1), mk("gw-b", 2)];
    const ctxs = devs.map(() => makeContext());
    const runs = devs.map((d, i) => createModbusDriver(d).run(ctxs[i]!));
    const target = 66_000;
    await new Promise<void>((resolve, reject) => {
      const t0 = Date.now();
      const iv = setInterval(() => {
        if (server.requests >= target) { clearInterval(iv); resolve(); }
        else if (Date.now() - t0 > 150_000) { clearInterval(iv); reject(new Error(`only ${server.requests} requests`)); }
      }, 100);
    });
    for (const c of ctxs) c.controller.abort();
    await Promise.all(runs);

    let good = 0;
    let wrong = 0;
    devs.forEach((d, i) => {
      const unitId = d.connection.unitId;
      for (const s of ctxs[i]!.samples) {
        if (s.quality !== "good") continue;
        good++;
        if (s.value !== value(unitId, Number(s.tag.slice(1)) + unitId)) wrong++;
      }
    });
    const late = ctxs.reduce((n, c) => n + (c.counts.get("late_reply") ?? 0), 0);
    const timeouts = ctxs.reduce((n, c) => n + (c.counts.get("timeout") ?? 0), 0);
    expect(server.requests).toBeGreaterThan(65_536);
    expect(wrong).toBe(0);
    expect(good).toBeGreaterThan(50_000);
    expect(timeouts).toBeGreaterThan(5000);
    expect(late).toBeGreaterThan(5000); // the late replies did arrive, and were discarded
    expect(server.openSockets).toBeLessThanOrEqual(1);
  }, 180_000);
});
