import { describe, expect, it } from "vitest";
import { RateLimiter } from "../../src/ingest/rate.js";
import { fakeClock } from "./helpers.js";

describe("rate limiter", () => {
  it("allows a burst of `rate`, then refuses with Retry-After ≥ 1 s", () => {
    const c = fakeClock();
    const r = new RateLimiter(5, c.now);
    for (let i = 0; i < 5; i++) expect(r.take("a")).toEqual({ ok: true });
    const d = r.take("a");
    expect(d.ok).toBe(false);
    if (!d.ok) expect(d.retryAfterSec).toBe(1);
    // other devices have their own bucket
    expect(r.take("b")).toEqual({ ok: true });
  });
  it("refills at `rate` per second", () => {
    const c = fakeClock();
    const r = new RateLimiter(10, c.now);
    for (let i = 0; i < 10; i++) r.take("a");
    expect(r.take("a").ok).toBe(false);
    c.advance(100); // one token
    expect(r.take("a").ok).toBe(true);
    expect(r.take("a").ok).toBe(false);
    c.advance(10_000); // never more than the burst
    let n = 0;
    while (r.take("a").ok) n++;
    expect(n).toBe(10);
  });
  it("Retry-After grows for slow rates", () => {
    const c = fakeClock();
    const r = new RateLimiter(0.25, c.now); // burst 0.25 < 1: never a full token at start
    const d = r.take("a");
    expect(d.ok).toBe(false);
    if (!d.ok) expect(d.retryAfterSec).toBe(3);
  });
  it("a clock stepping back neither refills nor throws", () => {
    const c = fakeClock();
    const r = new RateLimiter(2, c.now);
    r.take("a"); r.take("a");
    c.advance(-60_000);
    expect(r.take("a").ok).toBe(false);
  });
  it("0 means unlimited", () => {
    const r = new RateLimiter(0);
    for (let i = 0; i < 1000; i++) expect(r.take("a").ok).toBe(true);
    expect(r.size()).toBe(0);
  });
  it("bounds the number of buckets", () => {
    const c = fakeClock();
    const r = new RateLimiter(100, c.now, 50);
    for (let i = 0; i < 500; i++) r.take(`d${i}`);
    expect(r.size()).toBeLessThanOrEqual(50);
  });
  it("take(n) takes n tokens or none", () => {
    const c = fakeClock();
    const r = new RateLimiter(10, c.now);
    expect(r.take("a", 7)).toEqual({ ok: true });
    const d = r.take("a", 4); // 3 left
    expect(d).toEqual({ ok: false, retryAfterSec: 1 });
    expect(r.take("a", 3)).toEqual({ ok: true }); // the refused take cost nothing
    expect(r.take("a", 1).ok).toBe(false);
  });
  it("a take larger than the bucket can ever hold is tooMany", () => {
    const r = new RateLimiter(200, fakeClock().now);
    expect(r.capacity).toBe(200);
    const d = r.take("a", 1000);
    expect(d.ok).toBe(false);
    if (!d.ok) expect(d.tooMany).toBe(true);
    expect(r.take("a", 200)).toEqual({ ok: true });
  });
  it("check() refuses an empty bucket and takes nothing", () => {
    const c = fakeClock();
    const r = new RateLimiter(2, c.now);
    expect(r.check("a").ok).toBe(true);
    expect(r.size()).toBe(0); // checking makes no bucket
    r.take("a", 2);
    const d = r.check("a");
    expect(d.ok).toBe(false);
    c.advance(500);
    expect(r.check("a").ok).toBe(true);
    expect(r.check("a").ok).toBe(true);
    expect(r.take("a").ok).toBe(true);
  });
  it("a rate below 1/s still lets one message through every 1/rate seconds", () => {
    const c = fakeClock();
    const r = new RateLimiter(0.25, c.now);
    expect(r.take("a").ok).toBe(false);
    c.advance(3_000);
    expect(r.take("a").ok).toBe(true);
    expect(r.take("a").ok).toBe(false);
    c.advance(4_000);
    expect(r.take("a").ok).toBe(true);
  });
});
