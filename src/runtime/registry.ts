import type { DeviceConfig, GatewayConfig, OutputConfig } from "../config/types.js";
import type { Driver } from "../core/driver.js";
import { FloorgateError } from "../core/errors.js";
import type { Output } from "../outputs/output.js";
import { createMqttJsonOutput } from "../outputs/mqtt/json-output.js";
import { createModbusDriver, modbusConnectionKey } from "../../drivers/modbus/index.js";

/**
 * The explicit list of drivers and outputs this build carries: no registration by side effect.
 * A config key the contract names but this build does not implement yet fails here, loudly, and
 * the runtime shows it as that device's or output's error.
 */
export function createDriver(cfg: DeviceConfig): Driver {
  checkDriver(cfg);
  switch (cfg.driver) {
    case "modbus":
      return createModbusDriver(cfg);
    case "opcua":
      throw new Error("unreachable: checkDriver refuses opcua");
  }
}

/** Throws what `createDriver` would for a driver this build does not carry, without building one. */
export function checkDriver(cfg: DeviceConfig): void {
  if (cfg.driver === "opcua") throw new FloorgateError("USAGE", "the opcua driver is not in this build yet");
}

/**
 * The connection a device's driver opens, as a key: devices with the same key share one connection
 * (a serial line, a Modbus TCP gateway), so they must run on the same driver thread.
 */
export function connectionKey(cfg: DeviceConfig): string {
  switch (cfg.driver) {
    case "modbus":
      return modbusConnectionKey(cfg);
    case "opcua":
      return `opcua:${cfg.id}`;
  }
}

export function createOutput(cfg: OutputConfig, gw: GatewayConfig): Output {
  switch (cfg.type) {
    case "mqtt":
      if (cfg.format === "json") return createMqttJsonOutput(cfg, { id: gw.gateway.id });
      return unavailableOutput(cfg.name, "mqtt", "the sparkplug-b format is not in this build yet");
    case "influx":
      return unavailableOutput(cfg.name, "influx", "the influx output is not in this build yet");
  }
}

/** An output this build cannot serve: it never connects, so its data waits in the journal. */
function unavailableOutput(name: string, type: string, why: string): Output {
  return {
    name, type, maxBatch: 1, maxInFlight: 1,
    connect: () => Promise.reject(new FloorgateError("OUTPUT_REJECTED", why)),
  };
}
