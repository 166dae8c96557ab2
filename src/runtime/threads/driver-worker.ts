/**
 * Entry of a driver thread (see driver-threads.ts): hosts the drivers of the devices the main
 * thread starts here, each with a DriverContext whose calls travel to the main thread as messages.
 * Emits are packed per turn of this thread's event loop (one message for many polls).
 *
 * An emit resolves at once while fewer than `inFlightSamples` (DriverThreadData) samples of this
 * thread await their durability, else when the main thread reports it durable. A poller awaits
 * its emit before it schedules its next poll, so without that window every fsync that ran long,
 * or a pause of the main thread, moved the next poll of every device on the thread (at 6,000
 * devices: a second or two every few minutes with hundreds of polls over 100 ms late). The window
 * keeps the poll clock off the disk's latency; past it, the pollers slow down as before, so memory
 * stays bounded. A poll acknowledges nothing to anyone, so resolving before durability gives up
 * no guarantee: the samples in the window are lost in a crash like a poll in progress.
 */
import { parentPort, workerData } from "node:worker_threads";
import { monitorEventLoopDelay } from "node:perf_hooks";
import type { DeviceConfig } from "../../config/types.js";
import type { Driver, DriverContext } from "../../core/driver.js";
import { FloorgateError, describeError } from "../../core/errors.js";
import { createLogger } from "../../core/logger.js";
import { SampleColumns } from "../../core/sample-columns.js";
import { createDriver } from "../../plugins/drivers.js";
import { ColumnsPacker } from "./thread-columns.js";
import { LOOP_REPORT_MS, SLOT_KEY, type DriverThreadData, type FromDriverThread, type ToDriverThread, type WireError } from "./driver-thread-messages.js";

const port = parentPort;
if (!port) throw new Error("driver-worker.ts runs as a worker thread only");
const data = workerData as DriverThreadData;
const emittedCount = new Float64Array(data.emitted);
let exitInsideNextEmit = false;

function post(m: FromDriverThread, transfer?: ArrayBuffer[]): void {
  port!.postMessage(m, transfer);
}

function wireError(err: unknown): WireError {
  return err instanceof FloorgateError ? { code: err.code, message: err.message } : { message: describeError(err) };
}

/** tag lists by number, shared by every device that uses them (see the "start" message) */
const tagLists = new Map<number, DeviceConfig["tags"]>();
const running = new Map<number, { driver: Driver; abort: AbortController }>();
const packer = new ColumnsPacker();
/**
 * Samples emitted and not yet reported durable. A count, not a table of emits: a Map entry per
 * poll lived until the fsync, long enough to outlive V8's young generation (~60 B per poll promoted).
 */
let inFlight = 0;
/** the emits that arrived past the window, resolved when durable */
const waiting = new Map<number, () => void>();
const RESOLVED = Promise.resolve();
let nextSeq = 1;
let flushQueued = false;

function flush(): void {
  flushQueued = false;
  if (packer.pending === 0) return;
  const f = packer.flush();
  post({ t: "emit", flush: f }, [f.buf]);
}

// The poll clock runs here: this loop's delay is what moves polls, and the main thread cannot see it.
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();
setInterval(() => {
  post({ t: "loop", p99: loopDelay.percentile(99) / 1e9, max: loopDelay.max / 1e9 });
  loopDelay.reset();
}, LOOP_REPORT_MS).unref();

/** One pino logger for the thread, whose lines go to the main thread's log (secrets redacted here already). */
const baseLog = createLogger({ level: data.logLevel, destination: { write: (line: string) => { post({ t: "log", line }); } } });

/** A driver's logger: a child whose `slot` binding tells the main thread which device logged. */
function loggerFor(id: number): DriverContext["log"] {
  return baseLog.child({ [SLOT_KEY]: id });
}

/** The plugin list's factory, or a test's (DriverThreadData.driverModule). */
const makeDriver: (cfg: DeviceConfig) => Driver = data.driverModule === undefined
  ? createDriver
  : ((await import(data.driverModule)) as { createDriver: (cfg: DeviceConfig) => Driver }).createDriver;

function start(id: number, cfg: DeviceConfig): void {
  let driver: Driver;
  try {
    driver = makeDriver(cfg);
  } catch (err) {
    post({ t: "stopped", id, error: wireError(err) });
    return;
  }
  const abort = new AbortController();
  running.set(id, { driver, abort });
  const ctx: DriverContext = {
    signal: abort.signal,
    log: loggerFor(id),
    emit: (samples) => {
      const cols = samples instanceof SampleColumns ? samples : SampleColumns.fromSamples(samples);
      if (cols.length === 0) return RESOLVED;
      const seq = nextSeq++;
      emittedCount[0] = emittedCount[0]! + cols.length;
      packer.add(id, seq, cols);
      if (exitInsideNextEmit) process.exit(1);
      if (!flushQueued) {
        flushQueued = true;
        setImmediate(flush);
      }
      inFlight += cols.length;
      if (inFlight <= data.inFlightSamples) return RESOLVED;
      // Counted per device: its next poll waits for the journal (floorgate_driver_events_total).
      post({ t: "count", id, event: "journal_backpressure", n: 1 });
      return new Promise<void>((resolve) => { waiting.set(seq, resolve); });
    },
    setState: (state, error) => post({ t: "state", id, state, error: error ?? null }),
    count: (event, n = 1) => post({ t: "count", id, event, n }),
  };
  // Its last emits travel before "stopped": the main thread forgets the device on "stopped".
  driver.run(ctx).then(
    () => { running.delete(id); flush(); post({ t: "stopped", id }); },
    (err: unknown) => { running.delete(id); flush(); post({ t: "stopped", id, error: wireError(err) }); },
  );
}

port.on("message", (m: ToDriverThread) => {
  switch (m.t) {
    case "start": {
      if (m.tags !== undefined) tagLists.set(m.tagsRef, m.tags);
      const tags = tagLists.get(m.tagsRef);
      if (tags === undefined) post({ t: "stopped", id: m.id, error: { message: `tag list ${m.tagsRef} was never sent` } });
      else start(m.id, { ...m.cfg, tags } as DeviceConfig);
      break;
    }
    case "stop":
      running.get(m.id)?.abort.abort();
      break;
    case "durable":
      inFlight -= m.samples;
      if (waiting.size > 0) {
        for (const seq of m.seqs) {
          const resolve = waiting.get(seq);
          if (resolve) { waiting.delete(seq); resolve(); }
        }
      }
      break;
    case "exit-inside-next-emit":
      exitInsideNextEmit = true;
      break;
    case "write": {
      const d = running.get(m.id)?.driver;
      if (!d?.write) {
        post({ t: "written", req: m.req, error: { code: "WRITE_REFUSED", message: "the device's driver is not running or cannot write" } });
        break;
      }
      d.write(m.tag, m.raw).then(
        () => post({ t: "written", req: m.req }),
        (err: unknown) => post({ t: "written", req: m.req, error: wireError(err) }),
      );
      break;
    }
  }
});
