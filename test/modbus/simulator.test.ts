/**
 * sample.yaml validates with the real config loader, and `probe` reads every one of its tags from
 * the simulator (modbus-serial's ServerTCP) with good quality and plausible raw values.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseConfigText } from "../../src/config/load.js";
import type { ModbusDeviceConfig } from "../../drivers/modbus/config.js";
import { probeModbusDevice, startModbusSimulator, type ModbusSimulator } from "../../drivers/modbus/index.js";
import { createModbusDriver } from "../../drivers/modbus/index.js";
import { makeContext } from "./context.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const samplePath = path.join(here, "../../drivers/modbus/sample.yaml");

let sim: ModbusSimulator;
let devices: ModbusDeviceConfig[];
beforeAll(async () => {
  sim = await startModbusSimulator({ presses: 3 });
  // sample.yaml is a complete config (gateway section included): it validates as it is.
  const res = parseConfigText(fs.readFileSync(samplePath, "utf8"), samplePath);
  if (!res.ok) throw new Error(`sample.yaml invalid:\n${res.problems.map((p) => `${p.line}:${p.col} ${p.path} ${p.message}`).join("\n")}`);
  devices = res.config.devices.filter((d): d is ModbusDeviceConfig => d.driver === "modbus")
    .map((d, i) => ({ ...d, connection: { ...d.connection, port: sim.ports[i]! } as ModbusDeviceConfig["connection"] }));
});
afterAll(async () => { await sim.stop(); });

describe("simulator + sample.yaml + probe", () => {
  it("sample.yaml describes three presses", () => {
    expect(devices.map((d) => d.id)).toEqual(["press-1", "press-2", "press-3"]);
  });

  it("probe reads every tag of every press, good", async () => {
    for (const d of devices) {
      const rows = await probeModbusDevice(d);
      expect(rows.map((r) => r.tag)).toEqual(d.tags.map((t) => t.name));
      for (const r of rows) expect(r, `${d.id}.${r.tag}`).toMatchObject({ quality: "good" });
      const v = new Map(rows.map((r) => [r.tag, r.value]));
      expect(v.get("temp_c")).toBeGreaterThan(400); // raw ×10
      expect(v.get("temp_c")).toBeLessThan(900);
      expect(typeof v.get("spindle_rpm")).toBe("number");
      expect(v.get("part_count")).toBeGreaterThanOrEqual(1000 * Number(d.id.slice(-1)));
      if (d.id === "press-1") {
        expect(v.get("model")).toBe("PRESS-1");
        expect(v.get("energy_kwh")).toBeGreaterThanOrEqual(500);
      }
    }
  });

  it("probe of an unreachable device returns bad rows, not an exception", async () => {
    const d = { ...devices[2]!, connection: { ...devices[2]!.connection, port: 1, timeoutMs: 200 } as ModbusDeviceConfig["connection"] };
    const rows = await probeModbusDevice(d);
    expect(rows.every((r) => r.quality === "bad" && /transport/.test(r.reason ?? ""))).toBe(true);
  });

  it("the lamp coil is writable through the driver and reads back", async () => {
    const d = devices[0]!;
    const driver = createModbusDriver({ ...d, pollMs: 100 });
    const ctx = makeContext();
    const run = driver.run(ctx);
    await ctx.waitState("online", 5000);
    await driver.write!("lamp", true);
    const from = ctx.samples.length;
    const s = await ctx.waitFor((x) => x.tag === "lamp", 3000, from);
    expect(s.value).toBe(true);
    await driver.write!("lamp", false);
    ctx.controller.abort();
    await run;
  });
});
