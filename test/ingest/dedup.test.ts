import { describe, expect, it } from "vitest";
import { MsgIdDedup } from "../../src/ingest/dedup.js";
import { fakeClock } from "./helpers.js";

function fresh(d: MsgIdDedup, dev: string, id: string) {
  const c = d.claim(dev, id);
  if (c.kind !== "fresh") throw new Error(`expected fresh, got ${c.kind}`);
  return c;
}

describe("msgId dedup", () => {
  it("remembers a durable msgId for 10 minutes, then forgets it", () => {
    const c = fakeClock();
    const d = new MsgIdDedup(c.now);
    fresh(d, "a", "m1").done(true);
    expect(d.claim("a", "m1").kind).toBe("duplicate");
    expect(d.claim("b", "m1").kind).toBe("fresh"); // per device
    c.advance(9 * 60_000 + 59_000);
    expect(d.claim("a", "m1").kind).toBe("duplicate");
    c.advance(2 * 60_000 + 1);
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

  it("caps entries per device and overall, evicting the oldest and counting it", () => {
    const c = fakeClock();
    const evicted: string[] = [];
    const d = new MsgIdDedup(c.now, { maxPerDevice: 3, maxTotal: 5, onEvict: (r, dev) => evicted.push(`${r}:${dev}`) });
    for (let i = 0; i < 4; i++) { fresh(d, "a", `m${i}`).done(true); c.advance(30_000); }
    expect(evicted).toEqual(["device_cap:a"]);
    expect(d.has("a", "m0")).toBe(false);
    expect(d.has("a", "m1")).toBe(true);
    for (let i = 0; i < 3; i++) fresh(d, "b", `m${i}`).done(true);
    expect(d.size()).toBe(5);
    expect(evicted).toEqual(["device_cap:a", "total_cap:a"]);
    expect(d.has("a", "m1")).toBe(false);
    expect(d.has("a", "m3")).toBe(true);
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
  it("expires minute by minute: older buckets go, newer ones still answer", () => {
    const c = fakeClock(Date.parse("2026-11-21T08:00:00.000Z"));
    const d = new MsgIdDedup(c.now);
    for (let m = 0; m < 5; m++) {
      fresh(d, "a", `m${m}`).done(true);
      fresh(d, "b", `m${m}`).done(true);
      c.advance(60_000);
    }
    expect(d.size()).toBe(10);
    c.set(Date.parse("2026-11-21T08:12:00.000Z")); // buckets of 08:00 and 08:01 are past the window
    expect(d.has("a", "m0")).toBe(false);
    expect(d.has("b", "m1")).toBe(false);
    expect(d.has("a", "m2")).toBe(true);
    expect(d.has("b", "m4")).toBe(true);
    expect(d.size()).toBe(6);
    expect(d.claim("a", "m0").kind).toBe("fresh");
    expect(d.claim("a", "m3").kind).toBe("duplicate");
  });
});
