/**
 * The MQTT output's descriptor: what `src/plugins/outputs.ts` lists. Config rules live in
 * config.ts (and sparkplug-config.ts); the json format's session in json-output.ts, the Sparkplug B
 * format's in sparkplug-output.ts.
 */
import type { OutputPlugin } from "../../core/plugin.js";
import { mqttConfig, type MqttOutputConfig } from "./config.js";
import { createMqttJsonOutput } from "./json-output.js";
import { createMqttSparkplugOutput } from "./sparkplug-output.js";

export const mqttPlugin: OutputPlugin<MqttOutputConfig> = {
  ...mqttConfig,
  folder: "src/outputs/mqtt",
  create(cfg, ctx) {
    if (cfg.format === "sparkplug-b") return createMqttSparkplugOutput(cfg, { id: ctx.gateway.id, group: ctx.gateway.group });
    return createMqttJsonOutput(cfg, { id: ctx.gateway.id });
  },
};
