/**
 * What was only unit-tested, against a real node-opcua server (test/helpers/opcua-server.ts):
 *  - a percent deadband is the server's DataChangeFilter over the node's EURange (Pressure,
 *    0..1000: 10 % is 100 bar), not an absolute 10; a node without EURange refuses it and only
 *    that tag is `bad`;
 *  - Int64 / UInt64 writes reach the server as Int64 / UInt64 Variants with the exact value
 *    (beyond 2^32 and negative), and what those types cannot hold is refused before sending.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DataType } from "node-opcua";
import { isFloorgateError } from "../../src/core/errors.js";
import { startOpcuaServer, type OpcuaTestServer } from "../helpers/opcua-server.js";
import { opcuaDevice, running, tag, type Recorder } from "./context.js";

let server: OpcuaTestServer;
const unhandled: unknown[] = [];
const onUnhandled = (r: unknown): void => { unhandled.push(r); };
beforeAll(async () => { process.on("unhandledRejection", onUnhandled); server = await startOpcuaServer(); });
afterAll(async () => { await server?.dispose(); process.off("unhandledRejection", onUnhandled); expect(unhandled.map(String)).toEqual([]); });

const valuesOf = (r: Recorder, t: string): unknown[] => r.samples.filter((s) => s.tag === t && s.quality === "good").map((s) => s.value);

describe("opcua against a real server", () => {
  it("percent deadband: the server filters on 10 % of the EURange span; a node without EURange refuses it, the other tags run", async () => {
    // samplingMs 0: the server hands every change to both items at the same moments (its
    // exception-based path), so `every` seeing a value means `pct` has been offered it too.
    const cfg = opcuaDevice("db-1", server.endpoint, {
      samplingMs: 0,
      tags: [
        tag("every", "ns=1;s=Pressure"),
        tag("pct", "ns=1;s=Pressure", { deadband: 10, deadbandType: "percent" }),
        tag("abs", "ns=1;s=Pressure", { deadband: 10 }),
        tag("no_range", "ns=1;s=Setpoint", { deadband: 10, deadbandType: "percent" }),
      ],
    });
    server.set("Pressure", 500);
    const { r, stop } = await running(cfg);
    try {
      await r.until(() => ["every", "pct", "abs"].every((t) => valuesOf(r, t).includes(500)), 10_000, "the initial 500 on every Pressure tag");
      // Each step from the last value the percent item reported: below 100 is filtered, above passes.
      for (const v of [550, 560, 620, 650, 700, 730, 600, 595]) {
        server.set("Pressure", v);
        await r.until(() => valuesOf(r, "every").at(-1) === v, 5_000, `Pressure ${v} seen by the item without deadband`);
      }
      // each value reached all three items at the same moment: what `every` saw, the others were offered
      expect(valuesOf(r, "every")).toEqual([500, 550, 560, 620, 650, 700, 730, 600, 595]);
      expect(valuesOf(r, "pct")).toEqual([500, 620, 730, 600]);
      // an absolute deadband of 10 passes a step that exceeds 10 (Part 4, 7.22.2: |Δ| > deadband): 550 → 560 and 600 → 595 do not
      expect(valuesOf(r, "abs")).toEqual([500, 550, 620, 650, 700, 730, 600]);
      const refused = r.samples.filter((s) => s.tag === "no_range");
      expect(refused.length).toBeGreaterThan(0);
      expect(refused.every((s) => s.quality === "bad")).toBe(true);
      expect(refused[0]!.reason).toMatch(/server refused to monitor ns=1;s=Setpoint: Bad(FilterNotAllowed|MonitoredItemFilterUnsupported|DeadbandFilterInvalid)/);
      expect(r.counts.get("tag_refused")).toBe(1);
      expect(r.states.at(-1)!.state).toBe("online");
    } finally {
      await stop();
    }
  });

  it("Int64 / UInt64 writes: sent as the node's type with the exact value; what the type cannot hold is refused", async () => {
    const cfg = opcuaDevice("w64", server.endpoint, {
      tags: [tag("big", "ns=1;s=Big", { writable: true }), tag("ubig", "ns=1;s=UBig", { writable: true })],
    });
    const { r, driver, stop } = await running(cfg);
    try {
      await driver.write!("big", 2 ** 40 + 3);
      expect(server.writtenType("Big")).toBe(DataType.Int64);
      expect(server.value("Big")).toEqual([256, 3]);
      await driver.write!("big", -5);
      expect(server.value("Big")).toEqual([0xffffffff, 0xfffffffb]);
      await driver.write!("big", "-9007199254740991");
      expect(server.value("Big")).toEqual([0xffe00000, 1]);
      await driver.write!("ubig", Number.MAX_SAFE_INTEGER);
      expect(server.writtenType("UBig")).toBe(DataType.UInt64);
      expect(server.value("UBig")).toEqual([0x1fffff, 0xffffffff]);
      const refused = async (t: string, v: number | string): Promise<string> => {
        try { await driver.write!(t, v); } catch (err) { expect(isFloorgateError(err, "WRITE_REFUSED"), String(err)).toBe(true); return (err as Error).message; }
        throw new Error(`write of ${String(v)} to ${t} was accepted`);
      };
      expect(await refused("ubig", -1)).toMatch(/out of range of UInt64/);
      expect(await refused("big", 2 ** 53)).toMatch(/out of range of Int64/);
      expect(await refused("big", 1.5)).toMatch(/not an integer/);
      expect(server.value("UBig")).toEqual([0x1fffff, 0xffffffff]); // nothing sent
      // read back through a subscription: numbers again, exact
      const readBack = opcuaDevice("r64", server.endpoint, { tags: [tag("big", "ns=1;s=Big"), tag("ubig", "ns=1;s=UBig")] });
      const reader = await running(readBack);
      try {
        await reader.r.until(() => valuesOf(reader.r, "big").length > 0 && valuesOf(reader.r, "ubig").length > 0, 10_000, "the written values read back");
        expect(valuesOf(reader.r, "big").at(-1)).toBe(-9007199254740991);
        expect(valuesOf(reader.r, "ubig").at(-1)).toBe(Number.MAX_SAFE_INTEGER);
      } finally {
        await reader.stop();
      }
      expect(r.states.at(-1)!.state).toBe("online");
    } finally {
      await stop();
    }
  });
});
