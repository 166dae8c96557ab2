import type { DeviceTable } from "../../core/device-table.js";
import type { HealthReport, OutputHealth } from "../../core/status.js";
import type { Journal } from "../../journal/journal.js";

/**
 * `/healthz` (spec §4): `degraded` when the journal cannot write or is full, an output is not
 * online, or a device is offline or in error; `journalAccepting` false (→ 503) only when the journal
 * refuses data. `journalFull` is the intake's flag from the last refused append: it is believed
 * only while the journal is still at least 90 % full, and cleared otherwise (`clearFull`).
 */
export function healthReport(
  journal: Journal,
  outputs: Record<string, OutputHealth>,
  table: DeviceTable,
  journalFull: boolean,
  clearFull: () => void,
): HealthReport {
  const j = journal.stats();
  const full = journalFull && j.bytes >= j.maxBytes * 0.9;
  if (!full && journalFull) clearFull();
  const devices = Object.fromEntries(table.states().map((d) => [d.id, { state: d.state, error: d.error }]));
  let dropped = 0;
  for (const o of Object.values(j.outputs)) dropped += o.dropped;
  const degraded = !j.writable || full
    || Object.values(outputs).some((o) => o.state !== "online")
    || Object.values(devices).some((d) => d.state === "offline" || d.state === "error");
  return {
    status: degraded ? "degraded" : "ok",
    journalAccepting: j.writable && !full,
    devices,
    outputs,
    journal: {
      bytes: j.bytes, maxBytes: j.maxBytes, records: j.records, segments: j.segments,
      oldestPos: j.oldestPos, newestPos: j.newestPos, appended: j.appended, dropped,
      tornRecords: j.tornRecords, corruptRecords: j.corruptRecords, rejected: j.rejected, writable: j.writable,
      unwritable: j.unwritable, failed: j.failed, full,
    },
  };
}
