import type { MqttOutputConfig } from "./config.js";
import { DEFAULT_TIMING, type MqttTiming } from "./client.js";

/**
 * Writes the runtime may keep outstanding. Mosquitto acks QoS 1 at the speed of its event loop only
 * when many PUBLISHes are queued on the socket (with few in flight, Nagle/delayed-ACK stalls each
 * round trip); see bench/mqtt-output.ts for the measurement behind this number.
 */
export const DEFAULT_MAX_IN_FLIGHT = 64;
/** default write size, in messages' worth of samples */
export const WRITE_MESSAGES = 8;
/**
 * Most publishes (telemetry and device status) one session has awaiting their PUBACK, whatever the
 * writes they come from: with many devices one write is thousands of messages (one per device), so
 * 64 writes could be 256,000 publishes, far past MQTT's 65,535 packet ids. 10,000 is well below
 * them and still far above the ~500 that keep Mosquitto busy (bench/mqtt-output.ts).
 */
export const MAX_MESSAGES_IN_FLIGHT = 10_000;

/** Window options of either MQTT format (json, sparkplug-b); tests shorten the timing. */
export interface PublishWindowOptions extends Partial<MqttTiming> {
  maxInFlight?: number;
  /** publishes awaiting confirmation at once; default MAX_MESSAGES_IN_FLIGHT, at most 60,000 */
  maxMessagesInFlight?: number;
  /** samples per write (one write is split into messages of at most `cfg.maxBatch` per device); default 8 × maxBatch */
  writeSamples?: number;
}

/** The publish window and timing of either MQTT format, the options' defaults filled in and checked. */
export function windowOf(cfg: MqttOutputConfig, options: PublishWindowOptions): {
  maxInFlight: number; maxMessagesInFlight: number; writeSamples: number; timing: MqttTiming;
} {
  const {
    maxInFlight = DEFAULT_MAX_IN_FLIGHT,
    maxMessagesInFlight = MAX_MESSAGES_IN_FLIGHT,
    writeSamples = cfg.maxBatch * WRITE_MESSAGES,
    ...timingOverrides
  } = options;
  if (!(maxMessagesInFlight >= 1 && maxMessagesInFlight <= 60_000)) {
    throw new RangeError(`maxMessagesInFlight must be 1–60,000 (MQTT has 65,535 packet ids), got ${maxMessagesInFlight}`);
  }
  return { maxInFlight, maxMessagesInFlight, writeSamples, timing: { ...DEFAULT_TIMING, ...timingOverrides } };
}

/**
 * The publish window of one MQTT session, shared by both formats: how many publishes (and, for
 * Sparkplug at QoS 0, socket flushes) await their confirmation, the progress watchdog over them,
 * and the batching of refills.
 *
 * Contract:
 * - `opened()` once for every publish or flush handed to MQTT.js or the socket; `settled(confirmed)`
 *   exactly once for each when its callback came: `confirmed` true for a PUBACK or a completed
 *   flush, false for an error or a callback arriving after the session broke. `answered(err)` is
 *   `settled` for a publish whose error ends the session: it settles, and the first error before
 *   `close()` goes to `onFailed` (once); it returns true only for a confirmation while the window is
 *   open, that is while the session goes on. `inFlight` is
 *   openings minus settlements; `hasRoom` is `inFlight < max`. The window never refuses an
 *   opening: the session asks `hasRoom` before data (births, deaths and status may go past it).
 * - Progress watchdog: when publishes are outstanding and none was confirmed for `timeoutMs`
 *   (counted from the last confirmation, or from when the window went from empty to busy),
 *   `onStalled(inFlight)` is called once, exactly `timeoutMs` after that moment. One timer for the
 *   whole window, not one per publish, so a deep window on a slow broker (where the last message
 *   waits behind thousands) is not mistaken for a dead one.
 * - Refills: `refillSoon()` calls `onRefill` once, on the next `setImmediate`, however often it is
 *   asked before then. MQTT.js handles one incoming packet per tick and flushes its corked writes
 *   on the next, so publishing from each PUBACK would write one small packet per syscall (half the
 *   throughput over thousands of devices): the PUBACKs of one socket read are all handled first,
 *   then the room they freed is filled in one burst.
 * - `close()`: the watchdog is cleared and no callback is called any more; idempotent. The
 *   counts go on (settlements of publishes still out are counted, and do nothing else).
 */
export interface PublishWindow {
  readonly inFlight: number;
  readonly hasRoom: boolean;
  opened(): void;
  settled(confirmed: boolean): void;
  answered(err: Error | undefined): boolean;
  refillSoon(): void;
  close(): void;
}

export interface PublishWindowHooks {
  /** most publishes outstanding before `hasRoom` turns false */
  max: number;
  /** no confirmation for this long while publishes are outstanding: stalled */
  timeoutMs: number;
  /** the watchdog fired; called at most once, never after `close()` */
  onStalled(inFlight: number): void;
  /** room may have been freed: publish what waits */
  onRefill(): void;
  /** a publish given to `answered` failed: the session ends; called at most once, never after `close()` */
  onFailed(err: Error): void;
}

export function createPublishWindow(hooks: PublishWindowHooks): PublishWindow {
  return new Window(hooks);
}

class Window implements PublishWindow {
  inFlight = 0;
  private closed = false;
  private refillScheduled = false;
  /** when the last confirmation came, or the window last went from empty to busy */
  private lastProgress = 0;
  private watchdog: NodeJS.Timeout | undefined;

  constructor(private readonly hooks: PublishWindowHooks) {}

  get hasRoom(): boolean {
    return this.inFlight < this.hooks.max;
  }

  opened(): void {
    if (this.inFlight++ === 0 && !this.closed) {
      this.lastProgress = performance.now();
      this.watchdog ??= setTimeout(this.checkProgress, this.hooks.timeoutMs);
    }
  }

  settled(confirmed: boolean): void {
    this.inFlight--;
    if (confirmed) this.lastProgress = performance.now();
  }

  answered(err: Error | undefined): boolean {
    if (this.closed || err) {
      this.settled(false);
      if (!this.closed) {
        this.close();
        this.hooks.onFailed(err!);
      }
      return false;
    }
    this.settled(true);
    return true;
  }

  refillSoon(): void {
    if (this.refillScheduled || this.closed) return;
    this.refillScheduled = true;
    setImmediate(this.runRefill);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.watchdog);
    this.watchdog = undefined;
  }

  private readonly runRefill = (): void => {
    this.refillScheduled = false;
    if (!this.closed) this.hooks.onRefill();
  };

  private readonly checkProgress = (): void => {
    this.watchdog = undefined;
    if (this.closed || this.inFlight === 0) return;
    const idle = performance.now() - this.lastProgress;
    if (idle < this.hooks.timeoutMs) {
      this.watchdog = setTimeout(this.checkProgress, this.hooks.timeoutMs - idle);
      return;
    }
    this.close();
    this.hooks.onStalled(this.inFlight);
  };
}
