import type { SampleColumns } from "../../core/sample-columns.js";
import type { IngestSink, RememberedMsgId } from "../../ingest/ingest.js";
import type { JournalIntake } from "./intake.js";
import { Normalizer } from "./normalize.js";

/**
 * Samples pushed by devices (HTTP or MQTT ingest) into the pipeline: normalize, then the journal
 * with each push's msgIds as idempotency keys in the same durable write. Resolves when durable,
 * rejects JOURNAL_FULL / JOURNAL_IO (→ 503). The device's state is not touched here: the ingest
 * marks it alive in the device table once it acknowledges the push.
 */
export class PushSink implements IngestSink {
  /** pushed tags have no config: no scale, deadband or unit to apply (only the sample shape) */
  private readonly normalizer = new Normalizer(new Map());

  constructor(private readonly intake: JournalIntake) {}

  push(device: string, cols: SampleColumns, msgIds: readonly string[]): Promise<void> {
    // each key is msgIdKey(device, msgId), joined by the journal's encoder (no string per message)
    return this.intake.appendPushed(device, this.normalizer.applyColumns(cols), msgIds.length > 0 ? msgIds : undefined, msgIdKey(device, ""));
  }
}

/**
 * A pushed msgId as a journal idempotency key: device ids cannot hold a newline, so the first
 * newline splits the key back exactly (a msgId may contain anything).
 */
export function msgIdKey(device: string, msgId: string): string {
  return `${device}\n${msgId}`;
}

/** The msgIds the journal recovered (`recentKeys`), oldest first, for the ingest's dedup. */
export function* rememberedMsgIds(frames: { at: number; keys: string[] }[]): Generator<RememberedMsgId> {
  frames.sort((a, b) => a.at - b.at);
  for (const f of frames) {
    for (const k of f.keys) {
      const nl = k.indexOf("\n");
      if (nl > 0) yield { device: k.slice(0, nl), msgId: k.slice(nl + 1), at: f.at };
    }
  }
}
