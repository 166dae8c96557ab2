/**
 * Public face of the Modbus driver for tests, benches and the CLI's simulator. Everything
 * protocol-specific stays inside `drivers/modbus/`; the runtime sees only the descriptor
 * (plugin.ts, listed in src/plugins/drivers.ts) and `Driver`.
 */
import type { Driver } from "../../src/core/driver.js";
import type { ModbusDeviceConfig } from "./config.js";
import { modbusPlugin } from "./plugin.js";

/** Builds the driver for one validated, defaulted Modbus device config (spec §2). */
export function createModbusDriver(cfg: ModbusDeviceConfig): Driver {
  return modbusPlugin.create(cfg);
}

/** The connection the device uses, as a key: devices with equal keys share one line. */
export function modbusConnectionKey(cfg: ModbusDeviceConfig): string {
  return modbusPlugin.connectionKey(cfg);
}

export { modbusPlugin };
export { probeModbusDevice, type ProbeRow } from "./probe.js";
export type { ByteOrder, ModbusArea, ModbusConnection, ModbusDeviceConfig, ModbusTagConfig, ModbusType } from "./config.js";
export { startModbusSimulator, type ModbusSimulator, type ModbusSimulatorOptions } from "./simulator.js";
