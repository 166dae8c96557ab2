import { formatProblem, loadConfig } from "../config/load.js";
import type { GatewayConfig } from "../config/types.js";
import { describeError, FloorgateError } from "../core/errors.js";
import { createLogger, type Logger } from "../core/logger.js";
import { Gateway } from "../runtime/gateway.js";

/** Loads and fully validates a config, or throws CONFIG_INVALID after printing every problem. */
export function loadOrExplain(file: string): GatewayConfig {
  const r = loadConfig(file);
  if (r.ok) return r.config;
  process.stderr.write(r.problems.map((p) => `${formatProblem(file, p)}\n`).join(""));
  throw new FloorgateError("CONFIG_INVALID", `${r.problems.length} problem(s) in ${file}`);
}

/** Resolves after the first SIGTERM or SIGINT. */
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

/** Stops the gateway within the contract's 10 s; a stop that hangs is cut off with exit code 2. */
export async function stopWithin(gw: Gateway, log: Logger, ms = 9000): Promise<number> {
  let t: NodeJS.Timeout | undefined;
  const timedOut = new Promise<number>((r) => { t = setTimeout(() => r(2), ms); });
  const code = await Promise.race([gw.stop().then(() => 0), timedOut]);
  clearTimeout(t);
  if (code !== 0) log.error("stop did not finish in time; exiting anyway");
  return code;
}

export async function runDaemon(file: string, opts: { pretty: boolean }): Promise<number> {
  const config = loadOrExplain(file);
  const log = createLogger({ pretty: opts.pretty });
  let gw: Gateway;
  try {
    gw = await Gateway.start(config, log);
  } catch (err) {
    log.fatal({ err: describeError(err) }, "floorgate cannot start");
    flushLog(log);
    return 2;
  }
  const ended = await Promise.race([untilSignal().then((signal) => ({ signal, fatal: null })), gw.fatal.then((fatal) => ({ signal: null, fatal }))]);
  if (ended.signal) log.info({ signal: ended.signal }, "stopping: draining outputs and syncing the journal");
  const code = await stopWithin(gw, log);
  flushLog(log);
  // A fatal journal error was logged where it happened; exit 2 lets the supervisor restart us.
  return ended.fatal !== null ? 2 : code;
}

function flushLog(log: Logger): void {
  try { log.flush(); } catch { /* stdout closed */ }
}
