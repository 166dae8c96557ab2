import { describe, expect, it } from "vitest";
import { DeviceTable, type TapBatch, type TapSubscription } from "../../src/core/device-table.js";
import { ColumnsBuilder } from "../../src/core/sample-columns.js";

/** A subscriber as the live feed will be: woken by onReady, drains when it chooses to. */
class FakeSubscriber {
  wakeups = 0;
  batches: TapBatch[] = [];
  sub!: TapSubscription;
  constructor(table: DeviceTable, opts: { maxPending?: number; devices?: (id: string) => boolean } = {}) {
    this.sub = table.subscribe({ ...opts, onReady: () => { this.wakeups++; } });
  }
  drain(): TapBatch {
    const b = this.sub.take();
    this.batches.push(b);
    return b;
  }
}

function clock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => { now += ms; } };
}

function poll(device: string, tags: readonly string[], values: number[], ts: number) {
  const b = new ColumnsBuilder(device, tags.length);
  values.forEach((v, i) => b.set(i, v, 0, ts));
  return b.done(tags);
}

describe("DeviceTable: one owner of device state", () => {
  it("pushes a polled device's state changes and latest values to a subscriber", () => {
    const c = clock();
    const table = new DeviceTable({ clock: c.now });
    table.addConfigured("press-1", "modbus");
    const s = new FakeSubscriber(table);
    expect(s.wakeups).toBe(0);
    table.setState("press-1", "online");
    expect(s.wakeups).toBe(1);
    table.observeColumns(poll("press-1", ["rpm", "temp"], [1200, 40], 5000));
    table.observeColumns(poll("press-1", ["rpm", "temp"], [1250, 41], 6000)); // conflated: newest only
    expect(s.wakeups).toBe(1); // woken once until it takes
    const b = s.drain();
    expect(b.states).toEqual([{ id: "press-1", state: "online", error: null, ts: c.now() }]);
    expect(b.values).toEqual([{ device: "press-1", tags: [
      { tag: "rpm", value: 1250, quality: "good", ts: new Date(6000).toISOString() },
      { tag: "temp", value: 41, quality: "good", ts: new Date(6000).toISOString() },
    ] }]);
    expect(b.missed).toBe(0);
    // Unchanged state: nothing pushed. A changed one: pushed again, with a new wake-up.
    expect(table.setState("press-1", "online")).toBe(false);
    expect(s.sub.pending).toBe(0);
    table.setState("press-1", "offline", "no reply");
    expect(s.wakeups).toBe(2);
    expect(s.drain().states).toMatchObject([{ id: "press-1", state: "offline", error: "no reply" }]);
  });

  it("a pushing device: connecting when admitted, online at each push, offline after the silence limit (one rule), online again", () => {
    const c = clock();
    const table = new DeviceTable({ clock: c.now, silenceMs: 400 });
    const s = new FakeSubscriber(table);
    expect(table.addPushed("agv-1", ["pushes"])).toBe(true);
    expect(table.addPushed("agv-1")).toBe(false);
    expect(table.get("agv-1")).toMatchObject({ driver: "ingest", state: "connecting", counters: { pushes: 0 } });
    table.observe([{ device: "agv-1", tag: "battery_pct", value: 81.5, quality: "good", ts: 7000 }]);
    expect(table.pushed("agv-1", c.now(), 7000)).toBe(true);
    table.count("agv-1", "pushes");
    c.advance(400);
    expect(table.sweep()).toEqual([]); // exactly the limit: still online
    c.advance(1);
    expect(table.sweep()).toEqual(["agv-1"]);
    expect(table.sweep()).toEqual([]); // logged once: no repeat while silent
    expect(table.get("agv-1")).toMatchObject({ state: "offline", error: "no push for 0.4 s", counters: { pushes: 1 }, lastSampleTs: new Date(7000).toISOString() });
    table.pushed("agv-1");
    const b = s.drain();
    expect(b.states.map((x) => [x.id, x.state, x.error])).toEqual([
      ["agv-1", "online", null], ["agv-1", "offline", "no push for 0.4 s"], ["agv-1", "online", null],
    ]);
    expect(b.values).toEqual([{ device: "agv-1", tags: [{ tag: "battery_pct", value: 81.5, quality: "good", ts: new Date(7000).toISOString() }] }]);
  });

  it("the silence rule measures on the monotonic clock: a wall clock stepped an hour either way changes nothing", () => {
    const wall = clock();
    const mono = clock();
    const table = new DeviceTable({ clock: wall.now, monotonic: mono.now, silenceMs: 400 });
    table.addPushed("agv-1");
    table.addPushed("agv-2");
    table.pushed("agv-1");
    table.pushed("agv-2");
    wall.advance(3_600_000); // forward an hour, 10 ms of real time
    mono.advance(10);
    expect(table.sweep()).toEqual([]);
    table.pushed("agv-2");
    wall.advance(-7_200_000); // back two hours: agv-1 stays silent
    mono.advance(391);
    expect(table.sweep()).toEqual(["agv-1"]);
    expect(table.get("agv-1")!.state).toBe("offline");
    expect(table.get("agv-2")!.state).toBe("online");
    // lastPush is still shown in wall time, as it was when the push came
    expect(table.pushedDevice("agv-2")!.lastPush).toBe(wall.now() + 7_200_000);
  });

  it("silence never overrides a polled device's state: its driver reports it", () => {
    const c = clock();
    const table = new DeviceTable({ clock: c.now, silenceMs: 10 });
    table.addConfigured("press-1", "modbus");
    table.setState("press-1", "online");
    c.advance(1000);
    expect(table.sweep()).toEqual([]);
    expect(table.get("press-1")!.state).toBe("online");
  });

  it("a slow subscriber is bounded: at most maxPending items wait, the rest are counted as missed; others are unaffected", () => {
    const table = new DeviceTable();
    table.addConfigured("big", "modbus");
    const slow = new FakeSubscriber(table, { maxPending: 100 });
    const fast = new FakeSubscriber(table);
    const tags = Array.from({ length: 1000 }, (_, i) => `t${i}`);
    for (let round = 0; round < 50; round++) {
      table.observeColumns(poll("big", tags, tags.map((_, i) => round * 10_000 + i), 1000 + round));
      fast.drain();
    }
    expect(slow.sub.pending).toBe(100);
    // The first 100 tags wait (conflated across 50 rounds); the other 900 were missed each round.
    expect(slow.sub.missedTotal).toBe(900 * 50);
    expect(slow.wakeups).toBe(1);
    const b = slow.drain();
    expect(b.missed).toBe(900 * 50);
    expect(b.values[0]!.tags).toHaveLength(100);
    expect(b.values[0]!.tags[0]).toMatchObject({ tag: "t0", value: 49 * 10_000 });
    expect(slow.sub.pending).toBe(0);
    // A state change past a full mailbox is missed too, and counted.
    for (let i = 0; i < 100; i++) table.observeColumns(poll("big", tags.slice(0, 100).map((t) => `${t}x`), Array(100).fill(i), 5000));
    table.setState("big", "online");
    expect(slow.sub.take()).toMatchObject({ states: [], missed: 1 });
    expect(fast.batches.flatMap((x) => x.values).length).toBe(50);
    expect(fast.batches.every((x) => x.missed === 0)).toBe(true);
  });

  it("a subscriber sees only the devices it asked for, and nothing once closed", () => {
    const table = new DeviceTable();
    table.addConfigured("press-1", "modbus");
    table.addConfigured("oven-1", "modbus");
    const s = new FakeSubscriber(table, { devices: (id) => id.startsWith("press-") });
    table.setState("press-1", "online");
    table.setState("oven-1", "online");
    table.observe([{ device: "oven-1", tag: "t", value: 1, quality: "good", ts: 1 }]);
    const b = s.drain();
    expect(b.states.map((x) => x.id)).toEqual(["press-1"]);
    expect(b.values).toEqual([]);
    s.sub.close();
    table.setState("press-1", "offline");
    expect(s.sub.pending).toBe(0);
    expect(s.wakeups).toBe(1);
  });
});
