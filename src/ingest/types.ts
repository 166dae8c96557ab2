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
  devices: IngestDeviceConfig[];
}
