/**
 * The embedded MQTT listener for devices (spec §4, `ingest.mqtt`): accepts TCP (or TLS) connections
 * under two guards — at most `maxConnections` open, at most `connectsPerSec` new per second (a
 * reconnect storm is spread out instead of starving the journal and the pollers; refused sockets
 * are closed before any TLS or MQTT work) — runs one Session per connection, keeps one session per
 * device id (a new connection takes over), and tells the device table of every connection change.
 */
import { createServer, type Server, type Socket } from "node:net";
import { readFileSync } from "node:fs";
import { createSecureContext, createServer as createTlsServer, TLSSocket } from "node:tls";
import { describeError, FloorgateError } from "../../core/errors.js";
import type { ListenerContext, RunningListener } from "../listener.js";
import { REASON } from "./codes.js";
import type { IngestMqttConfig } from "./config.js";
import { startFlow } from "./flow.js";
import { RECEIVE_MAXIMUM, Session, type SessionHost } from "./session.js";

/** Knobs that are not config: tests shorten them. */
export interface MqttListenerOptions {
  /** time for the TLS handshake and the CONNECT; default 10 s */
  connectTimeoutMs?: number;
  /** how often connect timeouts and keep-alives are checked; default 1 s */
  sweepMs?: number;
  /** how long the listener must stay free of its in-flight caps before "reading again" is logged; default 10 s */
  quietMs?: number;
}

/** Room in a packet beside the payload: fixed header, topic, packet id, MQTT 5 properties. */
const PACKET_OVERHEAD = 4096;
/** Distinct (device, reason) pairs whose refusal was logged, before the memory is dropped whole. */
const LOGGED_MAX = 50_000;
/** Connection-guard refusals are logged at most this often (with the count since), never per socket. */
const GUARD_LOG_MS = 60_000;
/**
 * Pending TCP connections the kernel queues for accept (Node's default is 511): a fleet connecting
 * at once would overflow a small queue into SYN cookies and dropped handshakes. Linux caps it at
 * net.core.somaxconn.
 */
export const LISTEN_BACKLOG = 4096;
/**
 * Connections started (a Session made, its CONNECT handled) per event-loop turn at most; the rest
 * wait for the next turns (setImmediate), with timers — the Modbus pollers' — running between.
 * Why: the connect-rate bucket lets a second's worth (`connectsPerSec`) in at once after a quiet
 * spell, and every CONNECT costs a token check, a CONNACK and the device table's listeners (the
 * log, the outputs' status topics, /live). A fleet reconnecting together handled all of them in
 * one turn, holding the event loop, and the pollers sharing it, for 100 ms and more on a loaded
 * machine. 32 of them take a few ms. A plain TCP connection is queued once its first bytes (the
 * CONNECT) are there, so that starting its session handles the CONNECT in that same slice; TLS
 * connections are queued at accept (their handshake reads the socket itself).
 */
export const STARTS_PER_TURN = 32;

export async function startMqttListener(cfg: IngestMqttConfig, ctx: ListenerContext, opts: MqttListenerOptions = {}): Promise<RunningListener> {
  const { ingest, table, metrics, log } = ctx;
  const connectTimeoutMs = opts.connectTimeoutMs ?? 10_000;
  let tlsFiles: { cert: Buffer; key: Buffer; ca?: Buffer } | undefined;
  if (cfg.tls) {
    try {
      tlsFiles = { cert: readFileSync(cfg.tls.cert), key: readFileSync(cfg.tls.key), ...(cfg.tls.ca ? { ca: readFileSync(cfg.tls.ca) } : {}) };
      createSecureContext(tlsFiles); // a key that does not fit its certificate fails here, at start
    } catch (err) {
      throw new FloorgateError("CONFIG_INVALID", `ingest.mqtt.tls: cannot load the certificate files: ${describeError(err)}`, { cause: err });
    }
  }
  const requireCert = cfg.tls?.requireClientCert === true;
  const sessions = new Set<Session>();
  /** every accepted TCP socket until it is closed (sessions end before their socket does) */
  const sockets = new Set<Socket>();
  const byDevice = new Map<string, Session>();
  const logged = new Set<string>();

  // Connect rate: a token bucket holding one second's worth.
  const capacity = Math.max(1, cfg.connectsPerSec);
  let tokens = capacity;
  let tokensAt = performance.now();
  const guardRefusals: Record<string, number> = {};
  let guardLoggedAt = 0;
  const guard = (reason: "connection_limit" | "connect_rate", raw: Socket): void => {
    metrics.ingestRejects.inc({ reason });
    raw.on("error", () => undefined);
    raw.destroy();
    guardRefusals[reason] = (guardRefusals[reason] ?? 0) + 1;
    const now = performance.now();
    if (now - guardLoggedAt >= GUARD_LOG_MS) {
      guardLoggedAt = now;
      log.warn({ refused: { ...guardRefusals }, open: sockets.size, maxConnections: cfg.maxConnections, connectsPerSec: cfg.connectsPerSec },
        "mqtt: closing new connections at once (ingest.mqtt.maxConnections / connectsPerSec); devices retry");
      for (const k of Object.keys(guardRefusals)) delete guardRefusals[k];
    }
  };

  const gauge = (): void => metrics.ingestConnections.set(byDevice.size);
  gauge();

  // Listener-wide backpressure (flow.ts): at maxInFlight messages or maxInFlightBytes awaiting
  // durability every socket stops being read (TCP slows the devices down); reading resumes in
  // slices, round robin, once they fall to 3/4. Memory is bounded by the caps plus what sockets had
  // already read, whatever the journal's pace.
  const flow = startFlow<Session>(cfg, RECEIVE_MAXIMUM, metrics, log, opts.quietMs ?? 10_000);

  // PUBACKs released together (one journal commit settles many stores in one turn) leave in one
  // write per socket: sessions with answers are flushed once the turn's promise reactions are done.
  const dirty: Session[] = [];
  const flushDirty = (): void => {
    for (let i = 0; i < dirty.length; i++) dirty[i]!.flush();
    dirty.length = 0;
  };

  const host: SessionHost = {
    ingest,
    maxPacketBytes: ingest.maxPayloadBytes + PACKET_OVERHEAD,
    clientCertCn(socket) {
      if (!requireCert || !(socket instanceof TLSSocket) || !socket.authorized) return undefined;
      const cn = socket.getPeerCertificate().subject?.CN;
      return typeof cn === "string" ? cn : undefined;
    },
    attach(s) {
      flow.gate.add(s);
      const id = s.device!;
      const old = byDevice.get(id);
      byDevice.set(id, s);
      if (old) old.kick("takeover", REASON.sessionTakenOver, "taken over by a new connection");
      table.connected(id);
      gauge();
    },
    held: (s) => flow.gate.held(s),
    began: (_s, bytes) => flow.gate.began(bytes, sessions),
    settled: (bytes) => flow.gate.settled(bytes),
    dirty(s) {
      if (s.queued) return;
      s.queued = true;
      // process.nextTick queued from a promise reaction runs once the whole microtask queue is drained
      if (dirty.push(s) === 1) process.nextTick(flushDirty);
    },
    detach(s, reason, why) {
      sessions.delete(s);
      flow.gate.remove(s);
      const id = s.device;
      if (id === undefined) return;
      if (byDevice.get(id) !== s) {
        // a session replaced by a newer one of the same device (takeover): the device stays online
        metrics.ingestDisconnects.inc({ reason });
        return;
      }
      byDevice.delete(id);
      table.disconnected(id, why);
      metrics.ingestDisconnects.inc({ reason });
      gauge();
    },
    refused(device, reason, message, counted) {
      if (!counted) {
        metrics.ingestRejects.inc({ reason });
        if (device !== undefined) table.count(device, "rejected");
      }
      const key = `${device ?? ""}\n${reason}`;
      if (logged.has(key)) return;
      if (logged.size >= LOGGED_MAX) logged.clear();
      logged.add(key);
      log.warn({ device, reason }, `mqtt: ${message} (logged once per device and reason; counted in floorgate_ingest_rejects_total)`);
    },
  };

  const tlsServer = tlsFiles
    ? createTlsServer({ ...tlsFiles, requestCert: requireCert, rejectUnauthorized: requireCert, handshakeTimeout: connectTimeoutMs })
    : undefined;
  tlsServer?.on("secureConnection", (t: TLSSocket) => { sessions.add(new Session(t, host, performance.now())); });
  tlsServer?.on("tlsClientError", (err: Error, t: TLSSocket) => {
    host.refused(undefined, "tls", `TLS handshake failed: ${err.message}`);
    t.destroy();
  });
  // Accepted sockets start in slices of STARTS_PER_TURN per event-loop turn; the others wait here
  // (counted as open for maxConnections) and their data waits in the socket, unread.
  let closing: Promise<void> | null = null;
  const waiting: Socket[] = [];
  let waitingHead = 0;
  let turnQueued = false;
  /** False when the socket is gone (or the listener closing): nothing was started. */
  const startSession = (raw: Socket): boolean => {
    if (raw.destroyed) return false; // gone while it waited: its close already left `sockets`
    if (closing) { raw.destroy(); return false; }
    // The TLS server never listens: it is handed the sockets the guards let through.
    if (tlsServer) { tlsServer.emit("connection", raw); return true; }
    raw.setTimeout(0);
    sessions.add(new Session(raw, host, performance.now()));
    raw.resume(); // the first chunk, put back, goes to the session now
    return true;
  };
  // Always from the check phase (setImmediate), never from the poll phase that accepted or read the
  // socket: so the bound is per loop iteration, and timers run between any two slices.
  const queueStart = (raw: Socket): void => {
    waiting.push(raw);
    if (!turnQueued) {
      turnQueued = true;
      setImmediate(nextTurn);
    }
  };
  const nextTurn = (): void => {
    let started = 0;
    while (waitingHead < waiting.length && started < STARTS_PER_TURN) if (startSession(waiting[waitingHead++]!)) started++;
    if (waitingHead < waiting.length) { setImmediate(nextTurn); return; }
    waiting.length = 0;
    waitingHead = 0;
    turnQueued = false;
  };
  const server: Server = createServer({ noDelay: true });
  server.on("connection", (raw: Socket) => {
    const now = performance.now();
    tokens = Math.min(capacity, tokens + (Math.max(0, now - tokensAt) * cfg.connectsPerSec) / 1000);
    tokensAt = now;
    if (sockets.size >= cfg.maxConnections) return guard("connection_limit", raw);
    if (tokens < 1) return guard("connect_rate", raw);
    tokens -= 1;
    sockets.add(raw);
    raw.on("error", () => undefined); // an error while it waits; the session listens for its own
    raw.once("close", () => sockets.delete(raw));
    if (tlsServer) return queueStart(raw);
    // Until its first bytes a connection is only a socket: the connect timeout is the socket's.
    raw.setTimeout(connectTimeoutMs, () => {
      host.refused(undefined, "timeout", `no CONNECT within ${connectTimeoutMs} ms`);
      raw.destroy();
    });
    raw.once("data", (chunk: Buffer) => {
      raw.pause();
      raw.unshift(chunk);
      queueStart(raw);
    });
  });

  // Every time here (keep-alive, connect timeout, the connect bucket) is performance.now(): a wall
  // clock stepped forward by NTP must not time the whole fleet out at once, nor one stepped back
  // leave dead connections open or refuse every connect until it catches up.
  const sweep = setInterval(() => {
    const now = performance.now();
    for (const s of sessions) {
      if (!s.connected) {
        if (now - s.openedAt > connectTimeoutMs) {
          host.refused(undefined, "timeout", `no CONNECT within ${connectTimeoutMs} ms`);
          s.kick("timeout", REASON.unspecified, "no CONNECT");
          s.socket.destroy();
        }
      } else if (s.stalled) s.peerEnded();
      else if (s.keepalive > 0 && now - s.lastSeen > s.keepalive * 1500) {
        host.refused(s.device, "timeout", `nothing received for 1.5 × its keep-alive of ${s.keepalive} s`);
        s.kick("timeout", REASON.keepAliveTimeout, "keep-alive timeout");
      }
    }
  }, opts.sweepMs ?? 1000);
  sweep.unref();

  await new Promise<void>((resolve, reject) => {
    server.once("error", (err) => reject(new FloorgateError("PORT_IN_USE", `cannot listen on ${cfg.listen} (ingest.mqtt.listen): ${describeError(err)}`, { cause: err })));
    server.listen({ host: cfg.host, port: cfg.port, backlog: LISTEN_BACKLOG }, () => resolve());
  }).catch((err: unknown) => {
    clearInterval(sweep);
    throw err;
  });
  server.on("error", (err) => log.error({ err: describeError(err) }, "mqtt: listener error"));
  const addr = server.address();
  const port = addr !== null && typeof addr === "object" ? addr.port : cfg.port;
  log.info({ listen: cfg.listen, port, tls: cfg.tls !== undefined, clientCerts: requireCert }, `device MQTT listener on ${cfg.tls ? "mqtts" : "mqtt"}://${cfg.host}:${port}`);

  return {
    port,
    load() {
      let paused = 0;
      for (const s of sessions) if (s.stalled) paused++;
      const l = flow.gate.load();
      return { connections: byDevice.size, inFlightMessages: l.messages, inFlightBytes: l.bytes, pausedConnections: paused, paused: l.paused };
    },
    close() {
      closing ??= (async () => {
        clearInterval(sweep);
        flow.stop();
        const closed = new Promise<void>((r) => server.close(() => r()));
        for (const s of [...sessions]) s.kick("shutdown", REASON.serverShuttingDown, "gateway stopping");
        // a DISCONNECT has a moment to leave; then whatever is left is cut
        const cut = setTimeout(() => { for (const s of sockets) s.destroy(); }, 500);
        cut.unref();
        await closed;
        clearTimeout(cut);
      })();
      return closing;
    },
  };
}
