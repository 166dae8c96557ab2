/**
 * What the contract (spec) names but this build does not carry yet. `validate` refuses each with
 * "<value> is not built into this version (built: …)" rather than a bare enum or unknown-key error.
 * One line per planned part; the line goes when its plugin lands in a list. Names only: the
 * config-only folder (src/ingest/mqtt) is not imported by the build.
 */
import type { NotBuilt } from "../core/plugin.js";

export const notBuilt: readonly NotBuilt[] = [
  { at: "/ingest/mqtt", what: "the device MQTT listener (ingest.mqtt)" },
];
