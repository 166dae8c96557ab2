import type { Counter } from "prom-client";
import { Metrics } from "../../src/runtime/status/metrics.js";

/** A real Metrics with empty collectors (no journal or devices behind it). */
export function newMetrics(): Metrics {
  return new Metrics({
    deviceStates: () => [],
    journal: () => ({ bytes: 0, records: 0, segments: 0, lag: {}, torn: 0, writable: true }),
    outputsUp: () => ({}),
    samplesIn: () => [],
  });
}

/** Current value of one labelled counter (0 when never incremented). */
export async function counterValue<L extends string>(c: Counter<L>, labels: Partial<Record<L, string>>): Promise<number> {
  const { values } = await c.get();
  const hit = values.find((v) => Object.entries(labels).every(([k, want]) => (v.labels as Record<string, unknown>)[k] === want));
  return hit?.value ?? 0;
}

/** A controllable clock for window and rate tests. */
export function fakeClock(start = Date.parse("2026-11-21T08:00:00.000Z")) {
  let now = start;
  return {
    now: () => now,
    advance(ms: number) { now += ms; },
    set(ms: number) { now = ms; },
  };
}
