/**
 * How the journal treats a failed disk operation.
 *
 * - transient: the disk is full or the process is out of file descriptors. Nothing on disk is
 *   wrong; the commit is undone (the file cut back to its last good frame), the appends it
 *   carried are refused (JOURNAL_UNAVAILABLE: ingest answers 503, polls count drops) and the
 *   journal tries again after a backoff, recovering by itself when the condition passes.
 * - fatal: an fsync failed, or the device reports an I/O error. After a failed fsync Linux may
 *   have dropped the dirty pages and cleared the error, so a later fsync "succeeding" proves
 *   nothing: the journal stops for good and the daemon exits so that recovery re-reads the disk.
 *
 * Anything else (a permission changed, the directory removed) is treated as transient too: it
 * may be fixed by an operator while the daemon keeps serving, and it is retried with backoff.
 */
export type DiskErrorKind = "transient" | "fatal";

const FATAL = new Set(["EIO", "EROFS", "EUCLEAN", "EBADMSG"]);

export function errnoOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** `duringSync`: the error came from fsync/fdatasync, which is always fatal (see above). */
export function classifyDiskError(err: unknown, duringSync: boolean): DiskErrorKind {
  if (duringSync) return "fatal";
  const code = errnoOf(err);
  return code !== undefined && FATAL.has(code) ? "fatal" : "transient";
}

/** Words for operators: /healthz, the 503 body and the log say why the journal cannot write. */
export function describeDiskError(err: unknown): string {
  const code = errnoOf(err);
  switch (code) {
    case "ENOSPC":
    case "EDQUOT":
      return `disk full (${code})`;
    case "EMFILE":
    case "ENFILE":
      return `too many open files (${code})`;
    case "EAGAIN":
      return "resource temporarily unavailable (EAGAIN)";
    default:
      return code ? `${code}: ${(err as Error).message}` : String((err as Error)?.message ?? err);
  }
}

/** Backoff of the retries while the journal cannot write: 100 ms doubling to 5 s. */
export const UNWRITABLE_RETRY_MIN_MS = 100;
export const UNWRITABLE_RETRY_MAX_MS = 5_000;
