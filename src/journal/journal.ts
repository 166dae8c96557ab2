import type { JournaledSample, Sample } from "../core/sample.js";
import type { SampleBatch, SampleColumns } from "../core/sample-columns.js";

/**
 * Durable, append-only store of samples, shared by every output (spec §7). Written once per
 * sample; each output reads it in order after its own cursor.
 *
 * Positions: every sample gets a position one greater than the previous sample's, for the life of
 * the data directory (they survive restarts and segment deletion). Position 0 means "before the
 * first sample".
 */
export interface Journal {
  /**
   * Appends `samples` in order. Resolves with the position of the last one only once the fsync
   * that covers it has completed (`fsync: always` — one per append; `batch` — grouped, commits at
   * least `fsyncIntervalMs` apart, so an append waits at most one interval plus one commit). Rejects with code JOURNAL_FULL under `overflow: reject` when the
   * cap would be exceeded (nothing of the call is stored), JOURNAL_IO when the disk write or fsync
   * failed (the gateway reports itself unable to accept data), JOURNAL_CLOSED after `close()`.
   * An empty array resolves at once with the current newest position. Columns are kept as given
   * (the caller hands them over and never changes them again); an array is copied before this
   * returns, so the caller may reuse its objects.
   */
  append(samples: SampleColumns | readonly Sample[]): Promise<number>;

  /**
   * Up to `max` samples with position > `after`, in position order. When samples after `after`
   * were dropped by `drop-oldest`, reading continues at the oldest sample still stored (the gap
   * was already counted as dropped for each output that had not passed it). Only durable samples
   * are returned.
   */
  read(after: number, max: number): Promise<JournaledSample[]>;

  /**
   * The same samples as `read`, as runs over column sets: what forwarders use, so no object per
   * sample exists between the journal and an output (see SampleColumns). The column sets may be
   * shared with other readers and must not be changed.
   */
  readBatch(after: number, max: number): Promise<SampleBatch>;

  /** Resolves once a durable sample with position > `after` exists, or when `signal` aborts. */
  waitFor(after: number, signal: AbortSignal): Promise<void>;

  /**
   * The persisted cursor of output `name` (the position of the last sample it confirmed). An output
   * never seen before starts before the oldest sample still stored.
   */
  cursor(name: string): number;

  /**
   * Moves `name`'s cursor forward to `pos` (never backward). Persisted lazily (within about a
   * second, and on close), so after a crash an output may replay some confirmed samples: at least
   * once, never lost.
   */
  commit(name: string, pos: number): void;

  stats(): JournalStats;

  /** Waits for pending appends and fsyncs, persists cursors, closes files. Idempotent. */
  close(): Promise<void>;
}

export interface JournalOutputStats {
  cursor: number;
  /** samples stored after this output's cursor */
  lag: number;
  /** samples this output never got because drop-oldest deleted them, since the journal was opened */
  dropped: number;
  /**
   * samples this output confirmed (cursor moved by `commit`) since the journal was opened; with
   * `dropped` and `lag`: cursor at open + delivered + dropped = cursor now, exactly.
   */
  delivered: number;
}

export interface JournalStats {
  bytes: number;
  maxBytes: number;
  segments: number;
  /** samples currently stored */
  records: number;
  /** position of the oldest stored sample (0 when empty) */
  oldestPos: number;
  newestPos: number;
  oldestTs: number | null;
  newestTs: number | null;
  /** samples appended since open */
  appended: number;
  /** torn or corrupt tail records dropped at recovery since open */
  tornRecords: number;
  /** appends refused under overflow: reject since open (in samples) */
  rejected: number;
  /** false once a disk write or fsync failed: /healthz answers 503 */
  writable: boolean;
  outputs: Record<string, JournalOutputStats>;
}

export interface JournalOptions {
  dir: string;
  maxBytes: number;
  overflow: "drop-oldest" | "reject";
  fsync: "batch" | "always";
  fsyncIntervalMs: number;
  /** the outputs whose cursors are kept; segments are deleted once every one has passed them */
  outputs: readonly string[];
  /** segment file size; default derived from maxBytes (about maxBytes/16, 64 KiB–64 MiB) */
  segmentBytes?: number;
  /** a disk operation at least this slow is reported as a "slow-io" event (default SLOW_IO_MS) */
  slowIoMs?: number;
  /** notified once per event: torn tail at recovery, segments dropped by drop-oldest, slow disk operations */
  onEvent?: (e: JournalEvent) => void;
}

export type JournalEvent =
  | { kind: "torn-tail"; segment: string; offset: number; droppedBytes: number; droppedRecords: number }
  | { kind: "dropped-oldest"; segment: string; samples: number; perOutput: Record<string, number> }
  /**
   * A disk operation took at least `slowIoMs` (default SLOW_IO_MS): a group commit (its phases
   * in ms: creating a segment, making room, writing, syncing) or a segment's deletion. Appends
   * wait on commits, so a slow disk shows here before it shows as backpressure.
   */
  | { kind: "slow-io"; op: "commit" | "delete"; segment: string; ms: number; phases?: { create: number; room: number; write: number; sync: number } };

/** see JournalEvent "slow-io" */
export const SLOW_IO_MS = 500;
