import { FloorgateError } from "./errors.js";
import type { Logger } from "./logger.js";
import type { DeviceState } from "./sample.js";
import type { SampleBatch } from "./sample-columns.js";

/**
 * A northbound destination (MQTT, InfluxDB). An output knows its destination and nothing else: the
 * runtime reads the journal, batches, keeps up to `maxInFlight` writes outstanding, moves the
 * cursor, reconnects with backoff, and reports health.
 */
export interface Output {
  readonly name: string;
  readonly type: string;
  /** Most samples one `write` may carry. */
  readonly maxBatch: number;
  /**
   * Most writes the runtime may have outstanding on one session. This bounds how far ahead the
   * runtime reads, not the destination's protocol window: a write may become many messages (MQTT
   * json: one per device in it), and a session whose protocol has a limit of its own (MQTT's 65,535
   * packet ids) keeps its messages in flight under that limit itself, queueing the rest.
   */
  readonly maxInFlight: number;

  /**
   * Opens one connection. Resolves when writes may start; rejects with a FloorgateError
   * (OUTPUT_UNAVAILABLE: retry after backoff; OUTPUT_REJECTED: bad credentials or config, retried
   * at the longest backoff). Must give up by itself within a bounded time, and at once when
   * `signal` aborts. Called again by the runtime after every lost session.
   */
  connect(ctx: OutputContext): Promise<OutputSession>;
}

export interface OutputContext {
  signal: AbortSignal;
  /** Already bound to the output's name: lines logged here must not add `output` again. */
  log: Logger;
  /**
   * The newest durable journal position now (what the journal holds, whether or not this output
   * has read it). An output that marks data it sends from a backlog (Sparkplug `is_historical`)
   * reads it when its session goes live: samples at or before it waited in the journal while the
   * output was not live. Absent outside the runtime (tests driving an output directly).
   */
  journalHead?(): number;
}

export interface OutputSession {
  /**
   * Sends `batch` (journal order, positions strictly increasing; columns shared with other
   * outputs and the journal's cache, so read-only). Resolves once the destination
   * has acknowledged all of it; `dropped` lists parts the destination refused for good (poison
   * data) — those are counted and skipped, never retried. Rejects with OUTPUT_UNAVAILABLE or
   * OUTPUT_TIMEOUT when the session broke: the runtime closes it, reconnects and resends from
   * the cursor (at least once). Writes resolve in the order they were issued.
   */
  write(batch: SampleBatch): Promise<WriteResult>;

  /**
   * `undefined` when the session may send now; otherwise a promise that resolves once it may
   * (e.g. a Sparkplug primary host came online) or rejects when `signal` aborts. Sessions that are
   * always ready leave it out.
   */
  ready?(signal: AbortSignal): Promise<void> | undefined;

  /** Best-effort device status (retained status topics); no delivery guarantee. */
  deviceStatus?(device: string, state: DeviceState, error: string | null, ts: number): void;

  /** Resolves with the reason once the connection is lost; never rejects. */
  readonly lost: Promise<Error>;

  /** Graceful close: publishes offline status where the destination has one, then disconnects. Bounded in time. */
  close(): Promise<void>;
}

export interface WriteResult {
  /**
   * `reason`: the destination's words (logged, shown in /healthz); `code`: a stable, bounded label
   * for `floorgate_drops_total{reason}` (documented in docs/errors.md), default `poison`.
   */
  dropped: { count: number; reason: string; code?: string }[];
}

/**
 * An output this build validates but cannot serve (e.g. a format whose encoder is missing): it
 * never connects, so its data waits in the journal, and its health shows `why`.
 */
export function unavailableOutput(name: string, type: string, why: string): Output {
  return {
    name, type, maxBatch: 1, maxInFlight: 1,
    connect: () => Promise.reject(new FloorgateError("OUTPUT_REJECTED", why)),
  };
}
