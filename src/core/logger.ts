import { pino, type Logger, type DestinationStream } from "pino";

export type { Logger };

/**
 * Paths redacted from every log line: secrets never reach a log, whatever object is logged.
 * Keep this list in one place so every child logger inherits it.
 */
export const REDACT_PATHS = [
  "token", "*.token", "password", "*.password", "authorization", "*.authorization",
  "headers.authorization", "req.headers.authorization", "operatorTokens", "*.operatorTokens",
  "tokenHash", "*.tokenHash", "key", "*.key", "url", "*.url",
];

export interface LoggerOptions {
  level?: string;
  pretty?: boolean;
  destination?: DestinationStream;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const base = {
    level: opts.level ?? process.env.FLOORGATE_LOG_LEVEL ?? "info",
    redact: { paths: REDACT_PATHS, censor: "[redacted]" },
    base: { name: "floorgate" },
  };
  if (opts.pretty) {
    return pino({ ...base, transport: { target: "pino-pretty", options: { colorize: true } } });
  }
  return opts.destination ? pino(base, opts.destination) : pino(base);
}

/** Strips credentials from a URL before it is logged or shown. */
export function safeUrl(raw: string): string {
  try {
    const u = new URL(raw);
    if (u.username || u.password) { u.username = u.username ? "***" : ""; u.password = ""; }
    u.search = u.search ? "?…" : "";
    return u.toString();
  } catch {
    return "[unparseable url]";
  }
}
