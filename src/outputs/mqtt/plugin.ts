/**
 * The MQTT output's descriptor: what `src/plugins/outputs.ts` lists. Config rules live in
 * config.ts; the json format's session in json-output.ts.
 */
import type { OutputPlugin } from "../../core/plugin.js";
import { unavailableOutput } from "../../core/output.js";
import { mqttConfig, type MqttOutputConfig } from "./config.js";
import { createMqttJsonOutput } from "./json-output.js";

export const mqttPlugin: OutputPlugin<MqttOutputConfig> = {
  ...mqttConfig,
  folder: "src/outputs/mqtt",
  create(cfg, ctx) {
    if (cfg.format === "json") return createMqttJsonOutput(cfg, { id: ctx.gateway.id });
    // Unreachable through `validate` (the schema has json only); kept so a hand-made config cannot crash.
    return unavailableOutput(cfg.name, "mqtt", `the ${cfg.format} format is not in this build yet`);
  },
};
