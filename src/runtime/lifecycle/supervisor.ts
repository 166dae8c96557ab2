import { Backoff, sleep, type BackoffOptions } from "../../core/backoff.js";
import type { LabelledCounter } from "../../core/counters.js";
import type { DeviceTable } from "../../core/device-table.js";
import type { Driver, DriverContext } from "../../core/driver.js";
import { describeError } from "../../core/errors.js";

export interface SupervisorOptions {
  table: DeviceTable;
  /** `floorgate_driver_restarts_total{device}` */
  restarts: LabelledCounter<"device">;
  /** waits between restarts; default 500 ms growing to 10 s (a device's `reconnectMaxMs`) */
  backoff?: Partial<BackoffOptions>;
  /** a run that lasted this long counts as healthy: the next failure starts the backoff over; default 60 s */
  healthyAfterMs?: number;
  /** measures how long a run lasted; replaceable for tests; default performance.now() (a wall-clock step must not count) */
  clock?: () => number;
}

/** Restart waits: short at first (a bug tripped once), capped like a reconnect. */
export const RESTART_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 10_000 };

/**
 * Runs one device's driver until `ctx.signal` aborts, and restarts it when its `run` fails.
 *
 * `Driver.run` must only settle once asked to stop; when it rejects (a bug) or returns early
 * anyway, the device is shown `error` with the reason, the restart is counted (the device's
 * `restarts` counter in /api/v1/devices and `floorgate_driver_restarts_total{device}`), and `run`
 * is called again after a jittered backoff. The failure is logged once (at error, with the wait
 * before the restart); the same failure again is logged at debug only, so a driver failing every
 * few seconds does not fill the log, and a different one is logged again. A run that stayed up for
 * `healthyAfterMs` resets the backoff and the once-only log.
 *
 * Resolves (never rejects) once the signal has aborted and the current run has settled, or at
 * once when the abort came during a wait: a stop is never held up by a restart.
 */
export async function superviseDriver(id: string, driver: Driver, ctx: DriverContext, opts: SupervisorOptions): Promise<void> {
  const { table, restarts } = opts;
  const clock = opts.clock ?? ((): number => performance.now());
  const healthyAfterMs = opts.healthyAfterMs ?? 60_000;
  const backoff = new Backoff({ ...RESTART_BACKOFF, ...opts.backoff });
  const log = ctx.log;
  const signal = ctx.signal;
  let lastLogged: string | undefined;
  // After a failure the device is in `error`, logged once; the states a restarted driver passes
  // through on its way back (`connecting`, `offline`) are shown but not logged until it is
  // `online` again, so a driver failing at every start adds no log line per attempt.
  let quiet = false;
  const restartedCtx: DriverContext = {
    ...ctx,
    setState: (state, error) => {
      if (quiet && state !== "online") table.setState(id, state, error ?? null);
      else {
        quiet = false;
        ctx.setState(state, error);
      }
    },
  };
  for (let n = 0; ; n++) {
    const started = clock();
    let failure: string;
    try {
      await driver.run(n === 0 ? ctx : restartedCtx);
      if (signal.aborted) return;
      failure = "the driver stopped before it was asked to";
    } catch (err) {
      if (signal.aborted) {
        // A driver that rejects while stopping has still stopped: logged, not restarted.
        log.warn({ err: describeError(err) }, "driver failed while stopping");
        return;
      }
      failure = describeError(err);
    }
    if (clock() - started >= healthyAfterMs) {
      backoff.reset();
      lastLogged = undefined;
    }
    const waitMs = backoff.next();
    quiet = true;
    table.setState(id, "error", failure);
    if (failure !== lastLogged) {
      lastLogged = failure;
      log.error({ err: failure, restartInMs: waitMs, restarts: n }, "driver failed; restarting it");
    } else {
      log.debug({ err: failure, restartInMs: waitMs, restarts: n }, "driver failed again; restarting it");
    }
    try {
      await sleep(waitMs, signal);
    } catch {
      return; // stopped during the wait
    }
    table.count(id, "restarts");
    restarts.inc({ device: id });
  }
}
