import { SIMULATED_VALUES, startConfiguredSimulator, type ConfiguredSimulator, type SimulatedEndpoint } from "../../drivers/modbus/simulator.js";
import { isLoopback } from "../core/net.js";
import type { GatewayConfig } from "../config/types.js";
import { describeError } from "../core/errors.js";
import { listenHint, loadOrExplain, untilSignal } from "./run.js";

/** Devices listed one per line before the rest is summed up: a plant of 2,000 should not scroll for a minute. */
const LIST_AT_MOST = 20;

/**
 * `floorgate simulate`: only the simulated machines, for tests and trials. Every Modbus TCP device
 * in the config whose host is this machine (loopback) is served on its host:port and unit id,
 * with every one of its tags (drivers/modbus/simulator.ts, `startConfiguredSimulator`); devices
 * sharing a host:port share one simulated gateway. Other devices are listed as not simulated.
 */
export async function runSimulate(file: string): Promise<number> {
  const config = loadOrExplain(file);
  const { endpoints, skipped } = simulatedEndpoints(config);
  if (endpoints.length === 0) {
    process.stderr.write(`floorgate simulate: no Modbus TCP device on this machine (host 127.0.0.1, ::1 or localhost) in ${file}; nothing to simulate\n`);
    return 1;
  }
  let sim: ConfiguredSimulator;
  try {
    sim = await startConfiguredSimulator(endpoints);
  } catch (err) {
    const hint = listenHint(err, `change that device's port in ${file} (and where the gateway polls it)`);
    process.stderr.write(`floorgate simulate: cannot start a simulator: ${describeError(err)}${hint === undefined ? "" : `\n  ${hint}`}\n`);
    return 2;
  }
  const lines = endpoints.flatMap((e) => e.devices.map((d) => {
    const units = [...new Set(d.tags.map((t) => t.unitId))].join(", ");
    return `simulated ${d.id} on ${e.host}:${e.port} (unit ${units}, ${d.tags.length} tags)\n`;
  }));
  process.stdout.write(lines.slice(0, LIST_AT_MOST).join(""));
  if (lines.length > LIST_AT_MOST) process.stdout.write(`… and ${lines.length - LIST_AT_MOST} more devices on ${endpoints.length} ports in all\n`);
  if (skipped.length > 0) process.stdout.write(`not simulated (not a Modbus TCP device on this machine): ${skipped.join(", ")}\n`);
  process.stdout.write(`Values: ${SIMULATED_VALUES}\nCtrl-C stops the simulators.\n`);
  await untilSignal();
  await sim.stop();
  return 0;
}

/** The config's loopback Modbus TCP devices grouped by host:port; every other device's id in `skipped`. */
export function simulatedEndpoints(config: GatewayConfig): { endpoints: SimulatedEndpoint[]; skipped: string[] } {
  const byKey = new Map<string, SimulatedEndpoint>();
  const skipped: string[] = [];
  for (const d of config.devices) {
    if (d.driver !== "modbus" || d.connection.transport !== "tcp" || !isLoopback(d.connection.host)) {
      skipped.push(d.id);
      continue;
    }
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
  return { endpoints: [...byKey.values()], skipped };
}
