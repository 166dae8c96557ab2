import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";

/** Device states, in the order their series are written. */
const STATES = ["connecting", "online", "offline", "error", "disabled"] as const;

/** A label value as the text exposition format wants it: backslash, quote and newline escaped. */
function labelValue(v: string): string {
  return /[\\"\n]/.test(v) ? v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n") : v;
}

/**
 * Every counter an operator can see in /metrics (spec §4). One instance per gateway, so tests can run
 * several gateways in one process. Labels are bounded: device, output, reason, state, event — never
 * tags.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly samplesOut: Counter<"output">;
  /** reason: drop_oldest | journal_full | journal_io | poison | driver_thread_failed | driver_stopped; an output's own refusal reasons (influx: type_conflict | beyond_retention | series_limit | refused); deadband is not a drop and is not counted here */
  readonly drops: Counter<"reason" | "output">;
  /** per driver thread: event-loop delay over its last report (stat: p99 | max) */
  readonly driverThreadLoopDelay: Gauge<"thread" | "stat">;
  /** journal disk operations that took ≥ SLOW_IO_MS (op: commit | delete) */
  readonly journalSlowIo: Counter<"op">;
  /** reason: bad_request | unauthorized | forbidden | too_large | rate_limited | too_many_devices | journal_full | journal_error | not_found | method | bad_host | timeout | connection_limit */
  readonly ingestRejects: Counter<"reason">;
  /** pushing devices admitted so far (at most ingest.maxDevices) */
  readonly ingestDevices: Gauge;
  readonly ingestDuplicates: Counter<"device">;
  readonly ingestClockSkew: Counter<"device">;
  /** reason: device_cap | total_cap — msgIds forgotten before their 10 minutes were up (a retry may then be stored twice) */
  readonly ingestDedupEvictions: Counter<"reason">;
  /** device connections open on the ingest listeners (MQTT) */
  readonly ingestConnections: Gauge;
  /** device connections the listeners closed or lost, by reason (rate_limited, too_large, client, lost, takeover, …) */
  readonly ingestDisconnects: Counter<"reason">;
  /** cap: messages | bytes — times the MQTT listener's in-flight cap was reached and devices were held */
  readonly ingestPauses: Counter<"cap">;
  readonly driverEvents: Counter<"device" | "event">;
  /** drivers whose `run` failed and that the supervisor started again */
  readonly driverRestarts: Counter<"device">;
  readonly outputReconnects: Counter<"output">;

  constructor(collect: {
    deviceStates(): { device: string; state: string }[];
    journal(): { bytes: number; records: number; segments: number; lag: Record<string, number>; torn: number; writable: boolean };
    outputsUp(): Record<string, boolean>;
    /** samples accepted into the journal per device since start */
    samplesIn(): { device: string; count: number }[];
    /** what the ingest listeners hold awaiting the journal (absent: no listener) */
    ingestLoad?(): { inFlightMessages: number; inFlightBytes: number; pausedConnections: number } | undefined;
  }) {
    const r = [this.registry];
    this.collect = collect;
    // prom-client's own names start with process_ or nodejs_: the prefix is the product's alone.
    collectDefaultMetrics({ register: this.registry, prefix: "floorgate_" });
    this.samplesOut = new Counter({ name: "floorgate_samples_out_total", help: "Samples confirmed by an output", labelNames: ["output"], registers: r });
    this.drops = new Counter({ name: "floorgate_drops_total", help: "Samples dropped, by reason (output is empty when the drop happened before the journal)", labelNames: ["reason", "output"], registers: r });
    this.driverThreadLoopDelay = new Gauge({ name: "floorgate_driver_thread_event_loop_delay_seconds", help: "Event-loop delay of each driver thread over its last 5 s (stat: p99, max); polls wait on it", labelNames: ["thread", "stat"], registers: r });
    this.journalSlowIo = new Counter({ name: "floorgate_journal_slow_io_total", help: "Journal disk operations that took 500 ms or more (op: commit, delete)", labelNames: ["op"], registers: r });
    this.ingestRejects = new Counter({ name: "floorgate_ingest_rejects_total", help: "Device pushes refused, by reason", labelNames: ["reason"], registers: r });
    this.ingestDevices = new Gauge({ name: "floorgate_ingest_devices", help: "Pushing devices admitted (at most ingest.maxDevices; past it new ids get 429)", registers: r });
    this.ingestDuplicates = new Counter({ name: "floorgate_ingest_duplicates_total", help: "Pushes acknowledged but not stored again (repeated msgId)", labelNames: ["device"], registers: r });
    this.ingestClockSkew = new Counter({ name: "floorgate_ingest_clock_skew_total", help: "Pushes whose ts was more than 5 minutes off and replaced by gateway time", labelNames: ["device"], registers: r });
    this.ingestDedupEvictions = new Counter({ name: "floorgate_ingest_dedup_evictions_total", help: "Remembered msgIds evicted early by the memory caps, by reason", labelNames: ["reason"], registers: r });
    this.ingestConnections = new Gauge({ name: "floorgate_ingest_connections", help: "Device connections open on the embedded MQTT listener", registers: r });
    this.ingestDisconnects = new Counter({ name: "floorgate_ingest_disconnects_total", help: "Device MQTT connections ended, by reason (client: the device's DISCONNECT; lost: the socket closed; others: the gateway refused)", labelNames: ["reason"], registers: r });
    this.ingestPauses = new Counter({ name: "floorgate_ingest_pauses_total", help: "Times the device MQTT listener's in-flight cap was reached and it stopped reading devices until the journal caught up, by cap (messages: ingest.mqtt.maxInFlight, bytes: maxInFlightBytes)", labelNames: ["cap"], registers: r });
    // read at scrape time: set per message they would cost on the ingest's hot path
    const load = (): { inFlightMessages: number; inFlightBytes: number; pausedConnections: number } =>
      collect.ingestLoad?.() ?? { inFlightMessages: 0, inFlightBytes: 0, pausedConnections: 0 };
    new Gauge({ name: "floorgate_ingest_inflight_messages", help: "Device MQTT messages received and awaiting the journal (at most ingest.mqtt.maxInFlight)", registers: r, collect() { this.set(load().inFlightMessages); } });
    new Gauge({ name: "floorgate_ingest_inflight_bytes", help: "Payload bytes of the device MQTT messages awaiting the journal (held at ingest.mqtt.maxInFlightBytes)", registers: r, collect() { this.set(load().inFlightBytes); } });
    new Gauge({ name: "floorgate_ingest_paused_connections", help: "Device MQTT connections not being read now: held by the listener's in-flight caps, or at their own 64 messages in flight", registers: r, collect() { this.set(load().pausedConnections); } });
    this.driverEvents = new Counter({ name: "floorgate_driver_events_total", help: "Driver events (timeouts, skipped polls, late replies, reconnects)", labelNames: ["device", "event"], registers: r });
    this.driverRestarts = new Counter({ name: "floorgate_driver_restarts_total", help: "Drivers restarted after their run failed (a driver bug), per device", labelNames: ["device"], registers: r });
    this.outputReconnects = new Counter({ name: "floorgate_output_reconnects_total", help: "Output sessions lost and reopened", labelNames: ["output"], registers: r });
    new Gauge({ name: "floorgate_journal_bytes", help: "Bytes on disk in the journal", registers: r, collect() { this.set(collect.journal().bytes); } });
    new Gauge({ name: "floorgate_journal_records", help: "Samples stored in the journal", registers: r, collect() { this.set(collect.journal().records); } });
    new Gauge({ name: "floorgate_journal_segments", help: "Segment files in the journal", registers: r, collect() { this.set(collect.journal().segments); } });
    new Gauge({ name: "floorgate_journal_writable", help: "0 once the journal cannot accept data", registers: r, collect() { this.set(collect.journal().writable ? 1 : 0); } });
    new Gauge({ name: "floorgate_journal_torn_records", help: "Torn or corrupt tail records dropped at recovery", registers: r, collect() { this.set(collect.journal().torn); } });
    new Gauge({
      name: "floorgate_journal_lag_samples", help: "Samples stored after an output's cursor", labelNames: ["output"], registers: r,
      collect() { this.reset(); for (const [o, lag] of Object.entries(collect.journal().lag)) this.set({ output: o }, lag); },
    });
    new Gauge({
      name: "floorgate_output_up", help: "1 while an output's session is open", labelNames: ["output"], registers: r,
      collect() { this.reset(); for (const [o, up] of Object.entries(collect.outputsUp())) this.set({ output: o }, up ? 1 : 0); },
    });
  }

  private readonly collect: { deviceStates(): { device: string; state: string }[]; samplesIn(): { device: string; count: number }[] };

  /**
   * The exposition text. The two families with a series per device (five per device for the state)
   * are written here from plain data rather than kept in prom-client: there, every scrape re-set
   * each series through a label-hashing `set`, and at 5,000 devices one scrape blocked the event
   * loop (and so every poll) for about 300 ms.
   */
  async text(): Promise<string> {
    const base = await this.registry.metrics();
    const out: string[] = [base.endsWith("\n") || base === "" ? base : `${base}\n`];
    out.push(
      "# HELP floorgate_samples_in_total Samples accepted into the journal, per device\n",
      "# TYPE floorgate_samples_in_total counter\n",
    );
    // Counted by the device registry (a plain add per poll) and read at scrape time: a labelled
    // prom-client increment per poll cost about 1 % of the gateway at 2,000 polls/s.
    for (const d of this.collect.samplesIn()) {
      if (d.count > 0) out.push(`floorgate_samples_in_total{device="${labelValue(d.device)}"} ${d.count}\n`);
    }
    out.push(
      "# HELP floorgate_device_state 1 for the device's current state\n",
      "# TYPE floorgate_device_state gauge\n",
    );
    for (const d of this.collect.deviceStates()) {
      const head = `floorgate_device_state{device="${labelValue(d.device)}",state="`;
      let lines = "";
      for (const st of STATES) lines += `${head}${st}"} ${d.state === st ? 1 : 0}\n`;
      out.push(lines);
    }
    return out.join("");
  }
}
