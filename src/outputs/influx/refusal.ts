/**
 * What InfluxDB 1.x's answer to a refused write says: how many points it dropped, why, and whether
 * it stored the rest. Pure functions over the HTTP status and body.
 *
 * InfluxDB 1.x answers a write it could only partly store with 400 and
 * `{"error":"partial write: <reason> dropped=N"}`, having stored the other points; one it refused
 * whole with 400 and `{"error":"<reason>"}` (e.g. `unable to parse '…': invalid number`). Its count
 * is not always exact: a write spanning shard groups reports the first failing shard only, and
 * lines it could not parse are reported as `dropped=0` — so the output splits such writes until
 * every point's fate is known (see influx-output.ts).
 */

/** Drop reasons (the `reason` label of `floorgate_drops_total`), each documented in docs/errors.md. */
export type InfluxDropReason = "type_conflict" | "beyond_retention" | "series_limit" | "refused";

export interface Refusal {
  /** true: InfluxDB stored the points it did not count in `dropped` */
  partial: boolean;
  /** points InfluxDB says it dropped (0 when it does not say; for a whole refusal, every point) */
  dropped: number | "all";
  reason: InfluxDropReason;
  /** InfluxDB's own words, for the log and /healthz */
  text: string;
}

/** The `error` text of an InfluxDB JSON error body, or the body itself when it is not one. */
export function errorText(body: string): string {
  const trimmed = body.trim();
  try {
    const parsed = JSON.parse(trimmed) as unknown;
    if (parsed !== null && typeof parsed === "object" && typeof (parsed as { error?: unknown }).error === "string") {
      return (parsed as { error: string }).error;
    }
  } catch {
    // not JSON: a proxy's page, say
  }
  return trimmed;
}

/** Which documented reason an InfluxDB refusal text falls under. */
export function dropReason(text: string): InfluxDropReason {
  if (/field type conflict/i.test(text)) return "type_conflict";
  if (/beyond retention/i.test(text)) return "beyond_retention";
  if (/max-values-per-tag|max series per database|max-series-per-database/i.test(text)) return "series_limit";
  return "refused";
}

/**
 * Reads a 400 (or 413) answer to a write. Every 4xx other than these is about the request as a
 * whole (authentication, a missing database) and is not a refusal of points.
 */
export function parseRefusal(status: number, body: string): Refusal {
  const text = errorText(body);
  if (status === 413) return { partial: false, dropped: "all", reason: "refused", text: text || "request entity too large" };
  const m = /^partial write:\s*([\s\S]*?)\s*dropped=(\d+)\s*$/.exec(text);
  if (m) return { partial: true, dropped: Number(m[2]), reason: dropReason(m[1]!), text };
  return { partial: false, dropped: "all", reason: dropReason(text), text };
}

/** True for the statuses whose answer refuses points (rather than the request): 400 and 413. */
export function refusesPoints(status: number): boolean {
  return status === 400 || status === 413;
}
