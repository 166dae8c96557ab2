import type { DeviceState, Quality, SampleValue } from "../core/sample.js";

/** What the HTTP API, /healthz and the live feed read about the running gateway. Read-only. */
export interface StatusView {
  gatewayId(): string;
  health(): HealthReport;
  devices(): DeviceInfo[];
  /** undefined when the device is neither configured nor has pushed */
  tags(device: string): TagValue[] | undefined;
}

export interface DeviceInfo {
  id: string;
  driver: string;
  state: DeviceState;
  error: string | null;
  lastSampleTs: string | null;
  counters: Record<string, number>;
}

export interface TagValue {
  tag: string;
  value: SampleValue;
  quality: Quality;
  ts: string;
  unit?: string;
}

export interface OutputHealth {
  type: string;
  state: "connecting" | "online" | "offline" | "waiting" | "stopped";
  error: string | null;
  cursor: number;
  lag: number;
  sent: number;
  dropped: number;
  /**
   * Samples the destination refused for good, by reason (the `floorgate_drops_total` reason, e.g.
   * `type_conflict`); part of `dropped`. Empty when none.
   */
  refused: Record<string, number>;
  /** The destination's words for its latest refusal, with the reason and when; null when none. */
  lastRefusal: { reason: string; detail: string; ts: string } | null;
  lastAckTs: string | null;
}

/** A device listener in /healthz (`ingest.mqtt`): its connections and what awaits the journal. */
export interface ListenerHealth {
  /** devices connected now */
  connections: number;
  /** messages received from devices and awaiting the journal */
  inFlightMessages: number;
  /** their payload bytes */
  inFlightBytes: number;
  /** connections not read now: held by the listener's in-flight caps or at their own window */
  pausedConnections: number;
  /** true while the listener-wide caps hold devices (from a cap being hit until all are read again) */
  paused: boolean;
}

export interface HealthReport {
  status: "ok" | "degraded";
  /** false → /healthz answers 503 */
  journalAccepting: boolean;
  devices: Record<string, { state: DeviceState; error: string | null }>;
  outputs: Record<string, OutputHealth>;
  journal: {
    bytes: number; maxBytes: number; records: number; segments: number; oldestPos: number; newestPos: number;
    appended: number; dropped: number; tornRecords: number; corruptRecords: number; rejected: number; writable: boolean;
    /** why the journal refuses data now ("disk full (ENOSPC)"), null when it accepts */
    unwritable: string | null;
    /** a fatal disk error stopped the journal; the daemon is exiting */
    failed: boolean;
    full: boolean;
  };
  /**
   * The device listeners by their `ingest` key (`mqtt`), present when one runs. Flow control, not
   * a fault: a paused listener does not make the status degraded.
   */
  ingest?: Record<string, ListenerHealth>;
}
