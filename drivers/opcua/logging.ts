/**
 * node-opcua writes its warnings and errors with `console.log` (e.g. `[NODE-OPCUA-W27] … node
 * flag --security-revert=CVE-2023-46809` at import, certificate dumps on a refused server): the
 * daemon's stdout must stay pino JSON lines. node-opcua-debug's hooks (`setWarningLogger`,
 * `setErrorLogger`, `setDebugLogger`, re-exported by node-opcua) are process-wide, so they are
 * installed once, right after the dynamic import and before any client exists, and route to the
 * logger of a running OPC UA device: errors at warn, warnings and debug at debug. W27 is moot
 * here (validate refuses the PKCS#1 v1.5 policies), hence debug. Known secrets are masked.
 */
import type { Logger } from "../../src/core/logger.js";
import { format } from "node:util";

/** node-opcua-debug's process-wide hooks, as node-opcua re-exports them. */
type LogHooks = Pick<typeof import("node-opcua"), "setWarningLogger" | "setErrorLogger" | "setDebugLogger">;

const sinks = new Set<Logger>();
const secrets = new Set<string>();
let installed = false;

function mask(text: string): string {
  let out = text;
  for (const s of secrets) if (s.length >= 3) out = out.split(s).join("***");
  return out;
}

function route(level: "warn" | "debug", source: string, args: unknown[]): void {
  // one line per message, at most 2,000 characters (node-opcua dumps certificates)
  const msg = mask(format(...args)).replace(/\u001b\[[0-9;]*m/g, "").slice(0, 2000);
  const log = [...sinks].at(-1);
  if (!log) return; // no device running: silenced
  log[level]({ source: `node-opcua/${source}` }, msg);
}

/**
 * Installs the hooks once per process. Call right after importing node-opcua: every module of this
 * folder that loads it (driver, browse, simulator) goes through here, so none of them overwrites the
 * routing another installed (in `floorgate demo` the simulator and the driver share a process).
 */
export function quietNodeOpcua(m: LogHooks): void {
  if (installed) return;
  installed = true;
  const file = (ctx: unknown): string => String((ctx as { filename?: unknown } | null)?.filename ?? "?");
  m.setWarningLogger((ctx: unknown, ...args: unknown[]) => route("debug", file(ctx), args));
  m.setErrorLogger((ctx: unknown, ...args: unknown[]) => route("warn", file(ctx), args));
  m.setDebugLogger((ctx: unknown, ...args: unknown[]) => route("debug", file(ctx), args));
}

/** A running device's logger receives node-opcua's messages until the returned function is called. */
export function attachLogger(log: Logger, secret?: string): () => void {
  sinks.add(log);
  if (secret !== undefined) secrets.add(secret);
  return () => { sinks.delete(log); };
}
