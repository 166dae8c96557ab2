import { describeError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";

/**
 * Last-resort handling of an uncaught exception or unhandled rejection. Either is a bug, and the
 * process state after it cannot be trusted, so nothing is resumed: the failure is reported once
 * (a second failure while exiting is not), the log is flushed, and the process exits 2. The
 * journal is not closed: what was acknowledged is durable already, and recovery at the next start
 * deals with the rest, exactly as after `kill -9`.
 *
 * Until `reportFatalTo` names a logger (the daemon, once its config is loaded), the report is one
 * line on stderr, like every other CLI failure.
 */
export type FatalKind = "uncaught exception" | "unhandled rejection";

type Report = (kind: FatalKind, err: unknown) => void;

const toStderr: Report = (kind, err) => {
  process.stderr.write(`floorgate: internal error (${kind}): ${describeError(err)}\n`);
};

let report: Report = toStderr;
let fired = false;
let installed = false;

/** Reports once and exits 2; never returns normally. */
export function fatal(kind: FatalKind, err: unknown): void {
  if (fired) return;
  fired = true;
  try {
    report(kind, err);
  } catch {
    // the logger itself failed: nothing left to tell it with
  }
  process.exit(2);
}

/** Installs the process handlers (once; later calls do nothing). */
export function installFatalHandlers(): void {
  if (installed) return;
  installed = true;
  process.on("uncaughtException", (err) => fatal("uncaught exception", err));
  process.on("unhandledRejection", (reason) => fatal("unhandled rejection", reason));
}

/** From now on a fatal error is one `fatal` log line on `log`, with `secrets` masked, flushed before the exit. */
export function reportFatalTo(log: Logger, secrets: readonly string[]): void {
  report = (kind, err) => {
    const detail = fatalDetails(err, secrets);
    // `err` is the one-line summary every log line carries; `detail` is not named `err` because
    // pino's error serializer would rewrite it.
    log.fatal({ kind, err: detail.code === undefined ? detail.message : `${detail.code}: ${detail.message}`, detail }, `internal error (${kind}): exiting`);
    log.flush();
  };
}

export interface FatalDetails {
  message: string;
  code?: string;
  /** stack frames only (the message is above), at most 12 */
  stack?: string[];
  cause?: FatalDetails;
}

const MAX_CAUSES = 4;

/** What is logged of a fatal error: code, message, frames and cause chain, each `secrets` string masked. */
export function fatalDetails(err: unknown, secrets: readonly string[], depth = 0): FatalDetails {
  const mask = (s: string): string => {
    let out = s;
    for (const x of secrets) if (x !== "" && out.includes(x)) out = out.split(x).join("[redacted]");
    return out;
  };
  if (!(err instanceof Error)) return { message: mask(String(err)).slice(0, 2_000) };
  const d: FatalDetails = { message: mask(err.message).slice(0, 2_000) };
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string" || typeof code === "number") d.code = String(code);
  if (typeof err.stack === "string") {
    const frames = err.stack.split("\n").filter((l) => /^\s+at /.test(l)).slice(0, 12).map((l) => mask(l.trim()));
    if (frames.length > 0) d.stack = frames;
  }
  if (err.cause !== undefined && depth < MAX_CAUSES) d.cause = fatalDetails(err.cause, secrets, depth + 1);
  return d;
}

const SECRET_KEY = /^(token|password|passphrase|secret|operatorTokens)$/i;

/**
 * Every secret value in a config (tokens, passwords), longest first so a secret containing another
 * is masked whole. Short values (under 4 characters) are left out: masking them would garble
 * every message while protecting little.
 */
export function configSecrets(config: unknown): string[] {
  const found = new Set<string>();
  // Devices of one template share one tag list: each object is walked once (per secrecy).
  const seen = [new WeakSet<object>(), new WeakSet<object>()] as const;
  const walk = (v: unknown, secret: boolean): void => {
    if (v !== null && typeof v === "object") {
      if (seen[secret ? 1 : 0].has(v)) return;
      seen[secret ? 1 : 0].add(v);
    }
    if (typeof v === "string") {
      if (secret && v.length >= 4) found.add(v);
    } else if (Array.isArray(v)) {
      for (const x of v) walk(x, secret);
    } else if (v !== null && typeof v === "object") {
      for (const [k, x] of Object.entries(v)) walk(x, secret || SECRET_KEY.test(k));
    }
  };
  walk(config, false);
  return [...found].sort((a, b) => b.length - a.length);
}
