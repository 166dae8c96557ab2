import { afterEach, describe, expect, it, vi } from "vitest";
import fc from "fast-check";
import { StateChangeLog } from "../../src/runtime/status/state-log.js";

interface Line { fields: Record<string, unknown>; msg: string; at: number }

function recorder(): { lines: Line[]; log: { info(fields: Record<string, unknown>, msg: string): void } } {
  const lines: Line[] = [];
  return { lines, log: { info: (fields, msg) => { lines.push({ fields, msg, at: Date.now() }); } } };
}

describe("StateChangeLog", () => {
  afterEach(() => { vi.useRealTimers(); });

  it("logs a few changes a line each, then one summary line for the rest of the interval", () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const { lines, log } = recorder();
    const s = new StateChangeLog(log as never, { perInterval: 3, intervalMs: 1000 });
    for (let i = 0; i < 400; i++) s.change(`fleet-${i}`, "offline", "connection lost");
    for (let i = 0; i < 300; i++) s.change(`fleet-${i}`, "online", null);
    expect(lines.map((l) => l.msg)).toEqual([
      "device fleet-0 offline: connection lost", "device fleet-1 offline: connection lost", "device fleet-2 offline: connection lost",
    ]);
    vi.advanceTimersByTime(1000);
    expect(lines).toHaveLength(4);
    expect(lines[3]!.msg).toMatch(/^397 devices went offline, 300 online in the last 1 s \(/);
    expect(lines[3]!.fields).toEqual({ stateChanges: { offline: 397, online: 300 }, devices: ["fleet-3", "fleet-4", "fleet-5", "fleet-6", "fleet-7"] });
    // a quiet spell: the next change is a line of its own again
    vi.advanceTimersByTime(5000);
    s.change("fleet-9", "offline", null);
    expect(lines.at(-1)!.msg).toBe("device fleet-9 offline");
  });

  it("flush writes a pending summary at once (at stop), and nothing when none is pending", () => {
    vi.useFakeTimers({ now: 0 });
    const { lines, log } = recorder();
    const s = new StateChangeLog(log as never, { perInterval: 1 });
    s.flush();
    s.change("a", "online", null);
    s.change("b", "online", null);
    expect(lines).toHaveLength(1);
    s.flush();
    expect(lines.map((l) => l.msg)).toEqual(["device a online", expect.stringMatching(/^1 device went online in the last 1 s/)]);
    vi.advanceTimersByTime(2000);
    expect(lines).toHaveLength(2);
  });

  it("every change is either a line of its own or counted in exactly one summary; any second holds at most 2 × perInterval single lines and 2 summaries", () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 5 }),
      fc.array(fc.record({ gap: fc.integer({ min: 0, max: 700 }), state: fc.constantFrom("online", "offline", "error") }), { maxLength: 200 }),
      (perInterval, changes) => {
        vi.useFakeTimers({ now: 0 });
        try {
          const { lines, log } = recorder();
          const s = new StateChangeLog(log as never, { perInterval, intervalMs: 1000 });
          for (const [i, c] of changes.entries()) {
            vi.advanceTimersByTime(c.gap);
            s.change(`d${i}`, c.state, null);
          }
          vi.advanceTimersByTime(1000);
          let counted = 0;
          for (const l of lines) {
            const held = l.fields.stateChanges as Record<string, number> | undefined;
            counted += held ? Object.values(held).reduce((a, b) => a + b, 0) : 1;
          }
          expect(counted).toBe(changes.length);
          // any 1-s window of time holds at most perInterval single lines and 2 summaries (one ending, one of a window that began in it)
          for (const l of lines) {
            const inWindow = lines.filter((m) => m.at >= l.at && m.at < l.at + 1000);
            expect(inWindow.filter((m) => !m.fields.stateChanges).length).toBeLessThanOrEqual(2 * perInterval);
            expect(inWindow.filter((m) => m.fields.stateChanges).length).toBeLessThanOrEqual(2);
          }
        } finally {
          vi.useRealTimers();
        }
      },
    ), { numRuns: 200 });
  });
});
