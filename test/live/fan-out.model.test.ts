import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { DeviceTable } from "../../src/core/device-table.js";
import { createLogger } from "../../src/core/logger.js";
import type { DeviceState } from "../../src/core/sample.js";
import { FanOut, type FanClient, type LiveSink } from "../../src/live/fan-out.js";
import { LiveCounters } from "../../src/live/metrics.js";

/**
 * A model test of the fan-out against a real DeviceTable and its tap: random clients subscribe
 * with globs, read or stall, devices change values and states, flushes and time pass. Checked:
 * - nothing is ever sent to a client that is over its cap at the time (held, not queued);
 * - a client is closed with 1013 only after being over its cap for more than slowCloseMs, and
 *   only then;
 * - what a client holds for later is bounded by tags + devices, however long it stalls;
 * - the tap is open exactly while some client is subscribed;
 * - eventually (every client reading again, a few flushes) each open client's view — its last
 *   snapshot with the device and samples frames after it applied — equals the table's truth
 *   restricted to its globs.
 */
const DEVICES = ["press-1", "press-2", "agv-1", "agv-10"];
const TAGS = ["rpm", "temp", "x.pos"];
const DEVICE_GLOBS = ["*", "press-*", "agv-1*", "*-1", "agv-10", "nothing"];
const TAG_GLOBS = ["*", "t*", "x.*", "rpm"];
const STATES: DeviceState[] = ["online", "offline", "error", "connecting"];
const CAP = 400;
const SLOW_MS = 500;

/** An independent glob implementation for the model: `*` as `.*`, the rest literal. */
const globRe = (globs: string[]): RegExp =>
  globs.length === 0 ? /^/ : new RegExp(`^(?:${globs.map((g) => g.split("*").map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join(".*")).join("|")})$`);

interface View { state: string; tags: Map<string, unknown> }

class FakeClient implements LiveSink {
  queue: Buffer[] = [];
  bufferedAmount = 0;
  reading = true;
  closedWith: number | undefined;
  /** when the model first saw it over its cap (without reading since) */
  overAt: number | undefined;
  view = new Map<string, View>();
  sub: { devices: RegExp; tags: RegExp } | null = null;
  violations: string[] = [];
  fc!: FanClient;

  constructor(private readonly now: () => number) {}

  send(data: Buffer): boolean {
    if (this.closedWith !== undefined) return false;
    if (this.bufferedAmount > CAP) this.violations.push(`sent ${data.length} bytes while ${this.bufferedAmount} were buffered`);
    this.queue.push(data);
    this.bufferedAmount += data.length;
    if (this.bufferedAmount > CAP) this.overAt ??= this.now();
    return true;
  }

  close(code: number): void {
    if (code === 1013) {
      if (this.overAt === undefined) this.violations.push("1013 while under its cap");
      else if (this.now() - this.overAt <= SLOW_MS) this.violations.push(`1013 after only ${this.now() - this.overAt} ms over its cap`);
    }
    this.closedWith = code;
  }

  read(): void {
    if (!this.reading || this.closedWith !== undefined) return;
    for (const b of this.queue) this.apply(JSON.parse(b.toString()) as { type: string; [k: string]: unknown });
    this.queue = [];
    this.bufferedAmount = 0;
    this.overAt = undefined;
  }

  private apply(f: { type: string; [k: string]: unknown }): void {
    if (f.type === "snapshot") {
      this.view = new Map();
      for (const d of f.devices as { id: string; state: string; tags: { tag: string; value: unknown }[] }[]) {
        this.view.set(d.id, { state: d.state, tags: new Map(d.tags.map((t) => [t.tag, t.value])) });
      }
    } else if (f.type === "device") {
      const v = this.view.get(f.id as string);
      if (v === undefined) this.violations.push(`device frame for ${String(f.id)}, not in its snapshot`);
      else v.state = f.state as string;
    } else if (f.type === "samples") {
      for (const s of f.samples as { device: string; tag: string; value: unknown }[]) {
        const v = this.view.get(s.device);
        if (v === undefined) this.violations.push(`sample of ${s.device}, not in its snapshot`);
        else v.tags.set(s.tag, s.value);
      }
    }
  }
}

type Op =
  | { op: "connect" }
  | { op: "subscribe"; c: number; devices: string[]; tags: string[] }
  | { op: "value"; d: number; t: number; v: number }
  | { op: "state"; d: number; s: number }
  | { op: "flush" }
  | { op: "read"; c: number }
  | { op: "stall"; c: number }
  | { op: "resume"; c: number }
  | { op: "time"; ms: number }
  | { op: "health" }
  | { op: "leave"; c: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.constant({ op: "connect" as const }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant("subscribe" as const), c: fc.nat(5), devices: fc.subarray(DEVICE_GLOBS, { maxLength: 2 }), tags: fc.subarray(TAG_GLOBS, { maxLength: 2 }) }), weight: 3 },
  { arbitrary: fc.record({ op: fc.constant("value" as const), d: fc.nat(DEVICES.length - 1), t: fc.nat(TAGS.length - 1), v: fc.integer({ min: 0, max: 1e6 }) }), weight: 8 },
  { arbitrary: fc.record({ op: fc.constant("state" as const), d: fc.nat(DEVICES.length - 1), s: fc.nat(STATES.length - 1) }), weight: 2 },
  { arbitrary: fc.constant({ op: "flush" as const }), weight: 5 },
  { arbitrary: fc.record({ op: fc.constant("read" as const), c: fc.nat(5) }), weight: 4 },
  { arbitrary: fc.record({ op: fc.constant("stall" as const), c: fc.nat(5) }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant("resume" as const), c: fc.nat(5) }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant("time" as const), ms: fc.integer({ min: 1, max: 400 }) }), weight: 3 },
  { arbitrary: fc.constant({ op: "health" as const }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant("leave" as const), c: fc.nat(5) }), weight: 1 },
);

function run(ops: Op[]): void {
  let now = 1_000_000;
  const table = new DeviceTable({ clock: () => now });
  for (const d of DEVICES) table.addConfigured(d, "test");
  const counters = new LiveCounters();
  let flushWanted = false;
  const fan = new FanOut({
    source: { subscribe: (o) => table.subscribe(o), states: () => table.states(), tags: (id) => table.tags(id) },
    counters,
    log: createLogger({ level: "silent" }),
    options: { maxBufferedBytes: CAP, slowCloseMs: SLOW_MS, tapMaxPending: 10_000 },
    requestFlush: () => { flushWanted = true; },
  });
  const clients: FakeClient[] = [];
  const pick = (i: number): FakeClient | undefined => clients.length === 0 ? undefined : clients[i % clients.length];
  const open = (c: FakeClient | undefined): c is FakeClient => c !== undefined && c.closedWith === undefined && fan.clients.has(c.fc);
  const health = Buffer.from(JSON.stringify({ type: "health" }));

  const step = (o: Op): void => {
    switch (o.op) {
      case "connect": {
        const c = new FakeClient(() => now);
        c.fc = fan.add(c);
        clients.push(c);
        break;
      }
      case "subscribe": {
        const c = pick(o.c);
        if (!open(c)) break;
        c.sub = { devices: globRe(o.devices), tags: globRe(o.tags) };
        fan.subscribe(c.fc, { devices: o.devices, tags: o.tags }, now);
        break;
      }
      case "value":
        table.observe([{ device: DEVICES[o.d]!, tag: TAGS[o.t]!, value: o.v, quality: "good", ts: now }]);
        break;
      case "state":
        table.setState(DEVICES[o.d]!, STATES[o.s]!, STATES[o.s] === "online" ? null : "because");
        break;
      case "flush":
        flushWanted = false;
        fan.flush(now);
        break;
      case "read": pick(o.c)?.read(); break;
      case "stall": { const c = pick(o.c); if (c) c.reading = false; break; }
      case "resume": { const c = pick(o.c); if (c) c.reading = true; break; }
      case "time": now += o.ms; break;
      case "health": fan.broadcast(health, "health", now); break;
      case "leave": {
        const c = pick(o.c);
        if (c && fan.clients.has(c.fc)) fan.remove(c.fc);
        break;
      }
    }
    for (const c of clients) {
      if (!fan.clients.has(c.fc)) continue;
      expect(c.fc.pending.size).toBeLessThanOrEqual(DEVICES.length * TAGS.length + DEVICES.length);
      // a closed socket goes away (its close event): the hub then removes it
      if (c.closedWith !== undefined) fan.remove(c.fc);
    }
    const subscribed = [...fan.clients].some((fcl) => fcl.group !== null);
    expect(fan.tapOpen).toBe(subscribed);
  };

  for (const o of ops) step(o);
  // Eventually: everyone reads again, flushes run while asked for (a held client asks), at most a few.
  for (const c of clients) c.reading = true;
  for (let i = 0; i < 6; i++) {
    for (const c of clients) c.read();
    now += 100;
    flushWanted = false;
    fan.flush(now);
    for (const c of clients) c.read();
    if (!flushWanted) break;
  }
  expect(flushWanted, "still asking for flushes with every client reading").toBe(false);

  for (const c of clients) {
    expect(c.violations).toEqual([]);
    if (!open(c) || c.sub === null) continue;
    const want = new Map<string, View>();
    for (const d of table.states()) {
      if (!c.sub.devices.test(d.id)) continue;
      const tags = new Map<string, unknown>();
      for (const t of table.tags(d.id) ?? []) if (c.sub.tags.test(t.tag)) tags.set(t.tag, t.value);
      want.set(d.id, { state: d.state, tags });
    }
    expect(c.view).toEqual(want);
  }
}

describe("live fan-out (model)", () => {
  it("holds and conflates for slow clients, closes only the ones over their cap too long, and converges to the truth", () => {
    fc.assert(fc.property(fc.array(opArb, { maxLength: 80 }), (ops) => run(ops)), { numRuns: 300 });
  });

  it("a client that never reads is closed with 1013 once over its cap for longer than slowCloseMs", () => {
    let closed: number | undefined;
    const table = new DeviceTable();
    for (const d of DEVICES) table.addConfigured(d, "test");
    let now = 0;
    const sink: LiveSink = { bufferedAmount: 0, send(d) { (this as { bufferedAmount: number }).bufferedAmount += d.length; return true; }, close(code) { closed = code; } };
    const fan = new FanOut({
      source: { subscribe: (o) => table.subscribe(o), states: () => table.states(), tags: (id) => table.tags(id) },
      counters: new LiveCounters(), log: createLogger({ level: "silent" }),
      options: { maxBufferedBytes: CAP, slowCloseMs: SLOW_MS, tapMaxPending: 10_000 }, requestFlush: () => {},
    });
    const c = fan.add(sink);
    fan.subscribe(c, { devices: [], tags: [] }, now);
    for (let i = 0; i < 100 && closed === undefined; i++) {
      table.observe(TAGS.map((t, k) => ({ device: DEVICES[k]!, tag: t, value: i, quality: "good" as const, ts: now })));
      now += 100;
      fan.flush(now);
    }
    expect(closed).toBe(1013);
  });
});
