/**
 * A push listener of its own (an embedded broker beside the HTTP route): one folder under
 * src/ingest/<name>/ plus one line in src/plugins/ingest.ts. It owns a key under `ingest` (its
 * config part) and, when that key is set, is started by the runtime with the one shared `Ingest`,
 * so tokens, admission under `maxDevices`, the rate per device, msgId idempotency and the durable
 * store are the same whichever way a device pushes.
 */
import type { IngestListenerConfigPart } from "../core/plugin.js";
import type { LabelledCounter, SettableGauge } from "../core/counters.js";
import type { DeviceTable } from "../core/device-table.js";
import type { Logger } from "../core/logger.js";
import type { ListenerHealth } from "../core/status.js";
import type { Ingest } from "./ingest.js";

/** The counters a listener moves besides the ingest's own (`floorgate_ingest_*`). */
export interface ListenerCounters {
  /** every refusal, by reason (the ingest's reasons and the listener's own) */
  readonly ingestRejects: LabelledCounter<"reason">;
  /** device connections open now */
  readonly ingestConnections: SettableGauge;
  /** connections the listener closed or lost, by reason */
  readonly ingestDisconnects: LabelledCounter<"reason">;
  /** times a listener-wide in-flight cap was reached and devices were held, by cap (messages | bytes) */
  readonly ingestPauses: LabelledCounter<"cap">;
}

/** What a listener holds awaiting the journal now (/metrics and /healthz read it). */
export type ListenerLoad = ListenerHealth;

/** What the runtime hands a listener at start. */
export interface ListenerContext {
  /** the gateway's one ingest, shared with HTTP */
  readonly ingest: Ingest;
  /** the device-state owner: connection changes go here (`connected`, `disconnected`) */
  readonly table: DeviceTable;
  readonly metrics: ListenerCounters;
  readonly log: Logger;
}

/** A started listener. */
export interface RunningListener {
  /** the bound port (the config's, or the one the OS picked for port 0) */
  readonly port: number;
  /** What awaits the journal now; cheap enough for every scrape. */
  load(): ListenerLoad;
  /** Stops accepting, closes every device connection (devices show `offline`), resolves when closed. */
  close(): Promise<void>;
}

export interface IngestListenerPlugin<C> extends IngestListenerConfigPart {
  /** The plugin's folder, relative to the repository root: holds README.md and sample.yaml. */
  readonly folder: string;
  /**
   * Starts listening with the built config of its key. Rejects with FloorgateError PORT_IN_USE
   * when it cannot bind, or CONFIG_INVALID when a TLS file cannot be read.
   */
  start(cfg: C, ctx: ListenerContext): Promise<RunningListener>;
}
