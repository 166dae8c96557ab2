/**
 * Every error Floorgate raises on purpose carries a stable `code` (for metrics, tests and operators)
 * and, when it wraps another failure, that failure as `cause`. Whoever handles an error logs it once.
 */
export type ErrorCode =
  | "CONFIG_INVALID"
  | "CONFIG_READ"
  | "JOURNAL_FULL"
  | "JOURNAL_IO"
  | "JOURNAL_UNAVAILABLE"
  | "JOURNAL_CLOSED"
  | "JOURNAL_CORRUPT"
  | "OUTPUT_UNAVAILABLE"
  | "OUTPUT_REJECTED"
  | "OUTPUT_TIMEOUT"
  | "DRIVER_TIMEOUT"
  | "DRIVER_TRANSPORT"
  | "DRIVER_EXCEPTION"
  | "DRIVER_PROTOCOL"
  | "WRITE_REFUSED"
  | "PORT_IN_USE"
  | "ABORTED"
  | "USAGE";

export class FloorgateError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = "FloorgateError";
  }
}

export function isFloorgateError(err: unknown, code?: ErrorCode): err is FloorgateError {
  return err instanceof FloorgateError && (code === undefined || err.code === code);
}

/** A short, log-safe description of any thrown value. */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === "string" ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}
