/**
 * Failure handling against real servers: illegal-address split, exception naming, the `error`
 * state, demotion of a silent unit while its neighbours on the same connection keep their rate,
 * reconnect backoff, recovery from a server that was down at start, and write-back.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import net from "node:net";
import { createModbusDriver } from "../../drivers/modbus/index.js";
import { isFloorgateError } from "../../src/core/errors.js";
import { freePort, startFaultServer, type FaultServer } from "../helpers/modbus-servers.js";
import { makeContext, makeDevice, tcp } from "./context.js";
import { wire, words } from "./vectors.js";

let server: FaultServer;
/** unit 2: address 7 is refused while this is true */
let refuse7 = false;
beforeAll(async () => {
  server = await startFaultServer({
    // unit 1: address 3 and 60..69 do not exist; unit 5: every read is refused
    register: (u, _area, a) => (u === 1 && (a === 3 || (a >= 60 && a < 70)) ? -1 : u === 2 && a === 7 && refuse7 ? -1 : a),
    behave: (r) => (r.unitId === 9 ? "silent" : r.unitId === 5 ? { exception: 4 } : "answer"),
  });
});
afterAll(async () => { await server.stop(); });

async function stop(ctx: ReturnType<typeof makeContext>, run: Promise<void>): Promise<void> {
  ctx.controller.abort();
  await run;
}

describe("exceptions", () => {
  it("a merged read refused with illegal address is split: only the offending tags go bad, and the split is remembered", async () => {
    const tags = [0, 1, 2, 3, 4, 5, 6, 62, 80].map((a) => ({ name: `h${a}`, area: "holding" as const, address: a, type: "uint16" as const }));
    const cfg = makeDevice("split", tcp(server.port, 1), tags, { pollMs: 100, maxGap: 100 });
    const ctx = makeContext();
    const run = createModbusDriver(cfg).run(ctx);
    await ctx.waitFor((s) => s.tag === "h80", 3000);
    const splitsAfterFirst = ctx.counts.get("split_read") ?? 0;
    const from = ctx.samples.length;
    await ctx.waitFor((s) => s.tag === "h80", 3000, from); // a second poll
    await stop(ctx, run);
    const first = new Map(ctx.samples.slice(0, from).map((s) => [s.tag, s]));
    for (const a of [0, 1, 2, 4, 5, 6, 80]) expect(first.get(`h${a}`)).toMatchObject({ value: a, quality: "good" });
    for (const a of [3, 62]) expect(first.get(`h${a}`)).toMatchObject({ value: null, quality: "bad", reason: "modbus exception 2: illegal data address" });
    expect(ctx.state).toBe("online");
    expect(splitsAfterFirst).toBeGreaterThan(0);
    expect(ctx.counts.get("split_read")).toBe(splitsAfterFirst); // remembered: no re-splitting
    // bad tags are reported once per reason, good tags every poll
    expect(ctx.samples.filter((s) => s.tag === "h3").length).toBe(1);
  });

  it("a tag that goes bad, recovers and goes bad again is reported bad once each time, good every poll between", async () => {
    refuse7 = true;
    const tags = [6, 7].map((a) => ({ name: `h${a}`, area: "holding" as const, address: a, type: "uint16" as const }));
    const cfg = makeDevice("flap", tcp(server.port, 2), tags, { pollMs: 50, tagByTag: true });
    const ctx = makeContext();
    const run = createModbusDriver(cfg).run(ctx);
    const polls = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++) await ctx.waitFor((s) => s.tag === "h6", 3000, ctx.samples.length);
    };
    await polls(3);
    refuse7 = false;
    const recovered = ctx.samples.length;
    await ctx.waitFor((s) => s.tag === "h7" && s.quality === "good", 3000, recovered);
    await polls(3);
    refuse7 = true;
    const badAgain = ctx.samples.length;
    await ctx.waitFor((s) => s.tag === "h7" && s.quality === "bad", 3000, badAgain);
    await polls(3);
    await stop(ctx, run);
    const h7 = ctx.samples.filter((s) => s.tag === "h7").map((s) => s.quality);
    // bad (once), then good on every poll (at least the 3 waited for), then bad (once)
    const runs = h7.reduce<string[]>((acc, q) => (acc[acc.length - 1] === q ? acc : [...acc, q]), []);
    expect(runs).toEqual(["bad", "good", "bad"]);
    expect(h7.filter((q) => q === "bad")).toHaveLength(2);
    expect(h7.filter((q) => q === "good").length).toBeGreaterThanOrEqual(3);
    expect(ctx.samples.filter((s) => s.tag === "h6").every((s) => s.quality === "good")).toBe(true);
  });

  it("every read answered with an exception: tags bad with the exception named, device `error`", async () => {
    const cfg = makeDevice("refused", tcp(server.port, 5), [
      { name: "a", area: "holding", address: 0, type: "uint16" }, { name: "b", area: "coil", address: 0, type: "bool" }], { pollMs: 100 });
    const ctx = makeContext();
    const run = createModbusDriver(cfg).run(ctx);
    await ctx.waitState("error", 3000);
    await stop(ctx, run);
    expect(ctx.samples.find((s) => s.tag === "a")).toMatchObject({ quality: "bad", reason: "modbus exception 4: server device failure" });
    expect(ctx.states.find((s) => s.state === "error")?.error).toMatch(/server device failure/);
  });
});

describe("demotion", () => {
  it("a silent unit is demoted after maxTimeouts; its neighbours on the same connection keep their rate", async () => {
    const pollMs = 200;
    const timeoutMs = 100;
    const mk = (id: string, unit: number) => makeDevice(id, tcp(server.port, unit, timeoutMs),
      [{ name: "a", area: "holding", address: 10, type: "uint16" }, { name: "b", area: "holding", address: 40, type: "uint16" }],
      { pollMs, maxGap: 0, maxTimeouts: 3, reconnectMaxMs: 1000 });
    const devs = [mk("u1", 1), mk("u2", 2), mk("silent", 9)];
    const ctxs = devs.map(() => makeContext());
    const runs = devs.map((d, i) => createModbusDriver(d).run(ctxs[i]!));
    const silent = ctxs[2]!;
    await silent.waitCount("demoted", 1, 3000);
    expect(silent.state).toBe("offline");
    // polls already queued behind the silent unit's first timeouts finish late; measure from the next tick on
    const t0 = (await ctxs[0]!.waitFor(() => true, 2000, ctxs[0]!.samples.length)).ts + 1;
    const from = ctxs[0]!.samples.length;
    await ctxs[0]!.waitFor((s) => s.ts > t0 + 3000, 5000, from);
    const timeoutsAt3s = silent.counts.get("timeout") ?? 0;
    expect(silent.counts.get("demoted")).toBe(1);
    for (const [i, c] of ctxs.entries()) { c.controller.abort(); await runs[i]; }

    // the neighbours: every interval between polls within pollMs + timeout + 10 %
    for (const c of ctxs.slice(0, 2)) {
      const ts = c.samples.filter((s) => s.tag === "a" && s.ts >= t0).map((s) => s.ts);
      const gaps = ts.slice(1).map((t, i) => t - ts[i]!);
      expect(Math.max(...gaps)).toBeLessThanOrEqual(pollMs + timeoutMs * 1.1 + 10);
      expect(ts.length).toBeGreaterThanOrEqual(13); // ≈ 15 polls in 3 s
      expect(c.state).toBe("online");
    }
    // the silent one: demoted to backoff retries (≤ 1 s apart), not 10 requests/s
    expect(timeoutsAt3s).toBeLessThan(12); // not 2 per 200 ms poll (30)
    expect(silent.samples.filter((s) => s.quality === "good")).toHaveLength(0);
    expect(silent.samples.find((s) => s.tag === "a")?.reason).toMatch(/^timeout/);
  });
});

describe("connection loss", () => {
  it("a server that is down at start: connecting → offline, then online within reconnectMaxMs + pollMs of its start", async () => {
    const port = await freePort();
    const reconnectMaxMs = 800;
    const pollMs = 100;
    const cfg = makeDevice("late-plc", tcp(port, 1, 200), [{ name: "a", area: "holding", address: 5, type: "uint16" }], { pollMs, reconnectMaxMs });
    const ctx = makeContext();
    const run = createModbusDriver(cfg).run(ctx);
    await ctx.waitState("offline", 3000);
    expect(ctx.states[0]!.state).toBe("connecting");
    // let the backoff grow to its cap before the PLC appears
    await ctx.waitFor(() => false, 2000).catch(() => {});
    const plc = await startFaultServer({ port });
    const t = Date.now();
    const s = await ctx.waitFor((x) => x.quality === "good", reconnectMaxMs + pollMs + 200);
    expect(s.ts - t).toBeLessThanOrEqual(reconnectMaxMs + pollMs + 50);
    expect(ctx.state).toBe("online");
    await stop(ctx, run);
    await plc.stop();
  });

  it("reconnect attempts back off exponentially with jitter, capped at reconnectMaxMs", async () => {
    // a peer that accepts and hangs up at once: every attempt connects and is lost
    const accepted: number[] = [];
    const peer = net.createServer((s) => { accepted.push(Date.now()); s.destroy(); });
    await new Promise<void>((r) => peer.listen(0, "127.0.0.1", () => r()));
    const port = (peer.address() as net.AddressInfo).port;
    const cfg = makeDevice("flappy", tcp(port, 1, 100), [{ name: "a", area: "holding", address: 5, type: "uint16" }], { pollMs: 20, reconnectMaxMs: 400 });
    const ctx = makeContext();
    const run = createModbusDriver(cfg).run(ctx);
    await ctx.waitFor(() => false, 3000).catch(() => {});
    await stop(ctx, run);
    await new Promise<void>((r) => peer.close(() => r()));
    const gaps = accepted.slice(1).map((t, i) => t - accepted[i]!);
    expect(accepted.length).toBeGreaterThan(5);
    expect(accepted.length).toBeLessThan(30); // not one per 20 ms poll (150)
    expect(Math.max(...gaps)).toBeLessThanOrEqual(400 + 20 + 30);
    expect(gaps.slice(-3).every((g) => g >= 200 - 5)).toBe(true); // at the cap: within [max/2, max]
    expect(ctx.state).toBe("offline");
  });
});

describe("write-back", () => {
  it("coil (FC5), uint16 (FC6) and float32 CDAB (FC16) round-trip; others are refused", async () => {
    const cfg = makeDevice("writer", tcp(server.port, 3), [
      { name: "lamp", area: "coil", address: 2, type: "bool", writable: true },
      { name: "setpoint", area: "holding", address: 100, type: "uint16", writable: true },
      { name: "speed", area: "holding", address: 110, type: "float32", byteOrder: "CDAB", writable: true },
      { name: "big", area: "holding", address: 120, type: "int64", byteOrder: "DCBA", writable: true },
      { name: "ro", area: "holding", address: 130, type: "uint16" },
      { name: "inp", area: "input", address: 0, type: "uint16", writable: true },
    ], { pollMs: 100 });
    const ctx = makeContext();
    const driver = createModbusDriver(cfg);
    const run = driver.run(ctx);
    await ctx.waitState("online", 3000);
    await driver.write!("lamp", true);
    await driver.write!("setpoint", 1234);
    await driver.write!("speed", 123.456);
    await driver.write!("big", "-1234567890123");
    expect(server.writes.get("3/coil/2")).toBe(1);
    expect(server.writes.get("3/holding/100")).toBe(1234);
    expect([110, 111].map((a) => server.writes.get(`3/holding/${a}`))).toEqual(words(wire([0x42, 0xf6, 0xe9, 0x79], "CDAB")));
    const from = ctx.samples.length;
    await ctx.waitFor((s) => s.tag === "speed", 2000, from);
    const latest = new Map(ctx.samples.slice(from).map((s) => [s.tag, s.value]));
    expect(latest.get("lamp")).toBe(true);
    expect(latest.get("setpoint")).toBe(1234);
    expect(latest.get("speed")).toBe(Math.fround(123.456));
    expect(latest.get("big")).toBe(-1234567890123);
    for (const [tag, v] of [["ro", 1], ["inp", 1], ["nope", 1], ["setpoint", 70000]] as const) {
      const err = await driver.write!(tag, v).then(() => undefined, (e: unknown) => e);
      expect(isFloorgateError(err, "WRITE_REFUSED"), tag).toBe(true);
    }
    const exc = await createModbusDriver(makeDevice("w5", tcp(server.port, 5), [{ name: "x", area: "holding", address: 1, type: "uint16", writable: true }]))
      .write!("x", 1).then(() => undefined, (e: unknown) => e);
    expect(isFloorgateError(exc, "DRIVER_EXCEPTION")).toBe(true);
    await stop(ctx, run);
  });
});
