import { formatProblem, loadConfig } from "../config/load.js";
import type { ConfigProblem, GatewayConfig } from "../config/types.js";
import { describeError, FloorgateError, isFloorgateError } from "../core/errors.js";
import { createLogger, type Logger } from "../core/logger.js";
import { Gateway } from "../runtime/gateway.js";
import { configSecrets, reportFatalTo } from "./fatal.js";

/**
 * From the first SIGTERM/SIGINT to the exit: spec §3 allows 10 s; the last second is left for the
 * final log line and the exit itself.
 */
export const STOP_BUDGET_MS = 9_000;

/**
 * Loads and fully validates a config, or throws CONFIG_INVALID after printing every problem.
 * The config's warnings are added to `warnings` when given (the daemon logs them).
 */
export function loadOrExplain(file: string, warnings?: ConfigProblem[]): GatewayConfig {
  const r = loadConfig(file);
  if (r.ok) {
    warnings?.push(...r.warnings);
    return r.config;
  }
  process.stderr.write(r.problems.map((p) => `${formatProblem(file, p)}\n`).join(""));
  throw new FloorgateError("CONFIG_INVALID", `${r.problems.length} problem(s) in ${file}`);
}

/**
 * What to do about a listener that could not bind, for the message the user reads; `fix` is the
 * knob of the command at hand (`change http.listen in FILE`, `pick another port with --port N`).
 * Undefined for any other error.
 */
export function listenHint(err: unknown, fix: string): string | undefined {
  const codes: string[] = [];
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") codes.push(code);
  }
  if (codes.includes("EACCES")) return `ports below 1024 need root or CAP_NET_BIND_SERVICE: ${fix}`;
  if (codes.includes("EADDRINUSE") || codes.includes("PORT_IN_USE")) return `another program (perhaps another floorgate) listens on that port: stop it, or ${fix}`;
  if (codes.includes("EADDRNOTAVAIL")) return `this machine has no such address: ${fix}`;
  return undefined;
}

/** Resolves after the first SIGTERM or SIGINT (simulate, demo, benches: nothing to bound there). */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (sig: NodeJS.Signals): void => {
      process.off("SIGTERM", on);
      process.off("SIGINT", on);
      resolve(sig);
    };
    process.on("SIGTERM", on);
    process.on("SIGINT", on);
  });
}

/** The daemon's view of SIGTERM/SIGINT, whether it arrives during the start or afterwards. */
export interface StopSignals {
  /** aborted at the first signal (handed to `Gateway.start`) */
  readonly signal: AbortSignal;
  /** resolves with the first signal */
  readonly first: Promise<NodeJS.Signals>;
  /** resolves `budgetMs` after the first signal: whatever is still running then is abandoned */
  readonly expired: Promise<void>;
  /** ms left of the budget (the whole budget before any signal) */
  remainingMs(): number;
}

/**
 * Listens for SIGTERM and SIGINT from now until the process exits. Later signals are logged and
 * otherwise ignored: the stop under way is bounded already, and Node's default action (dying at
 * once) would skip the journal's close.
 */
export function watchStopSignals(log: Logger, budgetMs = STOP_BUDGET_MS): StopSignals {
  const abort = new AbortController();
  let at: number | undefined;
  let resolveFirst!: (sig: NodeJS.Signals) => void;
  let resolveExpired!: () => void;
  const first = new Promise<NodeJS.Signals>((r) => { resolveFirst = r; });
  const expired = new Promise<void>((r) => { resolveExpired = r; });
  const on = (sig: NodeJS.Signals): void => {
    if (at !== undefined) {
      log.warn({ signal: sig, leftMs: Math.round(Math.max(0, at + budgetMs - performance.now())) }, "already stopping; the exit follows within the stop budget");
      return;
    }
    at = performance.now(); // monotonic: the stop budget must not stretch with a clock step
    // Not unref'd: should the stop wait on nothing at all, this still ends the process with code 2.
    setTimeout(resolveExpired, budgetMs);
    abort.abort();
    resolveFirst(sig);
  };
  process.on("SIGTERM", on);
  process.on("SIGINT", on);
  return {
    signal: abort.signal,
    first,
    expired,
    remainingMs: () => (at === undefined ? budgetMs : Math.max(0, at + budgetMs - performance.now())),
  };
}

/** Stops the gateway within `ms`; a stop that hangs is cut off with exit code 2. */
export async function stopWithin(gw: Pick<Gateway, "stop">, log: Logger, ms = STOP_BUDGET_MS): Promise<number> {
  let t: NodeJS.Timeout | undefined;
  const timedOut = new Promise<number>((r) => { t = setTimeout(() => r(2), ms); });
  const code = await Promise.race([gw.stop().then(() => 0, (err: unknown) => {
    log.error({ err: describeError(err) }, "stop failed");
    return 2;
  }), timedOut]);
  clearTimeout(t);
  if (code !== 0) log.error({ budgetMs: ms }, "stop did not finish cleanly in time; exiting anyway");
  return code;
}

/**
 * `floorgate run`: starts the gateway and stops it at SIGTERM/SIGINT. Resolves with the exit code
 * (0 clean, 2 runtime failure); the caller must then end the process (`process.exit`), since a
 * stop cut off at its budget may leave sockets or timers behind.
 */
export async function runDaemon(file: string, opts: { pretty: boolean }): Promise<number> {
  const warnings: ConfigProblem[] = [];
  const config = loadOrExplain(file, warnings);
  const log = createLogger({ pretty: opts.pretty });
  // a templated device's warning also names its template, as `validate` prints it
  for (const w of warnings) log.warn({ config: file, line: w.line, path: w.path, ...(w.template ? { template: w.template } : {}) }, w.message);
  reportFatalTo(log, configSecrets(config));
  const stop = watchStopSignals(log);
  log.info({ pid: process.pid }, "floorgate starting");
  const starting = Gateway.start(config, log, { signal: stop.signal });
  // Before a signal `expired` never resolves; after one, a start that ignores the abort is abandoned.
  const started = await Promise.race([
    starting.then((gw) => ({ gw }), (err: unknown) => ({ err })),
    stop.expired.then(() => ({ expired: true as const })),
  ]);
  if ("expired" in started) {
    log.error({ budgetMs: STOP_BUDGET_MS }, "stop requested during startup, and the start did not end in time; exiting anyway");
    flushLog(log);
    return 2;
  }
  if ("err" in started) {
    if (stop.signal.aborted && isFloorgateError(started.err, "ABORTED")) {
      log.info("stopped during startup");
      flushLog(log);
      return 0;
    }
    const hint = listenHint(started.err, `change http.listen in ${file}`);
    log.fatal(hint === undefined ? { err: describeError(started.err) } : { err: describeError(started.err), hint }, hint === undefined ? "floorgate cannot start" : `floorgate cannot start: ${hint}`);
    flushLog(log);
    return 2;
  }
  const ended = await Promise.race([stop.first.then((signal) => ({ signal, fatal: null })), started.gw.fatal.then((fatal) => ({ signal: null, fatal }))]);
  if (ended.signal) log.info({ signal: ended.signal }, "stopping: draining outputs and syncing the journal");
  const code = await stopWithin(started.gw, log, stop.remainingMs());
  flushLog(log);
  // A fatal journal error was logged where it happened; exit 2 lets the supervisor restart us.
  return ended.fatal !== null ? 2 : code;
}

function flushLog(log: Logger): void {
  try { log.flush(); } catch { /* stdout closed */ }
}
