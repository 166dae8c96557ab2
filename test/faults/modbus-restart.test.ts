/**
 * Pass line (field note "Modbus server restarted 100 times"): the server is restarted 100 times
 * under the driver: each time the device is back online (fresh good values) within two poll
 * periods, and no socket leaks on either side.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { createModbusDriver } from "../../drivers/modbus/index.js";
import { startFaultServer, type FaultServer } from "../helpers/modbus-servers.js";
import { makeContext, makeDevice, tcp } from "../modbus/context.js";

const tcpHandles = (): number => process.getActiveResourcesInfo().filter((r) => r === "TCPSocketWrap").length;

let server: FaultServer;
beforeAll(async () => { server = await startFaultServer(); });
afterAll(async () => { await server.stop(); });

describe("server restarts", () => {
  it("100 restarts: back within two poll periods each time, no leaked sockets", async () => {
    const pollMs = 200;
    const before = tcpHandles();
    const cfg = makeDevice("press-r", tcp(server.port, 1, 500), [{ name: "a", area: "holding", address: 7, type: "uint16" }], { pollMs });
    const ctx = makeContext();
    const run = createModbusDriver(cfg).run(ctx);
    await ctx.waitFor((s) => s.quality === "good", 5000);
    const gaps: number[] = [];
    for (let i = 0; i < 100; i++) {
      await server.restart();
      const t = Date.now();
      const from = ctx.samples.length;
      const s = await ctx.waitFor((x) => x.quality === "good" && x.ts >= t, 2 * pollMs + 100, from);
      gaps.push(s.ts - t);
      expect(ctx.state).toBe("online");
      expect(server.openSockets).toBeLessThanOrEqual(1);
    }
    expect(Math.max(...gaps)).toBeLessThanOrEqual(2 * pollMs);
    ctx.controller.abort();
    await run;
    // every client socket released: server side sees none, process holds no more than before
    await new Promise<void>((resolve, reject) => {
      const t0 = Date.now();
      const iv = setInterval(() => {
        if (server.openSockets === 0 && tcpHandles() <= before) { clearInterval(iv); resolve(); }
        else if (Date.now() - t0 > 3000) { clearInterval(iv); reject(new Error(`leak: server ${server.openSockets}, handles ${tcpHandles()} > ${before}`)); }
      }, 20);
    });
  }, 60_000);
});
