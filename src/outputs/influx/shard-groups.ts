/**
 * InfluxDB 1.x stores points in shard groups: time windows of the retention policy's
 * `shardGroupDuration`. Its answer to a partial write counts exactly only when the write touched
 * one shard (a write over several reports the first failing shard alone), so the output writes
 * one window at a time. Pure functions.
 */

/** Go's zero time (0001-01-01T00:00:00Z) in ms since the Unix epoch: Go's `Time.Truncate`, which places shard groups, counts from it. */
const GO_ZERO_MS = -62_135_596_800_000;

/**
 * A Go duration as InfluxDB prints it (`168h0m0s`, `1h0m0s`, `30m0s`, `0s`) in ms; undefined when
 * it is not one.
 */
export function parseGoDuration(text: string): number | undefined {
  const t = text.trim();
  if (!/^(\d+(\.\d+)?(h|m|s|ms|us|µs|ns))+$/.test(t)) return undefined;
  const unit: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 1e-3, "µs": 1e-3, ns: 1e-6 };
  let ms = 0;
  for (const m of t.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/g)) ms += Number(m[1]) * unit[m[2]!]!;
  return ms;
}

/** Start (ms) of the shard group window of `durationMs` that holds `ts`, as InfluxDB places it. */
export function windowStart(ts: number, durationMs: number): number {
  const since = ts - GO_ZERO_MS;
  return ts - (((since % durationMs) + durationMs) % durationMs);
}

/**
 * Groups the indices of `ts` (a write's timestamps, ms) by the shard group window of `durationMs`
 * they fall in, keeping write order inside each group; groups in order of their first point.
 * Undefined when they all fall in one window (the usual case: a write covers well under a second)
 * or when `durationMs` is unknown.
 */
export function groupByWindow(ts: readonly number[], durationMs: number | undefined): number[][] | undefined {
  const n = ts.length;
  if (n === 0 || durationMs === undefined || !(durationMs > 0)) return undefined;
  const first = windowStart(ts[0]!, durationMs);
  let i = 1;
  while (i < n && windowStart(ts[i]!, durationMs) === first) i++;
  if (i === n) return undefined;
  const groups = new Map<number, number[]>([[first, Array.from({ length: i }, (_, k) => k)]]);
  for (; i < n; i++) {
    const w = windowStart(ts[i]!, durationMs);
    const g = groups.get(w);
    if (g) g.push(i);
    else groups.set(w, [i]);
  }
  return [...groups.values()];
}
