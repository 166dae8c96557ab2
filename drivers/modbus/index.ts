/**
 * Public face of the Modbus driver. Everything protocol-specific stays inside `drivers/modbus/`;
 * the runtime sees only `Driver`.
 */
import type { Driver } from "../../src/core/driver.js";
import type { ModbusDeviceConfig } from "../../src/config/types.js";
import { ModbusDriver, lineSpecOf } from "./device.js";
import { lineKey } from "./line.js";

/** Builds the driver for one validated, defaulted Modbus device config (spec §2). */
export function createModbusDriver(cfg: ModbusDeviceConfig): Driver {
  return new ModbusDriver(cfg);
}

/** The connection the device uses, as a key: devices with equal keys share one line. */
export function modbusConnectionKey(cfg: ModbusDeviceConfig): string {
  return lineKey(lineSpecOf(cfg));
}

export { probeModbusDevice, type ProbeRow } from "./probe.js";
export { startModbusSimulator, type ModbusSimulator, type ModbusSimulatorOptions } from "./simulator.js";
