import { readFileSync } from "node:fs";
import { join } from "node:path";

/** The CLI launcher, as an operator runs it. */
export const BIN = join(import.meta.dirname, "..", "..", "bin", "floorgate");

/**
 * The node flags of the launcher's `#!` line (`--max-semi-space-size=16 --no-allocation-site-pretenuring`).
 * Tests start the daemon as `node <flags> bin/floorgate …` (node ignores a script's shebang), so
 * without these they would run it with other GC settings than production's.
 */
export const NODE_FLAGS: readonly string[] = (() => {
  const first = readFileSync(BIN, "utf8").split("\n", 1)[0] ?? "";
  const m = /\bnode\s+(.*)$/.exec(first);
  const flags = m ? m[1]!.trim().split(/\s+/) : [];
  if (!flags.every((f) => f.startsWith("--"))) throw new Error(`unexpected launcher line: ${first}`);
  return flags;
})();
