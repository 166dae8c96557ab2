/**
 * Shared pieces of the OPC UA tests: a device config with test timings, and the recording
 * DriverContext of test/helpers/driver-recorder.ts.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { OpcuaDeviceConfig, OpcuaTagConfig } from "../../drivers/opcua/config.js";
import { createOpcuaDriver } from "../../drivers/opcua/index.js";
import { createLogger } from "../../src/core/logger.js";
import { recorder, type Recorder } from "../helpers/driver-recorder.js";

export function tag(name: string, nodeId: string, extra: Partial<OpcuaTagConfig> = {}): OpcuaTagConfig {
  return { name, nodeId, scale: 1, offset: 0, writable: false, deadbandType: "absolute", ...extra };
}

/** A fresh PKI folder per call unless one is given. */
export function opcuaDevice(id: string, endpoint: string, over: Partial<OpcuaDeviceConfig> = {}): OpcuaDeviceConfig {
  return {
    id, driver: "opcua", disabled: false, reconnectMaxMs: 1_000,
    connection: { endpoint, securityMode: "None", securityPolicy: "None" },
    mode: "subscribe", samplingMs: 100, pollMs: 200, queueSize: 10, timeoutMs: 2_000,
    pkiDir: over.pkiDir ?? join(mkdtempSync(join(tmpdir(), "floorgate-opcua-cli-")), "pki"),
    tags: [tag("counter", "ns=1;s=Counter"), tag("temp", "ns=1;s=Temperature")],
    ...over,
  };
}

export { recorder, type Recorder };

/**
 * An OPC UA driver running against a recorder, resolved once it reported `online` (15 s at most);
 * `stop` aborts it and waits for its run to end. FG_DEBUG_OPCUA=1 logs the driver at debug level.
 */
export async function running(cfg: OpcuaDeviceConfig): Promise<{ r: Recorder; stop(): Promise<void>; driver: ReturnType<typeof createOpcuaDriver> }> {
  const r = recorder(process.env.FG_DEBUG_OPCUA ? createLogger({ level: "debug" }) : undefined);
  const driver = createOpcuaDriver(cfg);
  const done = driver.run(r);
  await r.until(() => r.states.some((s) => s.state === "online"), 15_000, "online");
  return { r, driver, stop: async () => { r.controller.abort(); await done; } };
}
