import mqtt, { type MqttClient } from "mqtt";
import type { MqttOutputConfig } from "../../config/types.js";
import { FloorgateError, describeError } from "../../core/errors.js";
import { safeUrl, type Logger } from "../../core/logger.js";
import type { DeviceState } from "../../core/sample.js";
import type { SampleBatch } from "../../core/sample-columns.js";
import type { Output, OutputContext, OutputSession, WriteResult } from "../output.js";
import { DEFAULT_TIMING, buildClientOptions, classifyConnectError, skipStoreCopy, type MqttTiming } from "./client.js";
import {
  TelemetryEncoder,
  cachedIn,
  deviceStatusPayload,
  deviceStatusTopic,
  gatewayStatusPayload,
  gatewayStatusTopic,
  planMessages,
  telemetryTopic,
} from "./json-format.js";

/**
 * Writes the runtime may keep outstanding. Mosquitto acks QoS 1 at the speed of its event loop only
 * when many PUBLISHes are queued on the socket (with few in flight, Nagle/delayed-ACK stalls each
 * round trip); see bench/mqtt-output.ts for the measurement behind this number.
 */
export const DEFAULT_MAX_IN_FLIGHT = 64;
/** default write size, in messages' worth of samples */
export const WRITE_MESSAGES = 8;

export interface MqttJsonOutputOptions extends Partial<MqttTiming> {
  maxInFlight?: number;
  /** samples per write (one write is split into messages of at most `cfg.maxBatch` per device); default 8 × maxBatch */
  writeSamples?: number;
}

/** The MQTT json output (spec §6 "json"): one fresh MQTT.js client per session. */
export function createMqttJsonOutput(
  cfg: MqttOutputConfig,
  gateway: { id: string },
  options: MqttJsonOutputOptions = {},
): Output {
  const envWrite = Number(process.env.FG_WRITE_SAMPLES ?? 0);
  const { maxInFlight = DEFAULT_MAX_IN_FLIGHT, writeSamples = envWrite || cfg.maxBatch * WRITE_MESSAGES, ...timingOverrides } = options;
  const timing: MqttTiming = { ...DEFAULT_TIMING, ...timingOverrides };
  const where = `mqtt output "${cfg.name}" (${safeUrl(cfg.url)})`;
  return {
    name: cfg.name,
    type: "mqtt",
    // A write spans several messages: with many devices in one journal stretch, a write of only
    // maxBatch samples would make every message tiny, and per-message cost dominates a replay.
    maxBatch: Math.max(cfg.maxBatch, writeSamples),
    maxInFlight,
    connect: (ctx) => connectSession(cfg, gateway, timing, where, ctx),
  };
}

async function connectSession(
  cfg: MqttOutputConfig,
  gateway: { id: string },
  timing: MqttTiming,
  where: string,
  ctx: OutputContext,
): Promise<OutputSession> {
  const aborted = (): FloorgateError =>
    new FloorgateError("ABORTED", `${where}: connect aborted`, { cause: ctx.signal.reason });
  if (ctx.signal.aborted) throw aborted();
  const statusTopic = gatewayStatusTopic(cfg.topicPrefix);
  const opts = await buildClientOptions(cfg, { topic: statusTopic, payload: gatewayStatusPayload(false) }, timing);
  if (ctx.signal.aborted) throw aborted();

  const client = mqtt.connect(cfg.url, opts);
  skipStoreCopy(client);
  const errors: { last: Error | undefined } = { last: undefined };
  // Always listening: an 'error' event without a listener would crash the process.
  client.on("error", (err) => { errors.last = err; });

  await new Promise<void>((resolve, reject) => {
    let settled = false;
    const finish = (err?: FloorgateError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ctx.signal.removeEventListener("abort", onAbort);
      client.removeListener("connect", onConnect);
      client.removeListener("close", onClose);
      if (err) {
        client.end(true);
        client.stream?.destroy();
        reject(err);
      } else resolve();
    };
    const onConnect = (): void => finish();
    const onClose = (): void =>
      finish(classifyConnectError(errors.last ?? new Error("connection closed before CONNACK"), where));
    const onAbort = (): void => finish(aborted());
    // MQTT.js's connectTimeout covers CONNACK; this also bounds DNS and anything it might miss.
    const timer = setTimeout(
      () => finish(new FloorgateError("OUTPUT_UNAVAILABLE", `${where}: no CONNACK within ${timing.connectTimeoutMs} ms`, { cause: errors.last })),
      timing.connectTimeoutMs + 1000,
    );
    client.on("connect", onConnect);
    client.on("close", onClose);
    ctx.signal.addEventListener("abort", onAbort, { once: true });
  });

  const session = new MqttJsonSession(client, cfg, gateway, timing, where, ctx.log, errors);
  try {
    await session.announce(ctx.signal);
  } catch (err) {
    session.destroy(err instanceof Error ? err : new Error(String(err)));
    throw err instanceof FloorgateError ? err : classifyConnectError(err, where);
  }
  ctx.log.info({ output: cfg.name, broker: safeUrl(cfg.url) }, "mqtt output connected");
  return session;
}

interface PendingWrite {
  remaining: number;
  done: boolean;
  resolve(r: WriteResult): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout | undefined;
}

/**
 * One connection. Writes resolve in issue order once every message is PUBACKed (QoS 1) or handed to
 * the socket (QoS 0). When the connection breaks, the client is ended with force (so MQTT.js never
 * resends anything), every outstanding write rejects with OUTPUT_UNAVAILABLE and `lost` resolves.
 */
class MqttJsonSession implements OutputSession {
  readonly lost: Promise<Error>;
  private resolveLost!: (err: Error) => void;
  private broken: Error | null = null;
  private closing = false;
  /** Set once connect resolved: before that, a failure is the connect's to report, not a lost session. */
  private announced = false;
  private readonly pending: PendingWrite[] = [];
  private readonly encoder: TelemetryEncoder;
  /** device → `{topicPrefix}/{device}/telemetry` */
  private readonly topics = new Map<string, string>();

  constructor(
    private readonly client: MqttClient,
    private readonly cfg: MqttOutputConfig,
    gateway: { id: string },
    private readonly timing: MqttTiming,
    private readonly where: string,
    private readonly log: Logger,
    private readonly errors: { last: Error | undefined },
  ) {
    this.lost = new Promise<Error>((resolve) => { this.resolveLost = resolve; });
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
    const messages = planMessages(batch, this.cfg.maxBatch);
    const topics: string[] = new Array<string>(messages.length);
    const payloads: Buffer[] = new Array<Buffer>(messages.length);
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i]!;
      topics[i] = this.topicOf(m.device);
      payloads[i] = this.encoder.encode(m);
    }
    return this.publishAll(topics, payloads);
  }

  /** One topic string per device instead of one per message; bounded like the encoder's caches. */
  private topicOf(device: string): string {
    return cachedIn(this.topics, device, this.makeTopic);
  }

  private readonly makeTopic = (device: string): string => telemetryTopic(this.cfg.topicPrefix, device);

  /**
   * Publishes one write's messages. A separate method so that the ack callbacks MQTT.js holds until
   * each PUBACK close over the payloads only, never over the write's samples: at 200,000 values/s
   * the samples of every write in flight would otherwise outlive V8's young generation. The payloads
   * are Buffers, so what is held until PUBACK is off-heap bytes, not flattened strings.
   */
  private publishAll(topics: string[], payloads: Buffer[]): Promise<WriteResult> {
    return new Promise<WriteResult>((resolve, reject) => {
      const w: PendingWrite = { remaining: payloads.length, done: false, resolve, reject, timer: undefined };
      w.timer = setTimeout(() => this.onWriteTimeout(w), this.timing.writeTimeoutMs);
      this.pending.push(w);
      const qos = this.cfg.qos;
      const acked = (err?: Error): void => {
        if (this.broken) return; // already rejected by destroy()
        if (err) {
          this.destroy(new FloorgateError("OUTPUT_UNAVAILABLE", `${this.where}: publish failed: ${err.message}`, { cause: err }));
          return;
        }
        if (--w.remaining === 0) {
          w.done = true;
          clearTimeout(w.timer);
          if (qos === 1) for (const p of payloads) this.encoder.release(p);
          this.resolveInOrder();
        }
      };
      for (let i = 0; i < payloads.length; i++) {
        if (this.broken) break;
        this.client.publish(topics[i]!, payloads[i]!, { qos }, acked);
      }
    });
  }

  /** An empty write still resolves in issue order. */
  private settleAfterPending(): Promise<WriteResult> {
    return new Promise<WriteResult>((resolve, reject) => {
      const w: PendingWrite = { remaining: 0, done: true, resolve, reject, timer: undefined };
      this.pending.push(w);
      this.resolveInOrder();
    });
  }

  private resolveInOrder(): void {
    while (this.pending.length > 0 && this.pending[0]!.done) {
      this.pending.shift()!.resolve({ dropped: [] }); // the broker refuses nothing for good at QoS 0/1
    }
  }

  private onWriteTimeout(w: PendingWrite): void {
    if (this.broken || w.done) return;
    const err = new FloorgateError("OUTPUT_TIMEOUT", `${this.where}: write not acknowledged within ${this.timing.writeTimeoutMs} ms`);
    this.pending.splice(this.pending.indexOf(w), 1);
    w.reject(err);
    this.destroy(err);
  }

  deviceStatus(device: string, state: DeviceState, error: string | null, ts: number): void {
    if (this.broken || this.closing || !this.client.connected) return; // best effort, never queued
    this.client.publish(deviceStatusTopic(this.cfg.topicPrefix, device), deviceStatusPayload(state, ts, error), { qos: 1, retain: true }, () => {});
  }

  /** Ends the session for good; idempotent. */
  destroy(reason: Error): void {
    if (this.broken) return;
    this.broken = reason;
    const pending = this.pending.splice(0);
    for (const w of pending) {
      clearTimeout(w.timer);
      w.reject(
        reason instanceof FloorgateError && reason.code === "OUTPUT_UNAVAILABLE"
          ? reason
          : new FloorgateError("OUTPUT_UNAVAILABLE", `${this.where}: session ended: ${reason.message}`, { cause: reason }),
      );
    }
    // Force: drop MQTT.js's outgoing store with the socket, so nothing is resent or kept. A graceful
    // end still waiting on a silent broker makes end() a no-op, so the socket is destroyed directly too.
    this.client.end(true);
    this.client.stream?.destroy();
    if (!this.closing && this.announced) this.log.warn({ output: this.cfg.name, err: describeError(reason) }, "mqtt output connection lost");
    this.resolveLost(reason);
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.broken) return;
    const deadline = Date.now() + this.timing.closeTimeoutMs;
    const within = <T>(p: Promise<T>): Promise<T | undefined> => {
      let timer: NodeJS.Timeout | undefined;
      const t = new Promise<undefined>((r) => { timer = setTimeout(() => r(undefined), Math.max(0, deadline - Date.now())); });
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
    this.log.info({ output: this.cfg.name }, "mqtt output closed");
  }
}
