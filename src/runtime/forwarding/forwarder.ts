import { Backoff, sleep } from "../../core/backoff.js";
import { describeError, FloorgateError, isFloorgateError } from "../../core/errors.js";
import type { Logger } from "../../core/logger.js";
import type { DeviceState } from "../../core/sample.js";
import type { SampleBatch } from "../../core/sample-columns.js";
import { isoTs } from "../../core/sample.js";
import type { Journal } from "../../journal/journal.js";
import type { Output, OutputSession, WriteResult } from "../../core/output.js";
import type { Metrics } from "../status/metrics.js";
import type { OutputHealth } from "../../core/status.js";
import { Wakeup } from "./wakeup.js";

/** Reason for aborting internal waits: a shared value, so an idle loop does not build a DOMException per wait. */
const WAIT_OVER = new Error("wait over");

interface InFlight {
  lastPos: number;
  count: number;
  state: "pending" | "done" | "failed";
  result?: WriteResult;
  error?: unknown;
}

/**
 * Longest wait between connect attempts to an unavailable destination. Kept short whatever the
 * outage length, so that a destination that comes back is used within this plus one connect (well
 * under 5 s) instead of after a wait that grew through a long outage; a refused connect on a dead
 * port costs next to nothing, so probing every few seconds is cheap.
 */
export const DEFAULT_MAX_BACKOFF_MS = 3_000;
/** Wait after OUTPUT_REJECTED (credentials, TLS trust, config): no quick retry can fix those. */
export const DEFAULT_REJECTED_BACKOFF_MS = 30_000;

export interface ForwarderOptions {
  /** first reconnect wait; default 200 ms */
  initialBackoffMs?: number;
  /** longest wait between connect attempts (jittered: a wait is in [max/2, max]); default 3 s */
  maxBackoffMs?: number;
  /** wait after the destination refused for good (OUTPUT_REJECTED), jittered the same way; default 30 s */
  rejectedBackoffMs?: number;
  /** how long a stop waits for writes in flight; default 3 s */
  drainMs?: number;
}

/** One outage as the log tells it: a line when it starts and when the error changes, one when it ends. */
interface Outage {
  since: number;
  /** failed connect attempts (and the lost session that started the outage) */
  failures: number;
  /** error texts already logged during this outage; capped, so alternating errors are not logged forever */
  logged: Set<string>;
}

/** Distinct error texts one outage logs; later ones only show in health and at debug level. */
const MAX_LOGGED_ERRORS = 4;

/**
 * Moves one output's cursor through the journal: read after the cursor, write with a window of
 * writes in flight, commit the cursor as writes are acknowledged in order, and on any failure
 * close the session, back off with jitter and resend from the cursor. One forwarder never waits
 * for another, so one output's outage never holds up another. Logs state changes, not retries:
 * the logger it is given must not be bound to the output already (it binds `output` itself).
 */
export class Forwarder {
  private state: OutputHealth["state"] = "connecting";
  private error: string | null = null;
  private sent = 0;
  private poisonDropped = 0;
  /** samples the destination refused for good, by drop reason */
  private readonly refused: Record<string, number> = {};
  private lastRefusal: OutputHealth["lastRefusal"] = null;
  private lastAckTs: number | null = null;
  private session: OutputSession | null = null;
  private readonly deviceStates = new Map<string, { state: DeviceState; error: string | null; ts: number }>();
  /**
   * Last positions of writes that were sent but not acknowledged when a session broke. The next
   * session resends exactly those batches first, so every resent message carries the same `batch`
   * number as the first attempt and consumers can recognise the duplicate.
   */
  private replay: number[] = [];
  private outage: Outage | null = null;
  private readonly log: Logger;

  constructor(
    private readonly output: Output,
    private readonly journal: Journal,
    private readonly metrics: Metrics,
    log: Logger,
    private readonly opts: ForwarderOptions = {},
  ) {
    this.log = log.child({ output: output.name });
  }

  get name(): string {
    return this.output.name;
  }

  private readonly journalHead = (): number => this.journal.stats().newestPos;

  health(): OutputHealth {
    const j = this.journal.stats().outputs[this.output.name];
    return {
      type: this.output.type,
      state: this.state,
      error: this.error,
      cursor: j?.cursor ?? 0,
      lag: j?.lag ?? 0,
      sent: this.sent,
      dropped: (j?.dropped ?? 0) + this.poisonDropped,
      refused: { ...this.refused },
      lastRefusal: this.lastRefusal,
      lastAckTs: this.lastAckTs === null ? null : isoTs(this.lastAckTs),
    };
  }

  isUp(): boolean {
    return this.state === "online" || this.state === "waiting";
  }

  /** Device status is not journaled: the latest per device is kept and sent to every new session. */
  deviceStatus(device: string, state: DeviceState, error: string | null, ts: number): void {
    this.deviceStates.set(device, { state, error, ts });
    this.session?.deviceStatus?.(device, state, error, ts);
  }

  /** Runs until `signal` aborts; then drains writes in flight (bounded) and closes the session. */
  async run(signal: AbortSignal): Promise<void> {
    const backoff = new Backoff({ initialMs: this.opts.initialBackoffMs ?? 200, maxMs: this.opts.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS });
    const rejectedMs = this.opts.rejectedBackoffMs ?? DEFAULT_REJECTED_BACKOFF_MS;
    const rejected = new Backoff({ initialMs: rejectedMs, maxMs: rejectedMs });
    while (!signal.aborted) {
      this.setState("connecting", this.error);
      let session: OutputSession;
      try {
        session = await this.output.connect({ signal, log: this.log, journalHead: this.journalHead });
      } catch (err) {
        if (signal.aborted) break;
        const wait = isFloorgateError(err, "OUTPUT_REJECTED") ? rejected.next() : backoff.next();
        this.setState("offline", describeError(err));
        this.log.debug({ err: describeError(err), retryInMs: wait }, "output connect failed");
        try { await sleep(wait, signal); } catch { break; }
        continue;
      }
      backoff.reset();
      this.session = session;
      this.setState("online", null);
      for (const [d, s] of this.deviceStates) session.deviceStatus?.(d, s.state, s.error, s.ts);
      let failure: unknown = null;
      try {
        await this.pump(session, signal);
      } catch (err) {
        failure = err;
      }
      this.session = null;
      await session.close().catch(() => undefined);
      if (signal.aborted) break;
      this.metrics.outputReconnects.inc({ output: this.output.name });
      this.setState("offline", describeError(failure ?? new FloorgateError("OUTPUT_UNAVAILABLE", "session lost")));
      try { await sleep(backoff.next(), signal); } catch { break; }
    }
    this.setState("stopped", null);
  }

  private async pump(session: OutputSession, signal: AbortSignal): Promise<void> {
    const name = this.output.name;
    let readPos = this.journal.cursor(name);
    const queue: InFlight[] = [];
    const plan = this.replay.filter((p) => p > readPos);
    this.replay = [];
    const wake = new Wakeup();
    let lost: Error | null = null;
    void session.lost.then((e) => { lost = e; wake.notify(); });
    const onAbort = (): void => wake.notify();
    signal.addEventListener("abort", onAbort, { once: true });
    // One controller for the pump's waits on the journal, and a wait reused while the read
    // position stands: a controller built and aborted per wait cost more than the wait itself.
    const pumpWaits = new AbortController();
    let durable: { after: number; done: Promise<void> } | undefined;
    try {
      for (;;) {
        this.settle(queue);
        if (lost) throw lost;
        if (signal.aborted) return await this.drain(queue, wake);
        if (session.ready) {
          const stop = new AbortController();
          const notReady = session.ready(stop.signal);
          if (notReady) {
            this.setState("waiting", "waiting for the destination to be ready");
            await wake.until(notReady);
            stop.abort(WAIT_OVER);
            continue;
          }
        }
        if (this.state === "waiting") this.setState("online", null);
        if (queue.length < this.output.maxInFlight) {
          const max = plan.length > 0 ? Math.min(this.output.maxBatch, plan[0]! - readPos) : this.output.maxBatch;
          const batch = await this.journal.readBatch(readPos, max);
          const last = batch.lastPos;
          if (last !== undefined) {
            readPos = last;
            while (plan.length > 0 && plan[0]! <= readPos) plan.shift();
            queue.push(this.issue(session, batch, wake));
            continue;
          }
          if (durable?.after !== readPos) {
            durable = { after: readPos, done: this.journal.waitFor(readPos, pumpWaits.signal).catch(() => undefined) };
          }
          await wake.until(durable.done);
        } else {
          await wake.wait();
        }
      }
    } finally {
      pumpWaits.abort(WAIT_OVER);
      signal.removeEventListener("abort", onAbort);
      this.replay = [...queue.map((f) => f.lastPos), ...plan];
    }
  }

  private issue(session: OutputSession, batch: SampleBatch, wake: Wakeup): InFlight {
    const f: InFlight = { lastPos: batch.lastPos!, count: batch.length, state: "pending" };
    session.write(batch).then(
      (r) => { f.state = "done"; f.result = r; wake.notify(); },
      (e: unknown) => { f.state = "failed"; f.error = e; wake.notify(); },
    );
    return f;
  }

  /** Commits the cursor over writes acknowledged in order; throws the first failure. */
  private settle(queue: InFlight[]): void {
    while (queue.length > 0 && queue[0]!.state !== "pending") {
      // A failed write stays queued: its boundary must be in the replay plan, or the resend would
      // merge it with the next batch under a new `batch` number that consumers cannot recognise.
      if (queue[0]!.state === "failed") throw queue[0]!.error;
      const f = queue.shift()!;
      let dropped = 0;
      for (const d of f.result?.dropped ?? []) {
        if (d.count <= 0) continue;
        const reason = d.code ?? "poison";
        dropped += d.count;
        this.refused[reason] = (this.refused[reason] ?? 0) + d.count;
        this.lastRefusal = { reason, detail: d.reason, ts: isoTs(Date.now()) };
        this.metrics.drops.inc({ reason, output: this.output.name }, d.count);
        this.log.warn({ count: d.count, reason, detail: d.reason }, "output refused samples for good; counted as dropped");
      }
      this.poisonDropped += dropped;
      this.sent += f.count - dropped;
      this.metrics.samplesOut.inc({ output: this.output.name }, f.count - dropped);
      this.journal.commit(this.output.name, f.lastPos);
      this.lastAckTs = Date.now();
    }
  }

  /** On stop: let writes in flight finish for a bounded time, so their cursor moves. */
  private async drain(queue: InFlight[], wake: Wakeup): Promise<void> {
    // monotonic: a wall clock set back during the drain must not hold the stop
    const deadline = performance.now() + (this.opts.drainMs ?? 3000);
    while (queue.length > 0 && performance.now() < deadline) {
      try { this.settle(queue); } catch { return; }
      if (queue.length === 0) return;
      const left = deadline - performance.now();
      let t: NodeJS.Timeout | undefined;
      await wake.until(new Promise<void>((r) => { t = setTimeout(r, Math.max(1, left)); }));
      clearTimeout(t);
    }
  }

  /**
   * Health follows every attempt; the log only changes: one "offline" line when an outage starts,
   * a "still offline" line per new error text during it (at most MAX_LOGGED_ERRORS in all), one
   * "online" line when the output is back (with how long it was out and how many attempts failed).
   * A retry's "connecting" is never logged; each failed attempt is, at debug level.
   */
  private setState(state: OutputHealth["state"], error: string | null): void {
    if (state === this.state && error === this.error) return;
    this.state = state;
    this.error = error;
    const name = this.output.name;
    if (state === "connecting") return;
    if (state === "offline") {
      const o = (this.outage ??= { since: Date.now(), failures: 0, logged: new Set() });
      o.failures++;
      const text = error ?? "";
      if (o.logged.has(text) || o.logged.size >= MAX_LOGGED_ERRORS) return;
      o.logged.add(text);
      if (o.logged.size === 1) this.log.warn({ state, error }, `output ${name} offline`);
      else this.log.warn({ state, error, failures: o.failures }, `output ${name} still offline, with a new error`);
      return;
    }
    const o = this.outage;
    if (state === "online" && o) {
      this.outage = null;
      this.log.info({ state, error, offlineMs: Date.now() - o.since, failures: o.failures }, `output ${name} online`);
      return;
    }
    this.log.info({ state, error }, `output ${name} ${state}`);
  }
}
