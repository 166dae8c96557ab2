/**
 * The Modbus driver's descriptor: what `src/plugins/drivers.ts` lists. Config rules live in
 * config.ts, the driver in device.ts/line.ts, `floorgate probe` in probe.ts.
 */
import type { DriverPlugin } from "../../src/core/plugin.js";
import { modbusConfig, type ModbusDeviceConfig } from "./config.js";
import { ModbusDriver, lineSpecOf } from "./device.js";
import { lineKey } from "./line.js";
import { probeModbusDevice } from "./probe.js";
import { modbusSimulator } from "./simulate.js";

export const modbusPlugin: DriverPlugin<ModbusDeviceConfig> = {
  ...modbusConfig,
  folder: "drivers/modbus",
  create: (cfg) => new ModbusDriver(cfg),
  // Devices on one tcp://host:port, rtu-over-tcp://host:port or serial path share one line.
  connectionKey: (cfg) => lineKey(lineSpecOf(cfg)),
  probe: (cfg) => probeModbusDevice(cfg),
  driverThread: true,
  simulator: modbusSimulator,
};
