/**
 * `floorgate simulate` for Modbus: the driver descriptor's `simulator`. Every Modbus TCP device
 * whose host is this machine (loopback) is served on its host:port and unit id with every one of
 * its tags (simulator.ts, `startConfiguredSimulator`); devices sharing a host:port share one
 * simulated gateway. The server module is imported by `start` only: driver threads load this file.
 */
import type { DriverSimulator } from "../../src/core/plugin.js";
import { isLoopback } from "../../src/core/net.js";
import type { ModbusDeviceConfig } from "./config.js";
import type { SimulatedEndpoint } from "./simulator.js";

/** The devices grouped by host:port as the simulator serves them; each must be `accepts`ed. */
export function simulatedEndpoints(devices: readonly ModbusDeviceConfig[]): SimulatedEndpoint[] {
  const byKey = new Map<string, SimulatedEndpoint>();
  for (const d of devices) {
    if (d.connection.transport !== "tcp") continue;
    const { port, unitId } = d.connection;
    // One listener per port: "localhost" and 127.0.0.1 are the same socket address here.
    const host = d.connection.host === "localhost" ? "127.0.0.1" : d.connection.host;
    const key = `${host}:${port}`;
    let e = byKey.get(key);
    if (!e) { e = { host, port, devices: [] }; byKey.set(key, e); }
    e.devices.push({
      id: d.id,
      tags: d.tags.map((t) => ({
        name: t.name, area: t.area, address: t.address, type: t.type, byteOrder: t.byteOrder, bit: t.bit, length: t.length,
        unitId: t.unitId ?? unitId, writable: t.writable, scale: t.scale, offset: t.offset,
      })),
    });
  }
  return [...byKey.values()];
}

export const modbusSimulator: DriverSimulator<ModbusDeviceConfig> = {
  serves: "Modbus TCP device on this machine",
  where: "host 127.0.0.1, ::1 or localhost",
  accepts: (d) => d.connection.transport === "tcp" && isLoopback(d.connection.host),
  start: async (devices) => {
    const { SIMULATED_VALUES, startConfiguredSimulator } = await import("./simulator.js");
    const endpoints = simulatedEndpoints(devices);
    const sim = await startConfiguredSimulator(endpoints);
    const served = endpoints.flatMap((e) => e.devices.map((d) => {
      const units = [...new Set(d.tags.map((t) => t.unitId))].join(", ");
      return `simulated ${d.id} on ${e.host}:${e.port} (unit ${units}, ${d.tags.length} tags)`;
    }));
    return { served, notes: [`Values: ${SIMULATED_VALUES}`], stop: () => sim.stop() };
  },
};
