/**
 * The Modbus driver for one configured device: schedules polls on absolute ticks per poll rate,
 * turns replies into raw samples, keeps the device state, demotes a silent device and writes back.
 * Per-device memory is the tag list, the read plan and one small record per tag.
 */
import { Backoff } from "../../src/core/backoff.js";
import { ClockEntry, pollClock } from "../../src/core/poll-clock.js";
import type { Driver, DriverContext } from "../../src/core/driver.js";
import { FloorgateError, describeError } from "../../src/core/errors.js";
import type { DeviceState, SampleValue } from "../../src/core/sample.js";
import { deviceRuns } from "../../src/core/sample-reader.js";
import type { ModbusDeviceConfig, ModbusTagConfig } from "./config.js";
import { encodeCoil, encodeRegisters, tagWidth } from "./decode.js";
import { exceptionText, writeCoilPdu, writeRegisterPdu, writeRegistersPdu } from "./frame.js";
import { acquireLine, type Line, type LineClient, type LineSpec } from "./line.js";
import { planReads, type ReadRequest } from "./plan.js";
import { passOrder, readPass, describeFailure, isUnreachableReason, type PassOptions, type PassOrder, type PassOutcome, type PassResults } from "./read.js";

export function lineSpecOf(cfg: ModbusDeviceConfig): LineSpec {
  const c = cfg.connection;
  if (c.transport === "rtu") {
    return { kind: "rtu", path: c.path, baudRate: c.baudRate, parity: c.parity, dataBits: c.dataBits, stopBits: c.stopBits };
  }
  return { kind: c.transport, host: c.host, port: c.port };
}

/**
 * Read plans by tag list (interned by the config builder, so identical devices share one list)
 * and the device settings the plan depends on. The request objects are shared and never
 * mutated; each device gets its own lists, because a refused merged read is split in its list.
 */
const planCache = new WeakMap<readonly ModbusTagConfig[], Map<string, CachedPlan>>();

interface CachedPlan {
  plan: Map<number, ReadRequest[]>;
  /** per poll rate, the order a pass emits tags in (shared, see PassOrder) */
  orders: Map<number, PassOrder>;
}
const tagIndexCache = new WeakMap<readonly ModbusTagConfig[], Map<string, ModbusTagConfig>>();

/** The device's read plan, one list of requests per distinct poll rate (a fresh list per call). */
export function planDevice(cfg: ModbusDeviceConfig): Map<number, ReadRequest[]> {
  return new Map([...cachedPlan(cfg).plan].map(([rate, reqs]) => [rate, [...reqs]]));
}

/** The shared pass order of each poll rate's requests (see PassOrder). */
export function passOrders(cfg: ModbusDeviceConfig): Map<number, PassOrder> {
  return cachedPlan(cfg).orders;
}

function cachedPlan(cfg: ModbusDeviceConfig): CachedPlan {
  const key = `${cfg.connection.unitId}|${cfg.pollMs}|${cfg.maxGap}|${cfg.tagByTag}`;
  let byKey = planCache.get(cfg.tags);
  if (!byKey) planCache.set(cfg.tags, (byKey = new Map()));
  let cached = byKey.get(key);
  if (!cached) {
    const plan = computePlan(cfg);
    const orders = new Map([...plan].map(([rate, reqs]) => [rate, passOrder(reqs, cfg.tags)]));
    byKey.set(key, (cached = { plan, orders }));
  }
  return cached;
}

function tagIndexOf(tags: readonly ModbusTagConfig[]): Map<string, ModbusTagConfig> {
  let index = tagIndexCache.get(tags);
  if (!index) tagIndexCache.set(tags, (index = new Map(tags.map((t) => [t.name, t]))));
  return index;
}

function computePlan(cfg: ModbusDeviceConfig): Map<number, ReadRequest[]> {
  const items = cfg.tags.map((t, id) => ({
    id, unitId: t.unitId ?? cfg.connection.unitId, area: t.area, address: t.address,
    width: tagWidth(t), pollMs: t.pollMs ?? cfg.pollMs,
  }));
  const byRate = new Map<number, ReadRequest[]>();
  for (const r of planReads(items, { maxGap: cfg.maxGap, tagByTag: cfg.tagByTag })) {
    let list = byRate.get(r.pollMs);
    if (!list) byRate.set(r.pollMs, (list = []));
    list.push(r);
  }
  return byRate;
}

/**
 * The device's offset inside its poll period, in [0, pollMs): FNV-1a of the id, so it is stable
 * across restarts and differs between devices.
 */
export function pollPhase(id: string, pollMs: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  // Math.imul mixes the high bits poorly into the low ones for short ids: fold before the modulo.
  h ^= h >>> 16;
  h = Math.imul(h, 0x45d9f3b);
  h ^= h >>> 16;
  return (h >>> 0) % Math.max(1, Math.floor(pollMs));
}

/**
 * Delay before a device's first poll: its phase within min(pollMs, 1 s), so start-up is spread
 * over at most a second. Why it matters beyond the burst itself: 200,000 samples in flight at once
 * all survive a young-generation GC, and V8 then pretenures the sample allocation site — every
 * later sample is allocated in the old generation and left to the major GC.
 */
export function firstPollDelay(id: string, pollMs: number): number {
  return pollPhase(id, Math.min(pollMs, 1000));
}

/** The first tick n·pollMs + phase strictly after `now`. */
export function nextTick(now: number, pollMs: number, phase: number): number {
  return (Math.floor((now - phase) / pollMs) + 1) * pollMs + phase;
}

/**
 * When the poll after the one due at `prev` (wall-clock ms; -1: none yet) is due, finished at
 * `now`, and how many ticks were skipped because it ran late. A `prev` more than a period ahead of
 * `now` means the wall clock stepped back (NTP correcting the box's time): the polls realign to the
 * new time instead of waiting out the step, and nothing counts as skipped.
 */
export function followingPoll(prev: number, now: number, pollMs: number, phase: number): { due: number; skipped: number } {
  if (prev < 0 || prev - now > pollMs) return { due: nextTick(now, pollMs, phase), skipped: 0 };
  const due = nextTick(Math.max(now, prev), pollMs, phase);
  return { due, skipped: Math.max(0, Math.round((due - prev) / pollMs) - 1) };
}

const NOOP_CLIENT: LineClient = { count: () => {} };
const RESOLVED: Promise<void> = Promise.resolve();

export class ModbusDriver implements Driver {
  private line?: Line;
  private ctx?: DriverContext;
  private consecutiveTimeouts = 0;
  /** performance.now() ms (monotonic: a wall-clock step must not stretch the demotion) */
  private demotedUntil = 0;
  private demoted = false;
  private readonly demoteBackoff: Backoff;
  /**
   * last bad reason emitted per tag: a tag that stays bad for the same reason, or stays unreachable
   * in whatever words, is not re-emitted
   */
  private readonly lastBad: (string | undefined)[];
  /** how many entries of lastBad are set */
  private badTags = 0;
  private readonly outcomes = new Map<number, PassOutcome>();
  private state: DeviceState | undefined;
  private readonly tagIndex: Map<string, ModbusTagConfig>;

  constructor(private readonly cfg: ModbusDeviceConfig) {
    this.demoteBackoff = new Backoff({ initialMs: Math.max(cfg.pollMs, 100), maxMs: cfg.reconnectMaxMs });
    this.lastBad = cfg.tags.map(() => undefined);
    this.tagIndex = tagIndexOf(cfg.tags);
  }

  async run(ctx: DriverContext): Promise<void> {
    this.ctx = ctx;
    this.setState("connecting", null);
    const { line, release } = acquireLine(lineSpecOf(this.cfg), { reconnectMaxMs: this.cfg.reconnectMaxMs });
    this.line = line;
    try {
      const plan = planDevice(this.cfg);
      const orders = passOrders(this.cfg);
      await Promise.all([...plan.entries()].map(([pollMs, reqs]) => this.rateLoop(ctx, pollMs, reqs, orders.get(pollMs)!)));
    } finally {
      this.line = undefined;
      release();
    }
  }

  /**
   * Polls one rate group: once at start, then on absolute ticks n·pollMs + phase (wall clock), so
   * there is no drift. The phase is a stable hash of the device id: thousands of devices then
   * spread their polls across the period instead of all firing in the same millisecond (which
   * turned every tick into a burst of thousands of requests and replies, and jitter into hundreds
   * of ms). Ticks that pass during a poll are skipped and counted. Waits are entries in the shared
   * poll clock (see PollClock for why not one timer and promise per wait). Resolves once aborted
   * and the poll in progress, if any, has finished.
   */
  private rateLoop(ctx: DriverContext, pollMs: number, reqs: ReadRequest[], order: PassOrder): Promise<void> {
    const phase = pollPhase(this.cfg.id, pollMs);
    const signal = ctx.signal;
    return new Promise<void>((resolve, reject) => {
      let next = -1; // the tick being polled; -1 before the first poll
      let polling = false;
      const finish = (err?: unknown): void => {
        pollClock.cancel(entry);
        signal.removeEventListener("abort", onAbort);
        if (err === undefined) resolve();
        else reject(err);
      };
      // A plain flag: the AbortSignal getter costs a brand check on every poll.
      let stopped = false;
      const onAbort = (): void => {
        stopped = true;
        pollClock.cancel(entry);
        if (!polling) finish();
      };
      const polled = (): void => {
        polling = false;
        if (stopped) return finish();
        const f = followingPoll(next, Date.now(), pollMs, phase);
        if (f.skipped > 0) ctx.count("skipped_poll", f.skipped);
        next = f.due;
        pollClock.schedule(entry, next);
      };
      // One options object per rate group for every pass (no closures and literal per poll).
      const passOpts: PassOptions = {
        timeoutMs: this.cfg.connection.timeoutMs,
        signal,
        stopped: () => stopped,
        device: this.cfg.id,
        order,
        onReply: this.onReply,
        onTimeout: this.onTimeout,
      };
      const entry = new ClockEntry(() => {
        polling = true;
        this.pollOnce(ctx, pollMs, reqs, passOpts).then(polled, finish);
      });
      if (signal.aborted) return resolve();
      signal.addEventListener("abort", onAbort, { once: true });
      // The first poll comes soon but spread out: thousands of devices started at once would
      // otherwise poll in the same millisecond (a burst that V8 learns from, see firstPollDelay).
      pollClock.schedule(entry, Date.now() + firstPollDelay(this.cfg.id, pollMs));
    });
  }

  private readonly onReply = (): void => { this.consecutiveTimeouts = 0; };
  private readonly onTimeout = (): boolean => ++this.consecutiveTimeouts >= this.cfg.maxTimeouts;

  /** Not async: the usual poll goes straight to readAndEmit's promise, one promise fewer per poll. */
  private pollOnce(ctx: DriverContext, pollMs: number, reqs: ReadRequest[], opts: PassOptions): Promise<void> {
    const line = this.line;
    if (!line) return RESOLVED;
    if (this.demoted) {
      if (performance.now() < this.demotedUntil) return RESOLVED;
      this.demotedUntil = Number.POSITIVE_INFINITY; // one probe at a time across rate groups
    }
    return this.readAndEmit(ctx, line, pollMs, reqs, opts);
  }

  /**
   * One read pass, its samples handed to the runtime. It returns the runtime's durability promise
   * instead of awaiting it, so this frame — the only holder of the samples — is gone while the
   * journal commits; awaiting here would keep every value alive past V8's young generation.
   */
  private async readAndEmit(ctx: DriverContext, line: Line, pollMs: number, reqs: ReadRequest[], opts: PassOptions): Promise<void> {
    const { results, outcome } = await readPass(line, reqs, this.cfg.tags, ctx, opts);
    if (opts.stopped!()) return;
    this.outcomes.set(pollMs, outcome);
    this.updateState(outcome);
    return this.emit(ctx, results);
  }

  private updateState(last: PassOutcome): void {
    if (this.consecutiveTimeouts >= this.cfg.maxTimeouts) {
      const wait = this.demoteBackoff.next();
      this.demotedUntil = performance.now() + wait;
      if (!this.demoted) {
        this.demoted = true;
        this.ctx?.count("demoted");
      }
      // The text names the threshold, not the running count: a changing error is a new state
      // change to the runtime, logged on every probe.
      this.setState("offline", `no reply after ${this.cfg.maxTimeouts} consecutive timeouts; retrying every ≤${this.cfg.reconnectMaxMs} ms`);
      return;
    }
    if (this.demoted && last.ok + last.exceptions > 0) {
      this.demoted = false;
      this.demotedUntil = 0;
      this.demoteBackoff.reset();
    } else if (this.demoted) {
      this.demotedUntil = performance.now() + this.demoteBackoff.next();
    }
    let ok = 0, exc = 0, fail = 0;
    let err: string | undefined;
    for (const o of this.outcomes.values()) {
      ok += o.ok; exc += o.exceptions; fail += o.timeouts + o.transport;
      err ??= o.firstError;
    }
    if (ok > 0) this.setState("online", null);
    else if (exc > 0 && fail === 0) this.setState("error", `every read failed: ${err ?? "modbus exception"}`);
    else if (fail > 0) this.setState("offline", err ?? "unreachable");
  }

  /** Drops repeats of an unchanged bad reason, then hands the rest on; see readAndEmit for why it is not async. */
  private emit(ctx: DriverContext, results: PassResults): Promise<void> | undefined {
    const { cols, ids } = results;
    // The usual poll: every value good and no tag was bad before — nothing to filter or clear.
    if (results.bad === 0 && this.badTags === 0) return cols.length ? ctx.emit(cols) : undefined;
    const [run] = deviceRuns(cols); // one device, one run
    let keep: number[] | undefined; // indexes kept, once one is dropped (rare)
    for (let k = 0; k < cols.length; k++) {
      const id = ids[k]!;
      if (run!.quality(k) === "bad") {
        const reason = run!.reason(k);
        const last = this.lastBad[id];
        if (last === reason || (isUnreachableReason(last) && isUnreachableReason(reason))) {
          // still bad for the same reason, or still unreachable: already reported.
          keep ??= Array.from({ length: k }, (_, i) => i);
          continue;
        }
        if (this.lastBad[id] === undefined) this.badTags++;
        this.lastBad[id] = reason;
      } else if (this.lastBad[id] !== undefined) {
        this.lastBad[id] = undefined;
        this.badTags--;
      }
      keep?.push(k);
    }
    if (keep === undefined) return ctx.emit(cols);
    if (keep.length === 0) return undefined;
    const all = cols.toSamples();
    return ctx.emit(keep.map((k) => all[k]!)); // never rejects: the runtime counts what the journal refuses
  }

  private setState(state: DeviceState, error: string | null): void {
    const ctx = this.ctx;
    if (!ctx) return;
    if (this.state !== state) ctx.log.info({ state, error }, "modbus device state"); // the runtime binds `device`
    this.state = state;
    ctx.setState(state, error);
  }

  async write(tagName: string, raw: SampleValue): Promise<void> {
    const tag = this.tagIndex.get(tagName);
    if (!tag) throw new FloorgateError("WRITE_REFUSED", `device ${this.cfg.id} has no tag ${tagName}`);
    if (!tag.writable) throw new FloorgateError("WRITE_REFUSED", `tag ${tagName} is not writable`);
    let pdu: Buffer;
    if (tag.area === "coil") pdu = writeCoilPdu(tag.address, encodeCoil(tag, raw));
    else if (tag.area === "holding") {
      const regs = encodeRegisters(tag, raw);
      pdu = regs.length === 2 ? writeRegisterPdu(tag.address, regs) : writeRegistersPdu(tag.address, regs);
    } else {
      throw new FloorgateError("WRITE_REFUSED", `tag ${tagName} is in the read-only ${tag.area} area`);
    }
    let line = this.line;
    let release: (() => void) | undefined;
    if (!line) ({ line, release } = acquireLine(lineSpecOf(this.cfg), { reconnectMaxMs: this.cfg.reconnectMaxMs }));
    try {
      const reply = await line.request(tag.unitId ?? this.cfg.connection.unitId, pdu, this.cfg.connection.timeoutMs, this.ctx ?? NOOP_CLIENT);
      if (reply.kind === "exception") throw new FloorgateError("DRIVER_EXCEPTION", `write to ${tagName} refused: ${exceptionText(reply.code)}`);
    } catch (err) {
      if (err instanceof FloorgateError) {
        if (err.code === "ABORTED") throw new FloorgateError("DRIVER_TRANSPORT", describeFailure(err), { cause: err });
        throw err;
      }
      throw new FloorgateError("DRIVER_TRANSPORT", describeError(err), { cause: err });
    } finally {
      release?.();
    }
  }
}
