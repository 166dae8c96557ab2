/**
 * The per-client outbound cap (spec §5: a client that cannot keep up gets conflated values, one
 * that stays over its cap is closed with 1013). `buffered` is the socket's `bufferedAmount`: bytes
 * accepted by `send` that the kernel has not taken yet, i.e. what the client failed to read.
 *
 * - at or under `maxBufferedBytes`: `send`, and the client is no longer over (`overSince` cleared);
 * - over it: `hold` (the hub conflates instead of sending), remembering since when it is over;
 * - over it without a break for more than `slowCloseMs`: `close`.
 *
 * A slow link oscillates around the cap (it drains below, gets one conflated frame, goes over
 * again) and is never closed; a client that stopped reading stays over and is.
 */
export interface CapOptions {
  maxBufferedBytes: number;
  slowCloseMs: number;
}

export type CapVerdict = "send" | "hold" | "close";

export interface CapState {
  /** gateway time since which the client has been over its cap without a break; undefined when under */
  overSince: number | undefined;
}

export function capVerdict(state: CapState, buffered: number, now: number, opts: CapOptions): CapVerdict {
  if (buffered <= opts.maxBufferedBytes) {
    state.overSince = undefined;
    return "send";
  }
  state.overSince ??= now;
  return now - state.overSince > opts.slowCloseMs ? "close" : "hold";
}
