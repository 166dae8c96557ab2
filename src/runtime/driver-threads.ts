import { Worker } from "node:worker_threads";
import type { DeviceConfig } from "../config/types.js";
import type { Driver, DriverContext } from "../core/driver.js";
import { FloorgateError, describeError, type ErrorCode } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import type { SampleValue } from "../core/sample.js";
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
 */
export class DriverThreads {
  private readonly threads: DriverThread[];
  private readonly placed = new Map<string, DriverThread>();

  constructor(count: number, log: Logger) {
    this.threads = Array.from({ length: count }, (_, i) => new DriverThread(i, log));
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
}

const LEVELS: Record<number, "trace" | "debug" | "info" | "warn" | "error" | "fatal"> = {
  10: "trace", 20: "debug", 30: "info", 40: "warn", 50: "error", 60: "fatal",
};

function fromWire(e: WireError): Error {
  return e.code !== undefined ? new FloorgateError(e.code as ErrorCode, e.message) : new Error(e.message);
}

interface Slot {
  ctx: DriverContext;
  resolve(): void;
  reject(err: Error): void;
}

class DriverThread {
  devices = 0;
  private worker: Worker | undefined;
  private failed: Error | undefined;
  private nextId = 1;
  private nextReq = 1;
  private readonly slots = new Map<number, Slot>();
  private readonly writes = new Map<number, { resolve(): void; reject(err: Error): void }>();
  private readonly unpacker = new ColumnsUnpacker();
  private acks: number[] = [];
  /** tag lists already sent to the thread, by number */
  private readonly tagLists = new WeakMap<object, number>();
  private nextTags = 1;
  private ackQueued = false;

  constructor(private readonly index: number, private readonly log: Logger) {}

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
    const data: DriverThreadData = { logLevel: this.log.level };
    const w = new Worker(new URL("./driver-worker.js", import.meta.url), { workerData: data, name: `floorgate-drivers-${this.index}` });
    w.on("message", (m: FromDriverThread) => this.onMessage(m));
    w.on("error", (err) => this.fail(err));
    w.on("exit", (code) => this.fail(new Error(`driver thread ${this.index} exited with code ${code}`)));
    this.worker = w;
    return w;
  }

  private post(m: ToDriverThread): void {
    this.worker?.postMessage(m);
  }

  private run(id: number, cfg: DeviceConfig, ctx: DriverContext): Promise<void> {
    if (this.failed) return Promise.reject(this.failed);
    if (ctx.signal.aborted) return Promise.resolve();
    this.start();
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => this.post({ t: "stop", id });
      ctx.signal.addEventListener("abort", onAbort, { once: true });
      const done = (): void => ctx.signal.removeEventListener("abort", onAbort);
      this.slots.set(id, {
        ctx,
        resolve: () => { done(); resolve(); },
        reject: (err) => { done(); reject(err); },
      });
      const { tags, ...rest } = cfg;
      let tagsRef = this.tagLists.get(tags);
      if (tagsRef !== undefined) this.post({ t: "start", id, cfg: { ...rest, tags: [] } as DeviceConfig, tagsRef });
      else {
        tagsRef = this.nextTags++;
        this.tagLists.set(tags, tagsRef);
        this.post({ t: "start", id, cfg: { ...rest, tags: [] } as DeviceConfig, tagsRef, tags });
      }
    });
  }

  private write(id: number, tag: string, raw: SampleValue): Promise<void> {
    if (!this.slots.has(id)) return Promise.reject(new FloorgateError("WRITE_REFUSED", "the device's driver is not running"));
    const req = this.nextReq++;
    return new Promise<void>((resolve, reject) => {
      this.writes.set(req, { resolve, reject });
      this.post({ t: "write", req, id, tag, raw });
    });
  }

  private onMessage(m: FromDriverThread): void {
    switch (m.t) {
      case "emit":
        this.unpacker.unpack(m.flush, (e, cols) => {
          const slot = this.slots.get(e.id);
          if (!slot) { this.ack(e.seq); return; }
          // Never rejects (DriverContext.emit): refused samples are counted by the runtime.
          void slot.ctx.emit(cols).then(() => this.ack(e.seq));
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
      case "stopped": {
        const slot = this.slots.get(m.id);
        this.slots.delete(m.id);
        if (m.error) slot?.reject(fromWire(m.error));
        else slot?.resolve();
        break;
      }
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
  private ack(seq: number): void {
    this.acks.push(seq);
    if (this.ackQueued) return;
    this.ackQueued = true;
    setImmediate(() => {
      this.ackQueued = false;
      const seqs = this.acks;
      this.acks = [];
      this.post({ t: "durable", seqs });
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

  /** The thread is gone: every driver on it has stopped with this error. */
  private fail(err: Error): void {
    if (this.failed) return;
    this.failed = err;
    const wrapped = new Error(`driver thread ${this.index} failed: ${describeError(err)}`, { cause: err });
    for (const s of this.slots.values()) s.reject(wrapped);
    this.slots.clear();
    for (const w of this.writes.values()) w.reject(new FloorgateError("DRIVER_TRANSPORT", wrapped.message, { cause: err }));
    this.writes.clear();
  }

  async close(): Promise<void> {
    const w = this.worker;
    if (!w) return;
    this.failed ??= new Error(`driver thread ${this.index} closed`);
    await w.terminate();
  }
}
