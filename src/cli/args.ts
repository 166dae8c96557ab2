import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** Minimal argv parsing: `cmd [sub] --flag value --bool`. Unknown flags are usage errors (exit 1). */
export interface ParsedArgs {
  command: string[];
  flags: Map<string, string | true>;
}

const BOOL_FLAGS = new Set(["pretty", "help", "json", "version"]);

export function parseArgs(argv: readonly string[]): ParsedArgs {
  const command: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
      if (eq > 0) flags.set(name, a.slice(eq + 1));
      else if (BOOL_FLAGS.has(name)) flags.set(name, true);
      else {
        const v = argv[i + 1];
        if (v === undefined || v.startsWith("--")) throw new UsageError(`--${name} needs a value`);
        flags.set(name, v);
        i++;
      }
    } else if (a === "-h") {
      flags.set("help", true);
    } else if (a === "-v") {
      flags.set("version", true);
    } else {
      command.push(a);
    }
  }
  return { command, flags };
}

export class UsageError extends Error {}

export function flag(args: ParsedArgs, name: string): string | undefined {
  const v = args.flags.get(name);
  return typeof v === "string" ? v : undefined;
}

export function requireFlag(args: ParsedArgs, name: string): string {
  const v = flag(args, name);
  if (v === undefined) throw new UsageError(`--${name} is required`);
  return v;
}

export function checkFlags(args: ParsedArgs, allowed: readonly string[]): void {
  for (const k of args.flags.keys()) {
    if (!allowed.includes(k) && k !== "help" && k !== "pretty") throw new UsageError(`unknown option --${k}`);
  }
}

/** Every command `main.ts` dispatches, as `floorgate help` lists them. */
export const USAGE = `floorgate — edge gateway for smart factories

Usage:
  floorgate run --config FILE        the daemon (SIGTERM/SIGINT: drain, fsync, exit 0)
  floorgate validate --config FILE   check a config: "config ok" or every error with path and line:col
  floorgate demo [--port 8080] [--broker URL] [--devices 20] [--data-dir DIR]
                                     simulated plant + gateway + dashboard, no set-up
  floorgate simulate --config FILE   simulated machines (Modbus TCP, OPC UA oven) for the config's local devices
  floorgate browse --endpoint opc.tcp://HOST:PORT [--root NODEID] [--depth 3] [--max-nodes 5000]
                   [--timeout-ms 10000] [--security-mode M --security-policy P] [--username U]
                                     an OPC UA server's variables as tag YAML to paste into a config
                                     (password from the environment: FLOORGATE_BROWSE_PASSWORD)
  floorgate probe --config FILE [--device ID]   read every tag once and print a table
  floorgate journal inspect --config FILE       records, bytes, oldest/newest, cursors and lag
  floorgate schema                   the config's JSON Schema (draft-07)
  floorgate version                  the version (also --version, -v)
  floorgate help                     this text (also --help, -h)

Options: --pretty (human-readable logs). Exit codes: 0 ok, 1 bad config or usage, 2 runtime failure.
Documentation: docs/README.md (configuration, HTTP API, MQTT payloads, guarantees, error codes).
`;

/**
 * The version in the package.json that ships with this code: found by walking up from this file
 * (src/cli/ under tsx, dist/src/cli/ when built, /app/dist/src/cli/ in the Docker image).
 */
export function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name?: unknown; version?: unknown };
      if (pkg.name === "floorgate" && typeof pkg.version === "string") return pkg.version;
    } catch {
      // no package.json at this level: keep walking up
    }
    dir = dirname(dir);
  }
  return "unknown";
}
