/**
 * The drivers this build carries: one line per driver, no registration by side effect. Adding a
 * driver is its folder plus one line here (docs/writing-a-plugin.md).
 *
 * The driver threads import this module (src/runtime/threads/driver-worker.ts): it must never import an
 * output, the config loader or MQTT.js (test/unit/plugins.test.ts walks the import closure).
 */
import type { DeviceConfigBase, DriverConfigOf, DriverPlugin } from "../core/plugin.js";
import type { Driver } from "../core/driver.js";
import { FloorgateError } from "../core/errors.js";
import { modbusPlugin } from "../../drivers/modbus/plugin.js";
import { opcuaPlugin } from "../../drivers/opcua/plugin.js";

export const drivers = [modbusPlugin, opcuaPlugin] as const;

/** A device config of any driver in the list. */
export type DeviceConfig = DriverConfigOf<(typeof drivers)[number]>;

const byName: ReadonlyMap<string, DriverPlugin<DeviceConfigBase>> = new Map(drivers.map((d) => [d.name, d as DriverPlugin<DeviceConfigBase>]));

/** The names users may write as `driver:`, in list order. */
export const driverNames: readonly string[] = drivers.map((d) => d.name);

/** The descriptor of `name`, or undefined when this build does not carry it. */
export function findDriver(name: string): DriverPlugin<DeviceConfigBase> | undefined {
  return byName.get(name);
}

function pluginOf(cfg: DeviceConfigBase): DriverPlugin<DeviceConfigBase> {
  const p = byName.get(cfg.driver);
  if (!p) throw new FloorgateError("USAGE", `the ${cfg.driver} driver is not in this build (built: ${driverNames.join(", ")})`);
  return p;
}

/** Builds the driver of one validated device. Throws USAGE for a driver this build does not carry. */
export function createDriver(cfg: DeviceConfig): Driver {
  return pluginOf(cfg).create(cfg);
}

/** Throws what `createDriver` would for a driver this build does not carry, without building one. */
export function checkDriver(cfg: DeviceConfig): void {
  pluginOf(cfg);
}

/**
 * The connection a device's driver opens, as a key: devices with the same key share one connection
 * (a serial line, a Modbus TCP gateway), so they must run on the same driver thread.
 */
export function connectionKey(cfg: DeviceConfig): string {
  return pluginOf(cfg).connectionKey(cfg);
}

/** False when the device's driver must run in the main thread even with `gateway.driverThreads` > 0. */
export function mayRunOnDriverThread(cfg: DeviceConfig): boolean {
  return pluginOf(cfg).driverThread;
}
