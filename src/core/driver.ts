import type { Logger } from "./logger.js";
import type { DeviceState, Sample, SampleValue } from "./sample.js";
import type { SampleColumns } from "./sample-columns.js";

/**
 * A southbound source for one configured device. A driver knows its protocol and nothing else:
 * it emits samples with decoded raw values (before `scale`/`offset`; the runtime's normalize
 * step applies scaling, deadband and units from the tag config).
 */
export interface Driver {
  /**
   * Runs until `ctx.signal` aborts, then resolves after releasing every socket and port. Transient
   * device errors are reported through `setState`/bad-quality samples and retried with backoff,
   * never thrown. A rejection means a bug: the runtime logs it once, shows the device `error`, and
   * calls `run` again after a backoff (counted as a restart) until the gateway stops, so `run`
   * must be callable again on the same driver once it has settled.
   */
  run(ctx: DriverContext): Promise<void>;

  /**
   * Writes `raw` (already inverse-scaled) to a writable tag. Rejects with WRITE_REFUSED (not
   * writable or not writable for this area), DRIVER_TIMEOUT, DRIVER_EXCEPTION or DRIVER_TRANSPORT.
   */
  write?(tag: string, raw: SampleValue): Promise<void>;
}

export interface DriverContext {
  signal: AbortSignal;
  log: Logger;
  /**
   * Hands samples to the journal, as objects or as columns (the cheaper form for a poller: see
   * SampleColumns). Objects are copied before `emit` returns, so the driver may drop or reuse them
   * at once; columns are handed over and must not be changed afterwards. The driver should not
   * keep either once `emit` has returned.
   *
   * When it resolves depends on where the driver runs (the driver cannot tell, and must work
   * under both):
   * - on the main thread (`gateway.driverThreads: 0`): **resolve-when-durable**. It resolves once
   *   the samples are durable in the journal, or were refused and counted.
   * - on a driver thread (`gateway.driverThreads` > 0): **in-flight window**. It resolves at once
   *   while fewer than a bounded number of this thread's samples await durability, and only once
   *   durable past that window, so journal latency does not move the poll clock.
   * Either way a poller that awaits `emit` before its next poll slows down instead of piling up
   * memory. It is not an acknowledgement to anyone: a driver has nobody to acknowledge. Never
   * rejects: samples the journal refuses (JOURNAL_FULL, JOURNAL_IO) are counted as dropped by the
   * runtime, and the driver just carries on.
   */
  emit(samples: readonly Sample[] | SampleColumns): Promise<void>;
  /** Reports a state change; repeated identical states are ignored. */
  setState(state: DeviceState, error?: string | null): void;
  /** Counts a driver event (e.g. "skipped_poll", "timeout", "late_reply") for /metrics and /api/v1/devices. */
  count(event: string, n?: number): void;
}
