/**
 * A test-only composition: the build's plugins plus the planned ones whose config rules are
 * already written (config-only folders, not in src/plugins/). The corpus under
 * test/fixtures/configs/planned/ and the OPC UA / Influx / Sparkplug cases of
 * config.test.ts run against it, so those rules stay tested until their plugins land.
 */
import type { DeviceConfigBase, DriverConfigPart, OutputConfigBase, OutputConfigPart } from "../../src/core/plugin.js";
import { composeConfig, type ConfigModel } from "../../src/config/model.js";
import { parseConfigText, loadConfig, type LoadResult } from "../../src/config/load.js";
import { modbusConfig, type ModbusDeviceConfig } from "../../drivers/modbus/config.js";
import { opcuaConfig, type OpcuaDeviceConfig } from "../../drivers/opcua/config.js";
import { jsonFormat, mqttConfigFor, type MqttOutputConfig } from "../../src/outputs/mqtt/config.js";
import { sparkplugFormat } from "../../src/outputs/mqtt/sparkplug-config.js";
import { influxConfig, type InfluxOutputConfig } from "../../src/outputs/influx/config.js";
import { ingestListeners } from "../../src/plugins/ingest.js";

export type PlannedDevice = ModbusDeviceConfig | OpcuaDeviceConfig;
export type PlannedOutput = MqttOutputConfig | InfluxOutputConfig;

export const plannedModel: ConfigModel<PlannedDevice, PlannedOutput> = composeConfig<PlannedDevice, PlannedOutput>({
  drivers: [modbusConfig, opcuaConfig] as DriverConfigPart<DeviceConfigBase>[],
  outputs: [mqttConfigFor([jsonFormat, sparkplugFormat]), influxConfig] as OutputConfigPart<OutputConfigBase>[],
  ingestListeners,
});

export function loadPlanned(path: string, env: NodeJS.ProcessEnv = process.env): LoadResult<PlannedDevice, PlannedOutput> {
  return loadConfig(path, env, plannedModel);
}

export function parsePlanned(text: string, fileName: string, env: NodeJS.ProcessEnv = process.env): LoadResult<PlannedDevice, PlannedOutput> {
  return parseConfigText(text, fileName, env, plannedModel);
}
