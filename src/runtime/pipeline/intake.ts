import type { LabelledCounter } from "../../core/counters.js";
import type { DeviceTable } from "../../core/device-table.js";
import { isFloorgateError } from "../../core/errors.js";
import type { Sample } from "../../core/sample.js";
import { SampleColumns } from "../../core/sample-columns.js";
import type { Journal } from "../../journal/journal.js";

/**
 * The last step of the pipeline, shared by polled and pushed samples: the latest values go to the
 * device table, the samples to the journal, and what the journal accepted or refused is counted
 * per device (`samples_in`, `dropped_<reason>`) and in `floorgate_drops_total`.
 */
export class JournalIntake {
  /**
   * Set by a JOURNAL_FULL refusal, cleared by the next accepted append; `/healthz` reads it (and
   * clears it once the journal has room again, see health.ts).
   */
  journalFull = false;

  constructor(
    private readonly journal: Journal,
    private readonly table: DeviceTable,
    private readonly drops: LabelledCounter<"reason" | "output">,
  ) {}

  /**
   * Journals one device's pushed samples; rejects with the journal's error (JOURNAL_FULL,
   * JOURNAL_IO) so the device gets a 503.
   */
  appendPushed(device: string, samples: SampleColumns, keys?: readonly string[], keyPrefix?: string): Promise<void> {
    this.table.observeColumns(samples);
    const n = samples.length;
    // a closure over the count, not an async frame: one per push in flight until durable
    return this.journal.append(samples, keys ? { keys, keyPrefix } : undefined).then(
      () => this.accepted(device, n),
      (err: unknown) => {
        if (isFloorgateError(err, "JOURNAL_FULL")) this.journalFull = true;
        throw err;
      },
    );
  }

  /**
   * Journals one device's polled samples. Refused samples are counted as dropped, never rethrown:
   * the poller carries on. Synchronous up to the journal's copy, and the promise it returns closes
   * over the count only: at 200,000 values/s, samples kept alive across the fsync wait would
   * outlive V8's young generation and be promoted, feeding the major GC.
   */
  appendPolled(device: string, samples: SampleColumns | readonly Sample[]): Promise<void> {
    if (samples instanceof SampleColumns) this.table.observeColumns(samples);
    else this.table.observe(samples);
    const n = samples.length;
    return this.journal.append(samples).then(
      () => this.accepted(device, n),
      (err: unknown) => {
        const reason = isFloorgateError(err, "JOURNAL_FULL") ? "journal_full" : isFloorgateError(err, "JOURNAL_UNAVAILABLE") ? "journal_unavailable" : "journal_io";
        if (reason === "journal_full") this.journalFull = true;
        this.drops.inc({ reason, output: "" }, n);
        this.table.count(device, `dropped_${reason}`, n);
      },
    );
  }

  private accepted(device: string, n: number): void {
    this.journalFull = false;
    this.table.count(device, "samples_in", n);
  }
}
