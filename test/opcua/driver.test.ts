/**
 * The OPC UA driver against a real node-opcua server: values, status mapping, units from
 * EUInformation, poll mode, a bad NodeId beside good tags, write-back with the node's data type.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { StatusCodes } from "node-opcua";
import { isFloorgateError } from "../../src/core/errors.js";
import { startOpcuaServer, type OpcuaTestServer } from "../helpers/opcua-server.js";
import { opcuaDevice, running, tag, type Recorder } from "./context.js";

let server: OpcuaTestServer;
const unhandled: unknown[] = [];
const onUnhandled = (r: unknown): void => { unhandled.push(r); };
beforeAll(async () => { process.on("unhandledRejection", onUnhandled); server = await startOpcuaServer(); });
afterAll(async () => { await server?.dispose(); process.off("unhandledRejection", onUnhandled); expect(unhandled.map(String)).toEqual([]); });

const last = (r: Recorder, t: string) => r.samples.filter((s) => s.tag === t).at(-1);

describe("opcua driver", () => {
  it("subscribe: values with source timestamps, status mapped, unit from EUInformation, arrays as JSON, a bad NodeId bad while the others run", async () => {
    const cfg = opcuaDevice("sub-1", server.endpoint, {
      tags: [
        tag("counter", "ns=1;s=Counter"), tag("temp", "ns=1;s=Temperature"), tag("name", "ns=1;s=Name"),
        tag("running", "ns=1;s=Running"), tag("q", "ns=1;s=Quality"), tag("arr", "ns=1;s=Array"),
        tag("missing", "ns=1;s=DoesNotExist"), tag("setpoint", "ns=1;s=Setpoint", { unit: "degC" }),
      ],
    });
    const { r, stop } = await running(cfg);
    try {
      await r.until(() => r.samples.filter((s) => s.tag === "counter" && s.quality === "good").length >= 3, 10_000, "three counter changes");
      await r.until(() => ["temp", "name", "running", "q", "arr", "missing", "setpoint"].every((t) => last(r, t)), 10_000, "every tag once");
      const c = r.samples.filter((s) => s.tag === "counter");
      expect(typeof c[0]!.value).toBe("number");
      expect(Math.abs(c.at(-1)!.ts - Date.now())).toBeLessThan(5_000);
      expect(last(r, "temp")).toMatchObject({ quality: "good", unit: "°C" });
      expect(last(r, "setpoint")!.unit).toBeUndefined(); // the config's unit wins (applied by the runtime)
      expect(last(r, "name")).toMatchObject({ value: "oven-1", quality: "good" });
      expect(last(r, "running")).toMatchObject({ value: true, quality: "good" });
      expect(last(r, "q")).toMatchObject({ value: 1.5, quality: "uncertain", reason: expect.stringContaining("UncertainLastUsableValue") });
      expect(last(r, "arr")).toMatchObject({ value: "[1,2.5,3]", quality: "good" });
      expect(last(r, "missing")).toMatchObject({ quality: "bad", reason: expect.stringContaining("BadNodeIdUnknown") });
      // the others keep running after the refusal
      const n = r.samples.filter((s) => s.tag === "counter").length;
      await r.until(() => r.samples.filter((s) => s.tag === "counter").length > n + 2, 5_000, "more counter values");
      server.setStatus(StatusCodes.BadSensorFailure);
      expect(r.states.at(-1)!.state).toBe("online");
    } finally {
      server.setStatus(StatusCodes.UncertainLastUsableValue);
      await stop();
    }
  });

  it("poll: batched reads every pollMs, bad status and bad NodeId as bad samples", async () => {
    server.setStatus(StatusCodes.BadSensorFailure);
    const cfg = opcuaDevice("poll-1", server.endpoint, {
      mode: "poll", pollMs: 100,
      tags: [tag("counter", "ns=1;s=Counter"), tag("q", "ns=1;s=Quality"), tag("missing", "ns=1;s=Nope"), tag("temp", "ns=1;s=Temperature")],
    });
    const { r, stop } = await running(cfg);
    try {
      await r.until(() => r.samples.filter((s) => s.tag === "counter").length >= 5, 10_000, "five polls");
      expect(last(r, "q")).toMatchObject({ quality: "bad", value: null, reason: expect.stringContaining("BadSensorFailure") });
      expect(last(r, "missing")).toMatchObject({ quality: "bad", reason: expect.stringContaining("BadNodeIdUnknown") });
      expect(last(r, "temp")).toMatchObject({ quality: "good", unit: "°C" });
      const counters = r.samples.filter((s) => s.tag === "counter").map((s) => s.value as number);
      expect(counters.at(-1)!).toBeGreaterThan(counters[0]!);
    } finally {
      server.setStatus(StatusCodes.UncertainLastUsableValue);
      await stop();
    }
  });

  it("write-back: coerced to the node's DataType; refused when it cannot be expressed", async () => {
    const cfg = opcuaDevice("w-1", server.endpoint, {
      tags: [tag("setpoint", "ns=1;s=Setpoint", { writable: true }), tag("level", "ns=1;s=Level", { writable: true }), tag("running", "ns=1;s=Running", { writable: true }), tag("name", "ns=1;s=Name", { writable: true }), tag("counter", "ns=1;s=Counter")],
    });
    const { driver, stop } = await running(cfg);
    try {
      await driver.write!("setpoint", 200.5);
      expect(server.value("Setpoint")).toBe(200.5);
      await driver.write!("level", "12");
      expect(server.value("Level")).toBe(12);
      await driver.write!("running", false);
      expect(server.value("Running")).toBe(false);
      const refused = async (t: string, v: number | string | boolean): Promise<string> => {
        try { await driver.write!(t, v); } catch (err) { expect(isFloorgateError(err, "WRITE_REFUSED"), String(err)).toBe(true); return (err as Error).message; }
        throw new Error(`write of ${String(v)} to ${t} was accepted`);
      };
      expect(await refused("level", 70_000)).toMatch(/out of range of Int16/);
      expect(await refused("level", 1.5)).toMatch(/not an integer/);
      expect(await refused("running", "maybe")).toMatch(/not a Boolean/);
      expect(await refused("name", "x")).toMatch(/BadNotWritable|BadUserAccessDenied/);
      expect(await refused("counter", 1)).toMatch(/not writable/);
    } finally {
      await stop();
    }
  });

  it("a subscription deleted on the server (it goes quiet) is recreated on the same session; values resume", async () => {
    const cfg = opcuaDevice("quiet-1", server.endpoint, { samplingMs: 100 });
    const { r, stop } = await running(cfg);
    try {
      await r.until(() => r.samples.some((s) => s.tag === "counter" && s.quality === "good"), 10_000, "a value");
      const sessions = server.sessionCount();
      expect(server.dropSubscriptions()).toBeGreaterThanOrEqual(1);
      await r.until(() => (r.counts.get("subscription_recreated") ?? 0) >= 1, 15_000, "subscription recreated");
      const from = r.samples.length;
      await r.until(() => r.samples.slice(from).some((s) => s.tag === "counter" && s.quality === "good"), 10_000, "values again");
      expect(server.sessionCount()).toBe(sessions);
      expect(server.subscriptionCount()).toBe(1);
      expect(r.states.filter((s) => s.state === "offline")).toEqual([]);
    } finally {
      await stop();
    }
  });
});
