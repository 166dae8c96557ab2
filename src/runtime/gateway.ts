import { SampleColumns } from "../core/sample-columns.js";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { DeviceConfig, GatewayConfig } from "../config/types.js";
import type { Driver, DriverContext } from "../core/driver.js";
import { describeError, FloorgateError, isFloorgateError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import type { Sample, SampleValue } from "../core/sample.js";
import { createHttpServer, type HttpServer } from "../http/server.js";
import { createIngest, type RememberedMsgId } from "../ingest/ingest.js";
import type { FileHandle } from "node:fs/promises";
import type { Journal, JournalEvent } from "../journal/journal.js";
import { openJournal } from "../journal/segment-journal.js";
import { DeviceRegistry } from "../core/device-table.js";
import { Forwarder } from "./forwarding/forwarder.js";
import { Metrics } from "./status/metrics.js";
import { Normalizer, unscale } from "./pipeline/normalize.js";
import { DriverThreads } from "./threads/driver-threads.js";
import { SlowIoReporter } from "./lifecycle/slow-io.js";
import { checkDriver, connectionKey, createDriver, createOutput } from "./registry.js";
import type { HealthReport, StatusView, TagValue, DeviceInfo } from "../core/status.js";

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
}
const DONE: Promise<void> = Promise.resolve();

interface RunningDriver {
  config: DeviceConfig;
  driver: Driver;
  abort: AbortController;
  done: Promise<void>;
}

/**
 * One running gateway: journal, outputs, HTTP and inputs, started back to front and stopped front
 * to back. Owns health, counters and the glue between the parts; the parts never see each other.
 */
export class Gateway implements StatusView {
  readonly registry = new DeviceRegistry();
  readonly metrics: Metrics;
  private readonly forwarders: Forwarder[] = [];
  private readonly forwarderAbort = new AbortController();
  private forwarderRuns: Promise<void>[] = [];
  private readonly drivers = new Map<string, RunningDriver>();
  /** the driver threads, when `gateway.driverThreads` > 0 */
  private threads: DriverThreads | null = null;
  private http: HttpServer | null = null;
  private boundPort = 0;
  private journalFull = false;
  private stopping: Promise<void> | null = null;
  private pushNormalizer = new Normalizer(new Map());
  /** last accepted push per pushing device (gateway clock), for the silence sweep */
  private readonly lastPush = new Map<string, number>();
  private pushSweep: NodeJS.Timeout | null = null;
  private fatalError: ((why: string) => void) | null = null;
  /**
   * Resolves with the reason when the gateway cannot go on (a fatal journal error: a failed
   * fsync may have lost acknowledged data from the page cache). The daemon then stops and exits
   * 2, so that its supervisor restarts it and recovery re-reads what is really on disk.
   */
  readonly fatal: Promise<string> = new Promise((resolve) => { this.fatalError = resolve; });

  private readonly pushSilenceMs: number;
  private readonly pushSweepMs: number;

  private constructor(
    readonly config: GatewayConfig,
    readonly journal: Journal,
    private readonly log: Logger,
    opts: GatewayOptions,
  ) {
    this.pushSilenceMs = opts.pushSilenceMs ?? 60_000;
    this.pushSweepMs = opts.pushSweepMs ?? 5_000;
    this.metrics = new Metrics({
      deviceStates: () => this.registry.states().map((d) => ({ device: d.id, state: d.state })),
      journal: () => {
        const s = this.journal.stats();
        const lag: Record<string, number> = {};
        for (const [o, st] of Object.entries(s.outputs)) lag[o] = st.lag;
        return { bytes: s.bytes, records: s.records, segments: s.segments, lag, torn: s.tornRecords, writable: s.writable };
      },
      outputsUp: () => Object.fromEntries(this.forwarders.map((f) => [f.name, f.isUp()])),
      samplesIn: () => this.registry.counter("samples_in"),
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
    let gw: Gateway | null = null;
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
        onEvent: (e) => (gw ? gw.onJournalEvent(e, slowIo) : early.push(e)),
        ...(opts.journalOpenFile ? { openFile: opts.journalOpenFile } : {}),
      }), signal, (late) => late.close());
    } catch (err) {
      throw isFloorgateError(err) ? err : new FloorgateError("JOURNAL_IO", `cannot open the journal in ${dir}: ${describeError(err)}`, { cause: err });
    }
    const g: Gateway = new Gateway(config, journal, log, opts);
    gw = g;
    for (const e of early) g.onJournalEvent(e, slowIo);
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

  /** @internal the journal's events: counted, and logged once each (they fire once per change) */
  onJournalEvent(e: JournalEvent, slowIo: SlowIoReporter): void {
    const log = this.log;
    switch (e.kind) {
      case "slow-io":
        slowIo.report(e);
        return;
      case "torn-tail":
        log.warn(e, "journal: torn tail record dropped at recovery (it was never acknowledged)");
        return;
      case "corrupt":
        log.error(e, "journal: corrupt stretch skipped at recovery; the samples in it are lost and counted");
        for (const [o, n] of Object.entries(e.perOutput)) if (n > 0) this.metrics.drops.inc({ reason: "corrupt", output: o }, n);
        return;
      case "dropped-oldest":
        log.warn(e, e.reason === "disk_full" ? "journal: oldest segment dropped (disk full)" : "journal: oldest segment dropped (journal full)");
        for (const [o, n] of Object.entries(e.perOutput)) if (n > 0) this.metrics.drops.inc({ reason: e.reason, output: o }, n);
        return;
      case "unwritable":
        log.error({ reason: e.reason, error: e.error }, `journal cannot write: ${e.reason}; refusing data (503) and retrying`);
        return;
      case "writable":
        log.info({ unwritableMs: e.unwritableMs, refusedSamples: e.refusedSamples }, "journal writes again");
        return;
      case "fatal":
        log.fatal({ error: e.error }, "journal: fatal disk error; stopping so that recovery re-reads the disk");
        this.fatalError?.(e.error);
        return;
    }
  }

  get httpPort(): number {
    return this.boundPort;
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
    this.registry.onState((id, state, error, ts) => {
      for (const f of this.forwarders) f.deviceStatus(id, state, error, ts);
    });
  }

  private async startHttp(): Promise<void> {
    // Taken in any case: the journal holds the recovered keys until someone does.
    const keys = this.journal.recentKeys();
    const ingest = this.config.ingest.http || this.config.ingest.mqtt
      ? createIngest(this.config.ingest, { push: (device, samples, msgIds) => this.push(device, samples, msgIds) }, this.metrics, Date.now, {
        remembered: rememberedMsgIds(keys),
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
    try {
      this.boundPort = (await http.listen(this.config.http.host, this.config.http.port)).port;
    } catch (err) {
      throw isFloorgateError(err) ? err : new FloorgateError("PORT_IN_USE", `cannot listen on ${this.config.http.listen}: ${describeError(err)}`, { cause: err });
    }
    this.http = http;
    this.pushSweep = setInterval(() => this.sweepPushed(), this.pushSweepMs);
    this.pushSweep.unref();
  }

  private startDrivers(): void {
    for (const dc of this.config.devices) {
      this.registry.addConfigured(dc.id, dc.driver, dc.disabled);
      if (dc.disabled) continue;
      let driver: Driver;
      try {
        if (this.config.gateway.driverThreads > 0) {
          checkDriver(dc);
          this.threads ??= new DriverThreads(this.config.gateway.driverThreads, this.log, {
            onLost: (reason, n) => this.metrics.drops.inc({ reason, output: "" }, n),
            onLoopDelay: (thread, p99, max) => {
              this.metrics.driverThreadLoopDelay.set({ thread: String(thread), stat: "p99" }, p99);
              this.metrics.driverThreadLoopDelay.set({ thread: String(thread), stat: "max" }, max);
            },
          });
          driver = this.threads.driver(dc, connectionKey(dc));
        } else driver = createDriver(dc);
      } catch (err) {
        this.registry.setState(dc.id, "error", describeError(err));
        this.log.error({ device: dc.id, err: describeError(err) }, "device cannot start");
        continue;
      }
      const abort = new AbortController();
      const ctx = this.driverContext(dc, abort.signal);
      const done = driver.run(ctx).catch((err: unknown) => {
        this.registry.setState(dc.id, "error", describeError(err));
        this.log.error({ device: dc.id, err: describeError(err) }, "driver stopped with an error");
      });
      this.drivers.set(dc.id, { config: dc, driver, abort, done });
    }
  }

  private driverContext(dc: DeviceConfig, signal: AbortSignal): DriverContext {
    const normalizer = Normalizer.forTags(dc.tags);
    const log = this.log.child({ device: dc.id });
    return {
      signal,
      log,
      // Not async: nothing here may hold the samples while the journal's fsync is awaited.
      emit: (samples) => {
        const norm = samples instanceof SampleColumns ? normalizer.applyColumns(samples) : normalizer.apply(samples);
        if (norm.length === 0) return DONE;
        return this.appendPolled(dc.id, norm);
      },
      setState: (state, error) => {
        if (this.registry.setState(dc.id, state, error ?? null)) {
          log.info({ state, error: error ?? null }, `device ${dc.id} ${state}`);
        }
      },
      count: (event, n = 1) => {
        this.registry.count(dc.id, event, n);
        this.metrics.driverEvents.inc({ device: dc.id, event }, n);
      },
    };
  }

  /** The ingest sink: resolves when durable, rejects JOURNAL_FULL / JOURNAL_IO (→ 503). */
  private async push(device: string, samples: Sample[], msgIds: readonly string[]): Promise<void> {
    this.registry.ensurePushed(device);
    await this.append(device, this.pushNormalizer.apply(samples), msgIds.length > 0 ? msgIds.map((id) => msgIdKey(device, id)) : undefined);
    this.lastPush.set(device, Date.now());
    if (this.registry.setState(device, "online", null)) this.log.info({ device }, `device ${device} online`);
  }

  /** A pushing device that has been silent for pushSilenceMs is shown offline until it pushes again. */
  private sweepPushed(now = Date.now()): void {
    const silence = this.pushSilenceMs;
    for (const [device, at] of this.lastPush) {
      if (now - at > silence && this.registry.setState(device, "offline", `no push for ${silence / 1000} s`)) {
        this.log.info({ device }, `device ${device} offline: no push for ${silence / 1000} s`);
      }
    }
  }

  /**
   * Journals one device's pushed samples; rejects with the journal's error (JOURNAL_FULL,
   * JOURNAL_IO) so the device gets a 503.
   */
  private async append(device: string, samples: readonly Sample[], keys?: readonly string[]): Promise<void> {
    this.registry.observe(samples);
    const n = samples.length;
    try {
      await this.journal.append(samples, keys ? { keys } : undefined);
    } catch (err) {
      if (isFloorgateError(err, "JOURNAL_FULL")) this.journalFull = true;
      throw err;
    }
    this.accepted(device, n);
  }

  /**
   * Journals one device's polled samples. Synchronous up to the journal's copy, and the returned
   * promise closes over the count only, so the samples die young. Refused samples are counted as
   * dropped, never rethrown: the poller carries on.
   */
  private appendPolled(device: string, samples: SampleColumns | readonly Sample[]): Promise<void> {
    if (samples instanceof SampleColumns) this.registry.observeColumns(samples);
    else this.registry.observe(samples);
    const n = samples.length;
    return this.journal.append(samples).then(
      () => this.accepted(device, n),
      (err: unknown) => {
        const reason = isFloorgateError(err, "JOURNAL_FULL") ? "journal_full" : isFloorgateError(err, "JOURNAL_UNAVAILABLE") ? "journal_unavailable" : "journal_io";
        if (reason === "journal_full") this.journalFull = true;
        this.metrics.drops.inc({ reason, output: "" }, n);
        this.registry.count(device, `dropped_${reason}`, n);
      },
    );
  }

  private accepted(device: string, n: number): void {
    this.journalFull = false;
    this.registry.count(device, "samples_in", n);
  }

  /** Write-back to a device tag: checks `writable`, applies inverse scaling, hands the raw value to the driver. */
  async write(device: string, tag: string, value: SampleValue): Promise<void> {
    const running = this.drivers.get(device);
    const dc = running?.config ?? this.config.devices.find((d) => d.id === device);
    if (!dc) throw new FloorgateError("WRITE_REFUSED", `unknown device ${device}`);
    const tc = dc.tags.find((t) => t.name === tag);
    if (!tc) throw new FloorgateError("WRITE_REFUSED", `device ${device} has no tag ${tag}`);
    if (!tc.writable) throw new FloorgateError("WRITE_REFUSED", `tag ${device}/${tag} is not writable (set writable: true in the config)`);
    if (!running?.driver.write) throw new FloorgateError("WRITE_REFUSED", `device ${device} is not running or its driver cannot write`);
    const raw = typeof value === "number" ? unscale(value, tc) : value;
    await running.driver.write(tag, raw);
    this.log.info({ device, tag }, "operator write done");
  }

  // ---- StatusView ----
  gatewayId(): string {
    return this.config.gateway.id;
  }

  health(): HealthReport {
    const j = this.journal.stats();
    const full = this.journalFull && j.bytes >= j.maxBytes * 0.9;
    if (!full) this.journalFull = false;
    const outputs = Object.fromEntries(this.forwarders.map((f) => [f.name, f.health()]));
    const devices = Object.fromEntries(this.registry.states().map((d) => [d.id, { state: d.state, error: d.error }]));
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

  devices(): DeviceInfo[] {
    return this.registry.list();
  }

  tags(device: string): TagValue[] | undefined {
    return this.registry.tags(device);
  }

  /** Stops inputs first, then HTTP, then outputs (draining writes in flight), then the journal. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    if (this.pushSweep) clearInterval(this.pushSweep);
    for (const d of this.drivers.values()) d.abort.abort();
    await withTimeout(Promise.all([...this.drivers.values()].map((d) => d.done)), 3000);
    await withTimeout(this.threads?.close() ?? Promise.resolve(), 2000);
    await withTimeout(this.http?.close() ?? Promise.resolve(), 2000);
    this.forwarderAbort.abort();
    await withTimeout(Promise.all(this.forwarderRuns), 5000);
    await this.journal.close();
    this.log.info("floorgate stopped");
  }
}

function startAborted(): FloorgateError {
  return new FloorgateError("ABORTED", "start aborted: stop requested");
}

/**
 * `p`, or a rejection ABORTED as soon as `signal` fires; a value `p` still delivers after that is
 * handed to `late` (to close it) instead of being leaked.
 */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal | undefined, late: (v: T) => unknown): Promise<T> {
  if (!signal) return p;
  return new Promise<T>((resolve, reject) => {
    let lost = false;
    const onAbort = () => {
      lost = true;
      reject(startAborted());
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
    p.then((v) => {
      signal.removeEventListener("abort", onAbort);
      if (!lost) resolve(v);
      else Promise.resolve().then(() => late(v)).catch(() => undefined);
    }, (err: unknown) => {
      signal.removeEventListener("abort", onAbort);
      reject(err);
    });
  });
}

/**
 * A pushed msgId as a journal idempotency key: device ids cannot hold a newline, so the first
 * newline splits the key back exactly (a msgId may contain anything).
 */
function msgIdKey(device: string, msgId: string): string {
  return `${device}\n${msgId}`;
}

function* rememberedMsgIds(frames: { at: number; keys: string[] }[]): Generator<RememberedMsgId> {
  frames.sort((a, b) => a.at - b.at);
  for (const f of frames) {
    for (const k of f.keys) {
      const nl = k.indexOf("\n");
      if (nl > 0) yield { device: k.slice(0, nl), msgId: k.slice(nl + 1), at: f.at };
    }
  }
}

async function withTimeout(p: Promise<unknown>, ms: number): Promise<void> {
  let t: NodeJS.Timeout | undefined;
  await Promise.race([p.then(() => undefined, () => undefined), new Promise<void>((r) => { t = setTimeout(r, ms); })]);
  clearTimeout(t);
}
