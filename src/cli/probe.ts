import { describeError } from "../core/errors.js";
import { findDriver } from "../plugins/drivers.js";
import { applyScale } from "../runtime/pipeline/normalize.js";
import { loadOrExplain } from "./run.js";

/**
 * `floorgate probe`: connect to each device, read every tag once, print a table. Touches no
 * journal or daemon state, so it runs beside `floorgate run`.
 */
export async function runProbe(file: string, only?: string): Promise<number> {
  const config = loadOrExplain(file);
  const devices = config.devices.filter((d) => only === undefined || d.id === only);
  if (only !== undefined && devices.length === 0) {
    process.stderr.write(`floorgate probe: no device ${only} in ${file}\n`);
    return 1;
  }
  const rows: string[][] = [["device", "tag", "value", "unit", "quality", "note"]];
  let failures = 0;
  for (const d of devices) {
    const plugin = findDriver(d.driver);
    if (!plugin?.probe) {
      rows.push([d.id, "*", "", "", "bad", `${d.driver} probing is not in this build yet`]);
      failures++;
      continue;
    }
    try {
      const results = await plugin.probe(d);
      for (const r of results) {
        const tag = d.tags.find((t) => t.name === r.tag);
        const value = tag ? applyScale(r.value, tag) : r.value;
        if (r.quality !== "good") failures++;
        rows.push([d.id, r.tag, value === null ? "" : String(value), tag?.unit ?? "", r.quality, r.reason ?? ""]);
      }
    } catch (err) {
      failures++;
      rows.push([d.id, "*", "", "", "bad", describeError(err)]);
    }
  }
  process.stdout.write(table(rows));
  return failures === 0 ? 0 : 2;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length)));
  return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c]!)).join("  ").trimEnd()).join("\n") + "\n";
}
