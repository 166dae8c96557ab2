import { describe, it, expect } from "vitest";
import { firstPollDelay, followingPoll, nextTick, pollPhase } from "../../drivers/modbus/device.js";

describe("poll phase offsets", () => {
  it("are stable per device id and inside the period", () => {
    for (const id of ["d0", "press-1", "x", "a-very-long-device-id-with-many-characters-0123456789"]) {
      const p = pollPhase(id, 1000);
      expect(p).toBe(pollPhase(id, 1000));
      expect(p).toBeGreaterThanOrEqual(0);
      expect(p).toBeLessThan(1000);
      expect(Number.isInteger(p)).toBe(true);
    }
  });

  it("spread 2,000 devices across the whole period", () => {
    const buckets = new Array<number>(10).fill(0);
    for (let i = 0; i < 2000; i++) buckets[Math.floor(pollPhase(`d${i}`, 1000) / 100)]!++;
    // a uniform spread puts 200 in each 100 ms slice; none may hold more than twice that or be empty
    for (const b of buckets) {
      expect(b).toBeGreaterThan(100);
      expect(b).toBeLessThan(400);
    }
    // and the busiest single millisecond holds a handful, not hundreds
    const perMs = new Map<number, number>();
    for (let i = 0; i < 2000; i++) { const p = pollPhase(`d${i}`, 1000); perMs.set(p, (perMs.get(p) ?? 0) + 1); }
    expect(Math.max(...perMs.values())).toBeLessThan(12);
  });

  it("work for tiny and fractional periods", () => {
    expect(pollPhase("d1", 1)).toBe(0);
    expect(pollPhase("d1", 0.5)).toBe(0);
    expect(pollPhase("d1", 7)).toBeLessThan(7);
  });
});

describe("firstPollDelay", () => {
  it("spreads the first polls of 2,000 devices over at most a second", () => {
    const delays = Array.from({ length: 2000 }, (_, i) => firstPollDelay(`d${i}`, 60_000));
    expect(Math.max(...delays)).toBeLessThan(1000);
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(0);
    const perMs = new Map<number, number>();
    for (const d of delays) perMs.set(d, (perMs.get(d) ?? 0) + 1);
    expect(Math.max(...perMs.values())).toBeLessThan(12);
  });

  it("stays inside a short poll period", () => {
    for (let i = 0; i < 100; i++) expect(firstPollDelay(`d${i}`, 50)).toBeLessThan(50);
  });
});

describe("nextTick", () => {
  it("returns the first tick n·period + phase strictly after now", () => {
    expect(nextTick(10_000, 1000, 250)).toBe(10_250);
    expect(nextTick(10_250, 1000, 250)).toBe(11_250);
    expect(nextTick(10_249, 1000, 250)).toBe(10_250);
    expect(nextTick(10_999, 1000, 0)).toBe(11_000);
    expect(nextTick(11_000, 1000, 0)).toBe(12_000);
  });

  it("never drifts: successive ticks stay on the grid", () => {
    let t = nextTick(1_700_000_000_123, 1000, 321);
    for (let i = 0; i < 1000; i++) {
      expect((t - 321) % 1000).toBe(0);
      const after = nextTick(t + 7, 1000, 321); // a poll that took 7 ms
      expect(after - t).toBe(1000);
      t = after;
    }
  });
});

describe("followingPoll", () => {
  it("is the next tick after the poll, counting ticks a late poll skipped", () => {
    expect(followingPoll(-1, 10_100, 1000, 250)).toEqual({ due: 10_250, skipped: 0 });
    expect(followingPoll(10_250, 10_300, 1000, 250)).toEqual({ due: 11_250, skipped: 0 });
    // finished 2.5 periods late: the ticks at 11,250 and 12,250 were skipped
    expect(followingPoll(10_250, 12_800, 1000, 250)).toEqual({ due: 13_250, skipped: 2 });
  });

  it("realigns to the new time when the wall clock stepped back more than a period, skipping nothing", () => {
    // due at 10,000,250; NTP set the clock back an hour while it ran
    const f = followingPoll(10_000_250, 10_000_300 - 3_600_000, 1000, 250);
    expect(f).toEqual({ due: nextTick(10_000_300 - 3_600_000, 1000, 250), skipped: 0 });
    expect(f.due - (10_000_300 - 3_600_000)).toBeLessThanOrEqual(1000);
    // a step back of less than a period: the next tick after the one due, at most a period away
    expect(followingPoll(10_250, 10_000, 1000, 250)).toEqual({ due: 11_250, skipped: 0 });
  });
});
