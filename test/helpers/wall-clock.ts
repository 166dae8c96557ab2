import { vi } from "vitest";

/** The real Date.now, taken before any test steps it. */
const realNow = Date.now.bind(Date);

export const HOUR = 3_600_000;

/**
 * From now on `Date.now()` in this process reads `by` ms off the real clock (negative: set back),
 * as after an NTP step; the monotonic clock (`performance.now()`, timers) is untouched. A later
 * call replaces the step (it does not add to it). Undone by the returned function or
 * `vi.restoreAllMocks()`.
 */
export function stepWallClock(by: number): () => void {
  const spy = vi.spyOn(Date, "now").mockImplementation(() => realNow() + by);
  return () => spy.mockRestore();
}
