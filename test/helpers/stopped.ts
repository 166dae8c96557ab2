import { readFileSync, readdirSync } from "node:fs";

/**
 * Returns once every thread of `pid` is stopped (state `T` in /proc), at most 2 s; throws after.
 * A SIGSTOP takes effect per thread as each is next scheduled: on a loaded machine a server already
 * on its way back to user space answered one more request after kill() returned (seen with influxd,
 * see test/helpers/influxdb.ts). Synchronous, so `pause()` stays synchronous: a few reads of /proc.
 */
export function waitStopped(pid: number, what: string): void {
  const deadline = Date.now() + 2000;
  const stopped = (): boolean => {
    try {
      for (const t of readdirSync(`/proc/${pid}/task`)) {
        const stat = readFileSync(`/proc/${pid}/task/${t}/stat`, "utf8");
        const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
        if (state !== "T" && state !== "t") return false;
      }
      return true;
    } catch {
      return true; // gone: nothing left to answer
    }
  };
  while (!stopped()) {
    if (Date.now() > deadline) throw new Error(`${what} (pid ${pid}) not stopped 2 s after SIGSTOP`);
  }
}
