import { describe, expect, it } from "vitest";
import { ClockEntry, PollClock } from "../../src/core/poll-clock.js";
import { HOUR, stepWallClock } from "../helpers/wall-clock.js";

/** Resolves once `n` entries have fired, with the order they fired in. */
function collect(n: number): { fired: string[]; done: Promise<string[]>; make(name: string): ClockEntry } {
  const fired: string[] = [];
  let resolve!: (v: string[]) => void;
  const done = new Promise<string[]>((r) => { resolve = r; });
  return {
    fired,
    done,
    make: (name) => new ClockEntry(() => { fired.push(name); if (fired.length === n) resolve(fired); }),
  };
}

describe("PollClock", () => {
  it("fires entries in due order, each once, and none early", async () => {
    const clock = new PollClock();
    const c = collect(50);
    const start = Date.now();
    const dues = new Map<string, number>();
    const firedAt = new Map<string, number>();
    for (let i = 0; i < 50; i++) {
      const name = `e${i}`;
      const due = start + ((i * 37) % 60);
      dues.set(name, due);
      const e = c.make(name);
      const wrapped = new ClockEntry(() => { firedAt.set(name, Date.now()); e.fire(); });
      clock.schedule(wrapped, due);
    }
    expect(clock.size).toBe(50);
    const order = await c.done;
    expect(new Set(order).size).toBe(50);
    for (let i = 1; i < order.length; i++) expect(dues.get(order[i]!)!).toBeGreaterThanOrEqual(dues.get(order[i - 1]!)!);
    // Node's monotonic timers may wake up to a millisecond before Date.now() reaches `due`.
    for (const [name, at] of firedAt) expect(at).toBeGreaterThanOrEqual(dues.get(name)! - 1);
    expect(clock.size).toBe(0);
  });

  it("moves an entry that is scheduled again, and forgets a cancelled one", async () => {
    const clock = new PollClock();
    const c = collect(2);
    const a = c.make("a");
    const b = c.make("b");
    const never = new ClockEntry(() => { throw new Error("cancelled entry fired"); });
    const now = Date.now();
    clock.schedule(a, now + 5);
    clock.schedule(never, now + 1);
    clock.schedule(b, now + 50);
    clock.schedule(a, now + 80); // moved behind b
    clock.cancel(never);
    clock.cancel(never); // twice is harmless
    expect(clock.size).toBe(2);
    expect(await c.done).toEqual(["b", "a"]);
  });

  it("an entry rescheduling itself for now from its callback fires again on the next round, not in a loop", async () => {
    const clock = new PollClock();
    let count = 0;
    let resolve!: () => void;
    const done = new Promise<void>((r) => { resolve = r; });
    const e: ClockEntry = new ClockEntry(() => {
      count++;
      if (count < 5) clock.schedule(e, Date.now());
      else resolve();
    });
    clock.schedule(e, Date.now());
    expect(count).toBe(0); // never synchronously
    await done;
    expect(count).toBe(5);
  });

  it("keeps a heap of thousands consistent through random schedules and cancels", () => {
    const clock = new PollClock();
    const entries = Array.from({ length: 3000 }, () => new ClockEntry(() => {}));
    let seed = 42;
    const rnd = (): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed / 0x7fffffff; };
    const base = Date.now() + 3_600_000; // far ahead: nothing fires during the test
    const want = new Map<ClockEntry, number>();
    for (let round = 0; round < 20_000; round++) {
      const e = entries[Math.floor(rnd() * entries.length)]!;
      if (rnd() < 0.2) { clock.cancel(e); want.delete(e); }
      else { const due = base + Math.floor(rnd() * 1000); clock.schedule(e, due); want.set(e, due); }
    }
    expect(clock.size).toBe(want.size);
    for (const [e, due] of want) expect(e.due).toBe(due);
    // Drain in order through the public API: cancel the earliest each time.
    const heapOrder = [...want.entries()].sort((x, y) => x[1] - y[1]);
    for (const [e] of heapOrder) clock.cancel(e);
    expect(clock.size).toBe(0);
  });

  it("a wall clock stepped back an hour while entries wait neither stalls nor reorders them (the wait is monotonic)", async () => {
    const clock = new PollClock();
    const c = collect(2);
    const t0 = performance.now();
    const now = Date.now();
    clock.schedule(c.make("a"), now + 40);
    clock.schedule(c.make("b"), now + 60);
    const restore = stepWallClock(-HOUR);
    try {
      expect(await c.done).toEqual(["a", "b"]);
      // on time by the monotonic clock, not an hour late (the test would time out)
      expect(performance.now() - t0).toBeGreaterThanOrEqual(58);
      // scheduled in the new wall time, an entry waits as long as asked
      const again = collect(1);
      const t1 = performance.now();
      clock.schedule(again.make("c"), Date.now() + 30);
      await again.done;
      expect(performance.now() - t1).toBeGreaterThanOrEqual(28);
    } finally {
      restore();
    }
  });
});
