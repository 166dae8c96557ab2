import type { IncomingMessage, Server } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer, type RawData, type ServerOptions, type WebSocket } from "ws";
import type { HttpConfig } from "../config/types.js";
import type { DeviceStateChange, TapOptions, TapSubscription } from "../core/device-tap.js";
import { describeError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import type { DeviceState } from "../core/sample.js";
import type { HealthReport, TagValue } from "../core/status.js";
import { OperatorTokens } from "../http/tokens.js";
import { capVerdict, type CapState } from "./cap-policy.js";
import { PendingUpdates } from "./conflation.js";
import { globsMatcher, matchesEverything, type Matcher } from "./glob.js";
import type { LiveCloseReason, LiveCounters, LiveFrameType } from "./metrics.js";
import {
  errorFrame, healthFrame, helloFrame, parseClientFrame, pongFrame, samplesFrame, snapshotFrame, subscriptionKey,
  type DeviceFrame, type FrameRejectReason, type LiveSample, type SnapshotDevice, type Subscription,
} from "./protocol.js";
import { checkUpgrade, normalOrigin, refuseUpgrade } from "./upgrade.js";

/** What the feed reads from the gateway: the device table's tap and current state, and health. */
export interface LiveSource {
  gatewayId(): string;
  /** the device-state tap (src/core/device-tap.ts): the hub takes exactly one subscription */
  subscribe(opts: TapOptions): TapSubscription;
  states(): { id: string; state: DeviceState; error: string | null }[];
  /** latest value of each tag of a device; undefined when unknown */
  tags(device: string): TagValue[] | undefined;
  /** the `/healthz` report (src/runtime/status/health.ts) */
  health(): HealthReport;
}

/** Knobs that are not config: the defaults are what operators get; tests shorten them. */
export interface LiveOptions {
  /** `samples` frames at most this often (spec §5: 100 ms) */
  flushMs: number;
  /** `health` frames this often (spec §5: every second) */
  healthMs: number;
  /** a WebSocket ping this often; a client that answered none of the last one is closed */
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
  /** the hub's tap mailbox: distinct changed tags plus state changes it may hold between two flushes */
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

/** The clients that asked for the same globs: filtered and encoded once per flush for all of them. */
class Group {
  readonly clients = new Set<Client>();
  readonly allDevices: boolean;
  readonly allTags: boolean;
  private readonly deviceOk: Matcher;
  private readonly tagOk: Matcher;
  // Bounded caches of match results: a glob is tested once per id, not once per update.
  private readonly devCache = new Map<string, boolean>();
  private readonly tagCache = new Map<string, boolean>();

  constructor(readonly key: string, sub: Subscription) {
    this.deviceOk = globsMatcher(sub.devices);
    this.tagOk = globsMatcher(sub.tags);
    this.allDevices = matchesEverything(this.deviceOk);
    this.allTags = matchesEverything(this.tagOk);
  }

  get all(): boolean {
    return this.allDevices && this.allTags;
  }

  wantsDevice(id: string): boolean {
    return this.allDevices || cached(this.devCache, id, this.deviceOk);
  }

  wantsTag(tag: string): boolean {
    return this.allTags || cached(this.tagCache, tag, this.tagOk);
  }
}

function cached(cache: Map<string, boolean>, key: string, m: Matcher): boolean {
  let v = cache.get(key);
  if (v === undefined) {
    if (cache.size >= 50_000) cache.clear();
    v = m(key);
    cache.set(key, v);
  }
  return v;
}

interface Client {
  readonly ws: WebSocket;
  /** null until the client's first `subscribe` */
  group: Group | null;
  /** answered (pong or any frame) since the last heartbeat */
  alive: boolean;
  readonly cap: CapState;
  /** conflated updates held while over the cap */
  readonly pending: PendingUpdates;
  /** a `snapshot` is owed (after a subscribe, or after the hub's tap missed updates) */
  needsSnapshot: boolean;
  /** over its cap at the last flush: flushes keep coming until it is not */
  held: boolean;
  /** set once the server decided to close it; nothing more is sent */
  closing: LiveCloseReason | undefined;
  /** its close is counted already (at the decision: a stalled client's socket may linger for the close grace) */
  counted: boolean;
}

type Encoded = { data: Buffer; type: LiveFrameType };

/**
 * The `/live` WebSocket feed (spec §5). One hub per gateway, attached to the HTTP listener's
 * `upgrade` event. It holds ONE subscription on the device-state tap for all its clients and fans
 * out from there: per flush (at most every `flushMs`) it takes the tap's batch — state changes in
 * order, the latest value of each changed tag — filters and encodes it once per distinct
 * subscription, and writes the same bytes to every client of that subscription that is under its
 * outbound cap. A client over its cap is held: its updates are conflated (newest per tag) and sent
 * once it has drained, or it is closed with 1013 after `slowCloseMs`. See src/live/README.md.
 */
export class LiveHub {
  private readonly opts: LiveOptions;
  private readonly wss: WebSocketServer;
  private readonly clients = new Set<Client>();
  private readonly groups = new Map<string, Group>();
  /** encoded snapshot per group key; cleared whenever a flush carried anything */
  private readonly snapshots = new Map<string, Buffer>();
  private tap: TapSubscription | null = null;
  private subscribed = 0;
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
    return this.clients.size;
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
    if (this.stopped || this.clients.size >= this.opts.maxClients) {
      this.deps.counters.refusedUpgrade("too_many_clients");
      refuseUpgrade(socket, 503, this.stopped ? "the gateway is stopping" : `${this.opts.maxClients} live clients connected already`);
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws));
  }

  private accept(ws: WebSocket): void {
    const c: Client = { ws, group: null, alive: true, cap: { overSince: undefined }, pending: new PendingUpdates(), needsSnapshot: false, held: false, closing: undefined, counted: false };
    this.clients.add(c);
    this.deps.counters.clients = this.clients.size;
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
    ws.once("close", () => this.gone(c));
    this.send(c, this.hello, "hello");
  }

  private gone(c: Client): void {
    if (!this.clients.delete(c)) return;
    this.deps.counters.clients = this.clients.size;
    if (!c.counted) this.deps.counters.closed(c.closing ?? "client");
    this.leaveGroup(c);
    c.pending.clear();
  }

  private message(c: Client, data: RawData, isBinary: boolean): void {
    c.alive = true;
    if (c.closing !== undefined) return;
    if (isBinary) return this.refuse(c, "not_text", "binary frames are not accepted: send JSON text frames", 1003);
    const text = Buffer.isBuffer(data) ? data.toString("utf8") : Array.isArray(data) ? Buffer.concat(data).toString("utf8") : Buffer.from(data).toString("utf8");
    const parsed = parseClientFrame(text);
    if (!parsed.ok) return this.refuse(c, parsed.reason, parsed.error, 1008);
    const f = parsed.frame;
    if (f.type === "ping") return this.send(c, Buffer.from(pongFrame(this.clock())), "pong");
    this.subscribe(c, f.subscription);
  }

  /** A bad client frame: said in an `error` frame, counted, and the socket closed. */
  private refuse(c: Client, reason: FrameRejectReason, error: string, code: number): void {
    this.deps.counters.rejected(reason);
    this.send(c, Buffer.from(errorFrame(reason, error)), "error");
    c.closing = "bad_frame";
    c.ws.close(code, closeReason(error));
  }

  private subscribe(c: Client, sub: Subscription): void {
    const key = subscriptionKey(sub);
    if (c.group?.key !== key) {
      this.leaveGroup(c);
      let g = this.groups.get(key);
      if (g === undefined) {
        g = new Group(key, sub);
        this.groups.set(key, g);
      }
      g.clients.add(c);
      c.group = g;
      this.subscribed++;
      this.openTap();
    }
    c.pending.clear();
    c.needsSnapshot = true;
    this.deliverSnapshot(c, this.clock());
  }

  private leaveGroup(c: Client): void {
    const g = c.group;
    if (g === null) return;
    g.clients.delete(c);
    if (g.clients.size === 0) {
      this.groups.delete(g.key);
      this.snapshots.delete(g.key);
    }
    c.group = null;
    this.subscribed--;
    if (this.subscribed === 0) this.closeTap();
  }

  /** Sends the owed snapshot now when the client is under its cap; otherwise the flushes retry. */
  private deliverSnapshot(c: Client, now: number): void {
    const v = capVerdict(c.cap, c.ws.bufferedAmount, now, this.opts);
    if (v === "close") return this.closeSlow(c);
    if (v === "hold") {
      c.held = true;
      this.scheduleFlush();
      return;
    }
    c.held = false;
    c.needsSnapshot = false;
    c.pending.clear();
    this.send(c, this.snapshotOf(c.group!), "snapshot");
  }

  private snapshotOf(g: Group): Buffer {
    const hit = this.snapshots.get(g.key);
    if (hit !== undefined) return hit;
    const devices: SnapshotDevice[] = [];
    for (const d of this.deps.source.states()) {
      if (!g.wantsDevice(d.id)) continue;
      const tags = this.deps.source.tags(d.id) ?? [];
      devices.push({ id: d.id, state: d.state, error: d.error, tags: g.allTags ? tags : tags.filter((t) => g.wantsTag(t.tag)) });
    }
    const buf = Buffer.from(snapshotFrame(devices));
    this.snapshots.set(g.key, buf);
    return buf;
  }

  private openTap(): void {
    if (this.tap !== null || this.stopped) return;
    this.tap = this.deps.source.subscribe({ onReady: () => this.scheduleFlush(), maxPending: this.opts.tapMaxPending });
  }

  private closeTap(): void {
    this.tap?.close();
    this.tap = null;
  }

  private scheduleFlush(): void {
    if (this.flushTimer !== undefined || this.stopped) return;
    const wait = Math.max(0, this.lastFlush + this.opts.flushMs - this.clock());
    this.flushTimer = setTimeout(() => this.flush(), wait);
    this.flushTimer.unref();
  }

  /** One fan-out round: the tap's batch to every subscribed client, held ones retried. */
  private flush(): void {
    this.flushTimer = undefined;
    const now = this.clock();
    this.lastFlush = now;
    const states: DeviceFrame[] = [];
    const samples: LiveSample[] = [];
    if (this.tap !== null) {
      const batch = this.tap.take();
      if (batch.missed > 0) this.resync(batch.missed);
      for (const s of batch.states) states.push(deviceFrame(s));
      for (const { device, tags } of batch.values) {
        for (const t of tags) samples.push(t.unit === undefined
          ? { device, tag: t.tag, value: t.value, quality: t.quality, ts: t.ts }
          : { device, tag: t.tag, value: t.value, quality: t.quality, ts: t.ts, unit: t.unit });
      }
    }
    if (states.length > 0 || samples.length > 0) this.snapshots.clear();
    let held = 0;
    for (const g of this.groups.values()) {
      const gs = g.allDevices ? states : states.filter((s) => g.wantsDevice(s.id));
      const gv = g.all ? samples : samples.filter((s) => g.wantsDevice(s.device) && g.wantsTag(s.tag));
      const any = gs.length > 0 || gv.length > 0;
      let shared: Encoded[] | undefined;
      for (const c of g.clients) {
        if (c.closing !== undefined || (!any && !c.held)) continue;
        if (this.deliver(c, now, gs, gv, () => (shared ??= encodeUpdates(gs, gv)))) held++;
      }
    }
    if (held > 0) {
      this.deps.counters.held += held;
      this.scheduleFlush();
    }
  }

  /** One client's share of a flush; true when it is held (over its cap). */
  private deliver(c: Client, now: number, states: DeviceFrame[], samples: LiveSample[], shared: () => Encoded[]): boolean {
    const v = capVerdict(c.cap, c.ws.bufferedAmount, now, this.opts);
    if (v === "close") {
      this.closeSlow(c);
      return false;
    }
    if (v === "hold") {
      if (!c.needsSnapshot) c.pending.hold(states, samples);
      c.held = true;
      return true;
    }
    c.held = false;
    if (c.needsSnapshot) {
      this.deliverSnapshot(c, now);
      return false;
    }
    if (c.pending.size > 0) {
      c.pending.hold(states, samples);
      const d = c.pending.drain();
      for (const f of encodeUpdates(d.states, d.samples)) this.send(c, f.data, f.type);
      return false;
    }
    for (const f of shared()) this.send(c, f.data, f.type);
    return false;
  }

  /** The tap dropped updates: every subscriber is owed a fresh snapshot instead of what it missed. */
  private resync(missed: number): void {
    this.deps.counters.tapMissed += missed;
    this.deps.log.warn({ missed }, "live: the feed's tap overflowed; subscribers get a fresh snapshot");
    for (const c of this.clients) {
      if (c.group === null) continue;
      c.pending.clear();
      c.needsSnapshot = true;
    }
  }

  private healthTick(): void {
    if (this.clients.size === 0) return;
    const now = this.clock();
    let frame: Buffer;
    try {
      frame = Buffer.from(healthFrame(this.deps.source.health(), now));
    } catch (err) {
      this.deps.log.warn({ err: describeError(err) }, "live: health report failed");
      return;
    }
    for (const c of this.clients) {
      if (c.closing !== undefined) continue;
      // The cap check also catches a client that is over without any update flowing to it.
      const v = capVerdict(c.cap, c.ws.bufferedAmount, now, this.opts);
      if (v === "close") this.closeSlow(c);
      else if (v === "send") this.send(c, frame, "health");
      // held: this health frame is skipped; the next one supersedes it
    }
  }

  private heartbeatTick(): void {
    for (const c of this.clients) {
      if (!c.alive) {
        c.closing ??= "heartbeat";
        c.ws.terminate();
        continue;
      }
      c.alive = false;
      try {
        c.ws.ping();
      } catch {
        // not open (closing already): its close event follows
      }
    }
  }

  private closeSlow(c: Client): void {
    if (c.closing !== undefined) return;
    c.closing = "slow";
    c.counted = true;
    this.deps.counters.closed("slow");
    c.pending.clear();
    const secs = this.opts.slowCloseMs / 1000;
    this.deps.log.info({ buffered: c.ws.bufferedAmount }, `live: a client stayed over its outbound cap for ${secs} s; closed with 1013`);
    c.ws.close(1013, `over its outbound cap for ${secs} s: reconnect`);
  }

  private send(c: Client, data: Buffer, type: LiveFrameType): void {
    if (c.ws.readyState !== 1) return;
    c.ws.send(data, { binary: false });
    this.deps.counters.sent(type);
  }

  /** Closes every client (1001) and detaches from the listener; resolves once all sockets are gone. */
  async close(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.healthTimer);
    clearInterval(this.heartbeatTimer);
    if (this.flushTimer !== undefined) clearTimeout(this.flushTimer);
    this.closeTap();
    this.deps.http.server.off("upgrade", this.onUpgrade);
    const gone: Promise<void>[] = [];
    for (const c of this.clients) {
      c.closing ??= "shutdown";
      gone.push(new Promise((resolve) => c.ws.once("close", () => resolve())));
      c.ws.close(1001, "gateway stopping");
    }
    const all = Promise.all(gone).then(() => undefined);
    const timer = new Promise<void>((resolve) => setTimeout(resolve, 1_000).unref());
    await Promise.race([all, timer]);
    for (const c of this.clients) c.ws.terminate();
    this.wss.close();
  }
}

function deviceFrame(s: DeviceStateChange): DeviceFrame {
  return { type: "device", id: s.id, state: s.state, error: s.error, ts: new Date(s.ts).toISOString() };
}

function encodeUpdates(states: readonly DeviceFrame[], samples: readonly LiveSample[]): Encoded[] {
  const out: Encoded[] = [];
  for (const s of states) out.push({ data: Buffer.from(JSON.stringify(s)), type: "device" });
  if (samples.length > 0) out.push({ data: Buffer.from(samplesFrame(samples)), type: "samples" });
  return out;
}

/** A close frame's reason: at most 123 bytes of UTF-8. */
function closeReason(text: string): string {
  let s = text.slice(0, 123);
  while (Buffer.byteLength(s) > 123) s = s.slice(0, -1);
  return s;
}
