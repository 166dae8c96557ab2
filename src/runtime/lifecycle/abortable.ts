import { FloorgateError } from "../../core/errors.js";

/** The error a start rejects with when a stop was requested while it ran. */
export function startAborted(): FloorgateError {
  return new FloorgateError("ABORTED", "start aborted: stop requested");
}

/**
 * `p`, or a rejection ABORTED as soon as `signal` fires; a value `p` still delivers after that is
 * handed to `late` (to close it) instead of being leaked.
 */
export function untilAborted<T>(p: Promise<T>, signal: AbortSignal | undefined, late: (v: T) => unknown): Promise<T> {
  if (!signal) return p;
  return new Promise<T>((resolve, reject) => {
    let lost = false;
    const onAbort = () => {
      lost = true;
      reject(startAborted());
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
    p.then((v) => {
      signal.removeEventListener("abort", onAbort);
      if (!lost) resolve(v);
      else Promise.resolve().then(() => late(v)).catch(() => undefined);
    }, (err: unknown) => {
      signal.removeEventListener("abort", onAbort);
      reject(err);
    });
  });
}

/** Waits for `p` to settle, at most `ms`: a stop step that hangs must not hang the whole stop. */
export async function withTimeout(p: Promise<unknown>, ms: number): Promise<void> {
  let t: NodeJS.Timeout | undefined;
  await Promise.race([p.then(() => undefined, () => undefined), new Promise<void>((r) => { t = setTimeout(r, ms); })]);
  clearTimeout(t);
}
