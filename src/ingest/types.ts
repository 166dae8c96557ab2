/**
 * The validated `ingest` section (spec §2), as the config loader builds it. Its types live here, in
 * the ingest, so the ingest never imports the config loader (src/config re-exports them).
 */
import type { IngestMqttConfig } from "./mqtt/config.js";

export interface IngestDeviceConfig {
  /** exact id or glob with `*` */
  id: string;
  token?: string;
  /** "sha256:<hex>" */
  tokenHash?: string;
}

export interface IngestConfig {
  /** default true when an ingest section exists */
  http: boolean;
  /** The embedded device MQTT listener (src/ingest/mqtt); absent: none. */
  mqtt?: IngestMqttConfig;
  maxPayloadBytes: number;
  /** messages/s per device (a body of n messages counts n) */
  ratePerDevice: number;
  /**
   * pushing devices the gateway keeps state for (device list, metric series, status topics, rate
   * buckets); a new id past it is refused with 429. Exact ids in `devices` always have a place.
   * Default 20,000.
   */
  maxDevices: number;
  /**
   * Extension: msgIds the idempotency window remembers at most, all devices together. Past it the
   * oldest are forgotten before their 10 minutes, counted (`floorgate_ingest_dedup_evictions_total`)
   * and logged once. Default 8,000,000 (~10 bytes each for ids ending in a counter, ~100 others).
   */
  dedupMaxEntries?: number;
  devices: IngestDeviceConfig[];
}
