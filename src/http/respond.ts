import type { ServerResponse } from "node:http";

/** Reasons counted in `floorgate_ingest_rejects_total` for refusals the HTTP layer decides itself. */
export type HttpRejectReason =
  | "bad_request" | "unauthorized" | "forbidden" | "too_large" | "rate_limited" | "journal_full" | "not_found" | "method";

const API_HEADERS = {
  "Cache-Control": "no-store",
  "X-Content-Type-Options": "nosniff",
} as const;

/** Sends a complete response with a Content-Length (keep-alive friendly; no chunked encoding). */
export function send(
  res: ServerResponse,
  status: number,
  body: string | Buffer,
  contentType: string,
  headers: Record<string, string | number | string[]> = {},
): void {
  if (res.headersSent || res.destroyed) return;
  const buf = typeof body === "string" ? Buffer.from(body, "utf8") : body;
  res.writeHead(status, {
    ...API_HEADERS,
    "Content-Type": contentType,
    "Content-Length": buf.length,
    ...headers,
  });
  res.end(buf);
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string | number | string[]> = {}): void {
  send(res, status, JSON.stringify(body), "application/json; charset=utf-8", headers);
}

/** Errors are always `{"error": "..."}` (plus `problems` for validation failures). */
export function sendError(res: ServerResponse, status: number, error: string, headers: Record<string, string | number | string[]> = {}): void {
  sendJson(res, status, { error }, headers);
}
