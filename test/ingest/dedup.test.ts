import { describe, expect, it } from "vitest";
import { MsgIdDedup } from "../../src/ingest/dedup.js";
import { fakeClock } from "./helpers.js";

function fresh(d: MsgIdDedup, dev: string, id: string) {
  const c = d.claim(dev, id);
  if (c.kind !== "fresh") throw new Error(`expected fresh, got ${c.kind}`);
  return c;
}

describe("msgId dedup", () => {
  it("remembers a durable msgId for 10 minutes, then forgets it within 12.5", () => {
    const c = fakeClock();
    const d = new MsgIdDedup(c.now);
    fresh(d, "a", "m1").done(true);
    expect(d.claim("a", "m1").kind).toBe("duplicate");
    expect(d.claim("b", "m1").kind).toBe("fresh"); // per device
    c.advance(9 * 60_000 + 59_000);
    expect(d.claim("a", "m1").kind).toBe("duplicate");
    // generations of 2.5 minutes: an entry goes at most 2.5 minutes after its window
    c.advance(2 * 60_000 + 31_000);
    expect(d.size()).toBe(0);
    expect(d.claim("a", "m1").kind).toBe("fresh");
  });

  it("never forgets before 10 minutes, wherever in its minute an entry lands", () => {
    const c = fakeClock(Date.parse("2026-11-21T08:00:59.999Z"));
    const d = new MsgIdDedup(c.now);
    fresh(d, "a", "late-in-minute").done(true);
    c.advance(600_000 - 1);
    expect(d.has("a", "late-in-minute")).toBe(true);
  });

  it("does not remember a msgId whose store failed, so the retry is stored", () => {
    const d = new MsgIdDedup(fakeClock().now);
    fresh(d, "a", "m1").done(false);
    expect(d.claim("a", "m1").kind).toBe("fresh");
  });

  it("a concurrent duplicate waits for the first attempt and learns its outcome", async () => {
    const d = new MsgIdDedup(fakeClock().now);
    const first = fresh(d, "a", "m1");
    const second = d.claim("a", "m1");
    expect(second.kind).toBe("pending");
    expect(d.inFlightCount()).toBe(1);
    first.done(true);
    if (second.kind === "pending") expect(await second.wait).toBe(true);
    expect(d.inFlightCount()).toBe(0);
    expect(d.claim("a", "m1").kind).toBe("duplicate");

    const f2 = fresh(d, "a", "m2");
    const s2 = d.claim("a", "m2");
    f2.done(false);
    if (s2.kind === "pending") expect(await s2.wait).toBe(false);
    expect(d.claim("a", "m2").kind).toBe("fresh");
  });

  it("done() twice is harmless", () => {
    const d = new MsgIdDedup(fakeClock().now);
    const f = fresh(d, "a", "m");
    f.done(true);
    f.done(false);
    expect(d.has("a", "m")).toBe(true);
    expect(d.size()).toBe(1);
  });

  it("caps entries per device and overall, evicting the oldest generation and counting every entry", () => {
    const c = fakeClock();
    const evicted: string[] = [];
    const d = new MsgIdDedup(c.now, { maxPerDevice: 3, maxTotal: 5, onEvict: (r, dev, n) => evicted.push(`${r}:${dev}:${n}`) });
    for (let i = 0; i < 3; i++) { fresh(d, "a", `m${i}`).done(true); c.advance(30_000); }
    c.set(Date.parse("2026-11-21T08:02:30.000Z")); // the next generation
    fresh(d, "a", "m3").done(true);
    expect(evicted).toEqual(["device_cap:a:3"]);
    for (let i = 0; i < 3; i++) expect(d.has("a", `m${i}`)).toBe(false);
    expect(d.has("a", "m3")).toBe(true);
    c.set(Date.parse("2026-11-21T08:05:00.000Z"));
    fresh(d, "b", "m0").done(true);
    fresh(d, "b", "m1").done(true);
    c.set(Date.parse("2026-11-21T08:07:30.000Z"));
    fresh(d, "b", "m2").done(true);
    fresh(d, "c", "m0").done(true);
    expect(d.size()).toBe(5);
    fresh(d, "c", "m1").done(true); // past maxTotal: the oldest generation (a's m3) goes
    expect(evicted).toEqual(["device_cap:a:3", "total_cap:a:1"]);
    expect(d.has("a", "m3")).toBe(false);
    expect(d.size()).toBe(5);
    for (const [dev, id] of [["b", "m0"], ["b", "m1"], ["b", "m2"], ["c", "m0"], ["c", "m1"]] as const) expect(d.has(dev, id)).toBe(true);
  });

  it("stays bounded under a flood of distinct msgIds", () => {
    const c = fakeClock();
    let evictions = 0;
    const d = new MsgIdDedup(c.now, { maxPerDevice: 1000, maxTotal: 2500, onEvict: () => evictions++ });
    for (let i = 0; i < 20_000; i++) {
      fresh(d, `dev${i % 4}`, `id-${i}`).done(true);
      if (i % 100 === 0) c.advance(1_000);
    }
    expect(d.size()).toBeLessThanOrEqual(2500);
    expect(evictions).toBeGreaterThan(0);
    // after the window everything is gone
    c.advance(12 * 60_000);
    expect(d.size()).toBe(0);
  });
  it("expires generation by generation: older ones go, newer ones still answer", () => {
    const c = fakeClock(Date.parse("2026-11-21T08:00:00.000Z"));
    const d = new MsgIdDedup(c.now);
    for (let m = 0; m < 5; m++) {
      fresh(d, "a", `m${m}`).done(true);
      fresh(d, "b", `m${m}`).done(true);
      c.advance(60_000);
    }
    expect(d.size()).toBe(10);
    // 08:00–08:02:30 is one generation: its last moment is 10 minutes old at 08:12:30
    c.set(Date.parse("2026-11-21T08:12:29.999Z"));
    expect(d.size()).toBe(10);
    c.set(Date.parse("2026-11-21T08:12:30.000Z"));
    expect(d.has("a", "m0")).toBe(false);
    expect(d.has("b", "m2")).toBe(false);
    expect(d.has("a", "m3")).toBe(true);
    expect(d.has("b", "m4")).toBe(true);
    expect(d.size()).toBe(4);
    expect(d.claim("a", "m0").kind).toBe("fresh");
    expect(d.claim("a", "m3").kind).toBe("duplicate");
  });
});
