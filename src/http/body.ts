import type { IncomingMessage } from "node:http";

export type BodyResult = { ok: true; body: Buffer } | { ok: false; reason: "too_large" | "aborted" };

/**
 * Reads a request body up to `limit` bytes. A declared Content-Length over the limit is refused
 * before a byte is read; a chunked body is counted while it streams and reading stops at the
 * first byte over the limit (the caller then answers 413 and calls `discardRest`). Never rejects.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<BodyResult> {
  const declared = req.headers["content-length"];
  if (declared !== undefined && Number(declared) > limit) return Promise.resolve({ ok: false, reason: "too_large" });
  if (req.complete) return Promise.resolve({ ok: true, body: Buffer.alloc(0) });
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (r: BodyResult) => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onAbort);
      req.off("close", onClose);
      resolve(r);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        chunks.length = 0;
        finish({ ok: false, reason: "too_large" });
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => finish({ ok: true, body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size) });
    const onAbort = () => finish({ ok: false, reason: "aborted" });
    const onClose = () => { if (!req.complete) onAbort(); };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onAbort);
    req.on("close", onClose);
  });
}

/**
 * Called when the server answers without reading the whole body (413, or a refusal before the
 * body was read). Node would otherwise read and discard an arbitrarily large body to keep the
 * connection alive; we discard at most `maxBytes` more within `maxMs`, then drop the connection.
 * Lingering a little (instead of destroying at once) lets the client read the answer before the
 * socket resets, and a small leftover body keeps the keep-alive connection usable.
 */
export function discardRest(req: IncomingMessage, maxBytes = 1 << 20, maxMs = 2_000): void {
  if (req.complete || req.destroyed) return;
  let seen = 0;
  const timer = setTimeout(() => cut(), maxMs);
  timer.unref();
  const cut = () => {
    clearTimeout(timer);
    req.off("data", onData);
    req.socket?.destroy();
  };
  const onData = (chunk: Buffer) => {
    seen += chunk.length;
    if (seen > maxBytes) cut();
  };
  req.on("data", onData);
  req.on("error", () => clearTimeout(timer));
  req.once("end", () => clearTimeout(timer));
  req.once("close", () => clearTimeout(timer));
  req.resume();
}
