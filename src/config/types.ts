import type { DeviceConfig as BuiltDeviceConfig } from "../plugins/drivers.js";
import type { OutputConfig as BuiltOutputConfig } from "../plugins/outputs.js";

/**
 * The validated, defaulted config (spec §2). `loadConfig` produces exactly this shape or a list of
 * every problem; nothing downstream re-validates. Durations are ms, sizes bytes.
 */
export type GatewayConfig = GatewayConfigOf<DeviceConfig, OutputConfig>;

/** The config with devices `D` and outputs `O`: a composition other than the build's (tests) builds its own. */
export interface GatewayConfigOf<D, O> {
  /** driverThreads: worker threads hosting the drivers; 0 runs them in the main thread */
  gateway: { id: string; group: string; dataDir: string; driverThreads: number };
  http: HttpConfig;
  journal: JournalConfig;
  devices: D[];
  ingest: IngestConfig;
  outputs: O[];
}

export interface HttpConfig {
  /** host:port; default 127.0.0.1:8080 */
  listen: string;
  host: string;
  port: number;
  operatorTokens: string[];
  allowedOrigins: string[];
}

export interface JournalConfig {
  maxBytes: number;
  overflow: "drop-oldest" | "reject";
  fsync: "batch" | "always";
  fsyncIntervalMs: number;
}

/**
 * A device of any driver this build carries: the union of the config types of the drivers in
 * `src/plugins/drivers.ts`. The runtime reads the common keys (`DeviceConfigBase`); only the
 * driver's own folder reads the rest.
 */
export type DeviceConfig = BuiltDeviceConfig;

export type { TagCommon } from "../core/tag.js";

/** The `ingest` section's types belong to the ingest (src/ingest/types.ts), as a plugin's do to its folder. */
import type { IngestConfig } from "../ingest/types.js";
export type { IngestConfig, IngestDeviceConfig } from "../ingest/types.js";

/** An output of any type this build carries (the union over `src/plugins/outputs.ts`). */
export type OutputConfig = BuiltOutputConfig;

/** One problem found in a config file; `validate` prints one per line. */
export interface ConfigProblem {
  /** e.g. `devices[2].tags[0].type`; empty for the file as a whole */
  path: string;
  /** 1-based; 0 when the position is unknown (e.g. a missing key reported at its parent) */
  line: number;
  col: number;
  message: string;
  /** `warning`: reported, but the config is accepted. Absent: an error. */
  severity?: "warning";
  /**
   * Set on a problem of a device made from a template (`devices[].template`) when the template
   * takes part in it: the template's name and the line of the template value involved.
   */
  template?: { name: string; line: number };
}
