/**
 * Public face of the OPC UA driver for tests, benches and the CLI. Everything protocol-specific
 * stays inside `drivers/opcua/`; the runtime sees only the descriptor (plugin.ts) and `Driver`.
 * Importing this file does not load node-opcua.
 */
import type { Driver } from "../../src/core/driver.js";
import type { OpcuaDeviceConfig } from "./config.js";
import { opcuaPlugin } from "./plugin.js";

/** Builds the driver for one validated, defaulted OPC UA device config (spec §2). */
export function createOpcuaDriver(cfg: OpcuaDeviceConfig): Driver {
  return opcuaPlugin.create(cfg);
}

export { opcuaPlugin };
export type { OpcuaDeviceConfig, OpcuaTagConfig } from "./config.js";
