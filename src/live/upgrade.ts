import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { bearerToken, type OperatorTokens } from "../http/tokens.js";

/** Why an upgrade to `/live` was refused: the label of `floorgate_live_refused_total`. */
export type UpgradeRefusal = "not_found" | "bad_host" | "forbidden_origin" | "unauthorized" | "too_many_clients" | "bad_request";

export type UpgradeCheck = { ok: true } | { ok: false; status: 400 | 401 | 403 | 404 | 503; reason: UpgradeRefusal; error: string };

/** `https://Hmi.Plant.local:443/` → `https://hmi.plant.local`; undefined when not an http(s) origin. */
export function normalOrigin(origin: string): string | undefined {
  let u: URL;
  try {
    u = new URL(origin);
  } catch {
    return undefined;
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") return undefined;
  if (u.username !== "" || u.password !== "") return undefined;
  return `${u.protocol}//${u.host}`;
}

/**
 * Spec §5: an `Origin` that is not the gateway's own is refused unless listed in
 * `http.allowedOrigins`. "Own" is the origin the browser loaded the dashboard from, i.e. the one
 * whose host:port is the request's `Host` (whatever name or address the operator used to reach the
 * gateway; http or https, so a TLS proxy in front works). No `Origin` at all is not a browser
 * (HMIs, scripts): allowed, the token still applies. `Origin: null` (sandboxed frames, files) is
 * refused unless listed.
 */
export function originAllowed(origin: string | undefined, host: string | undefined, allowed: ReadonlySet<string>): boolean {
  if (origin === undefined) return true;
  const o = normalOrigin(origin);
  if (o === undefined) return allowed.has(origin);
  if (allowed.has(o)) return true;
  if (host === undefined) return false;
  const scheme = o.slice(0, o.indexOf(":"));
  return normalOrigin(`${scheme}://${host}`) === o;
}

export interface UpgradeRules {
  tokens: OperatorTokens;
  /** `http.allowedOrigins`, normalised with `normalOrigin` */
  allowedOrigins: ReadonlySet<string>;
  /** the HTTP listener's `Host` check (DNS rebinding guard on loopback listeners without tokens) */
  hostAllowed(req: IncomingMessage): boolean;
}

/** The path and query of a request target (origin-form or absolute-form). */
function pathAndQuery(target: string): { path: string; query: string } {
  let t = target;
  if (!t.startsWith("/")) {
    const i = t.indexOf("/", t.indexOf("//") + 2);
    t = i < 0 ? "/" : t.slice(i);
  }
  const q = t.indexOf("?");
  return q < 0 ? { path: t, query: "" } : { path: t.slice(0, q), query: t.slice(q + 1) };
}

/**
 * Everything decided before the WebSocket handshake, in the order a client is best told:
 * not `/live` (404), a foreign `Host` (403), a foreign `Origin` (403), no or an unknown token (401).
 * The token may come as `Authorization: Bearer …` or `?token=…` (browsers cannot set headers on a
 * WebSocket); a header, when present, is the one checked.
 */
export function checkUpgrade(req: IncomingMessage, rules: UpgradeRules): UpgradeCheck {
  const { path, query } = pathAndQuery(req.url ?? "/");
  if (path !== "/live") return { ok: false, status: 404, reason: "not_found", error: "not found: the WebSocket feed is at /live" };
  if (!rules.hostAllowed(req)) {
    return { ok: false, status: 403, reason: "bad_host", error: "Host header is not this loopback listener: refused (DNS rebinding guard)" };
  }
  const origin = req.headers.origin;
  if (!originAllowed(origin, req.headers.host, rules.allowedOrigins)) {
    return { ok: false, status: 403, reason: "forbidden_origin", error: "this Origin is not the gateway's own and not listed in http.allowedOrigins" };
  }
  if (rules.tokens.required) {
    const header = bearerToken(req.headers.authorization);
    const token = header ?? new URLSearchParams(query).get("token") ?? undefined;
    if (token === undefined) return { ok: false, status: 401, reason: "unauthorized", error: "operator token required (Authorization: Bearer … or ?token=…)" };
    if (!rules.tokens.verify(token)) return { ok: false, status: 401, reason: "unauthorized", error: "unknown operator token" };
  }
  return { ok: true };
}

const STATUS_TEXT: Record<number, string> = { 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 503: "Service Unavailable" };

/** Answers a refused upgrade with a small JSON body and closes the socket. */
export function refuseUpgrade(socket: Duplex, status: number, error: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify({ error });
  const extra = status === 401 ? "WWW-Authenticate: Bearer\r\n" : "";
  socket.end(`HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? "Error"}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}Connection: close\r\n\r\n${body}`);
  setTimeout(() => socket.destroy(), 1_000).unref();
}
