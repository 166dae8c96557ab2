import type { DeviceConfig } from "../../config/types.js";
import type { LabelledCounter } from "../../core/counters.js";
import type { DeviceTable } from "../../core/device-table.js";
import type { DriverContext } from "../../core/driver.js";
import type { Logger } from "../../core/logger.js";
import { SampleColumns } from "../../core/sample-columns.js";
import type { JournalIntake } from "./intake.js";
import { Normalizer } from "./normalize.js";

const DONE: Promise<void> = Promise.resolve();

export interface DriverContextDeps {
  intake: JournalIntake;
  table: DeviceTable;
  /** `floorgate_driver_events_total{device,event}` */
  driverEvents: LabelledCounter<"device" | "event">;
  log: Logger;
}

/**
 * The DriverContext of one configured device on the main thread: what a driver emits is
 * normalized (scale, offset, deadband, unit from the tag config) and journaled; its state and
 * counters go to the device table. `emit` is in resolve-when-durable mode (see DriverContext).
 */
export function driverContext(dc: DeviceConfig, signal: AbortSignal, deps: DriverContextDeps): DriverContext {
  const normalizer = Normalizer.forTags(dc.tags);
  const log = deps.log.child({ device: dc.id });
  const { intake, table, driverEvents } = deps;
  return {
    signal,
    log,
    // Not async: an async function would hold the samples in its frame while the journal's fsync
    // is awaited (see JournalIntake.appendPolled for why that matters).
    emit: (samples) => {
      const norm = samples instanceof SampleColumns ? normalizer.applyColumns(samples) : normalizer.apply(samples);
      if (norm.length === 0) return DONE;
      return intake.appendPolled(dc.id, norm);
    },
    setState: (state, error) => {
      if (table.setState(dc.id, state, error ?? null)) {
        log.info({ state, error: error ?? null }, `device ${dc.id} ${state}`);
      }
    },
    count: (event, n = 1) => {
      table.count(dc.id, event, n);
      driverEvents.inc({ device: dc.id, event }, n);
    },
  };
}
