import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MsgIdDedup, type Claim } from "../../src/ingest/dedup.js";
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

  it("many msgIds of one device in flight at once (past the scanned list): each answers pending, then its own outcome", async () => {
    const d = new MsgIdDedup(fakeClock().now);
    // numbers past the scanned list (128), counting down as well as up, and strings
    const N = 300;
    const ids = Array.from({ length: N }, (_, i) => (i % 3 === 0 ? `u${i}` : i % 3 === 1 ? `dev-7-${i >> 2}-${i & 3}` : `dev-7-${1000 + ((N - i) >> 2)}-${i & 3}`));
    const claims = ids.map((id) => fresh(d, "a", id));
    const waits = ids.map((id) => d.claim("a", id));
    expect(waits.every((w) => w.kind === "pending")).toBe(true);
    expect(new Set(ids).size).toBe(N);
    expect(d.inFlightCount()).toBe(N);
    const order = ids.map((_, i) => (i * 17) % N);
    for (const i of order) claims[i]!.done(i % 5 !== 0);
    expect(d.inFlightCount()).toBe(0);
    for (let i = 0; i < N; i++) {
      const w = waits[i]!;
      if (w.kind === "pending") expect(await w.wait).toBe(i % 5 !== 0);
      expect(d.claim("a", ids[i]!).kind).toBe(i % 5 !== 0 ? "duplicate" : "fresh");
    }
    // the first 128 settle while the later ones are still in flight: those still answer pending
    const e = new MsgIdDedup(fakeClock().now);
    const later = Array.from({ length: 140 }, (_, i) => fresh(e, "a", `b-${i}`));
    for (const c of later.slice(0, 128)) c.done(false);
    for (let i = 0; i < 140; i++) expect(e.claim("a", `b-${i}`).kind).toBe(i < 128 ? "fresh" : "pending");
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

const WINDOW = 600_000;
/** the documented upper bound: a generation (window / 4) past the window */
const LONGEST = WINDOW + WINDOW / 4;

type Op =
  | { op: "advance"; ms: number }
  | { op: "claim"; dev: string; id: string }
  | { op: "settle"; pick: number; durable: boolean }
  | { op: "has"; dev: string; id: string }
  /** claims again a key stored before */
  | { op: "again"; pick: number }
  /**
   * moves the clock to just before, at or after a stored key's window or upper bound, or the next
   * multiple of a quarter window, where the implementation's generations turn (never back)
   */
  | { op: "jump"; pick: number; to: "window" | "longest" | "quarter"; delta: -1 | 0 | 1 };

// Ids that share digits but not their text ("7", "007", "x-7"), more families than a device keeps
// numeric (a1…f1), digits past 15, and ids without digits.
const IDS = ["7", "007", "0007", "x-7", "x-07", "x-0007", "a1", "b1", "c1", "d1", "e1", "f1", "m", "m-", "12345678901234567890", "12345678901234567891", "99999999999", "4294967295", "4294967296"];
// Several digit groups (dedup-ids.ts): the same digits in other shapes ("17-123-4", "171-23-4",
// "17_123-4"), leading zeros, 15 digits and one more, more shapes than a device keeps numeric, and
// single-group and string ids of the same devices.
const MULTI = ["17-123-4", "17-123-04", "17-12-34", "171-23-4", "1712-34", "171234", "17_123-4", "17.123.4", "17:123:4", "17/123/4", "17-123-4-",
  "dev-17-123-4", "dev-17-123-5", "dev-17-124-0", "dev-17-99-9", "dev-17-100-0", "dev-017-123-4", "000-000-0", "0-0-0-0", "0-0-0-0-0",
  "12345678901234-5", "123456789012345-6", "2345678901234-56", "1234567890123-45", "99999999999999-9", "999999999999999-9",
  "0000000000-00000", "00000-0000000000", "a-1-2-3-4", "b-1-2-3-4", "c-1-2", "7", "007", "x-7", "m"];
/** counters in the middle: the shape changes at 99 → 100 and 9 → 10, values above and below a set's range */
const counterArb = fc.tuple(fc.constantFrom("s-", "t"), fc.integer({ min: 0, max: 120 }), fc.integer({ min: 0, max: 11 })).map(([p, n, k]) => `${p}${n}-${k}`);

function opsOver(idArb: fc.Arbitrary<string>): fc.Arbitrary<Op> {
  return fc.oneof(
    { weight: 2, arbitrary: fc.record({ op: fc.constant("advance" as const), ms: fc.oneof(fc.integer({ min: 0, max: 200_000 }), fc.constantFrom(1, 149_999, 150_000, 600_000)) }) },
    { weight: 4, arbitrary: fc.record({ op: fc.constant("claim" as const), dev: fc.constantFrom("a", "b", "c"), id: idArb }) },
    { weight: 3, arbitrary: fc.record({ op: fc.constant("settle" as const), pick: fc.nat(), durable: fc.boolean() }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant("has" as const), dev: fc.constantFrom("a", "b", "c"), id: idArb }) },
    { weight: 3, arbitrary: fc.record({ op: fc.constant("again" as const), pick: fc.nat() }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant("jump" as const), pick: fc.nat(), to: fc.constantFrom("window" as const, "longest" as const, "quarter" as const), delta: fc.constantFrom(-1 as const, 0 as const, 1 as const) }) },
  );
}
const opArb = opsOver(fc.constantFrom(...IDS));
const multiOpArb = opsOver(fc.oneof(fc.constantFrom(...MULTI), counterArb));

/**
 * Against a model that knows only the contract: key → when it was stored durably; a claim in flight
 * answers `pending`; a stored key answers `duplicate` for the whole window unless the caps evicted
 * entries of its device since; it is gone after LONGEST; a key never stored is never a duplicate.
 */
async function checkAgainstModel(ops: Op[], caps: { maxPerDevice?: number; maxTotal?: number }): Promise<void> {
  const c = fakeClock(Date.parse("2026-11-21T08:01:17.000Z"));
  const evictions = new Map<string, number>();
  let evictedTotal = 0;
  const d = new MsgIdDedup(c.now, { ...caps, onEvict: (_r, dev, n) => { evictions.set(dev, (evictions.get(dev) ?? 0) + n); evictedTotal += n; } });
  const stored = new Map<string, { at: number; evictionsBefore: number }>();
  const flying: { key: string; dev: string; claim: Extract<Claim, { kind: "fresh" }> }[] = [];
  const waits: { promise: Promise<boolean>; outcome: boolean | undefined; key: string }[] = [];
  const pendingOf = new Map<string, (typeof waits)[number][]>();
  const keyOf = (dev: string, id: string) => `${dev}\n${id}`;

  /** What the model allows for a stored key: "duplicate", "fresh" or "either". */
  const expected = (dev: string, id: string): "duplicate" | "fresh" | "either" => {
    const s = stored.get(keyOf(dev, id));
    if (s === undefined) return "fresh";
    const age = c.now() - s.at;
    if (age >= LONGEST) return "fresh";
    if (age < WINDOW && (evictions.get(dev) ?? 0) === s.evictionsBefore) return "duplicate";
    return "either";
  };

  for (const op of ops) {
    let o: Op = op;
    if (o.op === "jump" && o.to === "quarter") {
      const q = WINDOW / 4;
      c.set((Math.floor(c.now() / q) + 1) * q + o.delta);
      continue;
    }
    if (o.op === "again" || o.op === "jump") {
      const keys = [...stored.keys()];
      if (keys.length === 0) continue;
      const key = keys[o.pick % keys.length]!;
      if (o.op === "jump") {
        const t = stored.get(key)!.at + (o.to === "window" ? WINDOW : LONGEST) + o.delta;
        if (t > c.now()) c.set(t);
        continue;
      }
      const [dev, id] = key.split("\n") as [string, string];
      o = { op: "claim", dev, id };
    }
    if (o.op === "advance") c.advance(o.ms);
    else if (o.op === "has") {
      const want = expected(o.dev, o.id);
      const got = d.has(o.dev, o.id);
      if (want === "fresh") expect(got, `has ${o.dev}/${o.id}`).toBe(false);
      if (want === "duplicate") expect(got, `has ${o.dev}/${o.id}`).toBe(true);
    } else if (o.op === "claim") {
      const key = keyOf(o.dev, o.id);
      const got = d.claim(o.dev, o.id);
      if (flying.some((f) => f.key === key)) {
        expect(got.kind, `claim ${key} in flight`).toBe("pending");
        if (got.kind === "pending") {
          const w = { promise: got.wait, outcome: undefined, key };
          waits.push(w);
          pendingOf.set(key, [...(pendingOf.get(key) ?? []), w]);
        }
        continue;
      }
      const want = expected(o.dev, o.id);
      if (want !== "either") expect(got.kind, `claim ${key} (${want})`).toBe(want);
      else expect(got.kind).not.toBe("pending");
      if (got.kind === "fresh") {
        stored.delete(key); // gone from the structure (expired or evicted): the model agrees
        flying.push({ key, dev: o.dev, claim: got });
      }
    } else if (flying.length > 0) {
      const [f] = flying.splice(o.pick % flying.length, 1);
      f!.claim.done(o.durable);
      if (o.durable) stored.set(f!.key, { at: c.now(), evictionsBefore: evictions.get(f!.dev) ?? 0 });
      for (const w of pendingOf.get(f!.key) ?? []) w.outcome = o.durable;
      pendingOf.delete(f!.key);
    }
    expect(d.inFlightCount()).toBe(flying.length);
    const size = d.size();
    if (caps.maxTotal !== undefined) expect(size).toBeLessThanOrEqual(caps.maxTotal);
    // never more entries than were stored (and not yet forgotten by the model's upper bound)
    let live = 0;
    for (const s of stored.values()) if (c.now() - s.at < LONGEST) live++;
    expect(size).toBeLessThanOrEqual(live);
    if (evictedTotal === 0) {
      let inWindow = 0;
      for (const s of stored.values()) if (c.now() - s.at < WINDOW) inWindow++;
      expect(size).toBeGreaterThanOrEqual(inWindow);
    }
  }
  for (const f of flying) f.claim.done(false);
  for (const w of waits) if (w.outcome === undefined) w.outcome = false;
  for (const w of waits) expect(await w.promise, `wait on ${w.key}`).toBe(w.outcome);
}

describe("msgId dedup against a model", () => {
  it("random claim/settle/has/clock interleavings over three devices, across generation boundaries", async () => {
    await fc.assert(fc.asyncProperty(fc.array(opArb, { minLength: 10, maxLength: 150, size: "max" }), (ops) => checkAgainstModel(ops, {})), { numRuns: 150 });
  });

  it("the same with tiny caps: an entry forgotten early is always counted for its device", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 10, maxLength: 150, size: "max" }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 10 }), (ops, maxPerDevice, maxTotal) =>
        checkAgainstModel(ops, { maxPerDevice, maxTotal })),
      { numRuns: 150 },
    );
  });

  it("multi-group msgIds (shapes, leading zeros, 15 digits) mixed with single-group and string ids", async () => {
    await fc.assert(fc.asyncProperty(fc.array(multiOpArb, { minLength: 10, maxLength: 200, size: "max" }), (ops) => checkAgainstModel(ops, {})), { numRuns: 150 });
  });

  it("the same with tiny caps", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(multiOpArb, { minLength: 10, maxLength: 200, size: "max" }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 10 }), (ops, maxPerDevice, maxTotal) =>
        checkAgainstModel(ops, { maxPerDevice, maxTotal })),
      { numRuns: 100 },
    );
  });
});
