/**
 * The shape of one labelled counter as its users see it: add `n` (default 1) to the series of
 * `labels`. Folders that count (http, ingest) declare the few counters they move with it, so they
 * depend on that small interface rather than on the runtime's metrics class; prom-client's
 * `Counter` satisfies it, and so does any test double.
 */
export interface LabelledCounter<L extends string> {
  inc(labels: Partial<Record<L, string | number>>, n?: number): void;
}

/** A value that is set, not added to (a gauge without labels). */
export interface SettableGauge {
  set(value: number): void;
}
