import type { LabelledCounter } from "../../core/counters.js";
import type { Logger } from "../../core/logger.js";
import type { JournalEvent } from "../../journal/journal.js";
import type { SlowIoReporter } from "./slow-io.js";

/**
 * The journal's events, counted and logged once each (the journal fires each once per change).
 * `fatal` is handed to `onFatal`: a failed fsync may have lost acknowledged data from the page
 * cache, so the gateway must stop and let recovery re-read the disk.
 */
export function journalEventHandler(
  log: Logger,
  drops: LabelledCounter<"reason" | "output">,
  slowIo: SlowIoReporter,
  onFatal: (why: string) => void,
): (e: JournalEvent) => void {
  return (e) => {
    switch (e.kind) {
      case "slow-io":
        slowIo.report(e);
        return;
      case "torn-tail":
        log.warn(e, "journal: torn tail record dropped at recovery (it was never acknowledged)");
        return;
      case "corrupt":
        log.error(e, "journal: corrupt stretch skipped at recovery; the samples in it are lost and counted");
        for (const [o, n] of Object.entries(e.perOutput)) if (n > 0) drops.inc({ reason: "corrupt", output: o }, n);
        return;
      case "dropped-oldest":
        log.warn(e, e.reason === "disk_full" ? "journal: oldest segment dropped (disk full)" : "journal: oldest segment dropped (journal full)");
        for (const [o, n] of Object.entries(e.perOutput)) if (n > 0) drops.inc({ reason: e.reason, output: o }, n);
        return;
      case "unwritable":
        log.error({ reason: e.reason, error: e.error }, `journal cannot write: ${e.reason}; refusing data (503) and retrying`);
        return;
      case "writable":
        log.info({ unwritableMs: e.unwritableMs, refusedSamples: e.refusedSamples }, "journal writes again");
        return;
      case "fatal":
        log.fatal({ error: e.error }, "journal: fatal disk error; stopping so that recovery re-reads the disk");
        onFatal(e.error);
        return;
    }
  };
}
