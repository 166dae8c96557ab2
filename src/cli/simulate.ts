import { startModbusSimulator, type ModbusSimulator } from "../../drivers/modbus/simulator.js";
import { isLoopback } from "../config/net.js";
import { loadOrExplain, untilSignal } from "./run.js";

/**
 * `floorgate simulate`: only the simulated machines, for tests and trials. Every Modbus TCP device
 * in the config that points at this machine gets a simulated press on its host:port (register map
 * in drivers/modbus/simulator.ts); other devices are listed as not simulated.
 */
export async function runSimulate(file: string): Promise<number> {
  const config = loadOrExplain(file);
  const endpoints = new Map<string, { host: string; port: number; devices: string[] }>();
  const skipped: string[] = [];
  for (const d of config.devices) {
    if (d.driver === "modbus" && d.connection.transport === "tcp" && isLoopback(d.connection.host)) {
      const key = `${d.connection.host}:${d.connection.port}`;
      const e = endpoints.get(key) ?? { host: d.connection.host, port: d.connection.port, devices: [] };
      e.devices.push(d.id);
      endpoints.set(key, e);
    } else {
      skipped.push(d.id);
    }
  }
  if (endpoints.size === 0) {
    process.stderr.write(`floorgate simulate: no Modbus TCP device on this machine in ${file}; nothing to simulate\n`);
    return 1;
  }
  const sims: ModbusSimulator[] = [];
  try {
    for (const [key, e] of endpoints) {
      sims.push(await startModbusSimulator({ presses: 1, basePort: e.port, host: e.host === "localhost" ? "127.0.0.1" : e.host }));
      process.stdout.write(`simulated press on ${key} for ${e.devices.join(", ")}\n`);
    }
  } catch (err) {
    await Promise.all(sims.map((s) => s.stop()));
    process.stderr.write(`floorgate simulate: cannot start a simulator: ${(err as Error).message}\n`);
    return 2;
  }
  if (skipped.length > 0) process.stdout.write(`not simulated (not a local Modbus TCP device): ${skipped.join(", ")}\n`);
  process.stdout.write("Ctrl-C stops the simulators.\n");
  await untilSignal();
  await Promise.all(sims.map((s) => s.stop()));
  return 0;
}
