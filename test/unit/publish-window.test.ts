import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createPublishWindow, type PublishWindow } from "../../src/outputs/mqtt/publish-window.js";

const TIMEOUT = 1000;

/** A window with fake timers (setTimeout, setImmediate and performance.now), recording its calls. */
function make(max = 3): { win: PublishWindow; stalls: number[]; refills: () => number; failures: Error[] } {
  const stalls: number[] = [];
  const failures: Error[] = [];
  let refills = 0;
  const win = createPublishWindow({ max, timeoutMs: TIMEOUT, onStalled: (n) => stalls.push(n), onRefill: () => { refills++; }, onFailed: (e) => failures.push(e) });
  return { win, stalls, refills: () => refills, failures };
}

beforeEach(() => { vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setImmediate", "clearImmediate", "performance"] }); });
afterEach(() => { vi.useRealTimers(); });

describe("PublishWindow", () => {
  it("counts openings and settlements; hasRoom below max", () => {
    const { win } = make(2);
    expect(win.hasRoom).toBe(true);
    win.opened();
    win.opened();
    expect(win.inFlight).toBe(2);
    expect(win.hasRoom).toBe(false);
    win.settled(true);
    expect(win.inFlight).toBe(1);
    expect(win.hasRoom).toBe(true);
    win.settled(false);
    expect(win.inFlight).toBe(0);
  });

  it("answered: a confirmation goes on; the first error ends the window through onFailed, once; later answers settle and return false", () => {
    const { win, failures, refills } = make(4);
    for (let i = 0; i < 4; i++) win.opened();
    expect(win.answered(undefined)).toBe(true);
    const boom = new Error("refused");
    expect(win.answered(boom)).toBe(false);
    expect(failures).toEqual([boom]);
    expect(win.answered(new Error("second"))).toBe(false);
    expect(win.answered(undefined)).toBe(false); // a PUBACK after the session broke
    expect(failures).toEqual([boom]);
    expect(win.inFlight).toBe(0);
    win.refillSoon();
    vi.runOnlyPendingTimers();
    expect(refills()).toBe(0); // closed by the failure
  });

  it("answered after close() settles without calling onFailed", () => {
    const { win, failures } = make();
    win.opened();
    win.close();
    expect(win.answered(new Error("late"))).toBe(false);
    expect(failures).toEqual([]);
    expect(win.inFlight).toBe(0);
  });

  it("refills once per turn of the event loop however often asked, and never after close", () => {
    const { win, refills } = make();
    win.refillSoon();
    win.refillSoon();
    win.refillSoon();
    expect(refills()).toBe(0); // not synchronously: the acks of one read come first
    vi.runOnlyPendingTimers();
    expect(refills()).toBe(1);
    win.refillSoon();
    win.close();
    vi.runOnlyPendingTimers();
    expect(refills()).toBe(1);
  });

  it("a slow but moving window is not stalled; silence for timeoutMs is, once, with the count outstanding", () => {
    const { win, stalls } = make(100);
    for (let i = 0; i < 5; i++) win.opened();
    for (let i = 0; i < 4; i++) {
      vi.advanceTimersByTime(TIMEOUT - 1);
      win.settled(true); // a confirmation just before each deadline
    }
    expect(stalls).toEqual([]);
    vi.advanceTimersByTime(TIMEOUT - 1);
    expect(stalls).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(stalls).toEqual([1]);
    vi.advanceTimersByTime(10 * TIMEOUT);
    expect(stalls).toEqual([1]);
  });

  it("an idle window never stalls, and a failed settlement is no progress", () => {
    const { win, stalls } = make();
    win.opened();
    win.settled(true);
    vi.advanceTimersByTime(5 * TIMEOUT);
    expect(stalls).toEqual([]);
    win.opened();
    win.opened();
    vi.advanceTimersByTime(TIMEOUT / 2);
    win.settled(false);
    vi.advanceTimersByTime(TIMEOUT / 2);
    expect(stalls).toEqual([1]);
  });

  it("close stops the watchdog", () => {
    const { win, stalls } = make();
    win.opened();
    win.close();
    vi.advanceTimersByTime(5 * TIMEOUT);
    expect(stalls).toEqual([]);
  });

  type Op = { kind: "open" } | { kind: "ok" } | { kind: "fail" } | { kind: "wait"; ms: number };
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    fc.constant<Op>({ kind: "open" }),
    fc.constant<Op>({ kind: "ok" }),
    fc.constant<Op>({ kind: "fail" }),
    fc.integer({ min: 1, max: 1500 }).map((ms): Op => ({ kind: "wait", ms })),
  );

  it("model: stalls exactly timeoutMs after the last progress while publishes are outstanding (fast-check)", () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 60 }), (ops) => {
        vi.useRealTimers();
        vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setImmediate", "clearImmediate", "performance"] });
        const { win, stalls } = make(1_000);
        // The model: publishes outstanding, and when the idle clock last restarted.
        let n = 0;
        let last = 0;
        let now = 0;
        let stalledAt: number | null = null;
        for (const op of ops) {
          if (stalledAt !== null) break;
          if (op.kind === "open") {
            if (n++ === 0) last = now;
            win.opened();
          } else if (op.kind === "ok" || op.kind === "fail") {
            if (n === 0) continue; // a settlement always follows its opening
            n--;
            if (op.kind === "ok") last = now;
            win.settled(op.kind === "ok");
          } else {
            const deadline = last + TIMEOUT;
            if (n > 0 && deadline <= now + op.ms) {
              vi.advanceTimersByTime(deadline - now - 1);
              expect(stalls).toEqual([]);
              vi.advanceTimersByTime(1);
              expect(stalls).toEqual([n]);
              stalledAt = deadline;
            } else {
              vi.advanceTimersByTime(op.ms);
              expect(stalls).toEqual([]);
            }
            now += op.ms;
          }
          expect(win.inFlight).toBe(n);
        }
        win.close();
      }),
      { numRuns: 300 },
    );
  });
});
