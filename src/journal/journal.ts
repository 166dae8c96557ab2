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
   * least `fsyncIntervalMs` apart, so an append waits at most one interval plus one commit).
   * Rejects, with nothing of the call stored:
   * - JOURNAL_FULL under `overflow: reject` when the cap would be exceeded;
   * - JOURNAL_UNAVAILABLE while the disk cannot take a write (full, out of file descriptors):
   *   the journal retries with backoff and accepts again by itself once a write succeeds;
   *   `stats().unwritable` says why (the daemon answers 503 meanwhile);
   * - JOURNAL_IO after a fatal disk error (a failed fsync, EIO): the journal accepts nothing
   *   more and `onEvent({kind:"fatal"})` has fired; the daemon exits so that recovery re-reads
   *   the disk;
   * - JOURNAL_CLOSED after `close()`.
   * An empty array resolves at once with the current newest position. Columns are kept as given
   * (the caller hands them over and never changes them again); an array is copied before this
   * returns, so the caller may reuse its objects.
   *
   * `opts.keys`: idempotency keys (e.g. a device's msgIds) stored in the same frame as the
   * samples, so that after a restart `recentKeys()` lists them exactly when the samples survived.
   */
  append(samples: SampleColumns | readonly Sample[], opts?: AppendOptions): Promise<number>;

  /**
   * The idempotency keys of appends made within `keyWindowMs` before this journal was opened,
   * found while recovering (no extra read): what a dedup memory needs to survive a restart.
   * Taken once: the list is released after the first call.
   */
  recentKeys(): { at: number; keys: string[] }[];

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

export interface AppendOptions {
  /** see Journal.append */
  keys?: readonly string[];
  /**
   * Stored before every key: the journal keeps `keyPrefix + keys[i]` (what `recentKeys` returns).
   * Why: a device's msgIds share its id as prefix, and building one joined string per message only
   * for the encoder to copy its bytes was most of the keys' garbage at high ingest rates.
   */
  keyPrefix?: string;
}

export interface JournalOutputStats {
  cursor: number;
  /** samples stored after this output's cursor */
  lag: number;
  /**
   * samples this output never got because they were deleted to make room, since the journal was
   * opened: by drop-oldest at the cap, or (`droppedDiskFull`) because the disk was full
   */
  dropped: number;
  /** the part of `dropped` deleted because the disk was full (reason disk_full) */
  droppedDiskFull: number;
  /**
   * samples after this output's cursor lost to corruption found at open (a bad stretch inside a
   * segment): counted once, at open, and never part of `lag`, `delivered` or `dropped`
   */
  corrupt: number;
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
  /** false while appends are refused for a disk error (see `unwritable`): /healthz answers 503 */
  writable: boolean;
  /** why the journal cannot write now, for operators ("disk full (ENOSPC)"); null when it can */
  unwritable: string | null;
  /** a fatal disk error happened (failed fsync, EIO): the journal will not write again */
  failed: boolean;
  /** samples lost to corruption found at open (stretches skipped inside segments) */
  corruptRecords: number;
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
  /** how far back `recentKeys()` reaches, from the time of opening (default 600,000: 10 minutes) */
  keyWindowMs?: number;
  /** notified once per event: see JournalEvent */
  onEvent?: (e: JournalEvent) => void;
}

export type JournalEvent =
  | { kind: "torn-tail"; segment: string; offset: number; droppedBytes: number; droppedRecords: number }
  /** a whole oldest segment deleted to make room: at the cap (drop_oldest) or on a full disk (disk_full) */
  | { kind: "dropped-oldest"; reason: "drop_oldest" | "disk_full"; segment: string; samples: number; perOutput: Record<string, number> }
  /** at recovery: a corrupt stretch inside a segment was skipped; `perOutput`: lost samples each output had not confirmed */
  | { kind: "corrupt"; segment: string; offset: number; bytes: number; samples: number; perOutput: Record<string, number> }
  /** appends are refused until a retry succeeds (`reason`: "disk full (ENOSPC)", …); once per change */
  | { kind: "unwritable"; reason: string; error: string }
  /** writing works again after an "unwritable" spell */
  | { kind: "writable"; unwritableMs: number; refusedSamples: number }
  /** a fatal disk error (failed fsync, EIO): the journal has stopped accepting for good */
  | { kind: "fatal"; error: string }
  /**
   * A disk operation took at least `slowIoMs` (default SLOW_IO_MS): a group commit (its phases
   * in ms: creating a segment, making room, writing, syncing) or a segment's deletion. Appends
   * wait on commits, so a slow disk shows here before it shows as backpressure.
   */
  | { kind: "slow-io"; op: "commit" | "delete"; segment: string; ms: number; phases?: { create: number; room: number; write: number; sync: number } };

/** see JournalEvent "slow-io" */
export const SLOW_IO_MS = 500;
