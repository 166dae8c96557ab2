import type { ServerResponse } from "node:http";

/** Reasons counted in `floorgate_ingest_rejects_total` for refusals the HTTP layer decides itself. */
export type HttpRejectReason =
  | "bad_request" | "unauthorized" | "forbidden" | "too_large" | "rate_limited" | "journal_full" | "not_found" | "method"
  /** Host header not loopback on a loopback listener without operator tokens (DNS rebinding) */
  | "bad_host"
  /** headers or body not received within the limits (slowloris) */
  | "timeout"
  /** connection refused at `maxConnections` */
  | "connection_limit";

const API_HEADERS = {
  "Cache-Control": "no-store",
  "X-Content-Type-Options": "nosniff",
} as const;

/**
 * Sends a complete response with a Content-Length (keep-alive friendly; no chunked encoding).
 * A string body goes to `res.end` as is: Node then writes head and body in one piece instead of
 * a two-buffer writev, and no Buffer is made for it.
 */
export function send(
  res: ServerResponse,
  status: number,
  body: string | Buffer,
  contentType: string,
  headers?: Record<string, string | number | string[]>,
): void {
  if (res.headersSent || res.destroyed) return;
  const length = typeof body === "string" ? Buffer.byteLength(body, "utf8") : body.length;
  const head: Record<string, string | number | string[]> = {
    "Cache-Control": API_HEADERS["Cache-Control"],
    "X-Content-Type-Options": API_HEADERS["X-Content-Type-Options"],
    "Content-Type": contentType,
    "Content-Length": length,
  };
  if (headers !== undefined) for (const k in headers) head[k] = headers[k]!;
  res.writeHead(status, head);
  res.end(body);
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers?: Record<string, string | number | string[]>): void {
  send(res, status, JSON.stringify(body), "application/json; charset=utf-8", headers);
}

/** Errors are always `{"error": "..."}` (plus `problems` for validation failures). */
export function sendError(res: ServerResponse, status: number, error: string, headers?: Record<string, string | number | string[]>): void {
  sendJson(res, status, { error }, headers);
}
