import { runSchema, runValidate } from "../config/cli.js";
import { describeError, isFloorgateError } from "../core/errors.js";
import { checkFlags, flag, packageVersion, parseArgs, requireFlag, USAGE, UsageError, type ParsedArgs } from "./args.js";
import { installFatalHandlers } from "./fatal.js";
import { runDaemon } from "./run.js";
import { runDemo } from "./demo.js";
import { runInspect } from "./inspect.js";
import { runProbe } from "./probe.js";
import { runSimulate } from "./simulate.js";
import { runBrowse } from "./browse.js";

/**
 * Set once a long-running command (`run`, `demo`, `simulate`) starts: the process then ends with
 * `process.exit` (see the end of this file), so a library socket or timer left behind (a client
 * still connecting when the stop came) cannot keep it alive.
 */
let daemon = false;

/**
 * Entry point of `floorgate`. Every failure ends in a one-line message and an exit code
 * (0 ok, 1 bad config or usage, 2 runtime failure) — never a stack trace. An uncaught exception
 * or unhandled rejection is reported once and exits 2 (`fatal.ts`; in the daemon, as a fatal log
 * line with its frames).
 */
async function main(argv: readonly string[]): Promise<number> {
  let args: ParsedArgs;
  try {
    args = parseArgs(argv);
  } catch (err) {
    process.stderr.write(`floorgate: ${(err as Error).message}\n${USAGE}`);
    return 1;
  }
  const [cmd, sub] = args.command;
  if (cmd === "version" || args.flags.has("version")) {
    process.stdout.write(`floorgate ${packageVersion()}\n`);
    return 0;
  }
  if (cmd === "help" || args.flags.has("help")) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (!cmd) {
    process.stderr.write(`floorgate: no command given\n\n${USAGE}`);
    return 1;
  }
  try {
    switch (cmd) {
      case "validate": {
        checkFlags(args, ["config"]);
        const r = runValidate(requireFlag(args, "config"));
        process.stdout.write(r.stdout);
        process.stderr.write(r.stderr);
        return r.code;
      }
      case "schema":
        checkFlags(args, []);
        process.stdout.write(runSchema());
        return 0;
      case "run":
        checkFlags(args, ["config"]);
        daemon = true;
        return await runDaemon(requireFlag(args, "config"), { pretty: args.flags.has("pretty") });
      case "demo":
        checkFlags(args, ["port", "broker", "devices", "data-dir"]);
        daemon = true;
        return await runDemo({
          port: numberFlag(args, "port", 8080),
          broker: flag(args, "broker"),
          devices: numberFlag(args, "devices", 20),
          dataDir: flag(args, "data-dir"),
          pretty: args.flags.has("pretty"),
        });
      case "simulate":
        checkFlags(args, ["config"]);
        daemon = true;
        return await runSimulate(requireFlag(args, "config"));
      case "browse": {
        checkFlags(args, ["endpoint", "root", "depth", "max-nodes", "timeout-ms", "security-mode", "security-policy", "username"]);
        const username = flag(args, "username");
        const root = flag(args, "root");
        return await runBrowse({
          endpoint: requireFlag(args, "endpoint"),
          depth: numberFlag(args, "depth", 3),
          maxNodes: numberFlag(args, "max-nodes", 5000),
          timeoutMs: numberFlag(args, "timeout-ms", 10_000),
          ...(root === undefined ? {} : { root }),
          ...(username === undefined ? {} : { username }),
          securityMode: flag(args, "security-mode"),
          securityPolicy: flag(args, "security-policy"),
        });
      }
      case "probe":
        checkFlags(args, ["config", "device"]);
        return await runProbe(requireFlag(args, "config"), flag(args, "device"));
      case "journal":
        if (sub !== "inspect") throw new UsageError(`unknown journal command ${sub ?? "(none)"}; try: floorgate journal inspect --config FILE`);
        checkFlags(args, ["config"]);
        return await runInspect(requireFlag(args, "config"));
      default:
        throw new UsageError(`unknown command "${cmd}"`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`floorgate: ${err.message}\n\n${USAGE}`);
      return 1;
    }
    process.stderr.write(`floorgate: ${describeError(err)}\n`);
    return isFloorgateError(err, "CONFIG_INVALID") || isFloorgateError(err, "CONFIG_READ") ? 1 : 2;
  }
}

function numberFlag(args: ParsedArgs, name: string, dflt: number): number {
  const v = flag(args, name);
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`--${name} must be a whole number, got ${v}`);
  return n;
}

installFatalHandlers();

main(process.argv.slice(2)).then(
  (code) => {
    // The daemon exits outright: a stop cut off at its budget may leave sockets or timers that
    // would otherwise keep the process alive past the 10 s of spec §3.
    if (daemon) process.exit(code);
    process.exitCode = code;
  },
  (err: unknown) => { process.stderr.write(`floorgate: ${describeError(err)}\n`); process.exitCode = 2; },
);
