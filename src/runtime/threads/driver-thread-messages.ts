import type { DeviceConfig } from "../../config/types.js";
import type { DeviceState, SampleValue } from "../../core/sample.js";
import type { PackedFlush } from "./thread-columns.js";

/** An error as it crosses threads: its stable code (when it had one) and its message. */
export interface WireError {
  code?: string;
  message: string;
}

/** Main thread → driver thread. */
export type ToDriverThread =
  /**
   * Start driver `id` for this device config. Its tag list travels once per distinct list: with
   * `tags` the first time (its number is `tagsRef`), by number only afterwards, so devices that
   * share a tag list (and so a read plan) in the main thread share them on the driver thread too.
   */
  | { t: "start"; id: number; cfg: DeviceConfig; tagsRef: number; tags?: DeviceConfig["tags"] }
  /** abort driver `id`; it answers "stopped" once its sockets are released */
  | { t: "stop"; id: number }
  /**
   * These emits are durable (or were refused and counted by the runtime): resolve them. `samples`
   * is how many samples they held, so the thread keeps its in-flight count without a table of
   * emits (see `inFlight` in driver-worker.ts).
   */
  | { t: "durable"; seqs: number[]; samples: number }
  | { t: "write"; req: number; id: number; tag: string; raw: SampleValue }
  /** @internal for tests: the thread exits (code 1) inside the next emit, before that emit is sent */
  | { t: "exit-inside-next-emit" };

/** Driver thread → main thread. */
export type FromDriverThread =
  | { t: "emit"; flush: PackedFlush }
  | { t: "state"; id: number; state: DeviceState; error: string | null }
  | { t: "count"; id: number; event: string; n: number }
  /** a pino line of a driver's logger; its SLOT_KEY field names the driver */
  | { t: "log"; line: string }
  /** this thread's event-loop delay over the last LOOP_REPORT_MS, in seconds */
  | { t: "loop"; p99: number; max: number }
  /** driver `id` has returned (error: its run rejected, or it could not be created) */
  | { t: "stopped"; id: number; error?: WireError }
  | { t: "written"; req: number; error?: WireError };

/** How often a driver thread reports its event-loop delay. */
export const LOOP_REPORT_MS = 5000;

/** The binding in a driver thread's log lines that names the driver's slot. */
export const SLOT_KEY = "driverSlot";

/** What the main thread passes as workerData. */
export interface DriverThreadData {
  logLevel: string;
  /**
   * One Float64 the driver thread alone writes: how many samples its drivers have emitted. Read by
   * the main thread once the thread has exited and its last messages are delivered, so the
   * samples that died with it (emitted, never sent) can be counted as dropped.
   */
  emitted: SharedArrayBuffer;
  /**
   * An emit resolves at once while fewer samples than this await durability on the thread, else
   * when it is durable (see driver-worker.ts).
   */
  inFlightSamples: number;
  /**
   * @internal for tests: the URL of a module whose `createDriver(cfg)` export makes the drivers on
   * this thread instead of the plugin list (a test driver whose `run` fails, for the supervisor)
   */
  driverModule?: string;
}
