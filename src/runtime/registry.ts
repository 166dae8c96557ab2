/**
 * The runtime's names for the plugin lists (src/plugins/): the gateway creates drivers and outputs
 * through these. The lists are explicit arrays, no registration by side effect. A driver thread
 * imports src/plugins/drivers.ts directly, so it never loads an output or its client library.
 */
export { checkDriver, connectionKey, createDriver, mayRunOnDriverThread } from "../plugins/drivers.js";
export { createOutput } from "../plugins/outputs.js";
