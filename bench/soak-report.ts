/**
 * The soak's accounting: drop counters kept across gateway restarts, and the closing summary.
 *
 * Drops. The gateway's counters live in memory and restart from 0 with each process, and a SIGKILL
 * gives no chance to read them last. So, per gateway incarnation, the soak keeps the highest value
 * of each `floorgate_drops_total{reason,output}` scraped once a second, and for the journal's own
 * drops (drop_oldest, disk_full, corrupt) also the sum of the events the daemon logs (one JSON line
 * per dropped segment, in the stdout pipe before a kill can lose it), taking the larger of the two.
 * The total is the sum over incarnations. Weakness: a drop of another reason (poison) in the last
 * second before a SIGKILL is not seen. That errs towards reporting a sample as lost (a false
 * alarm), never towards hiding a loss.
 *
 * Attribution. Drop counters are per reason and output, not per device, so a post-journal drop
 * (output "cloud": drop_oldest, poison, disk_full) of a Modbus sample could excuse a missing push
 * sample. lost = max(0, pushes acknowledged and never delivered − post-journal drops) is therefore
 * exact when nothing was dropped after the journal, and a lower bound otherwise; both figures are
 * printed. Drops before the journal (output "") never excuse an acknowledged sample.
 */
import { http } from "../test/helpers/gateway-process.js";
import type { FaultKind, FaultRecord } from "./soak-faults.js";

/** drops_total per "reason|output", per gateway incarnation (index = incarnation - 1). */
export class DropBook {
  private readonly scraped: Map<string, number>[] = [];

  /** Scrapes /metrics; `incarnation()` is read before and after, and a mixed answer is discarded. */
  async scrape(base: string, incarnation: () => number): Promise<boolean> {
    const before = incarnation();
    const r = await http("GET", `${base}/metrics`).catch(() => null);
    if (!r || r.status !== 200 || incarnation() !== before) return false;
    const book = this.at(before);
    for (const line of r.body.split("\n")) {
      const m = /^floorgate_drops_total\{([^}]*)\} (\S+)$/.exec(line);
      if (!m) continue;
      const reason = /reason="([^"]*)"/.exec(m[1]!)?.[1] ?? "";
      const output = /output="([^"]*)"/.exec(m[1]!)?.[1] ?? "";
      const key = `${reason}|${output}`;
      book.set(key, Math.max(book.get(key) ?? 0, Number(m[2])));
    }
    return true;
  }

  private at(incarnation: number): Map<string, number> {
    while (this.scraped.length < incarnation) this.scraped.push(new Map());
    return this.scraped[incarnation - 1]!;
  }

  /** Totals per "reason|output" over every incarnation, with the logged journal drops folded in. */
  totals(logged: readonly ReadonlyMap<string, number>[]): Map<string, number> {
    const out = new Map<string, number>();
    const n = Math.max(this.scraped.length, logged.length);
    for (let i = 0; i < n; i++) {
      const book = new Map(this.scraped[i] ?? []);
      for (const [key, v] of logged[i] ?? []) book.set(key, Math.max(book.get(key) ?? 0, v));
      for (const [k, v] of book) out.set(k, (out.get(k) ?? 0) + v);
    }
    return out;
  }
}

export interface MissingSample { device: string; value: number; msgId: string; ackedAtS: number; attempts: number }

export interface SoakSummary {
  ok: boolean;
  failures: string[];
  seed: number;
  minutes: number;
  durationS: number;
  faultsEnabled: FaultKind[];
  faults: { total: number; byKind: Record<string, number>; list: FaultRecord[] };
  gateway: { incarnations: number; exit: { code: number | null; signal: string | null; ms: number }; errorLogLines: number; drainTimedOut: boolean; drainS: number };
  http: { devices: number; bodiesAcknowledged: number; acknowledged: number; delivered: number; duplicates: number; missing: number; unacknowledgedGivenUp: number; answers: Record<string, number> };
  /**
   * notDelivered = served − delivered; unexplained = notDelivered − drops before the journal (polls
   * refused by an unwritable journal) − the post-journal drops left over once the missing pushes are
   * explained: mostly replies in flight when the gateway was killed or a simulator restarted.
   * Polls have no acknowledgement, so none of this fails the soak.
   */
  modbus: { devices: number; requestsAnswered: number; samplesServed: number; delivered: number; duplicates: number; notDelivered: number; unexplained: number; notGood: number; misattributed: number };
  consumer: { messages: number; samples: number; replayedMessages: number; connects: number; sessionLostAtS: number[]; foreign: number };
  drops: { byReasonOutput: Record<string, number>; postJournal: number; beforeJournal: number };
  lost: number;
  missingExamples: MissingSample[];
}

const pad = (s: string, n: number): string => s + " ".repeat(Math.max(0, n - s.length));

/** The summary as a plain table for the terminal. */
export function formatSummary(s: SoakSummary): string {
  const rows: [string, string][] = [
    ["result", s.ok ? "PASS" : `FAIL: ${s.failures.join("; ")}`],
    ["seed / planned / actual", `${s.seed} / ${s.minutes} min / ${s.durationS.toFixed(0)} s`],
    ["faults injected", `${s.faults.total} (${Object.entries(s.faults.byKind).map(([k, v]) => `${k} ${v}`).join(", ") || "none"})`],
    ["gateway", `${s.gateway.incarnations} starts, exit ${s.gateway.exit.code ?? s.gateway.exit.signal} after SIGTERM in ${s.gateway.exit.ms} ms, ${s.gateway.errorLogLines} error log lines, drained in ${s.gateway.drainS.toFixed(1)} s${s.gateway.drainTimedOut ? " (TIMED OUT)" : ""}`],
    ["HTTP samples acknowledged", `${s.http.acknowledged} (${s.http.bodiesAcknowledged} bodies from ${s.http.devices} devices)`],
    ["HTTP delivered (distinct)", String(s.http.delivered)],
    ["HTTP duplicates", String(s.http.duplicates)],
    ["HTTP acknowledged, not delivered", String(s.http.missing)],
    ["HTTP never acknowledged (given up)", String(s.http.unacknowledgedGivenUp)],
    ["HTTP answers", Object.entries(s.http.answers).map(([k, v]) => `${k}: ${v}`).join(", ")],
    ["Modbus samples served", `${s.modbus.samplesServed} (${s.modbus.requestsAnswered} reads from ${s.modbus.devices} devices)`],
    ["Modbus delivered (distinct)", `${s.modbus.delivered} (${s.modbus.notDelivered} served, not delivered; ${s.modbus.unexplained} not explained by drops)`],
    ["Modbus duplicates / not good / wrong tag", `${s.modbus.duplicates} / ${s.modbus.notGood} / ${s.modbus.misattributed}`],
    ["consumer", `${s.consumer.messages} messages, ${s.consumer.samples} samples, ${s.consumer.replayedMessages} replayed batches, ${s.consumer.connects} connects, session lost ${s.consumer.sessionLostAtS.length}×`],
    ["dropped", Object.entries(s.drops.byReasonOutput).map(([k, v]) => `${k}: ${v}`).join(", ") || "0"],
    ["dropped after / before the journal", `${s.drops.postJournal} / ${s.drops.beforeJournal}`],
    ["LOST (acknowledged − delivered − dropped)", String(s.lost)],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  const lines = rows.map(([k, v]) => `${pad(k, w)}  ${v}`);
  for (const m of s.missingExamples.slice(0, 10)) lines.push(`  not delivered (dropped or lost): ${m.device} value ${m.value} (${m.msgId}, acknowledged at ${m.ackedAtS.toFixed(1)} s after ${m.attempts} tries)`);
  return lines.join("\n");
}
