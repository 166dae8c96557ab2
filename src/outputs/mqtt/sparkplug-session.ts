import type { MqttClient } from "mqtt";
import type { MqttOutputConfig } from "./config.js";
import { FloorgateError, describeError } from "../../core/errors.js";
import type { Logger } from "../../core/logger.js";
import type { DeviceState } from "../../core/sample.js";
import type { SampleBatch } from "../../core/sample-columns.js";
import type { OutputContext, OutputSession, WriteResult } from "../../core/output.js";
import { endClientLater, type MqttTiming } from "./client.js";
import { planMessages, type TelemetryMessage } from "./json-plan.js";
import { createPublishWindow, type PublishWindow } from "./publish-window.js";
import { SeqCounter, isDeadState, isNewerState, parseHostState, sparkplugTopic, stateTopic, type EdgeNode } from "./sparkplug-model.js";
import { encodeDBirth, encodeDData, encodeDDeath, encodeNBirth, encodeNDeath, isRebirthRequest } from "./sparkplug-payloads.js";

interface PendingWrite {
  /** publishes (and, at QoS 0, the flush) not yet confirmed; counts only once `plan` is fully published */
  remaining: number;
  done: boolean;
  resolve(r: WriteResult): void;
  reject(err: Error): void;
  plan: TelemetryMessage[] | null;
  next: number;
  /** devices whose birth no longer describes the write's samples (new tag, datatype or unit): DBIRTH before their next DDATA */
  rebirth: Set<string> | null;
}

const EMPTY = Buffer.alloc(0);

/**
 * One Sparkplug session on one connection. Publishes go out in one order, and `seq` is taken at
 * the moment of each publish, so seq order is socket order. Data waits until the session is live
 * (NBIRTH sent: at once without `primaryHostId`, else once the host's STATE says online). A device
 * gets its DBIRTH before its first DDATA of the session and again whenever its metrics change
 * (new tag, datatype or unit); DDEATH when its state goes offline/error/disabled. A write resolves
 * once every DDATA of it is PUBACKed (QoS 1) or has left the socket (QoS 0: a zero-length write
 * behind it completes only after everything before it reached the kernel). The primary host going
 * offline ends the session (NDEATH, DISCONNECT) and rejects every unresolved write, so their data
 * is sent again, from the journal, to the next session.
 */
export class SparkplugSession implements OutputSession {
  readonly lost: Promise<Error>;
  private resolveLost!: (err: Error) => void;
  /** set once no more writes are taken (failure, host offline, close) */
  private broken: Error | null = null;
  private destroyed = false;
  private closing = false;
  private started = false;
  /** NBIRTH sent and the host (if any) online: data may flow */
  private live = false;
  private hostOnline = false;
  /** journal position newest when the session went live: samples up to it are historical */
  private historicalUpTo = -1;
  private readonly seq = new SeqCounter();
  /** devices with a DBIRTH in this session and no DDEATH since */
  private readonly born = new Set<string>();
  private readonly pending: PendingWrite[] = [];
  private readonly unsent: PendingWrite[] = [];
  private readonly readyWaiters = new Set<{ resolve(): void; reject(err: Error): void }>();
  /** publishes and flushes not yet confirmed, the watchdog over them, refills */
  private readonly window: PublishWindow;
  private pumping = false;
  private badStateLogged = false;
  private readonly log: Logger;
  private readonly ncmdTopic: string;
  private readonly hostTopic: string | undefined;
  private readonly ddataTopics = new Map<string, string>();

  constructor(
    private readonly client: MqttClient,
    private readonly cfg: MqttOutputConfig,
    private readonly node: EdgeNode,
    private readonly bdSeq: number,
    private readonly timing: MqttTiming,
    maxMessages: number,
    private readonly where: string,
    private readonly ctx: OutputContext,
    errors: { last: Error | undefined },
  ) {
    this.log = ctx.log;
    this.lost = new Promise<Error>((resolve) => { this.resolveLost = resolve; });
    this.window = createPublishWindow({
      max: maxMessages,
      timeoutMs: timing.writeTimeoutMs,
      onStalled: (n) => this.destroy(new FloorgateError("OUTPUT_TIMEOUT", `${where}: ${n} publishes not confirmed within ${timing.writeTimeoutMs} ms`)),
      onRefill: () => this.pump(),
      onFailed: (err) => this.destroy(new FloorgateError("OUTPUT_UNAVAILABLE", `${where}: publish failed: ${err.message}`, { cause: err })),
    });
    this.ncmdTopic = sparkplugTopic(node.group, "NCMD", node.id);
    this.hostTopic = cfg.primaryHostId === undefined ? undefined : stateTopic(cfg.primaryHostId);
    client.on("close", () => {
      this.destroy(new FloorgateError("OUTPUT_UNAVAILABLE", `${where}: connection lost`, { cause: errors.last }));
    });
    client.on("error", (err) => {
      this.destroy(new FloorgateError("OUTPUT_UNAVAILABLE", `${where}: ${err.message}`, { cause: err }));
    });
    client.on("disconnect", (packet) => {
      this.destroy(new FloorgateError("OUTPUT_UNAVAILABLE", `${where}: broker sent DISCONNECT (reason ${packet.reasonCode ?? "?"})`));
    });
    client.on("message", (topic, payload) => this.onMessage(topic, payload));
  }

  /**
   * Part of connecting (bounded by the connect timeout): subscribes to NCMD and the host's STATE,
   * then goes live at once when no primary host is configured.
   */
  async start(signal: AbortSignal): Promise<void> {
    const topics = [this.ncmdTopic, ...(this.hostTopic ? [this.hostTopic] : [])];
    await this.bounded(signal, "subscriptions not acknowledged", this.client.subscribeAsync(topics, { qos: 1 }).then((granted) => {
      const refused = granted.filter((g) => g.qos === 128);
      if (refused.length > 0) throw new FloorgateError("OUTPUT_REJECTED", `${this.where}: broker refused the subscription to ${refused.map((g) => g.topic).join(", ")}`);
    }));
    this.started = true;
    // The host's retained STATE may have been handled before the SUBACK's continuation ran.
    if (!this.hostTopic || this.hostOnline) await this.bounded(signal, "NBIRTH not sent", this.goLive());
  }

  private bounded(signal: AbortSignal, what: string, p: Promise<void>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const fail = (err: Error): void => { cleanup(); reject(err); };
      const onAbort = (): void => fail(new FloorgateError("ABORTED", `${this.where}: connect aborted`, { cause: signal.reason }));
      const timer = setTimeout(
        () => fail(new FloorgateError("OUTPUT_UNAVAILABLE", `${this.where}: ${what} within ${this.timing.connectTimeoutMs} ms`)),
        this.timing.connectTimeoutMs,
      );
      const cleanup = (): void => { clearTimeout(timer); signal.removeEventListener("abort", onAbort); };
      signal.addEventListener("abort", onAbort, { once: true });
      p.then(() => { cleanup(); resolve(); }, (err: unknown) => fail(err instanceof Error ? err : new Error(String(err))));
    });
  }

  /** NBIRTH, then a DBIRTH for every known device that is not dead; resolves once they left the socket. */
  private goLive(): Promise<void> {
    this.historicalUpTo = this.ctx.journalHead?.() ?? -1;
    this.publishBirths();
    this.live = true;
    for (const w of this.readyWaiters) w.resolve();
    this.readyWaiters.clear();
    this.log.info({ bdSeq: this.bdSeq, historicalUpTo: this.historicalUpTo }, "sparkplug NBIRTH sent");
    this.pump();
    return this.flushed();
  }

  private publishBirths(): void {
    const now = Date.now();
    this.seq.birth();
    this.publishControl(sparkplugTopic(this.node.group, "NBIRTH", this.node.id), encodeNBirth(this.bdSeq, now));
    this.born.clear();
    for (const device of this.node.metrics.deviceIds()) {
      if (!this.node.isDead(device)) this.publishDBirth(device, now);
    }
  }

  private publishDBirth(device: string, now: number): void {
    this.publishControl(sparkplugTopic(this.node.group, "DBIRTH", this.node.id, device), encodeDBirth(this.seq.next(), this.node.metrics.metrics(device), now));
    this.born.add(device);
  }

  private publishDDeath(device: string): void {
    this.publishControl(sparkplugTopic(this.node.group, "DDEATH", this.node.id, device), encodeDDeath(this.seq.next(), Date.now()));
    this.born.delete(device);
  }

  /** Resolves once everything published so far has left the socket. */
  private flushed(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const stream = this.client.stream;
      if (!stream || stream.destroyed) { reject(new FloorgateError("OUTPUT_UNAVAILABLE", `${this.where}: connection lost`)); return; }
      stream.write(EMPTY, (err?: Error | null) => { if (err) reject(err); else resolve(); });
    });
  }

  private onMessage(topic: string, payload: Buffer): void {
    if (this.destroyed) return;
    if (topic === this.hostTopic) this.onHostState(payload);
    else if (topic === this.ncmdTopic) this.onNcmd(payload);
  }

  private onHostState(payload: Buffer): void {
    const state = parseHostState(payload);
    if (state === null) {
      if (!this.badStateLogged) {
        this.badStateLogged = true;
        this.log.warn({ topic: this.hostTopic, payload: payload.subarray(0, 64).toString("utf8") }, "sparkplug STATE payload not understood (neither {\"online\":…} nor ONLINE/OFFLINE); ignored");
      }
      return;
    }
    if (!isNewerState(state, this.node.lastStateTs)) return;
    if (state.timestamp !== undefined) this.node.lastStateTs = state.timestamp;
    this.hostOnline = state.online;
    if (state.online && !this.live && this.started && !this.broken) {
      this.goLive().catch((err: unknown) => this.destroy(err instanceof Error ? err : new Error(String(err))));
    } else if (!state.online && this.live) {
      this.end(new FloorgateError("OUTPUT_UNAVAILABLE", `${this.where}: primary host ${this.cfg.primaryHostId} went offline (STATE)`));
    }
  }

  private onNcmd(payload: Buffer): void {
    let rebirth: boolean;
    try {
      rebirth = isRebirthRequest(payload);
    } catch (err) {
      this.log.warn({ err: describeError(err) }, "sparkplug NCMD is not a Sparkplug B payload; ignored");
      return;
    }
    if (!rebirth || !this.live || this.broken) return;
    this.log.info("sparkplug rebirth requested (NCMD Node Control/Rebirth)");
    this.publishBirths();
  }

  ready(signal: AbortSignal): Promise<void> | undefined {
    if (this.live || this.broken) return undefined; // a broken session's writes reject at once
    return new Promise<void>((resolve, reject) => {
      const w = {
        resolve: (): void => { signal.removeEventListener("abort", onAbort); resolve(); },
        reject: (err: Error): void => { signal.removeEventListener("abort", onAbort); reject(err); },
      };
      const onAbort = (): void => { this.readyWaiters.delete(w); w.reject(new FloorgateError("ABORTED", `${this.where}: wait aborted`)); };
      signal.addEventListener("abort", onAbort, { once: true });
      this.readyWaiters.add(w);
    });
  }

  write(batch: SampleBatch): Promise<WriteResult> {
    if (this.broken || this.closing || !this.client.connected) {
      return Promise.reject(new FloorgateError("OUTPUT_UNAVAILABLE", `${this.where}: not connected`, { cause: this.broken ?? undefined }));
    }
    const plan = batch.length === 0 ? [] : planMessages(batch, this.cfg.maxBatch);
    return new Promise<WriteResult>((resolve, reject) => {
      const w: PendingWrite = { remaining: 0, done: plan.length === 0, resolve, reject, plan, next: 0, rebirth: null };
      this.pending.push(w);
      if (w.done) this.resolveInOrder();
      else {
        this.unsent.push(w);
        this.pump();
      }
    });
  }

  /** Publishes data in issue order while the session is live and the window has room. */
  private pump(): void {
    if (this.pumping || !this.live) return;
    this.pumping = true;
    try {
      while (this.window.hasRoom && !this.broken) {
        const w = this.unsent[0];
        if (w === undefined) break;
        const plan = w.plan!;
        // The whole write is looked at before its first message, so a device whose tags first show
        // up spread over several messages gets one DBIRTH with all of them, not one per message.
        if (w.next === 0) w.rebirth = this.observe(plan);
        const m = plan[w.next++]!;
        const last = w.next === plan.length;
        if (last) {
          w.plan = null;
          this.unsent.shift();
        }
        this.publishData(w, m, last);
      }
    } finally {
      this.pumping = false;
    }
  }

  /** Notes every sample of a write in the metric table; returns the devices whose birth it changed. */
  private observe(plan: readonly TelemetryMessage[]): Set<string> {
    const table = this.node.metrics;
    const changed = new Set<string>();
    for (const { device, runs } of plan) {
      for (const run of runs) {
        const cols = run.cols;
        for (let i = run.from; i < run.from + run.count; i++) {
          if (table.observe(device, cols.tags[i]!, cols.valueAt(i), cols.qualityAt(i), cols.ts[i]!, cols.unitAt(i))) changed.add(device);
        }
      }
    }
    return changed;
  }

  private publishData(w: PendingWrite, m: TelemetryMessage, last: boolean): void {
    const { device, runs } = m;
    const now = Date.now();
    if (w.rebirth!.delete(device) || !this.born.has(device)) this.publishDBirth(device, now);
    const payload = encodeDData(this.seq.next(), device, runs, this.node.metrics, this.historicalUpTo, now);
    // At QoS 0 the write is confirmed by the flush behind its last message, not by MQTT.js's
    // callback (which comes as soon as the bytes are queued on the stream): reserve it first.
    const flush = last && this.cfg.qos === 0;
    if (flush) w.remaining++;
    w.remaining++;
    this.count();
    this.client.publish(this.ddataTopic(device), payload, { qos: this.cfg.qos }, (err?: Error) => this.dataDone(w, err));
    // Data of a device already known dead (samples taken before it went offline, still in the
    // journal): delivered inside its own birth and death, so the host's view stays "dead".
    if (this.node.isDead(device)) this.publishDDeath(device);
    if (flush) {
      this.count();
      this.client.stream.write(EMPTY, (err?: Error | null) => this.dataDone(w, err ?? undefined));
    }
  }

  private ddataTopic(device: string): string {
    let t = this.ddataTopics.get(device);
    if (t === undefined) {
      if (this.ddataTopics.size >= 100_000) this.ddataTopics.clear();
      t = sparkplugTopic(this.node.group, "DDATA", this.node.id, device);
      this.ddataTopics.set(device, t);
    }
    return t;
  }

  private dataDone(w: PendingWrite, err: Error | undefined): void {
    if (!this.window.answered(err)) return;
    if (--w.remaining === 0 && w.plan === null && !w.done) {
      w.done = true;
      this.resolveInOrder();
    }
    this.refill();
  }

  /** Births and deaths: outside the data window (a handful per state change), but in the one publish order. */
  private publishControl(topic: string, payload: Buffer): void {
    this.count();
    this.client.publish(topic, payload, { qos: this.cfg.qos }, this.controlDone);
  }

  private readonly controlDone = (err?: Error): void => {
    if (this.window.answered(err)) this.refill();
  };

  /** Room freed by confirmations is filled once per turn of the event loop (the window's `refillSoon`). */
  private refill(): void {
    if (this.unsent.length > 0) this.window.refillSoon();
  }

  /** One more publish or flush outstanding (the window arms its watchdog when it was idle). */
  private count(): void {
    this.window.opened();
  }

  private resolveInOrder(): void {
    while (this.pending.length > 0 && this.pending[0]!.done) this.pending.shift()!.resolve({ dropped: [] });
  }

  /** DDEATH when a born device stops delivering; DBIRTH at once when a known device comes back online. */
  deviceStatus(device: string, state: DeviceState): void {
    const wasDead = this.node.isDead(device);
    this.node.deviceStates.set(device, state);
    if (!this.live || this.broken) return; // the births at go-live follow the latest states
    if (isDeadState(state)) {
      if (this.born.has(device)) this.publishDDeath(device);
    } else if (state === "online" && (wasDead || !this.born.has(device)) && this.node.metrics.has(device)) {
      this.publishDBirth(device, Date.now());
    }
  }

  /** Stops taking writes and rejects the unresolved ones: their data goes to the next session from the journal. */
  private fail(reason: Error): void {
    if (this.broken) return;
    this.broken = reason;
    this.live = false;
    this.window.close();
    this.unsent.length = 0;
    const err = reason instanceof FloorgateError && (reason.code === "OUTPUT_UNAVAILABLE" || reason.code === "OUTPUT_TIMEOUT")
      ? reason
      : new FloorgateError("OUTPUT_UNAVAILABLE", `${this.where}: session ended: ${reason.message}`, { cause: reason });
    for (const w of this.pending.splice(0)) {
      w.plan = null;
      w.reject(err);
    }
    for (const r of this.readyWaiters) r.reject(err);
    this.readyWaiters.clear();
  }

  /** Ends the session gracefully (NDEATH, DISCONNECT; bounded), then destroys it with `reason`. */
  private end(reason: Error): void {
    this.fail(reason);
    void this.goodbye(true).finally(() => this.destroy(reason));
  }

  /** Publishes the NDEATH of this connection (a graceful DISCONNECT discards the will), then disconnects; bounded. */
  private async goodbye(wasLive: boolean): Promise<void> {
    const deadline = performance.now() + this.timing.closeTimeoutMs; // monotonic: a clock step must not stretch the stop
    const within = <T>(p: Promise<T>): Promise<T | undefined> => {
      let timer: NodeJS.Timeout | undefined;
      const t = new Promise<undefined>((r) => { timer = setTimeout(() => r(undefined), Math.max(0, deadline - performance.now())); });
      return Promise.race([p, t]).finally(() => clearTimeout(timer));
    };
    if (wasLive && this.client.connected) {
      try {
        await within(this.client.publishAsync(sparkplugTopic(this.node.group, "NDEATH", this.node.id), encodeNDeath(this.bdSeq, Date.now()), { qos: 1 }));
      } catch {
        // best effort: the broker still holds the will with the same bdSeq
      }
    }
    if (!this.destroyed && this.client.connected) {
      await within(new Promise<void>((resolve) => { this.client.end(false, {}, () => resolve()); }));
    }
  }

  /** Ends the session for good; idempotent. */
  destroy(reason: Error): void {
    if (this.destroyed) return;
    this.fail(reason);
    this.destroyed = true;
    // Later, not here: destroy() runs inside MQTT.js's callbacks, which must not re-enter it (endClientLater).
    endClientLater(this.client);
    const why = this.broken ?? reason; // the first reason: a host going offline, not the close that followed
    if (!this.closing && this.started) this.log.debug({ err: describeError(why) }, "mqtt output connection lost");
    this.resolveLost(why);
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.destroyed) return;
    const wasLive = this.live;
    const reason = new FloorgateError("OUTPUT_UNAVAILABLE", `${this.where}: session closed`);
    this.fail(reason);
    await this.goodbye(wasLive);
    this.destroy(reason);
    this.log.info("mqtt output closed");
  }
}
