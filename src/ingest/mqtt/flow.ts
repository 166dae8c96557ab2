/**
 * The listener-wide in-flight caps of the device MQTT listener (`ingest.mqtt.maxInFlight` messages,
 * `ingest.mqtt.maxInFlightBytes` payload bytes awaiting the journal) and how reading resumes after
 * they are hit. Pure bookkeeping: it reads no socket, it tells each connection whether it may read.
 *
 * At a cap every connection is held (its socket paused: TCP slows the device down). Reading does
 * not resume all at once — 10,000 sockets resumed together would each read a chunk and let a burst
 * of half the cap in — but in slices: once what is in flight falls to `RESUME_AT` of both caps, the
 * connections held longest are released, as many as the free room can take if each brings its
 * whole per-connection window, one slice per event-loop turn (the next slice sees what the last
 * brought). A connection released and held again goes to the back of the queue: round robin, so a
 * busy device cannot starve a quiet one. Once every connection is released the listener is free.
 */
import type { LabelledCounter } from "../../core/counters.js";
import type { Logger } from "../../core/logger.js";

/** A connection the gate can hold: it re-asks `held` when told to. */
export interface Gated {
  /** Re-evaluates whether the connection may read (called when the gate's answer for it may have changed). */
  reading(): void;
}

/** Share of both caps that what is in flight must fall to before held connections are released. */
export const RESUME_AT = 0.75;

/** What the listener's caps hold now (read by /metrics and /healthz). */
export interface InFlightLoad {
  /** messages received and awaiting the journal */
  messages: number;
  /** their payload bytes */
  bytes: number;
  /** true from a cap being hit until every held connection is released again */
  paused: boolean;
  /** connections held by the listener-wide caps now */
  held: number;
}

/** Which cap a pause hit. */
export type Cap = "messages" | "bytes";

export interface InFlightGateOptions {
  maxMessages: number;
  maxBytes: number;
  /** what one released connection may bring at most before its own cap holds it (RECEIVE_MAXIMUM) */
  window: number;
  /** runs `fn` after the current event-loop turn (setImmediate; tests may step it by hand) */
  later?: (fn: () => void) => void;
  /** a cap was hit (free → paused, or again while releasing) */
  onPause?: (cap: Cap) => void;
  /** every held connection was released: the listener is free again */
  onFree?: () => void;
}

export class InFlightGate<S extends Gated> {
  messages = 0;
  bytes = 0;
  private paused = false;
  /** held connections, those held longest first (Set order) */
  private readonly waiting = new Set<S>();
  /** connections released since the pause began, still reading */
  private readonly released = new Set<S>();
  private releasing = false;
  /** running mean of a message's payload bytes: sizes a slice against the byte cap */
  private meanBytes = 0;
  private readonly later: (fn: () => void) => void;

  constructor(private readonly opts: InFlightGateOptions) {
    this.later = opts.later ?? ((fn) => { setImmediate(fn); });
  }

  /** True when `s` must not start another message (its socket stays paused). */
  held(s: S): boolean {
    return this.paused && !this.released.has(s);
  }

  /** A connection becomes readable (its CONNECT accepted): while paused it queues behind the others. */
  add(s: S): void {
    if (this.paused && !this.released.has(s)) this.waiting.add(s);
  }

  remove(s: S): void {
    this.waiting.delete(s);
    this.released.delete(s);
    if (this.paused && this.waiting.size === 0) this.schedule();
  }

  /**
   * One message of `bytes` starts awaiting the journal. The message that reaches a cap holds
   * everyone, itself included: a session stops starting messages once `held`, so `messages`
   * never passes `maxMessages` and `bytes` passes `maxBytes` by less than one message.
   */
  began(bytes: number, all: Iterable<S>): void {
    this.messages++;
    this.bytes += bytes;
    this.meanBytes += (bytes - this.meanBytes) / 64;
    const cap: Cap | undefined = this.messages >= this.opts.maxMessages ? "messages" : this.bytes >= this.opts.maxBytes ? "bytes" : undefined;
    if (cap === undefined) return;
    if (!this.paused) {
      this.paused = true;
      this.opts.onPause?.(cap);
      for (const s of all) {
        this.waiting.add(s);
        s.reading();
      }
    } else if (this.released.size > 0) {
      this.opts.onPause?.(cap);
      // the released go to the back: those still waiting are served first
      const back = [...this.released];
      this.released.clear();
      for (const s of back) {
        this.waiting.add(s);
        s.reading();
      }
    }
  }

  /** A message's store settled (durable or refused). */
  settled(bytes: number): void {
    this.messages--;
    this.bytes -= bytes;
    if (this.paused && !this.releasing && this.below()) this.schedule();
  }

  load(): InFlightLoad {
    return { messages: this.messages, bytes: this.bytes, paused: this.paused, held: this.paused ? this.waiting.size : 0 };
  }

  private below(): boolean {
    return this.messages <= this.opts.maxMessages * RESUME_AT && this.bytes <= this.opts.maxBytes * RESUME_AT;
  }

  private schedule(): void {
    if (this.releasing) return;
    this.releasing = true;
    this.later(() => this.release());
  }

  /** One slice: as many of those held longest as the room can take; the next slice one turn later. */
  private release(): void {
    this.releasing = false;
    if (!this.paused || !this.below()) return;
    if (this.waiting.size === 0) {
      this.paused = false;
      this.released.clear();
      this.opts.onFree?.();
      return;
    }
    const { maxMessages, maxBytes, window } = this.opts;
    const byMessages = Math.ceil((maxMessages - this.messages) / window);
    const byBytes = Math.ceil((maxBytes - this.bytes) / Math.max(1, window * this.meanBytes));
    let n = Math.max(1, Math.min(byMessages, byBytes));
    for (const s of this.waiting) {
      if (n-- === 0) break;
      this.waiting.delete(s);
      this.released.add(s);
      s.reading();
    }
    // a cap hit again by the slice just released holds it; otherwise the next slice follows
    this.schedule();
  }
}

/** The gate as the listener runs it: counted in /metrics, its state changes logged. */
export interface Flow<S extends Gated> {
  readonly gate: InFlightGate<S>;
  stop(): void;
}

/**
 * Starts the listener's gate. Each pause is counted in `floorgate_ingest_pauses_total{cap}`; the
 * log gets one line when the caps first hold the devices and one once the listener has stayed free
 * for `quietMs` — not one per pause: under a journal that keeps falling behind they come many a second.
 */
export function startFlow<S extends Gated>(
  cfg: { maxInFlight: number; maxInFlightBytes: number },
  window: number,
  counters: { ingestPauses: LabelledCounter<"cap"> },
  log: Logger,
  quietMs: number,
): Flow<S> {
  let announced = false;
  let since = 0;
  let pauses = 0;
  let quiet: NodeJS.Timeout | undefined;
  const gate: InFlightGate<S> = new InFlightGate<S>({
    maxMessages: cfg.maxInFlight,
    maxBytes: cfg.maxInFlightBytes,
    window,
    onPause(cap) {
      counters.ingestPauses.inc({ cap });
      pauses++;
      if (quiet) clearTimeout(quiet);
      quiet = undefined;
      if (announced) return;
      announced = true;
      since = performance.now();
      const l = gate.load();
      log.warn({ cap, inFlight: l.messages, inFlightBytes: l.bytes, maxInFlight: cfg.maxInFlight, maxInFlightBytes: cfg.maxInFlightBytes },
        "mqtt: messages awaiting the journal reached ingest.mqtt.maxInFlight/maxInFlightBytes; devices are read in turns until it catches up (floorgate_ingest_pauses_total)");
    },
    onFree() {
      if (!announced || quiet) return;
      quiet = setTimeout(() => {
        quiet = undefined;
        announced = false;
        log.info({ pauses, pausedMs: Math.round(performance.now() - since - quietMs) }, "mqtt: the journal caught up; every device is read again");
        pauses = 0;
      }, quietMs);
      quiet.unref();
    },
  });
  return {
    gate,
    stop() {
      if (quiet) clearTimeout(quiet);
    },
  };
}
