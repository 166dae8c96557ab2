import { Worker } from "node:worker_threads";
import type { DeviceConfig } from "../../config/types.js";
import type { Driver, DriverContext } from "../../core/driver.js";
import { Backoff } from "../../core/backoff.js";
import { FloorgateError, describeError, type ErrorCode } from "../../core/errors.js";
import type { Logger } from "../../core/logger.js";
import type { SampleValue } from "../../core/sample.js";
import { ColumnsUnpacker } from "./thread-columns.js";
import { SLOT_KEY, type DriverThreadData, type FromDriverThread, type ToDriverThread, type WireError } from "./driver-thread-messages.js";

/**
 * Drivers run on worker threads (`gateway.driverThreads`), so that polling thousands of devices —
 * socket writes and reads, framing, decoding, timers — no longer shares one event loop with the
 * journal and the outputs. Each device's driver still sees a DriverContext; its calls arrive here
 * as messages and are made on the device's real context, so the runtime (normalize, journal,
 * registry, metrics) stays on the main thread and knows nothing of threads.
 *
 * Devices that share a connection (a serial line, a Modbus gateway) must share a thread, since a
 * line is owned by one thread: they are placed by their connection's key, each new key on the
 * thread with the fewest devices.
 *
 * A thread that dies (an uncaught exception in a driver, out of memory) is logged once and started
 * again after a backoff, with every driver it hosted: its devices show `connecting` meanwhile.
 * Samples its drivers had emitted but the thread had not yet sent were never durable, so nothing
 * acknowledged is lost; they are still counted, through `onLost`, as dropped.
 */
export class DriverThreads {
  private readonly threads: DriverThread[];
  private readonly placed = new Map<string, DriverThread>();

  constructor(count: number, log: Logger, opts: DriverThreadsOptions) {
    const o: ThreadOptions = {
      onLost: opts.onLost,
      workerUrl: opts.workerUrl ?? new URL("./driver-worker.js", import.meta.url),
      inFlightSamples: opts.inFlightSamples ?? IN_FLIGHT_SAMPLES,
      onLoopDelay: opts.onLoopDelay ?? ((): void => {}),
      driverModule: opts.driverModule,
    };
    this.threads = Array.from({ length: count }, (_, i) => new DriverThread(i, log, o));
  }

  /** A Driver for `cfg` that runs on the thread of `connectionKey`. */
  driver(cfg: DeviceConfig, connectionKey: string): Driver {
    let t = this.placed.get(connectionKey);
    if (!t) {
      t = this.threads.reduce((a, b) => (b.devices < a.devices ? b : a));
      this.placed.set(connectionKey, t);
    }
    t.devices++;
    return t.driver(cfg);
  }

  /** Ends every thread; call after every driver's `run` has returned. */
  async close(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.close()));
  }

  /**
   * @internal for tests: ends thread `i` the way a crash would, so that it restarts; with
   * `insideEmit`, from inside its next emit, so that samples die with it.
   */
  crash(i: number, insideEmit = false): Promise<number> {
    return this.threads[i]!.crash(insideEmit);
  }
}

export interface DriverThreadsOptions {
  onLost: OnLost;
  /**
   * The worker's entry module, by default the built driver-worker.js beside this file; tests that
   * run this file from source point it at the build.
   */
  workerUrl?: URL;
  /** see DriverThreadData.inFlightSamples (default IN_FLIGHT_SAMPLES) */
  inFlightSamples?: number;
  /** each thread's event-loop delay (p99 and max, seconds) over the last LOOP_REPORT_MS */
  onLoopDelay?: (thread: number, p99: number, max: number) => void;
  /** see DriverThreadData.driverModule */
  driverModule?: string;
}

/**
 * ~17 B per sample in flight between the threads and in the journal's queue: ≤ ~18 MB per thread,
 * 1.7 s of 6,000 devices × 100 values.
 */
export const IN_FLIGHT_SAMPLES = 1_048_576;

type ThreadOptions = Required<Omit<DriverThreadsOptions, "driverModule">> & Pick<DriverThreadsOptions, "driverModule">;

/**
 * Samples emitted on a driver thread that never reached the runtime: `driver_thread_failed` (they
 * died with their thread) or `driver_stopped` (they arrived after their driver had stopped).
 */
export type OnLost = (reason: "driver_thread_failed" | "driver_stopped", samples: number) => void;

const LEVELS: Record<number, "trace" | "debug" | "info" | "warn" | "error" | "fatal"> = {
  10: "trace", 20: "debug", 30: "info", 40: "warn", 50: "error", 60: "fatal",
};

function fromWire(e: WireError): Error {
  return e.code !== undefined ? new FloorgateError(e.code as ErrorCode, e.message) : new Error(e.message);
}

interface Slot {
  cfg: DeviceConfig;
  ctx: DriverContext;
  resolve(): void;
  reject(err: Error): void;
}

class DriverThread {
  devices = 0;
  private worker: Worker | undefined;
  /** set by close(): no restart after that */
  private closed: Error | undefined;
  /** bumped per worker started: answers for a dead worker's emits must not reach its successor */
  private generation = 0;
  private readonly backoff = new Backoff({ initialMs: 500, maxMs: 30_000 });
  private restartTimer: NodeJS.Timeout | undefined;
  private nextId = 1;
  private nextReq = 1;
  private readonly slots = new Map<number, Slot>();
  private readonly writes = new Map<number, { resolve(): void; reject(err: Error): void }>();
  private unpacker = new ColumnsUnpacker();
  private acks: number[] = [];
  /** samples in the emits of `acks` */
  private ackedSamples = 0;
  private ackQueued = false;
  /** tag lists already sent to the current worker, by number */
  private tagLists = new WeakMap<object, number>();
  private nextTags = 1;
  /** the current worker's emitted-samples counter (see DriverThreadData.emitted) */
  private emitted = new Float64Array(new SharedArrayBuffer(8));
  /** samples that arrived from the current worker */
  private received = 0;

  constructor(private readonly index: number, private readonly log: Logger, private readonly opts: ThreadOptions) {}

  driver(cfg: DeviceConfig): Driver {
    let id = 0;
    return {
      run: (ctx) => {
        id = this.nextId++;
        return this.run(id, cfg, ctx);
      },
      write: (tag, raw) => this.write(id, tag, raw),
    };
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const shared = new SharedArrayBuffer(8);
    const data: DriverThreadData = { logLevel: this.log.level, emitted: shared, inFlightSamples: this.opts.inFlightSamples };
    if (this.opts.driverModule !== undefined) data.driverModule = this.opts.driverModule;
    const w = new Worker(this.opts.workerUrl, { workerData: data, name: `floorgate-drivers-${this.index}` });
    const gen = ++this.generation;
    this.unpacker = new ColumnsUnpacker();
    this.tagLists = new WeakMap();
    this.acks = [];
    this.ackedSamples = 0;
    this.emitted = new Float64Array(shared);
    this.received = 0;
    w.on("message", (m: FromDriverThread) => { if (gen === this.generation) this.onMessage(m, gen); });
    // Handled at "exit", which Node emits after delivering every message the worker had posted:
    // only then is emitted − received the count of samples that died with it.
    let error: Error | undefined;
    w.on("error", (err) => { error ??= err; });
    w.on("exit", (code) => { if (gen === this.generation) this.died(error ?? new Error(`exited with code ${code}`)); });
    this.worker = w;
    return w;
  }

  private post(m: ToDriverThread): void {
    this.worker?.postMessage(m);
  }

  private run(id: number, cfg: DeviceConfig, ctx: DriverContext): Promise<void> {
    if (this.closed) return Promise.reject(this.closed);
    if (ctx.signal.aborted) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        // Waiting for a restart: nothing runs on a thread, so the driver is done at once.
        if (!this.worker) this.finish(id);
        else this.post({ t: "stop", id });
      };
      ctx.signal.addEventListener("abort", onAbort, { once: true });
      const done = (): void => ctx.signal.removeEventListener("abort", onAbort);
      this.slots.set(id, {
        cfg,
        ctx,
        resolve: () => { done(); resolve(); },
        reject: (err) => { done(); reject(err); },
      });
      if (this.worker || this.restartTimer === undefined) {
        this.start();
        this.sendStart(id, cfg);
      }
    });
  }

  private sendStart(id: number, cfg: DeviceConfig): void {
    const { tags, ...rest } = cfg;
    let tagsRef = this.tagLists.get(tags);
    if (tagsRef !== undefined) this.post({ t: "start", id, cfg: { ...rest, tags: [] } as DeviceConfig, tagsRef });
    else {
      tagsRef = this.nextTags++;
      this.tagLists.set(tags, tagsRef);
      this.post({ t: "start", id, cfg: { ...rest, tags: [] } as DeviceConfig, tagsRef, tags });
    }
  }

  private finish(id: number, error?: WireError): void {
    const slot = this.slots.get(id);
    this.slots.delete(id);
    if (error) slot?.reject(fromWire(error));
    else slot?.resolve();
  }

  private write(id: number, tag: string, raw: SampleValue): Promise<void> {
    if (!this.slots.has(id)) return Promise.reject(new FloorgateError("WRITE_REFUSED", "the device's driver is not running"));
    const req = this.nextReq++;
    return new Promise<void>((resolve, reject) => {
      this.writes.set(req, { resolve, reject });
      this.post({ t: "write", req, id, tag, raw });
    });
  }

  private onMessage(m: FromDriverThread, gen: number): void {
    switch (m.t) {
      case "emit":
        if (this.backoff.attempts > 0) this.backoff.reset(); // a restarted thread is polling again
        this.unpacker.unpack(m.flush, (e, cols) => {
          const n = cols.length;
          this.received += n;
          const slot = this.slots.get(e.id);
          if (!slot) {
            this.opts.onLost("driver_stopped", n);
            this.ack(e.seq, n, gen);
            return;
          }
          // Never rejects (DriverContext.emit): refused samples are counted by the runtime.
          void slot.ctx.emit(cols).then(() => this.ack(e.seq, n, gen));
        });
        break;
      case "state":
        this.slots.get(m.id)?.ctx.setState(m.state, m.error);
        break;
      case "count":
        this.slots.get(m.id)?.ctx.count(m.event, m.n);
        break;
      case "log":
        this.relayLog(m.line);
        break;
      case "loop":
        this.opts.onLoopDelay(this.index, m.p99, m.max);
        break;
      case "stopped":
        this.finish(m.id, m.error);
        break;
      case "written": {
        const w = this.writes.get(m.req);
        this.writes.delete(m.req);
        if (m.error) w?.reject(fromWire(m.error));
        else w?.resolve();
        break;
      }
    }
  }

  /** Durable emits, answered in one message per turn of the event loop. */
  private ack(seq: number, samples: number, gen: number): void {
    if (gen !== this.generation) return; // that emit's worker is gone
    this.acks.push(seq);
    this.ackedSamples += samples;
    if (this.ackQueued) return;
    this.ackQueued = true;
    setImmediate(() => {
      this.ackQueued = false;
      const seqs = this.acks;
      const n = this.ackedSamples;
      this.acks = [];
      this.ackedSamples = 0;
      this.post({ t: "durable", seqs, samples: n });
    });
  }

  /** A driver's log line, logged again on its device's logger (so it carries the device id). */
  private relayLog(line: string): void {
    let rec: Record<string, unknown>;
    try {
      rec = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    const { level, msg, time: _t, pid: _p, hostname: _h, name: _n, [SLOT_KEY]: slotId, ...rest } = rec;
    const target = this.slots.get(Number(slotId))?.ctx.log ?? this.log;
    const fn = LEVELS[Number(level)] ?? "info";
    target[fn](rest, typeof msg === "string" ? msg : "");
  }

  /**
   * The worker is gone. Its writes fail; its drivers wait (state `connecting`) and are started
   * again on a new worker after a backoff, unless the gateway is closing.
   */
  private died(err: Error): void {
    this.worker = undefined;
    const lost = this.emitted[0]! - this.received;
    if (lost > 0) this.opts.onLost("driver_thread_failed", lost);
    for (const w of this.writes.values()) w.reject(new FloorgateError("DRIVER_TRANSPORT", `driver thread ${this.index} failed: ${describeError(err)}`, { cause: err }));
    this.writes.clear();
    if (this.closed) {
      for (const id of [...this.slots.keys()]) this.finish(id);
      return;
    }
    const waitMs = this.backoff.next();
    this.log.error({ thread: this.index, devices: this.slots.size, lostSamples: lost, err: describeError(err), restartInMs: waitMs }, "driver thread failed; restarting it");
    // Counted per device (floorgate_driver_events_total{event="thread_restart"}) besides the one log line.
    for (const s of this.slots.values()) {
      s.ctx.count("thread_restart");
      s.ctx.setState("connecting", `driver thread restarting: ${describeError(err)}`);
    }
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.closed || this.slots.size === 0) return;
      this.start();
      for (const [id, s] of this.slots) this.sendStart(id, s.cfg);
    }, waitMs);
  }

  /** @internal see DriverThreads.crash; resolves with the worker's exit code */
  crash(insideEmit: boolean): Promise<number> {
    const w = this.worker;
    if (!w) return Promise.resolve(0);
    if (!insideEmit) return w.terminate();
    return new Promise((resolve) => {
      w.once("exit", resolve);
      this.post({ t: "exit-inside-next-emit" });
    });
  }

  async close(): Promise<void> {
    this.closed ??= new Error(`driver thread ${this.index} closed`);
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    const w = this.worker;
    this.worker = undefined;
    for (const id of [...this.slots.keys()]) this.finish(id);
    if (w) await w.terminate();
  }
}
