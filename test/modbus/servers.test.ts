/**
 * Every type and byte order read through the driver from two independent servers: modbus-serial's
 * ServerTCP (in process) and pymodbus 3.0 (a Python process).
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { createModbusDriver } from "../../drivers/modbus/index.js";
import { startPymodbus, startServerTcp, type RegisterImage, type RunningServer } from "../helpers/modbus-servers.js";
import { makeContext, makeDevice, tcp } from "./context.js";
import { ORDERS, VECTORS, wire, words } from "./vectors.js";
import type { ModbusTagConfig } from "../../drivers/modbus/config.js";

type TagSpec = Partial<ModbusTagConfig> & Pick<ModbusTagConfig, "name" | "area" | "address" | "type">;

// Each vector × order gets its own 4-register slot in holding and in input registers.
const tags: TagSpec[] = [];
const expected = new Map<string, { value: unknown; quality: string }>();
const image: RegisterImage = { holding: {}, input: {}, coil: {}, discrete: {} };
let slot = 0;
for (const v of VECTORS) {
  for (const order of ORDERS) {
    for (const area of ["holding", "input"] as const) {
      const address = slot * 4;
      words(wire(v.be, order)).forEach((w, i) => { image[area]![address + i] = w; });
      const name = `${area}_${v.type}_${order}_${slot}`;
      tags.push({ name, area, address, type: v.type, byteOrder: order });
      expected.set(name, { value: v.value, quality: v.quality ?? "good" });
    }
    slot++;
  }
}
// strings, bits of a register, coils, discrete inputs
const base = slot * 4;
words([..."PRESS-01"].map((c) => c.charCodeAt(0)).concat([0, 0])).forEach((w, i) => { image.holding![base + i] = w; });
tags.push({ name: "model", area: "holding", address: base, type: "string", length: 5 });
expected.set("model", { value: "PRESS-01", quality: "good" });
image.holding![base + 10] = 0b1000_0000_0000_0100;
tags.push({ name: "bit2", area: "holding", address: base + 10, type: "bool", bit: 2 });
tags.push({ name: "bit3", area: "holding", address: base + 10, type: "bool", bit: 3 });
tags.push({ name: "bit15", area: "holding", address: base + 10, type: "bool", bit: 15 });
expected.set("bit2", { value: true, quality: "good" });
expected.set("bit3", { value: false, quality: "good" });
expected.set("bit15", { value: true, quality: "good" });
for (const [i, on] of [[0, 1], [1, 0], [7, 1], [8, 1], [30, 0]] as const) {
  image.coil![i] = on; image.discrete![i + 100] = on ? 0 : 1;
  tags.push({ name: `coil${i}`, area: "coil", address: i, type: "bool" });
  tags.push({ name: `di${i + 100}`, area: "discrete", address: i + 100, type: "bool" });
  expected.set(`coil${i}`, { value: on === 1, quality: "good" });
  expected.set(`di${i + 100}`, { value: on !== 1, quality: "good" });
}

const servers: Record<string, RunningServer> = {};
beforeAll(async () => {
  servers["modbus-serial ServerTCP"] = await startServerTcp(image);
  servers["pymodbus"] = await startPymodbus(image);
});
afterAll(async () => {
  await Promise.all(Object.values(servers).map((s) => s.stop()));
});

describe.each(["modbus-serial ServerTCP", "pymodbus"])("every type and byte order from %s", (server) => {
  it("decodes every tag exactly, in merged reads", async () => {
    const cfg = makeDevice(`dev-${server.length}`, tcp(servers[server]!.port, 3, 2000), tags, { pollMs: 60_000 });
    const ctx = makeContext();
    const driver = createModbusDriver(cfg);
    const running = driver.run(ctx);
    await ctx.waitState("online", 10_000);
    await ctx.waitFor((s) => s.tag === "di130", 10_000);
    ctx.controller.abort();
    await running;
    const got = new Map(ctx.samples.map((s) => [s.tag, s]));
    expect(got.size).toBe(tags.length);
    for (const [name, want] of expected) {
      expect({ name, value: got.get(name)?.value, quality: got.get(name)?.quality }).toEqual({ name, ...want });
    }
    expect(ctx.samples.every((s) => s.device === cfg.id && typeof s.ts === "number")).toBe(true);
    // merged: far fewer requests than tags (no timeouts or splits either)
    expect(ctx.counts.get("timeout") ?? 0).toBe(0);
  });
});
