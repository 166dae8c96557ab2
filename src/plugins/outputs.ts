/**
 * The outputs this build carries: one line per output, no registration by side effect. Adding an
 * output is its folder plus one line here (docs/writing-a-plugin.md).
 */
import type { OutputConfigBase, OutputConfigOf, OutputPlugin } from "../core/plugin.js";
import { FloorgateError } from "../core/errors.js";
import type { Output } from "../core/output.js";
import { mqttPlugin } from "../outputs/mqtt/plugin.js";
import { influxPlugin } from "../outputs/influx/plugin.js";

export const outputs = [mqttPlugin, influxPlugin] as const;

/** An output config of any output in the list. */
export type OutputConfig = OutputConfigOf<(typeof outputs)[number]>;

const byName: ReadonlyMap<string, OutputPlugin<OutputConfigBase>> = new Map(outputs.map((o) => [o.name, o as OutputPlugin<OutputConfigBase>]));

/** The names users may write as an output's `type:`, in list order. */
export const outputNames: readonly string[] = outputs.map((o) => o.name);

export function findOutput(name: string): OutputPlugin<OutputConfigBase> | undefined {
  return byName.get(name);
}

/** Builds one validated output (no I/O). Throws USAGE for an output type this build does not carry. */
export function createOutput(cfg: OutputConfig, gw: { gateway: { id: string; group: string } }): Output {
  const p = byName.get(cfg.type);
  if (!p) throw new FloorgateError("USAGE", `the ${cfg.type} output is not in this build (built: ${outputNames.join(", ")})`);
  return p.create(cfg, { gateway: { id: gw.gateway.id, group: gw.gateway.group } });
}
