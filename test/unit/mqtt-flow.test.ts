// The MQTT listener's in-flight gate (src/ingest/mqtt/flow.ts) as pure state: random interleavings
// of connections starting messages, stores settling and release slices running. The caps hold at
// every step, every message is eventually let in (no connection starves, no deadlock), and the
// gate ends free.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { InFlightGate, RESUME_AT, type Gated } from "../../src/ingest/mqtt/flow.js";

class Conn implements Gated {
  inFlight = 0;
  constructor(readonly id: number, public left: number[]) {}
  reading(): void {
    // the real session re-reads `held` here; the simulation asks it at every step
  }
}

type Step = { kind: "read"; conn: number } | { kind: "settle"; pick: number } | { kind: "tick" };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant("read" as const), conn: fc.nat(7) }),
  fc.record({ kind: fc.constant("settle" as const), pick: fc.nat(1000) }),
  fc.record({ kind: fc.constant("tick" as const) }),
);

describe("MQTT listener in-flight gate", () => {
  it("never passes the caps, lets every message in eventually, ends free", () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 30 }), // maxMessages
      fc.integer({ min: 200, max: 5000 }), // maxBytes
      fc.integer({ min: 1, max: 8 }), // window
      fc.array(fc.array(fc.integer({ min: 1, max: 300 }), { maxLength: 25 }), { minLength: 1, maxLength: 8 }),
      fc.array(step, { maxLength: 400 }),
      (maxMessages, maxBytes, window, sizes, steps) => {
        const later: (() => void)[] = [];
        let pauses = 0;
        let frees = 0;
        const gate = new InFlightGate<Conn>({ maxMessages, maxBytes, window, later: (fn) => later.push(fn), onPause: () => pauses++, onFree: () => frees++ });
        const conns = sizes.map((s, i) => new Conn(i, [...s]));
        for (const c of conns) gate.add(c);
        const flying: { conn: Conn; bytes: number }[] = [];
        const biggest = Math.max(0, ...sizes.flat());
        const check = (): void => {
          expect(gate.messages).toBe(flying.length);
          expect(gate.messages).toBeLessThanOrEqual(maxMessages);
          // the message that reaches the byte cap is let in whole: less than one message over
          expect(gate.bytes).toBeLessThan(maxBytes + biggest);
          if (!gate.load().paused) for (const c of conns) expect(gate.held(c)).toBe(false);
        };
        const read = (c: Conn): boolean => {
          if (gate.held(c) || c.inFlight >= window || c.left.length === 0) return false;
          const bytes = c.left.shift()!;
          c.inFlight++;
          flying.push({ conn: c, bytes });
          gate.began(bytes, conns);
          return true;
        };
        const settle = (i: number): void => {
          const [m] = flying.splice(i, 1);
          m!.conn.inFlight--;
          gate.settled(m!.bytes);
        };
        for (const s of steps) {
          if (s.kind === "read") read(conns[s.conn % conns.length]!);
          else if (s.kind === "settle") { if (flying.length > 0) settle(s.pick % flying.length); }
          else later.shift()?.();
          check();
        }
        // then the journal keeps up: everything gets in, in bounded work
        for (let guard = 0; ; guard++) {
          expect(guard, "no deadlock").toBeLessThan(100_000);
          let moved = false;
          for (const c of conns) moved = read(c) || moved;
          check();
          if (flying.length > 0) { settle(0); moved = true; }
          if (later.length > 0) { later.shift()!(); moved = true; }
          check();
          if (!moved) break;
        }
        expect(conns.every((c) => c.left.length === 0)).toBe(true);
        expect(gate.load()).toEqual({ messages: 0, bytes: 0, paused: false, held: 0 });
        if (pauses > 0) expect(frees).toBeGreaterThan(0);
      },
    ), { numRuns: 150 });
  });

  it("releases held connections only below RESUME_AT, oldest first, a slice the room can take", () => {
    const later: (() => void)[] = [];
    const gate = new InFlightGate<Conn>({ maxMessages: 256, maxBytes: 1e9, window: 64, later: (fn) => later.push(fn) });
    const conns = Array.from({ length: 20 }, (_, i) => new Conn(i, []));
    for (const c of conns) gate.add(c);
    for (let i = 0; i < 256; i++) gate.began(10, conns);
    expect(conns.every((c) => gate.held(c))).toBe(true);
    for (let i = 0; i < 256 * (1 - RESUME_AT) - 1; i++) gate.settled(10);
    expect(later).toHaveLength(0); // above 3/4: nobody yet
    gate.settled(10);
    expect(later).toHaveLength(1);
    later.shift()!();
    // room for 64 more: one connection's window
    expect(conns.filter((c) => !gate.held(c)).map((c) => c.id)).toEqual([0]);
    later.shift()!(); // the released one brought nothing: the next slice follows
    expect(conns.filter((c) => !gate.held(c)).map((c) => c.id)).toEqual([0, 1]);
    // the cap hit again: the released go to the back, the next slice starts where the last ended
    for (let i = 0; i < 64; i++) gate.began(10, conns);
    expect(conns.every((c) => gate.held(c))).toBe(true);
    for (let i = 0; i < 64; i++) gate.settled(10);
    while (later.length > 0 && conns.every((c) => gate.held(c))) later.shift()!();
    expect(conns.filter((c) => !gate.held(c)).map((c) => c.id)).toEqual([2]);
  });
});
