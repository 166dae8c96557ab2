/**
 * The InfluxDB output's descriptor: what `src/plugins/outputs.ts` lists. Config rules live in
 * config.ts; the session in influx-output.ts.
 */
import type { OutputPlugin } from "../../core/plugin.js";
import { influxConfig, type InfluxOutputConfig } from "./config.js";
import { createInfluxOutput } from "./influx-output.js";

export const influxPlugin: OutputPlugin<InfluxOutputConfig> = {
  ...influxConfig,
  folder: "src/outputs/influx",
  create: (cfg, ctx) => createInfluxOutput(cfg, { id: ctx.gateway.id }),
};
