import type { IncomingMessage, Server } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer, type RawData, type ServerOptions, type WebSocket } from "ws";
import type { HttpConfig } from "../config/types.js";
import { describeError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import type { HealthReport } from "../core/status.js";
import { OperatorTokens } from "../http/tokens.js";
import { FanOut, type FanClient, type FanOutSource } from "./fan-out.js";
import type { LiveCounters } from "./metrics.js";
import { errorFrame, healthFrame, helloFrame, parseClientFrame, pongFrame, type FrameRejectReason } from "./protocol.js";
import { checkUpgrade, normalOrigin, refuseUpgrade } from "./upgrade.js";

/** What the feed reads from the gateway: the device table's tap and current state, and health. */
export interface LiveSource extends FanOutSource {
  gatewayId(): string;
  /** the `/healthz` report (src/runtime/status/health.ts) */
  health(): HealthReport;
}

/** Knobs that are not config: the defaults are what operators get; tests shorten them. */
export interface LiveOptions {
  /** `samples` frames at most this often (spec §5: 100 ms) */
  flushMs: number;
  /** `health` frames this often (spec §5: every second) */
  healthMs: number;
  /** a WebSocket ping this often; a client that answered nothing since the previous one is dropped */
  heartbeatMs: number;
  /** outbound cap per client: bytes sent but not yet read (ws `bufferedAmount`) */
  maxBufferedBytes: number;
  /** a client over its cap this long without a break is closed with 1013 */
  slowCloseMs: number;
  /** after the server's close frame, the TCP connection is dropped if the close handshake is not done within this */
  closeGraceMs: number;
  /** clients at most; past it an upgrade answers 503 */
  maxClients: number;
  /** client frames larger than this close the socket with 1009 (spec §5: 64 KiB) */
  maxPayload: number;
  /** the tap mailbox: distinct changed tags plus state changes it may hold between two flushes */
  tapMaxPending: number;
}

export const LIVE_DEFAULTS: Readonly<LiveOptions> = {
  flushMs: 100,
  healthMs: 1_000,
  heartbeatMs: 15_000,
  maxBufferedBytes: 1024 * 1024,
  slowCloseMs: 10_000,
  closeGraceMs: 5_000,
  maxClients: 10_000,
  maxPayload: 64 * 1024,
  tapMaxPending: 500_000,
};

export interface LiveDeps {
  /** the HTTP listener's server and its `Host` check (src/http/server.ts) */
  http: { server: Server; hostAllowed(req: IncomingMessage): boolean };
  /** `operatorTokens` and `allowedOrigins` */
  config: Pick<HttpConfig, "operatorTokens" | "allowedOrigins">;
  source: LiveSource;
  counters: LiveCounters;
  log: Logger;
  clock?: () => number;
  options?: Partial<LiveOptions>;
}

/**
 * The `/live` WebSocket feed (spec §5): the sockets, timers and client frames around the fan-out
 * (fan-out.ts). One hub per gateway, attached to the HTTP listener's `upgrade` event: it checks
 * path, Host, Origin and token before the handshake, says `hello`, answers `subscribe` and `ping`,
 * flushes at most every `flushMs`, sends `health` every `healthMs`, and pings every `heartbeatMs`.
 */
export class LiveHub {
  private readonly opts: LiveOptions;
  private readonly wss: WebSocketServer;
  private readonly fan: FanOut;
  private readonly sockets = new Map<FanClient, WebSocket>();
  private flushTimer: NodeJS.Timeout | undefined;
  private lastFlush = 0;
  private readonly healthTimer: NodeJS.Timeout;
  private readonly heartbeatTimer: NodeJS.Timeout;
  private readonly clock: () => number;
  private readonly hello: Buffer;
  private readonly tokens: OperatorTokens;
  private readonly allowedOrigins: ReadonlySet<string>;
  private readonly onUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  private stopped = false;

  constructor(private readonly deps: LiveDeps) {
    this.opts = { ...LIVE_DEFAULTS, ...deps.options };
    this.clock = deps.clock ?? Date.now;
    this.tokens = new OperatorTokens(deps.config.operatorTokens);
    this.allowedOrigins = new Set(deps.config.allowedOrigins.map((o) => normalOrigin(o) ?? o));
    this.hello = Buffer.from(helloFrame(deps.source.gatewayId()));
    this.fan = new FanOut({ source: deps.source, counters: deps.counters, log: deps.log, options: this.opts, requestFlush: () => this.scheduleFlush() });
    // `closeTimeout` (ws ≥ 8.19, not in @types/ws yet): how long a close handshake may take
    // before ws drops the TCP connection; a stalled client never answers its 1013.
    const wsOptions: ServerOptions & { closeTimeout: number } = {
      noServer: true,
      clientTracking: false,
      maxPayload: this.opts.maxPayload,
      // permessage-deflate fragments memory badly under many sockets (ws #1202, #1848): off.
      perMessageDeflate: false,
      closeTimeout: this.opts.closeGraceMs,
    };
    this.wss = new WebSocketServer(wsOptions);
    // Without this listener ws answers a bad handshake itself; with it, it is counted too.
    this.wss.on("wsClientError", (err: Error, socket: Duplex) => {
      deps.counters.refusedUpgrade("bad_request");
      refuseUpgrade(socket, 400, `bad WebSocket handshake: ${err.message.slice(0, 120)}`);
    });
    this.onUpgrade = (req, socket, head) => this.upgrade(req, socket, head);
    deps.http.server.on("upgrade", this.onUpgrade);
    this.healthTimer = setInterval(() => this.healthTick(), this.opts.healthMs);
    this.healthTimer.unref();
    this.heartbeatTimer = setInterval(() => this.heartbeatTick(), this.opts.heartbeatMs);
    this.heartbeatTimer.unref();
  }

  /** clients connected now */
  get size(): number {
    return this.fan.clients.size;
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // Before anything else: a reset during the handshake must not become an uncaught 'error'.
    socket.on("error", () => socket.destroy());
    const check = checkUpgrade(req, { tokens: this.tokens, allowedOrigins: this.allowedOrigins, hostAllowed: this.deps.http.hostAllowed });
    if (!check.ok) {
      this.deps.counters.refusedUpgrade(check.reason);
      refuseUpgrade(socket, check.status, check.error);
      return;
    }
    if (this.stopped || this.fan.clients.size >= this.opts.maxClients) {
      this.deps.counters.refusedUpgrade("too_many_clients");
      refuseUpgrade(socket, 503, this.stopped ? "the gateway is stopping" : `${this.opts.maxClients} live clients connected already`);
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws));
  }

  private accept(ws: WebSocket): void {
    const c = this.fan.add({
      get bufferedAmount() { return ws.bufferedAmount; },
      send(data) {
        if (ws.readyState !== 1) return false;
        ws.send(data, { binary: false });
        return true;
      },
      close(code, reason) { ws.close(code, reason); },
    });
    this.sockets.set(c, ws);
    // ws emits 'error' for frames it refuses (too big, not valid WebSocket): without a listener
    // that would crash the process (ws #1777, #2019, #2055). ws closes the socket itself.
    ws.on("error", (err: Error & { code?: string }) => {
      const tooLarge = err.code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH";
      this.deps.counters.rejected(tooLarge ? "too_large" : "protocol_error");
      c.closing ??= tooLarge ? "too_large" : "protocol_error";
      this.deps.log.debug({ err: describeError(err) }, "live: client frame refused by the WebSocket layer");
    });
    ws.on("pong", () => { c.alive = true; });
    ws.on("message", (data: RawData, isBinary: boolean) => this.message(c, data, isBinary));
    ws.once("close", () => {
      this.sockets.delete(c);
      this.fan.remove(c);
    });
    this.fan.send(c, this.hello, "hello");
  }

  private message(c: FanClient, data: RawData, isBinary: boolean): void {
    c.alive = true;
    if (c.closing !== undefined) return;
    if (isBinary) return this.refuse(c, "not_text", "binary frames are not accepted: send JSON text frames", 1003);
    const text = Buffer.isBuffer(data) ? data.toString("utf8") : Array.isArray(data) ? Buffer.concat(data).toString("utf8") : Buffer.from(data).toString("utf8");
    const parsed = parseClientFrame(text);
    if (!parsed.ok) return this.refuse(c, parsed.reason, parsed.error, 1008);
    const f = parsed.frame;
    if (f.type === "ping") return this.fan.send(c, Buffer.from(pongFrame(this.clock())), "pong");
    this.fan.subscribe(c, f.subscription, this.clock());
  }

  /** A bad client frame: said in an `error` frame, counted, and the socket closed. */
  private refuse(c: FanClient, reason: FrameRejectReason, error: string, code: number): void {
    this.deps.counters.rejected(reason);
    this.fan.send(c, Buffer.from(errorFrame(reason, error)), "error");
    this.fan.closeClient(c, "bad_frame", code, closeReason(error));
  }

  private scheduleFlush(): void {
    if (this.flushTimer !== undefined || this.stopped) return;
    const wait = Math.max(0, this.lastFlush + this.opts.flushMs - this.clock());
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      const now = this.clock();
      this.lastFlush = now;
      this.fan.flush(now);
    }, wait);
    this.flushTimer.unref();
  }

  private healthTick(): void {
    if (this.fan.clients.size === 0) return;
    const now = this.clock();
    let frame: Buffer;
    try {
      frame = Buffer.from(healthFrame(this.deps.source.health(), now));
    } catch (err) {
      this.deps.log.warn({ err: describeError(err) }, "live: health report failed");
      return;
    }
    this.fan.broadcast(frame, "health", now);
  }

  private heartbeatTick(): void {
    for (const [c, ws] of this.sockets) {
      if (!c.alive) {
        c.closing ??= "heartbeat";
        ws.terminate();
        continue;
      }
      c.alive = false;
      try {
        ws.ping();
      } catch {
        // not open (closing already): its close event follows
      }
    }
  }

  /** Closes every client (1001) and detaches from the listener; resolves once all sockets are gone. */
  async close(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.healthTimer);
    clearInterval(this.heartbeatTimer);
    if (this.flushTimer !== undefined) clearTimeout(this.flushTimer);
    this.fan.stop();
    this.deps.http.server.off("upgrade", this.onUpgrade);
    const gone: Promise<void>[] = [];
    for (const [c, ws] of this.sockets) {
      gone.push(new Promise((resolve) => ws.once("close", () => resolve())));
      c.closing ??= "shutdown";
      ws.close(1001, "gateway stopping");
    }
    const all = Promise.all(gone).then(() => undefined);
    await Promise.race([all, new Promise<void>((resolve) => setTimeout(resolve, 1_000).unref())]);
    for (const ws of this.sockets.values()) ws.terminate();
    this.wss.close();
  }
}

/** A close frame's reason: at most 123 bytes of UTF-8. */
function closeReason(text: string): string {
  let s = text.slice(0, 123);
  while (Buffer.byteLength(s) > 123) s = s.slice(0, -1);
  return s;
}
