import type { MqttClient } from "mqtt";
import type { MqttOutputConfig } from "./config.js";
import { FloorgateError, describeError } from "../../core/errors.js";
import { safeUrl, type Logger } from "../../core/logger.js";
import type { DeviceState } from "../../core/sample.js";
import type { SampleBatch } from "../../core/sample-columns.js";
import type { Output, OutputContext, OutputSession, WriteResult } from "../../core/output.js";
import { classifyConnectError, endClientLater, openClient, type MqttTiming } from "./client.js";
import { planMessages, type TelemetryMessage } from "./json-plan.js";
import { TelemetryEncoder, cachedIn } from "./json-writer.js";
import { createPublishWindow, windowOf, type PublishWindow, type PublishWindowOptions } from "./publish-window.js";
import { deviceStatusPayload, deviceStatusTopic, gatewayStatusPayload, gatewayStatusTopic, telemetryTopic } from "./topics.js";

export { DEFAULT_MAX_IN_FLIGHT, MAX_MESSAGES_IN_FLIGHT, WRITE_MESSAGES, windowOf } from "./publish-window.js";

/** Options of the json format: its publish window and timing (publish-window.ts). */
export type MqttJsonOutputOptions = PublishWindowOptions;

/** The MQTT json output (spec §6 "json"): one fresh MQTT.js client per session. */
export function createMqttJsonOutput(
  cfg: MqttOutputConfig,
  gateway: { id: string },
  options: MqttJsonOutputOptions = {},
): Output {
  const { maxInFlight, maxMessagesInFlight, writeSamples, timing } = windowOf(cfg, options);
  const where = `mqtt output "${cfg.name}" (${safeUrl(cfg.url)})`;
  return {
    name: cfg.name,
    type: "mqtt",
    // A write spans several messages: with many devices in one journal stretch, a write of only
    // maxBatch samples would make every message tiny, and per-message cost dominates a replay.
    maxBatch: Math.max(cfg.maxBatch, writeSamples),
    maxInFlight,
    connect: (ctx) => connectSession(cfg, gateway, timing, maxMessagesInFlight, where, ctx),
  };
}

async function connectSession(
  cfg: MqttOutputConfig,
  gateway: { id: string },
  timing: MqttTiming,
  maxMessages: number,
  where: string,
  ctx: OutputContext,
): Promise<OutputSession> {
  const statusTopic = gatewayStatusTopic(cfg.topicPrefix);
  const { client, errors } = await openClient(cfg, { topic: statusTopic, payload: gatewayStatusPayload(false), retain: true }, timing, where, ctx);

  const session = new MqttJsonSession(client, cfg, gateway, timing, maxMessages, where, ctx.log, errors);
  try {
    await session.announce(ctx.signal);
  } catch (err) {
    session.destroy(err instanceof Error ? err : new Error(String(err)));
    throw err instanceof FloorgateError ? err : classifyConnectError(err, where);
  }
  ctx.log.info({ broker: safeUrl(cfg.url) }, "mqtt output connected");
  return session;
}

interface PendingWrite {
  /** messages not yet acknowledged */
  remaining: number;
  done: boolean;
  resolve(r: WriteResult): void;
  reject(err: Error): void;
  /**
   * Messages not yet published, and the next one to publish. Dropped once the last is published,
   * so that what MQTT.js holds until each PUBACK never reaches the write's samples.
   */
  plan: TelemetryMessage[] | null;
  next: number;
}

/**
 * One connection. Writes resolve in issue order once every message is PUBACKed (QoS 1) or handed to
 * the socket (QoS 0). At most `maxMessages` publishes (telemetry and device status) await their
 * PUBACK at once: the rest of a write, and the writes after it, wait in issue order and are encoded
 * only when the window has room. When the connection breaks, the client is ended with force (so
 * MQTT.js never resends anything), every outstanding write rejects with OUTPUT_UNAVAILABLE and
 * `lost` resolves. No PUBACK for `writeTimeoutMs` while publishes are outstanding fails the session
 * with OUTPUT_TIMEOUT.
 */
class MqttJsonSession implements OutputSession {
  readonly lost: Promise<Error>;
  private resolveLost!: (err: Error) => void;
  private broken: Error | null = null;
  private closing = false;
  /** Set once connect resolved: before that, a failure is the connect's to report, not a lost session. */
  private announced = false;
  /** writes not yet resolved, in issue order */
  private readonly pending: PendingWrite[] = [];
  /** writes with messages not yet published, in issue order */
  private readonly unsent: PendingWrite[] = [];
  /** device status topic → latest payload, waiting for room in the window */
  private readonly statusQueue = new Map<string, string>();
  /** publishes whose callback has not come yet (PUBACK at QoS 1), the watchdog over them, refills */
  private readonly window: PublishWindow;
  private pumping = false;
  private readonly encoder: TelemetryEncoder;
  /** device → `{topicPrefix}/{device}/telemetry` */
  private readonly topics = new Map<string, string>();

  constructor(
    private readonly client: MqttClient,
    private readonly cfg: MqttOutputConfig,
    gateway: { id: string },
    private readonly timing: MqttTiming,
    maxMessages: number,
    private readonly where: string,
    private readonly log: Logger,
    errors: { last: Error | undefined },
  ) {
    this.lost = new Promise<Error>((resolve) => { this.resolveLost = resolve; });
    this.window = createPublishWindow({
      max: maxMessages,
      timeoutMs: timing.writeTimeoutMs,
      onStalled: (n) => this.destroy(new FloorgateError("OUTPUT_TIMEOUT", `${where}: ${n} publishes not acknowledged within ${timing.writeTimeoutMs} ms`)),
      onRefill: () => this.pump(),
      onFailed: (err) => this.destroy(new FloorgateError("OUTPUT_UNAVAILABLE", `${where}: publish failed: ${err.message}`, { cause: err })),
    });
    // Payload slabs are reused only at QoS 1, where a PUBACK proves the bytes left the socket;
    // MQTT.js's callback for a QoS 0 publish proves nothing of the kind.
    this.encoder = new TelemetryEncoder(gateway.id, cfg.qos === 1);
    client.on("close", () => {
      this.destroy(new FloorgateError("OUTPUT_UNAVAILABLE", `${where}: connection lost`, { cause: errors.last }));
    });
    client.on("error", (err) => {
      this.destroy(new FloorgateError("OUTPUT_UNAVAILABLE", `${where}: ${err.message}`, { cause: err }));
    });
    client.on("disconnect", (packet) => {
      this.destroy(new FloorgateError("OUTPUT_UNAVAILABLE", `${where}: broker sent DISCONNECT (reason ${packet.reasonCode ?? "?"})`));
    });
  }

  /** Publishes the retained online status; part of connecting, so it is bounded by the connect timeout. */
  announce(signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const fail = (err: Error): void => { cleanup(); reject(err); };
      const onAbort = (): void => fail(new FloorgateError("ABORTED", `${this.where}: connect aborted`, { cause: signal.reason }));
      const timer = setTimeout(
        () => fail(new FloorgateError("OUTPUT_UNAVAILABLE", `${this.where}: online status not acknowledged within ${this.timing.connectTimeoutMs} ms`)),
        this.timing.connectTimeoutMs,
      );
      const cleanup = (): void => { clearTimeout(timer); signal.removeEventListener("abort", onAbort); };
      signal.addEventListener("abort", onAbort, { once: true });
      this.client.publish(
        gatewayStatusTopic(this.cfg.topicPrefix),
        gatewayStatusPayload(true, Date.now()),
        { qos: 1, retain: true },
        (err) => {
          if (err) fail(new FloorgateError("OUTPUT_UNAVAILABLE", `${this.where}: online status not published`, { cause: err }));
          else { cleanup(); this.announced = true; resolve(); }
        },
      );
    });
  }

  write(batch: SampleBatch): Promise<WriteResult> {
    if (this.broken || this.closing || !this.client.connected) {
      return Promise.reject(
        new FloorgateError("OUTPUT_UNAVAILABLE", `${this.where}: not connected`, { cause: this.broken ?? undefined }),
      );
    }
    if (batch.length === 0) return this.settleAfterPending();
    const plan = planMessages(batch, this.cfg.maxBatch);
    return new Promise<WriteResult>((resolve, reject) => {
      const w: PendingWrite = { remaining: plan.length, done: false, resolve, reject, plan, next: 0 };
      this.pending.push(w);
      this.unsent.push(w);
      this.pump();
    });
  }

  /** Publishes queued device status first, then telemetry in issue order, while the window has room. */
  private pump(): void {
    if (this.pumping) return; // a callback that fired during a publish: the loop below goes on
    this.pumping = true;
    try {
      while (this.window.hasRoom && !this.broken) {
        if (this.statusQueue.size > 0) {
          const [topic, payload] = this.statusQueue.entries().next().value as [string, string];
          this.statusQueue.delete(topic);
          this.window.opened();
          this.client.publish(topic, payload, { qos: 1, retain: true }, this.statusAcked);
          continue;
        }
        const w = this.unsent[0];
        if (w === undefined) break;
        const plan = w.plan!;
        const m = plan[w.next++]!;
        if (w.next === plan.length) {
          w.plan = null;
          this.unsent.shift();
        }
        this.publishTelemetry(w, this.topicOf(m.device), this.encoder.encode(m));
      }
    } finally {
      this.pumping = false;
    }
  }

  /**
   * A separate method so that the ack callback MQTT.js holds until each PUBACK closes over the
   * payload and its write only, never over the samples: at 200,000 values/s the samples of every
   * message in flight would otherwise outlive V8's young generation. The payload is a Buffer, so
   * what is held until PUBACK is off-heap bytes, not flattened strings.
   */
  private publishTelemetry(w: PendingWrite, topic: string, payload: Buffer): void {
    this.window.opened();
    this.client.publish(topic, payload, { qos: this.cfg.qos }, (err?: Error) => this.telemetryAcked(w, payload, err));
  }

  private telemetryAcked(w: PendingWrite, payload: Buffer, err: Error | undefined): void {
    if (!this.window.answered(err)) return;
    if (this.cfg.qos === 1) this.encoder.release(payload);
    if (--w.remaining === 0) {
      w.done = true;
      this.resolveInOrder();
    }
    this.refill();
  }

  /** Device status is best effort: a refused one is not worth failing the session over. */
  private readonly statusAcked = (): void => {
    this.window.settled(!this.broken);
    if (!this.broken) this.refill();
  };

  /** Room freed by acks is filled once per turn of the event loop (the window's `refillSoon`). */
  private refill(): void {
    if (this.unsent.length > 0 || this.statusQueue.size > 0) this.window.refillSoon();
  }

  /** One topic string per device instead of one per message; bounded like the encoder's caches. */
  private topicOf(device: string): string {
    return cachedIn(this.topics, device, this.makeTopic);
  }

  private readonly makeTopic = (device: string): string => telemetryTopic(this.cfg.topicPrefix, device);

  /** An empty write still resolves in issue order. */
  private settleAfterPending(): Promise<WriteResult> {
    return new Promise<WriteResult>((resolve, reject) => {
      const w: PendingWrite = { remaining: 0, done: true, resolve, reject, plan: null, next: 0 };
      this.pending.push(w);
      this.resolveInOrder();
    });
  }

  private resolveInOrder(): void {
    while (this.pending.length > 0 && this.pending[0]!.done) {
      this.pending.shift()!.resolve({ dropped: [] }); // the broker refuses nothing for good at QoS 0/1
    }
  }

  /** Queued behind telemetry already in the window, never dropped; only the latest per device is kept. */
  deviceStatus(device: string, state: DeviceState, error: string | null, ts: number): void {
    if (this.broken || this.closing || !this.client.connected) return; // the next session sends the latest
    const topic = deviceStatusTopic(this.cfg.topicPrefix, device);
    this.statusQueue.delete(topic); // a newer status goes to the back of the queue
    this.statusQueue.set(topic, deviceStatusPayload(state, ts, error));
    this.pump();
  }

  /** Ends the session for good; idempotent. */
  destroy(reason: Error): void {
    if (this.broken) return;
    this.broken = reason;
    this.window.close();
    this.unsent.length = 0;
    this.statusQueue.clear();
    const pending = this.pending.splice(0);
    for (const w of pending) {
      w.plan = null;
      w.reject(
        reason instanceof FloorgateError && (reason.code === "OUTPUT_UNAVAILABLE" || reason.code === "OUTPUT_TIMEOUT")
          ? reason
          : new FloorgateError("OUTPUT_UNAVAILABLE", `${this.where}: session ended: ${reason.message}`, { cause: reason }),
      );
    }
    // Not synchronously: destroy() runs inside MQTT.js's callbacks (a publish failing during its
    // keepalive-timeout `_flush`), where an end() would re-enter that loop and crash the process.
    endClientLater(this.client);
    // The forwarder logs the outage (once, with this reason); this line is for troubleshooting.
    if (!this.closing && this.announced) this.log.debug({ err: describeError(reason) }, "mqtt output connection lost");
    this.resolveLost(reason);
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.broken) return;
    const deadline = performance.now() + this.timing.closeTimeoutMs; // monotonic: a clock step must not stretch the stop
    const within = <T>(p: Promise<T>): Promise<T | undefined> => {
      let timer: NodeJS.Timeout | undefined;
      const t = new Promise<undefined>((r) => { timer = setTimeout(() => r(undefined), Math.max(0, deadline - performance.now())); });
      return Promise.race([p, t]).finally(() => clearTimeout(timer));
    };
    try {
      await within(this.client.publishAsync(gatewayStatusTopic(this.cfg.topicPrefix), gatewayStatusPayload(false, Date.now()), { qos: 1, retain: true }));
    } catch {
      // best effort: the will covers an offline status we could not send
    }
    if (!this.broken) {
      // Graceful DISCONNECT (so the broker does not fire the will over our fresher status).
      await within(new Promise<void>((resolve) => { this.client.end(false, {}, () => resolve()); }));
    }
    this.destroy(new FloorgateError("OUTPUT_UNAVAILABLE", `${this.where}: session closed`));
    this.log.info("mqtt output closed");
  }
}
