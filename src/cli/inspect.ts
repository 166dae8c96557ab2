import { join } from "node:path";
import { formatInspect, inspectJournal } from "../journal/inspect.js";
import { loadOrExplain } from "./run.js";

/** `floorgate journal inspect`: read-only, so it runs beside a live daemon. */
export async function runInspect(file: string): Promise<number> {
  const config = loadOrExplain(file);
  const report = await inspectJournal(join(config.gateway.dataDir, "journal"), config.outputs.map((o) => o.name));
  process.stdout.write(formatInspect(report));
  return 0;
}
