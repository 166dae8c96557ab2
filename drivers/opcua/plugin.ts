/**
 * The OPC UA driver's descriptor: what `src/plugins/drivers.ts` lists. Config rules live in
 * config.ts. node-opcua is imported lazily (on the first `run`, `write` or `probe`), so `validate`,
 * the schema and every process that only reads configs never load it (nor see its console output).
 */
import type { Driver, DriverContext } from "../../src/core/driver.js";
import type { DriverPlugin } from "../../src/core/plugin.js";
import type { SampleValue } from "../../src/core/sample.js";
import { FloorgateError } from "../../src/core/errors.js";
import { opcuaConfig, type OpcuaDeviceConfig } from "./config.js";
import { opcuaSimulator } from "./simulate.js";

type Impl = typeof import("./driver.js");
let loading: Promise<Impl> | undefined;

/** Loads node-opcua and the driver once per process, routing node-opcua's console output first. */
async function load(): Promise<Impl> {
  loading ??= (async () => {
    const [m, logging] = await Promise.all([import("node-opcua"), import("./logging.js")]);
    logging.quietNodeOpcua(m);
    return import("./driver.js");
  })();
  return loading;
}

/** Synchronous `create`, lazy body: the real driver is built on the first `run`. */
class LazyOpcuaDriver implements Driver {
  private impl: Driver | undefined;
  constructor(private readonly cfg: OpcuaDeviceConfig) {}
  async run(ctx: DriverContext): Promise<void> {
    if (ctx.signal.aborted) return;
    this.impl ??= new (await load()).OpcuaDriver(this.cfg);
    return this.impl.run(ctx);
  }
  async write(tag: string, raw: SampleValue): Promise<void> {
    if (!this.impl?.write) throw new FloorgateError("DRIVER_TRANSPORT", `device ${this.cfg.id} is not connected`);
    return this.impl.write(tag, raw);
  }
}

export const opcuaPlugin: DriverPlugin<OpcuaDeviceConfig> = {
  ...opcuaConfig,
  folder: "drivers/opcua",
  create: (cfg) => new LazyOpcuaDriver(cfg),
  // One session per device: devices never share a connection.
  connectionKey: (cfg) => `opcua:${cfg.id}`,
  probe: async (cfg) => {
    await load();
    const { probeOpcuaDevice } = await import("./probe.js");
    return probeOpcuaDevice(cfg);
  },
  // node-opcua keeps process-wide state (its loggers, clock adjustment, certificate store locks)
  // and is not tested on worker threads: its devices stay in the main thread.
  driverThread: false,
  simulator: opcuaSimulator,
};
