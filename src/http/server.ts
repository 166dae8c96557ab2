import http, { type IncomingMessage, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { GatewayConfig } from "../config/types.js";
import { isIPv4 } from "node:net";
import { isLoopback } from "../core/net.js";
import { describeError, FloorgateError, isFloorgateError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import type { SampleValue } from "../core/sample.js";
import type { Ingest, IngestReply } from "../ingest/ingest.js";
import type { LabelledCounter } from "../core/counters.js";
import type { DeviceInfo, StatusView, TagValue } from "../core/status.js";
import { discardRest, readBody } from "./body.js";
import { DASHBOARD_ASSETS, defaultPublicDirs, loadAsset, loadDashboard, PAGE_HEADERS } from "./dashboard.js";
import { send, sendError, sendJson, type HttpRejectReason } from "./respond.js";
import { matchRoute, type Route } from "./routes.js";
import { bearerToken, OperatorTokens } from "./tokens.js";

/** The counters and exposition the listener needs: the runtime's Metrics satisfies it. */
export interface HttpMetrics {
  /** every refusal, by reason (`floorgate_ingest_rejects_total`) */
  readonly ingestRejects: LabelledCounter<"reason">;
  /** the Prometheus text for GET /metrics */
  text(): Promise<string>;
}

/** What the HTTP listener needs from the rest of the gateway. */
export interface HttpDeps {
  /** the validated config: `http` (operator tokens), `ingest` (http on/off), `devices` (write-back targets) */
  config: GatewayConfig;
  /** read-only view for /healthz and /api/v1 */
  status: StatusView;
  /** /metrics, and every refusal is counted in `ingestRejects` */
  metrics: HttpMetrics;
  /**
   * device push (shared with the MQTT listener): `POST /api/v1/ingest/{id}` answers 404 when absent
   * or `config.ingest.http` is false; its devices are listed in /api/v1/devices either way (those
   * the status view does not list already, with the state the device table gives them)
   */
  ingest?: Ingest;
  /**
   * Write-back to a tag already checked to exist and be `writable: true` in the config. `value` is
   * the engineering value as sent by the operator. Resolves once the device confirmed; rejects with
   * FloorgateError WRITE_REFUSED (→ 400), DRIVER_TIMEOUT (→ 504), anything else (→ 502). Absent:
   * writes answer 501.
   */
  write?(device: string, tag: string, value: SampleValue): Promise<void>;
  log: Logger;
  /** folders searched for the dashboard's index.html; default `src/http/public` */
  publicDirs?: string[];
  clock?: () => number;
  /** default HTTP_LIMITS; tests shorten them */
  limits?: Partial<HttpLimits>;
}

/** What one client may hold of the listener: bounds connection floods and slowloris clients. */
export interface HttpLimits {
  /** open connections at most; a connection past it is closed at once and counted (`connection_limit`) */
  maxConnections: number;
  /** the request line and headers must be in within this many ms (a fresh connection counts from its start) */
  headersTimeoutMs: number;
  /** the whole request, body included, must be in within this many ms */
  requestTimeoutMs: number;
  /** an idle keep-alive connection is closed after this many ms */
  keepAliveTimeoutMs: number;
}

export const HTTP_LIMITS: Readonly<HttpLimits> = {
  // Upgraded /live sockets count too: the feed takes at most 10,000 (src/live), which leaves as
  // many for the REST API and device pushes.
  maxConnections: 20_000,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 10_000,
};

/**
 * True when a `Host` header names this loopback listener: `localhost`, a 127.0.0.0/8 address or
 * `[::1]`, with the listener's port (absent only for port 80). Anything else on a loopback listener
 * is a browser that was pointed at it through a name an attacker controls (DNS rebinding).
 */
export function isLoopbackHost(host: string, port: number): boolean {
  let name: string;
  let portText: string | undefined;
  const h = host.toLowerCase();
  if (h.startsWith("[")) {
    const end = h.indexOf("]");
    if (end < 0) return false;
    name = h.slice(1, end);
    const rest = h.slice(end + 1);
    if (rest !== "" && !rest.startsWith(":")) return false;
    portText = rest === "" ? undefined : rest.slice(1);
    if (name !== "::1") return false;
  } else {
    const colon = h.indexOf(":");
    name = colon < 0 ? h : h.slice(0, colon);
    portText = colon < 0 ? undefined : h.slice(colon + 1);
    if (name !== "localhost" && !(isIPv4(name) && name.startsWith("127."))) return false;
  }
  if (portText === undefined) return port === 80;
  return /^[0-9]{1,5}$/.test(portText) && Number(portText) === port;
}

export interface HttpServer {
  /** the underlying server (the live feed attaches its WebSocket upgrade handler here) */
  server: http.Server;
  /**
   * Resolves with the bound port (useful with port 0); rejects PORT_IN_USE when taken. On a
   * loopback `host` without operator tokens, requests whose `Host` is not loopback get 403.
   */
  listen(host: string, port: number): Promise<{ port: number }>;
  /**
   * The `Host` check of `listen` for handlers outside the request path (the WebSocket upgrade):
   * true when the request may be served.
   */
  hostAllowed(req: IncomingMessage): boolean;
  /** Stops accepting, lets requests in flight finish for up to `graceMs`, then drops connections. */
  close(graceMs?: number): Promise<void>;
}

/** Body cap for POSTs other than ingest (write-back). */
export const OTHER_POST_LIMIT = 64 * 1024;
const MAX_WRITE_STRING = 1024;

export function createHttpServer(deps: HttpDeps): HttpServer {
  const { config, status, metrics, log } = deps;
  const clock = deps.clock ?? Date.now;
  const operators = new OperatorTokens(config.http.operatorTokens);
  /** answers POST /api/v1/ingest; the device list and tags use `deps.ingest` (MQTT pushes count too) */
  const ingest = config.ingest.http ? deps.ingest : undefined;
  const pushed = deps.ingest;
  const publicDirs = deps.publicDirs ?? defaultPublicDirs();
  const writableTags = new Map<string, Map<string, boolean>>();
  for (const d of config.devices) writableTags.set(d.id, new Map(d.tags.map((t) => [t.name, t.writable])));

  const limits: HttpLimits = { ...HTTP_LIMITS, ...deps.limits };
  const server = http.createServer({
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // Node checks the two timeouts above only this often (default 30 s, which would triple them).
    connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(limits.headersTimeoutMs / 4))),
  });
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  server.maxConnections = limits.maxConnections;
  let lastDropLog = -Infinity;
  server.on("drop", () => {
    metrics.ingestRejects.inc({ reason: "connection_limit" });
    const now = clock();
    if (now - lastDropLog >= 60_000) {
      lastDropLog = now;
      log.warn({ maxConnections: limits.maxConnections }, "http: connection limit reached; new connections are closed until some end");
    }
  });

  /** Set by `listen`: the port a loopback listener without operator tokens checks `Host` against. */
  let guardPort: number | undefined;
  const hostAllowed = (req: IncomingMessage): boolean => {
    if (guardPort === undefined) return true;
    const host = req.headers.host;
    // No Host at all (HTTP/1.0 tools): not what a browser sends, so not a rebinding attempt.
    return host === undefined || isLoopbackHost(host, guardPort);
  };

  /** Requests sent with `Expect: 100-continue` whose body we asked for (see `checkContinue`). */
  const continued = new WeakSet<IncomingMessage>();
  const awaitsContinue = (req: IncomingMessage) => /100-continue/i.test(req.headers.expect ?? "") && !continued.has(req);

  /**
   * Ends a request answered without its body. A client waiting for `100 Continue` never sends
   * the body, so its connection is closed; otherwise the leftover is discarded boundedly.
   */
  const dropBody = (req: IncomingMessage, headers: Record<string, string | number | string[]>): void => {
    if (awaitsContinue(req)) headers.Connection = "close";
    else discardRest(req);
  };

  /** Refusal: counted, JSON, and the unread part of the body is dropped. */
  const refuse = (req: IncomingMessage, res: ServerResponse, status: number, reason: HttpRejectReason, error: string, headers: Record<string, string | number | string[]> = {}): void => {
    metrics.ingestRejects.inc({ reason });
    dropBody(req, headers);
    sendError(res, status, error, headers);
  };

  /** Reads a body, first asking for it when the client waits for `100 Continue`. */
  const body = (req: IncomingMessage, res: ServerResponse, limit: number) => {
    if (awaitsContinue(req)) {
      const declared = Number(req.headers["content-length"]);
      if (!(declared > limit)) {
        continued.add(req);
        res.writeContinue();
      }
    }
    return readBody(req, limit);
  };

  const operatorOk = (req: IncomingMessage, query: string, allowQueryToken: boolean): boolean => {
    if (!operators.required) return true;
    const header = bearerToken(req.headers.authorization);
    if (header !== undefined) return operators.verify(header);
    if (allowQueryToken) {
      const q = new URLSearchParams(query).get("token");
      if (q !== null) return operators.verify(q);
    }
    return false;
  };

  const sendIngestReply = (req: IncomingMessage, res: ServerResponse, reply: IngestReply): void => {
    // 202 is the hot path: no extra headers, nothing left to drop.
    if (reply.status === 202 && reply.retryAfterSec === undefined) return sendJson(res, 202, reply.body);
    const headers: Record<string, string | number | string[]> = {};
    if (reply.retryAfterSec !== undefined) headers["Retry-After"] = String(Math.max(1, Math.ceil(reply.retryAfterSec)));
    if (reply.status !== 202) dropBody(req, headers);
    sendJson(res, reply.status, reply.body, headers);
  };

  /**
   * The status view's devices, then pushing devices it does not list. In the daemon both read the
   * one device table, so the second part adds nothing; an ingest with a table of its own (a
   * listener without a runtime) still has its devices listed. State is never derived here.
   */
  const devicesList = (): DeviceInfo[] => {
    const out = [...status.devices()];
    if (!pushed) return out;
    const listed = new Set(out.map((d) => d.id));
    for (const p of pushed.devices()) {
      if (listed.has(p.id)) continue;
      out.push({ id: p.id, driver: "ingest", state: p.state, error: p.error, lastSampleTs: p.lastSampleTs, counters: { ...p.counters } });
    }
    return out;
  };

  /** Marks the tags an operator may write (`writable: true`), so the dashboard offers a write button on those only. */
  const withWritable = (device: string, tags: TagValue[]): (TagValue & { writable?: true })[] => {
    const w = writableTags.get(device);
    if (!w) return tags;
    return tags.map((t) => (w.get(t.tag) === true ? { ...t, writable: true as const } : t));
  };

  const handleIngest = async (req: IncomingMessage, res: ServerResponse, device: string): Promise<void> => {
    const ing = ingest!;
    const early = ing.authenticate(device, bearerToken(req.headers.authorization)) ?? ing.throttle(device);
    if (early) return sendIngestReply(req, res, early);
    const got = await body(req, res, ing.maxPayloadBytes);
    if (!got.ok) {
      if (got.reason === "aborted") return; // client went away: nothing to answer, nothing stored
      return refuse(req, res, 413, "too_large", `payload over ${ing.maxPayloadBytes} bytes`);
    }
    sendIngestReply(req, res, await ing.accept(device, got.body));
  };

  const handleWrite = async (req: IncomingMessage, res: ServerResponse, device: string, tag: string): Promise<void> => {
    // Spec §4: write-back always needs an operator token, so it stays off until tokens are configured.
    if (!operators.required) return refuse(req, res, 403, "forbidden", "write-back needs http.operatorTokens in the config");
    const tags = writableTags.get(device);
    if (!tags) return refuse(req, res, 404, "not_found", `unknown device ${JSON.stringify(device)}`);
    const writable = tags.get(tag);
    if (writable === undefined) return refuse(req, res, 404, "not_found", `unknown tag ${JSON.stringify(tag)} on device ${device}`);
    if (!writable) return refuse(req, res, 403, "forbidden", `tag ${tag} is not writable (set writable: true in the config)`);
    const got = await body(req, res, OTHER_POST_LIMIT);
    if (!got.ok) {
      if (got.reason === "aborted") return;
      return refuse(req, res, 413, "too_large", `body over ${OTHER_POST_LIMIT} bytes`);
    }
    const parsed = parseWriteBody(got.body);
    if (!parsed.ok) {
      metrics.ingestRejects.inc({ reason: "bad_request" });
      return sendJson(res, 400, { error: "invalid write body", problems: parsed.problems });
    }
    if (!deps.write) return sendError(res, 501, "write-back is not available on this gateway");
    try {
      await deps.write(device, tag, parsed.value);
    } catch (err) {
      const msg = describeError(err);
      if (isFloorgateError(err, "WRITE_REFUSED")) {
        metrics.ingestRejects.inc({ reason: "bad_request" });
        return sendError(res, 400, `write refused: ${err.message}`);
      }
      if (isFloorgateError(err, "DRIVER_TIMEOUT")) return sendError(res, 504, `device did not answer the write in time: ${err.message}`);
      log.warn({ device, tag, err: msg }, "write-back failed");
      return sendError(res, 502, `write failed: ${msg}`);
    }
    log.info({ device, tag }, "write-back done");
    sendJson(res, 200, { status: "written", device, tag, value: parsed.value });
  };

  const dispatch = async (req: IncomingMessage, res: ServerResponse, route: Route, query: string): Promise<void> => {
    switch (route.name) {
      case "healthz": {
        const h = status.health();
        return sendJson(res, h.journalAccepting ? 200 : 503, { status: h.status, devices: h.devices, outputs: h.outputs, journal: h.journal, ...(h.ingest ? { ingest: h.ingest } : {}) });
      }
      case "metrics":
        return send(res, 200, await metrics.text(), "text/plain; version=0.0.4; charset=utf-8");
      case "ingest":
        if (!ingest) return refuse(req, res, 404, "not_found", "not found");
        return handleIngest(req, res, route.device);
      case "dashboard": {
        // The page holds no data (everything it shows comes through the operator routes and
        // /live), so it is served either way; without a known token it is the 401 answer, and
        // the page asks for the token unless this tab's session already holds one (a reload
        // sends no Authorization header: the token lives in the page's sessionStorage).
        const known = operatorOk(req, query, true);
        if (!known) metrics.ingestRejects.inc({ reason: "unauthorized" });
        return send(res, known ? 200 : 401, await loadDashboard(publicDirs), "text/html; charset=utf-8", PAGE_HEADERS);
      }
      case "asset": {
        const text = await loadAsset(publicDirs, route.file);
        if (text === undefined) return refuse(req, res, 404, "not_found", "not found");
        return send(res, 200, text, DASHBOARD_ASSETS[route.file]!.type, PAGE_HEADERS);
      }
    }
    // Everything below is an operator route.
    if (!operatorOk(req, query, false)) {
      const missing = bearerToken(req.headers.authorization) === undefined;
      return refuse(req, res, 401, "unauthorized", missing ? "operator token required (Authorization: Bearer …)" : "unknown operator token", { "WWW-Authenticate": "Bearer" });
    }
    switch (route.name) {
      case "devices":
        return sendJson(res, 200, { devices: devicesList() });
      case "tags": {
        const tags = status.tags(route.device);
        if (tags !== undefined) return sendJson(res, 200, { device: route.device, tags: withWritable(route.device, tags) });
        if (pushed?.device(route.device)) return sendJson(res, 200, { device: route.device, tags: [] });
        return refuse(req, res, 404, "not_found", `unknown device ${JSON.stringify(route.device)}`);
      }
      case "write":
        return handleWrite(req, res, route.device, route.tag);
    }
  };

  const onRequest = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (!hostAllowed(req)) {
      return refuse(req, res, 403, "bad_host",
        "Host header is not this loopback listener (localhost, 127.0.0.1 or [::1] with its port): refused, as a browser pointed here through another name could be a DNS rebinding attack");
    }
    const m = matchRoute(req.url ?? "/");
    if (!m.ok) return refuse(req, res, m.status, m.status === 400 ? "bad_request" : "not_found", m.error);
    if (!m.methods.includes(req.method ?? "")) {
      return refuse(req, res, 405, "method", `method ${req.method ?? "?"} not allowed here`, { Allow: m.methods.join(", ") });
    }
    await dispatch(req, res, m.route, m.query);
  };

  const onAnyRequest = (req: IncomingMessage, res: ServerResponse) => {
    onRequest(req, res).catch((err: unknown) => {
      // The path only: a query may hold a token.
      log.error({ err: describeError(err), method: req.method, path: (req.url ?? "").split("?")[0]?.slice(0, 200) }, "http handler failed");
      const headers: Record<string, string> = {};
      dropBody(req, headers);
      sendError(res, 500, "internal error", headers);
    });
  };
  server.on("request", onAnyRequest);
  // With this listener Node no longer sends 100 Continue by itself: `body()` does, once a push is admitted.
  server.on("checkContinue", onAnyRequest);

  // Malformed requests never reach "request": answer like Node would, but count them and in JSON.
  server.on("clientError", (err: NodeJS.ErrnoException, socket: Socket) => {
    // Like Node's default: answer only when no response of this socket has started, else just drop it.
    const inflight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (err.code === "ECONNRESET" || !socket.writable || inflight?.headersSent) {
      socket.destroy();
      return;
    }
    const [code, text, reason] =
      err.code === "HPE_HEADER_OVERFLOW" ? [431, "Request Header Fields Too Large", "too_large"] as const
      : err.code === "ERR_HTTP_REQUEST_TIMEOUT" || err.code === "HPE_HEADERS_TIMEOUT" ? [408, "Request Timeout", "timeout"] as const
      : [400, "Bad Request", "bad_request"] as const;
    metrics.ingestRejects.inc({ reason });
    const body = JSON.stringify({ error: `malformed request: ${text.toLowerCase()}` });
    socket.end(`HTTP/1.1 ${code} ${text}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    setTimeout(() => socket.destroy(), 1_000).unref();
  });

  return {
    server,
    hostAllowed,
    listen(host, port) {
      return new Promise((resolve, reject) => {
        const onError = (err: NodeJS.ErrnoException) => {
          server.off("listening", onListening);
          reject(err.code === "EADDRINUSE"
            ? new FloorgateError("PORT_IN_USE", `http: ${host}:${port} is already in use`, { cause: err })
            : err);
        };
        const onListening = () => {
          server.off("error", onError);
          const addr = server.address();
          const bound = typeof addr === "object" && addr !== null ? addr.port : port;
          if (isLoopback(host) && !operators.required) guardPort = bound;
          log.info({ host, port: bound }, "http listening");
          resolve({ port: bound });
        };
        server.once("error", onError);
        server.once("listening", onListening);
        server.listen(port, host);
      });
    },
    close(graceMs = 5_000) {
      if (!server.listening) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const timer = setTimeout(() => server.closeAllConnections(), graceMs);
        timer.unref();
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        server.closeIdleConnections();
      });
    },
  };
}

type WriteParse = { ok: true; value: SampleValue } | { ok: false; problems: { path: string; message: string }[] };

/** `{"value": number|boolean|string|null}` and nothing else. */
export function parseWriteBody(body: Buffer): WriteParse {
  let raw: unknown;
  try {
    raw = JSON.parse(body.toString("utf8"));
  } catch (err) {
    return { ok: false, problems: [{ path: "", message: `invalid JSON: ${(err instanceof Error ? err.message : String(err)).slice(0, 200)}` }] };
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    return { ok: false, problems: [{ path: "", message: 'expected an object {"value": …}' }] };
  }
  const problems: { path: string; message: string }[] = [];
  for (const k of Object.keys(raw)) if (k !== "value") problems.push({ path: k.slice(0, 40), message: "unknown key (allowed: value)" });
  if (!Object.prototype.hasOwnProperty.call(raw, "value")) problems.push({ path: "value", message: "required" });
  const v = (raw as { value?: unknown }).value;
  if (problems.length === 0) {
    if (v === null || typeof v === "boolean") return { ok: true, value: v };
    if (typeof v === "number" && Number.isFinite(v)) return { ok: true, value: v };
    if (typeof v === "string" && v.length <= MAX_WRITE_STRING) return { ok: true, value: v };
    problems.push({ path: "value", message: "expected a finite number, a boolean, a string of at most 1024 characters or null" });
  }
  return { ok: false, problems };
}
