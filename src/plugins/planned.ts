/**
 * What the contract (spec) names but this build does not carry yet. `validate` refuses each with
 * "<value> is not built into this version (built: …)" rather than a bare enum or unknown-key error.
 * One line per planned part; the line goes when its plugin lands in a list. Names only: the
 * config-only parts are not imported by the build. Empty today: every part the contract names is built.
 */
import type { NotBuilt } from "../core/plugin.js";

export const notBuilt: readonly NotBuilt[] = [
];
