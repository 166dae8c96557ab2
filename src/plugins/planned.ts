/**
 * What the contract (spec) names but this build does not carry yet. `validate` refuses each with
 * "<value> is not built into this version (built: …)" rather than a bare enum or unknown-key error.
 * One line per planned part; the line goes when its plugin lands in a list. Names only: the
 * config-only folders (src/outputs/influx, src/outputs/mqtt/sparkplug-config.ts) are not
 * imported by the build.
 */
import type { NotBuilt } from "../core/plugin.js";
import { outputNames } from "./outputs.js";
import { jsonFormat } from "../outputs/mqtt/config.js";

export const notBuilt: readonly NotBuilt[] = [
  { at: "/outputs/*/type", value: "influx", built: outputNames },
  { at: "/outputs/*/format", value: "sparkplug-b", built: [jsonFormat.name] },
  { at: "/outputs/*/primaryHostId", what: "primaryHostId (a key of format sparkplug-b)" },
];
