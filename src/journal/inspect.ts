import { open } from "node:fs/promises";
import { join } from "node:path";
import { FloorgateError } from "../core/errors.js";
import { isoTs } from "../core/sample.js";
import { loadCursors } from "./cursor-store.js";
import { listSegments, scanSegment } from "./segment-scan.js";

export interface InspectSegment {
  name: string;
  /** first and last stored position (lastPos = firstPos - 1 when empty) */
  firstPos: number;
  lastPos: number;
  records: number;
  bytes: number;
  /**
   * null when every byte is a valid frame. "incomplete tail" at the end of the newest segment is
   * normal beside a running daemon (a write in progress) or after a crash (recovery drops it).
   */
  problem: string | null;
}

export interface InspectOutput {
  name: string;
  cursor: number;
  /** samples stored after the cursor */
  lag: number;
}

export interface InspectReport {
  dir: string;
  records: number;
  bytes: number;
  segments: InspectSegment[];
  /** 0 when empty */
  oldestPos: number;
  newestPos: number;
  oldestTs: number | null;
  newestTs: number | null;
  outputs: InspectOutput[];
}

/**
 * Reads a journal directory without changing anything in it (files are opened read-only, torn
 * tails are reported, not truncated), so it runs beside a live daemon. `outputs`, when given, lists
 * the configured outputs (an output without a saved cursor shows where it would start); otherwise
 * every output in cursors.json is shown.
 */
export async function inspectJournal(dir: string, outputs?: readonly string[]): Promise<InspectReport> {
  let files;
  try {
    files = await listSegments(dir);
  } catch (err) {
    throw new FloorgateError("JOURNAL_IO", `cannot read journal directory ${dir}: ${(err as Error).message}`, { cause: err });
  }
  const segments: InspectSegment[] = [];
  let oldestPos = 0;
  let newestPos = 0;
  let oldestTs: number | null = null;
  let newestTs: number | null = null;
  let records = 0;
  let bytes = 0;
  for (let i = 0; i < files.length; i++) {
    const f = files[i]!;
    let fh;
    try {
      fh = await open(join(dir, f.name), "r");
    } catch (err) {
      // deleted by the running daemon between listing and opening
      if ((err as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw new FloorgateError("JOURNAL_IO", `cannot open ${f.name}: ${(err as Error).message}`, { cause: err });
    }
    try {
      const scan = await scanSegment(fh, f.firstPos);
      let problem: string | null = null;
      if (scan.problem) {
        const isLast = i === files.length - 1;
        problem =
          isLast && scan.problem.kind === "short"
            ? `incomplete tail at byte ${scan.problem.offset}`
            : `${scan.problem.kind} at byte ${scan.problem.offset} (${scan.fileSize - scan.problem.offset} bytes unreadable)`;
      }
      for (const c of scan.corrupt) {
        const lost = c.toPos - c.fromPos + 1;
        const text = `${c.kind} at byte ${c.offset} (${c.bytes} bytes skipped, ${lost} samples lost)`;
        problem = problem === null ? text : `${text}; ${problem}`;
      }
      segments.push({
        name: f.name,
        firstPos: scan.firstPos,
        lastPos: scan.nextPos - 1,
        records: scan.records,
        bytes: scan.fileSize,
        problem,
      });
      records += scan.records;
      bytes += scan.fileSize;
      if (scan.records > 0) {
        if (oldestPos === 0) {
          oldestPos = scan.firstPos;
          oldestTs = scan.firstTs;
        }
        newestTs = scan.lastTs;
      }
      newestPos = Math.max(newestPos, scan.nextPos - 1);
    } finally {
      await fh.close();
    }
  }

  const saved = await loadCursors(dir);
  const names = outputs ?? [...saved.keys()];
  const floor = oldestPos > 0 ? oldestPos - 1 : newestPos;
  const outs: InspectOutput[] = names.map((name) => {
    const s = saved.get(name);
    const cursor = s === undefined ? floor : Math.min(newestPos, Math.max(floor, s));
    return { name, cursor, lag: newestPos - cursor };
  });
  return { dir, records, bytes, segments, oldestPos, newestPos, oldestTs, newestTs, outputs: outs };
}

function humanBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}

function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ")).join("\n");
}

/** A short human summary: totals, then one line per output, then any segment with a problem. */
export function formatInspect(r: InspectReport): string {
  const ts = (t: number | null): string => (t === null ? "-" : isoTs(t));
  const lines: string[] = [];
  lines.push(
    table([
      ["journal", r.dir],
      ["records", String(r.records)],
      ["bytes", `${humanBytes(r.bytes)} (${r.bytes})`],
      ["segments", String(r.segments.length)],
      ["oldest", r.oldestPos > 0 ? `#${r.oldestPos}  ${ts(r.oldestTs)}` : "-"],
      ["newest", r.newestPos > 0 ? `#${r.newestPos}  ${ts(r.newestTs)}` : "-"],
    ]),
  );
  lines.push("");
  if (r.outputs.length === 0) lines.push("no output cursors");
  else lines.push(table([["output", "cursor", "lag"], ...r.outputs.map((o) => [o.name, String(o.cursor), String(o.lag)])]));
  const bad = r.segments.filter((s) => s.problem !== null);
  if (bad.length > 0) {
    lines.push("");
    lines.push(table([["segment", "problem"], ...bad.map((s) => [s.name, s.problem!])]));
  }
  return lines.join("\n") + "\n";
}
