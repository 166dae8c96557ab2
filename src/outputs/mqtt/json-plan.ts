import type { SampleBatch, SampleRun } from "../../core/sample-columns.js";
import { splitByDevice } from "../../core/sample-reader.js";

/**
 * One telemetry message of the json format (spec §6): samples of one device, at most `maxBatch`,
 * in journal order, as runs over the journal's column sets. `batch` is the journal position of its
 * last sample.
 */
export interface TelemetryMessage {
  device: string;
  batch: number;
  /** every sample of these runs belongs to `device` */
  runs: readonly SampleRun[];
}

/** Samples in a message. */
export function messageLength(m: TelemetryMessage): number {
  let n = 0;
  for (const r of m.runs) n += r.count;
  return n;
}

/**
 * Splits a write into messages: grouped by device (journal order kept inside each group), each group
 * cut into chunks of at most `maxBatch`, ordered by their last position. Publishing in this order makes
 * `batch` strictly increase across messages, and across writes too because every write starts after
 * the previous one ended, so a consumer can drop replayed duplicates by `batch` alone. The usual
 * write (one poll of one device per run) becomes messages over the journal's runs as they are.
 */
export function planMessages(batch: SampleBatch, maxBatch: number): TelemetryMessage[] {
  const limit = Math.max(1, Math.floor(maxBatch));
  const groups = new Map<string, SampleRun[]>();
  const add = (device: string, run: SampleRun): void => addRun(groups, device, run);
  for (const run of batch.runs) splitByDevice(run, add);
  const out: TelemetryMessage[] = [];
  for (const [device, runs] of groups) {
    let parts: SampleRun[] = [];
    let n = 0;
    for (const run of runs) {
      let from = run.from;
      let left = run.count;
      while (left > 0) {
        const take = Math.min(left, limit - n);
        parts.push(take === run.count ? run : { cols: run.cols, from, count: take, firstPos: run.firstPos + (from - run.from) });
        n += take;
        from += take;
        left -= take;
        if (n === limit) {
          out.push(message(device, parts));
          parts = [];
          n = 0;
        }
      }
    }
    if (n > 0) out.push(message(device, parts));
  }
  if (groups.size > 1) out.sort((a, b) => a.batch - b.batch);
  return out;
}

function addRun(groups: Map<string, SampleRun[]>, device: string, run: SampleRun): void {
  const g = groups.get(device);
  if (g) g.push(run);
  else groups.set(device, [run]);
}

function message(device: string, runs: SampleRun[]): TelemetryMessage {
  const last = runs[runs.length - 1]!;
  return { device, batch: last.firstPos + last.count - 1, runs };
}
