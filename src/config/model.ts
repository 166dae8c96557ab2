/**
 * A config model: the core sections composed with a set of plugin config parts. The build's model
 * (`builtModel`) composes the plugin lists of src/plugins/; tests compose others (the planned
 * plugins, test/unit/config-planned.ts) with the same code.
 */
import type {
  DeviceConfigBase,
  DriverConfigPart,
  IngestListenerConfigPart,
  JsonSchema,
  NotBuilt,
  OutputConfigBase,
  OutputConfigPart,
} from "../core/plugin.js";
import type { DeviceConfig, OutputConfig } from "./types.js";
import { CONFIG_SCHEMA, composeSchema } from "./schema.js";
import { PATTERN_TEXT } from "../core/schema-kit.js";
import { builtParts } from "./built.js";

/** The plugin config parts a model is composed of. */
export interface ConfigParts {
  readonly drivers: readonly DriverConfigPart<DeviceConfigBase>[];
  readonly outputs: readonly OutputConfigPart<OutputConfigBase>[];
  /** keys of the `ingest` section owned by push listeners */
  readonly ingestListeners?: readonly IngestListenerConfigPart[];
  /** what the contract names but these parts do not carry */
  readonly notBuilt?: readonly NotBuilt[];
}

/**
 * Everything the loader needs for one composition. `D` and `O` are the device and output config
 * types its builders produce (phantom: they only type `loadConfig`'s result).
 */
export interface ConfigModel<D = DeviceConfig, O = OutputConfig> {
  readonly parts: ConfigParts;
  readonly schema: JsonSchema;
  /** pattern → what it allows, said for people (core and plugin patterns) */
  readonly patternText: Readonly<Record<string, string>>;
  /** key → refused enum value → why */
  readonly refused: Readonly<Record<string, Readonly<Record<string, string>>>>;
  readonly notBuilt: readonly NotBuilt[];
  /** phantom, never set */
  readonly __types?: { device: D; output: O };
}

export function composeConfig<D = DeviceConfig, O = OutputConfig>(parts: ConfigParts, schema: JsonSchema = composeSchema(parts)): ConfigModel<D, O> {
  const all = [...parts.drivers, ...parts.outputs];
  const names = new Set<string>();
  for (const p of parts.drivers) {
    if (names.has(`driver:${p.name}`)) throw new Error(`driver ${p.name} is listed twice`);
    names.add(`driver:${p.name}`);
  }
  for (const p of parts.outputs) {
    if (names.has(`output:${p.name}`)) throw new Error(`output ${p.name} is listed twice`);
    names.add(`output:${p.name}`);
  }
  const refused: Record<string, Record<string, string>> = {};
  for (const p of all) {
    for (const [key, values] of Object.entries(p.refused ?? {})) refused[key] = { ...refused[key], ...values };
  }
  return {
    parts,
    schema,
    patternText: Object.assign({}, PATTERN_TEXT, ...all.map((p) => p.patterns ?? {})) as Record<string, string>,
    refused,
    notBuilt: parts.notBuilt ?? [],
  };
}

let built: ConfigModel | undefined;

/** The model of this build: the core with src/plugins/drivers.ts and src/plugins/outputs.ts. */
export function builtModel(): ConfigModel {
  built ??= composeConfig(builtParts, CONFIG_SCHEMA);
  return built;
}
