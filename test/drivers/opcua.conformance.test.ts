/**
 * The driver conformance suite against the OPC UA driver, subscribe mode and poll mode, with a
 * real node-opcua server (test/helpers/opcua-server.ts) shut down and started again on the same
 * port for the reconnect case, and a TCP server that accepts and never answers for the timeout case.
 */
import { createOpcuaDriver } from "../../drivers/opcua/index.js";
import type { OpcuaDeviceConfig } from "../../drivers/opcua/config.js";
import type { DeviceConfig } from "../../src/config/types.js";
import { startOpcuaServer, type OpcuaTestServer } from "../helpers/opcua-server.js";
import { startSilentServer } from "../helpers/ports.js";
import { opcuaDevice } from "../opcua/context.js";
import { driverConformance, type ConformanceFixture } from "./driver-conformance.js";

const driver = (cfg: DeviceConfig) => createOpcuaDriver(cfg as OpcuaDeviceConfig);

function fixture(mode: "subscribe" | "poll"): ConformanceFixture {
  let server: OpcuaTestServer | undefined;
  let silent: { port: number; stop(): Promise<void> } | undefined;
  return {
    async start() {
      server = await startOpcuaServer();
      silent = await startSilentServer();
    },
    async stop() {
      await server?.dispose();
      await silent?.stop();
    },
    breakServer: async () => { await server!.stop(); },
    restore: async () => { await server!.start(); },
    device: (id) => opcuaDevice(id, server!.endpoint, { mode, timeoutMs: 1_000 }) as DeviceConfig,
    silentDevice: (id) => opcuaDevice(id, `opc.tcp://127.0.0.1:${silent!.port}`, { mode, timeoutMs: 500 }) as DeviceConfig,
    openConnections: () => server?.sessionCount() ?? 0,
    timing: { lossMs: 5_000, returnMs: 15_000 },
  };
}

driverConformance("opcua (subscribe)", driver, fixture("subscribe"));
driverConformance("opcua (poll)", driver, fixture("poll"));
