import { mkdir } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { join } from "node:path";
import type { DeviceConfig, GatewayConfig } from "../config/types.js";
import type { BackoffOptions } from "../core/backoff.js";
import { DeviceTable } from "../core/device-table.js";
import type { Driver } from "../core/driver.js";
import { describeError, FloorgateError, isFloorgateError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import type { SampleValue } from "../core/sample.js";
import type { DeviceInfo, HealthReport, StatusView, TagValue } from "../core/status.js";
import { createHttpServer, type HttpServer } from "../http/server.js";
import { createIngest } from "../ingest/ingest.js";
import type { ListenerLoad, RunningListener } from "../ingest/listener.js";
import { ingestListeners } from "../plugins/ingest.js";
import type { Journal, JournalEvent } from "../journal/journal.js";
import { openJournal } from "../journal/segment-journal.js";
import { LiveHub, type LiveOptions } from "../live/hub.js";
import { LiveCounters } from "../live/metrics.js";
import { Forwarder } from "./forwarding/forwarder.js";
import { startAborted, untilAborted, withTimeout } from "./lifecycle/abortable.js";
import { journalEventHandler } from "./lifecycle/journal-events.js";
import { SlowIoReporter } from "./lifecycle/slow-io.js";
import { superviseDriver } from "./lifecycle/supervisor.js";
import { driverContext } from "./pipeline/driver-context.js";
import { JournalIntake } from "./pipeline/intake.js";
import { PushSink, rememberedMsgIds } from "./pipeline/push-sink.js";
import { writeBack } from "./pipeline/write-back.js";
import { checkDriver, connectionKey, createDriver, createOutput, mayRunOnDriverThread } from "./registry.js";
import { healthReport } from "./status/health.js";
import { Metrics } from "./status/metrics.js";
import { StateChangeLog } from "./status/state-log.js";
import { DriverThreads, type DriverThreadsOptions } from "./threads/driver-threads.js";

/** Knobs that are not config: the defaults are what operators get; tests shorten them. */
export interface GatewayOptions {
  /** a pushing device silent this long is shown offline (spec §1: unreachable); default 60 s */
  pushSilenceMs?: number;
  /** how often silence is checked; default 5 s */
  pushSweepMs?: number;
  /** opens the journal's segment files (fault tests inject disk errors here); default fs `open` */
  journalOpenFile?: (path: string, flags: string) => Promise<FileHandle>;
  /**
   * Aborts a start still under way (SIGTERM during startup): `start` then rejects ABORTED at once,
   * after undoing what had started; a journal still opening is closed in the background once open.
   */
  signal?: AbortSignal;
  /**
   * Makes the driver of a device run on the main thread; default the plugin list's `createDriver`.
   * A seam for tests that need a driver of their own (one whose `run` fails, for the supervisor).
   */
  createDriver?: (cfg: DeviceConfig) => Driver;
  /** waits between restarts of a failed driver; default RESTART_BACKOFF (lifecycle/supervisor.ts) */
  driverRestartBackoff?: Partial<BackoffOptions>;
  /** @internal for tests: options of the driver threads (the built worker to run, a test driver module) */
  driverThreads?: Pick<DriverThreadsOptions, "workerUrl" | "driverModule">;
  /** the `/live` feed's knobs (cap, heartbeat, …); default LIVE_DEFAULTS (src/live/hub.ts) */
  live?: Partial<LiveOptions>;
}

interface RunningDriver {
  config: DeviceConfig;
  driver: Driver;
  abort: AbortController;
  done: Promise<void>;
}

/**
 * The composition root: one running gateway — journal, outputs, HTTP and inputs — started back to
 * front and stopped front to back. It makes the parts and wires them; the parts never see each
 * other. Data flows drivers / ingest → pipeline (normalize, intake) → journal → forwarders →
 * outputs; the device table (src/core/device-table.ts) is the one owner of device state, read by
 * HTTP, /metrics, the outputs' status topics and the live feed.
 */
export class Gateway implements StatusView {
  readonly devicesTable: DeviceTable;
  readonly metrics: Metrics;
  private readonly intake: JournalIntake;
  private readonly forwarders: Forwarder[] = [];
  private readonly forwarderAbort = new AbortController();
  private forwarderRuns: Promise<void>[] = [];
  private readonly drivers = new Map<string, RunningDriver>();
  /** the driver threads, when `gateway.driverThreads` > 0 */
  private threads: DriverThreads | null = null;
  private http: HttpServer | null = null;
  private live: LiveHub | null = null;
  /** the ingest's own listeners (the device MQTT listener), by their `ingest` key */
  private readonly listeners = new Map<string, RunningListener>();
  private boundPort = 0;
  private stopping: Promise<void> | null = null;
  private silenceSweep: NodeJS.Timeout | null = null;
  private fatalError: ((why: string) => void) | null = null;
  /**
   * Resolves with the reason when the gateway cannot go on (a fatal journal error: a failed
   * fsync may have lost acknowledged data from the page cache). The daemon then stops and exits
   * 2, so that its supervisor restarts it and recovery re-reads what is really on disk.
   */
  readonly fatal: Promise<string> = new Promise((resolve) => { this.fatalError = resolve; });

  private readonly pushSweepMs: number;
  private readonly stateLog: StateChangeLog;

  private constructor(
    readonly config: GatewayConfig,
    readonly journal: Journal,
    private readonly log: Logger,
    private readonly opts: GatewayOptions,
  ) {
    this.pushSweepMs = opts.pushSweepMs ?? 5_000;
    this.stateLog = new StateChangeLog(log);
    const table = new DeviceTable({ silenceMs: opts.pushSilenceMs ?? 60_000 });
    this.devicesTable = table;
    this.metrics = new Metrics({
      deviceStates: () => table.states().map((d) => ({ device: d.id, state: d.state })),
      journal: () => {
        const s = this.journal.stats();
        const lag: Record<string, number> = {};
        for (const [o, st] of Object.entries(s.outputs)) lag[o] = st.lag;
        return { bytes: s.bytes, records: s.records, segments: s.segments, lag, torn: s.tornRecords, writable: s.writable };
      },
      outputsUp: () => Object.fromEntries(this.forwarders.map((f) => [f.name, f.isUp()])),
      samplesIn: () => table.counter("samples_in"),
      ingestLoad: () => this.ingestLoad(),
    });
    this.intake = new JournalIntake(journal, table, this.metrics.drops);
    // Pushing devices have no driver to log their state changes: logged here, a line each up to a
    // few per second, then summarised (a fleet reconnecting together would log thousands of lines).
    table.onState((id, state, error) => {
      if (table.kindOf(id) === "pushed") this.stateLog.change(id, state, error);
    });
  }

  /**
   * Starts everything; rejects with JOURNAL_IO or PORT_IN_USE (exit code 2), or ABORTED when
   * `opts.signal` fires first, after undoing what started.
   */
  static async start(config: GatewayConfig, log: Logger, opts: GatewayOptions = {}): Promise<Gateway> {
    const dir = join(config.gateway.dataDir, "journal");
    const slowIo = new SlowIoReporter(log);
    const signal = opts.signal;
    if (signal?.aborted) throw startAborted();
    let journal: Journal;
    // Events during recovery (torn tail, corruption) arrive before the gateway exists: held, then replayed.
    const early: JournalEvent[] = [];
    let onEvent: ((e: JournalEvent) => void) | null = null;
    try {
      await mkdir(dir, { recursive: true });
      // Recovery reads every segment: on a large journal or a slow disk it is the long part of a start.
      journal = await untilAborted(openJournal({
        dir,
        maxBytes: config.journal.maxBytes,
        overflow: config.journal.overflow,
        fsync: config.journal.fsync,
        fsyncIntervalMs: config.journal.fsyncIntervalMs,
        outputs: config.outputs.map((o) => o.name),
        onEvent: (e) => (onEvent ? onEvent(e) : early.push(e)),
        ...(opts.journalOpenFile ? { openFile: opts.journalOpenFile } : {}),
      }), signal, (late) => late.close());
    } catch (err) {
      throw isFloorgateError(err) ? err : new FloorgateError("JOURNAL_IO", `cannot open the journal in ${dir}: ${describeError(err)}`, { cause: err });
    }
    const g: Gateway = new Gateway(config, journal, log, opts);
    const handler = journalEventHandler(log, g.metrics.drops, slowIo, (why) => g.fatalError?.(why));
    onEvent = handler;
    for (const e of early) handler(e);
    slowIo.countInto((op) => g.metrics.journalSlowIo.inc({ op }));
    try {
      g.startOutputs();
      await g.startHttp();
      if (signal?.aborted) throw startAborted();
      g.startDrivers();
    } catch (err) {
      await g.stop();
      throw err;
    }
    log.info({ gateway: config.gateway.id, http: g.httpPort, devices: config.devices.length, outputs: config.outputs.length }, "floorgate running");
    return g;
  }

  get httpPort(): number {
    return this.boundPort;
  }

  /** The bound port of the device MQTT listener (`ingest.mqtt`), or undefined without one. */
  get mqttPort(): number | undefined {
    return this.listeners.get("mqtt")?.port;
  }

  /** What the device listeners hold awaiting the journal, summed; undefined without a listener. */
  private ingestLoad(): ListenerLoad | undefined {
    if (this.listeners.size === 0) return undefined;
    const sum: ListenerLoad = { connections: 0, inFlightMessages: 0, inFlightBytes: 0, pausedConnections: 0, paused: false };
    for (const l of this.listeners.values()) {
      const x = l.load();
      sum.connections += x.connections;
      sum.inFlightMessages += x.inFlightMessages;
      sum.inFlightBytes += x.inFlightBytes;
      sum.pausedConnections += x.pausedConnections;
      sum.paused ||= x.paused;
    }
    return sum;
  }

  private startOutputs(): void {
    for (const oc of this.config.outputs) {
      const output = createOutput(oc, this.config);
      // The forwarder binds `output` itself (a second binding would repeat the key on every line).
      const f = new Forwarder(output, this.journal, this.metrics, this.log);
      this.forwarders.push(f);
      this.forwarderRuns.push(f.run(this.forwarderAbort.signal).catch((err: unknown) => {
        this.log.error({ output: oc.name, err: describeError(err) }, "output forwarder failed");
      }));
    }
    this.devicesTable.onState((id, state, error, ts) => {
      for (const f of this.forwarders) f.deviceStatus(id, state, error, ts);
    });
  }

  private async startHttp(): Promise<void> {
    // Taken in any case: the journal holds the recovered keys until someone does.
    const keys = this.journal.recentKeys();
    const cfgIngest = this.config.ingest as unknown as Record<string, unknown>;
    const listening = ingestListeners.filter((l) => cfgIngest[l.key] !== undefined);
    // One ingest for every path: a msgId retried over HTTP and MQTT is stored once.
    const ingest = this.config.ingest.http || listening.length > 0
      ? createIngest(this.config.ingest, new PushSink(this.intake), this.metrics, Date.now, {
        remembered: rememberedMsgIds(keys),
        devices: this.devicesTable,
      })
      : undefined;
    const http = createHttpServer({
      config: this.config,
      status: this,
      metrics: this.metrics,
      ingest,
      write: (device, tag, value) => this.write(device, tag, value),
      log: this.log.child({ part: "http" }),
    });
    const liveCounters = new LiveCounters();
    liveCounters.register(this.metrics.registry);
    const table = this.devicesTable;
    this.live = new LiveHub({
      http,
      config: this.config.http,
      source: { gatewayId: () => this.gatewayId(), subscribe: (o) => table.subscribe(o), states: () => table.states(), tags: (id) => table.tags(id), health: () => this.health() },
      counters: liveCounters,
      log: this.log.child({ part: "live" }),
      options: this.opts.live,
    });
    try {
      this.boundPort = (await http.listen(this.config.http.host, this.config.http.port)).port;
    } catch (err) {
      throw isFloorgateError(err) ? err : new FloorgateError("PORT_IN_USE", `cannot listen on ${this.config.http.listen}: ${describeError(err)}`, { cause: err });
    }
    this.http = http;
    for (const l of listening) {
      this.listeners.set(l.key, await l.start(cfgIngest[l.key], {
        ingest: ingest!, table: this.devicesTable, metrics: this.metrics, log: this.log.child({ part: `ingest-${l.key}` }),
      }));
    }
    // The silence rule of the device table (pushing devices go offline when they stop).
    this.silenceSweep = setInterval(() => this.devicesTable.sweep(), this.pushSweepMs);
    this.silenceSweep.unref();
  }

  private startDrivers(): void {
    const table = this.devicesTable;
    for (const dc of this.config.devices) {
      table.addConfigured(dc.id, dc.driver, dc.disabled);
      if (dc.disabled) continue;
      let driver: Driver;
      try {
        driver = this.makeDriver(dc);
      } catch (err) {
        table.setState(dc.id, "error", describeError(err));
        this.log.error({ device: dc.id, err: describeError(err) }, "device cannot start");
        continue;
      }
      const abort = new AbortController();
      const ctx = driverContext(dc, abort.signal, { intake: this.intake, table, driverEvents: this.metrics.driverEvents, log: this.log });
      const done = superviseDriver(dc.id, driver, ctx, {
        table,
        restarts: this.metrics.driverRestarts,
        backoff: { maxMs: dc.reconnectMaxMs, ...this.opts.driverRestartBackoff },
      });
      this.drivers.set(dc.id, { config: dc, driver, abort, done });
    }
  }

  /**
   * A device's driver, on a driver thread when `gateway.driverThreads` > 0 and its plugin allows it
   * (a driver whose library cannot live in a worker thread stays on the main thread).
   */
  private makeDriver(dc: DeviceConfig): Driver {
    if (this.config.gateway.driverThreads === 0 || !mayRunOnDriverThread(dc)) return (this.opts.createDriver ?? createDriver)(dc);
    checkDriver(dc);
    this.threads ??= new DriverThreads(this.config.gateway.driverThreads, this.log, {
      onLost: (reason, n) => this.metrics.drops.inc({ reason, output: "" }, n),
      onLoopDelay: (thread, p99, max) => {
        this.metrics.driverThreadLoopDelay.set({ thread: String(thread), stat: "p99" }, p99);
        this.metrics.driverThreadLoopDelay.set({ thread: String(thread), stat: "max" }, max);
      },
      ...this.opts.driverThreads,
    });
    return this.threads.driver(dc, connectionKey(dc));
  }

  /** Write-back to a device tag (see pipeline/write-back.ts). */
  write(device: string, tag: string, value: SampleValue): Promise<void> {
    return writeBack(this.config.devices, (id) => this.drivers.get(id), this.log, device, tag, value);
  }

  // ---- StatusView ----
  gatewayId(): string {
    return this.config.gateway.id;
  }

  health(): HealthReport {
    const outputs = Object.fromEntries(this.forwarders.map((f) => [f.name, f.health()]));
    const report = healthReport(this.journal, outputs, this.devicesTable, this.intake.journalFull, () => { this.intake.journalFull = false; });
    if (this.listeners.size > 0) report.ingest = Object.fromEntries([...this.listeners].map(([key, l]) => [key, l.load()]));
    return report;
  }

  devices(): DeviceInfo[] {
    return this.devicesTable.list();
  }

  tags(device: string): TagValue[] | undefined {
    return this.devicesTable.tags(device);
  }

  /** Stops inputs first, then HTTP, then outputs (draining writes in flight), then the journal. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    if (this.silenceSweep) clearInterval(this.silenceSweep);
    for (const d of this.drivers.values()) d.abort.abort();
    await withTimeout(Promise.all([...this.drivers.values()].map((d) => d.done)), 3000);
    await withTimeout(this.threads?.close() ?? Promise.resolve(), 2000);
    await withTimeout(this.live?.close() ?? Promise.resolve(), 2000);
    await withTimeout(Promise.all([...this.listeners.values()].map((l) => l.close())), 2000);
    await withTimeout(this.http?.close() ?? Promise.resolve(), 2000);
    this.forwarderAbort.abort();
    await withTimeout(Promise.all(this.forwarderRuns), 5000);
    await this.journal.close();
    this.stateLog.flush();
    this.log.info("floorgate stopped");
  }
}
