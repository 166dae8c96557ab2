import { readFile } from "node:fs/promises";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { FloorgateError } from "../../core/errors.js";
import type { OutputContext } from "../../core/output.js";
import type { MqttOutputConfig } from "./config.js";
import { skipStoreCopy } from "./store-copy.js";

/** Timing knobs of one MQTT session; defaults suit a WAN broker, tests shorten them. */
export interface MqttTiming {
  /** TCP + TLS + CONNACK + the retained online status, in ms. */
  connectTimeoutMs: number;
  /** Seconds between PINGREQs; a dead link is noticed after 1.5× this. */
  keepaliveS: number;
  /**
   * No PUBACK for this long while publishes are outstanding fails the session with OUTPUT_TIMEOUT
   * (progress, not per write: a message deep in a full window may wait longer on a slow broker).
   */
  writeTimeoutMs: number;
  /** `close()` gives up waiting for the offline status and DISCONNECT after this. */
  closeTimeoutMs: number;
}

export const DEFAULT_TIMING: MqttTiming = {
  connectTimeoutMs: 10_000,
  keepaliveS: 30,
  writeTimeoutMs: 30_000,
  closeTimeoutMs: 2_000,
};

async function readTlsFile(kind: string, path: string | undefined): Promise<Buffer | undefined> {
  if (path === undefined) return undefined;
  try {
    return await readFile(path);
  } catch (err) {
    throw new FloorgateError("OUTPUT_REJECTED", `cannot read TLS ${kind} file ${path}`, { cause: err });
  }
}

/**
 * MQTT.js options for one session. Each session is a fresh client that never reconnects by itself
 * (`reconnectPeriod: 0`): the runtime owns reconnects with backoff, and a fresh client cannot resend
 * a previous session's in-flight messages nor queue publishes while offline (`queueQoSZero: false`,
 * and we never publish unless connected). MQTT 3.1.1: Mosquitto sets no receive maximum for it, so
 * the session bounds its own window (MAX_MESSAGES_IN_FLIGHT in json-output.ts) well below the 65,535
 * packet ids, and `PacketIdProvider` never hands out an id that is still awaiting its PUBACK.
 */
export async function buildClientOptions(
  cfg: MqttOutputConfig,
  will: MqttWill,
  timing: MqttTiming,
): Promise<IClientOptions> {
  const [ca, cert, key] = await Promise.all([
    readTlsFile("ca", cfg.ca),
    readTlsFile("cert", cfg.cert),
    readTlsFile("key", cfg.key),
  ]);
  const opts: IClientOptions = {
    protocolVersion: 4,
    clientId: cfg.clientId,
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: timing.connectTimeoutMs,
    keepalive: timing.keepaliveS,
    queueQoSZero: false,
    resubscribe: false,
    // Keepalive timing is not restarted by every PUBACK (a clearTimeout and setTimeout per
    // message at 2,000 messages/s): pings go every keepalive period instead, and the connection
    // is still declared dead when a PINGRESP does not come back in time.
    reschedulePings: false,
    messageIdProvider: new PacketIdProvider(),
    will: { topic: will.topic, payload: Buffer.from(will.payload), qos: 1, retain: will.retain },
  };
  // MQTT.js calls its `debug` logger several times per publish; disabled, that is still ~1 % of
  // the gateway's CPU at 2,000 messages/s. DEBUG=mqttjs* keeps its tracing for troubleshooting.
  if (!/mqttjs/.test(process.env.DEBUG ?? "")) opts.log = noop;
  if (cfg.username !== undefined) opts.username = cfg.username;
  if (cfg.password !== undefined) opts.password = cfg.password;
  if (ca) opts.ca = [ca];
  if (cert) opts.cert = cert;
  if (key) opts.key = key;
  return opts;
}

/** The MQTT will of one session: always QoS 1 (json: the retained offline status; Sparkplug: NDEATH, not retained). */
export interface MqttWill {
  topic: string;
  payload: string | Uint8Array;
  retain: boolean;
}

/** A connected client and where its last error went (the session reads it when the connection closes). */
export interface OpenClient {
  client: MqttClient;
  errors: { last: Error | undefined };
}

/**
 * Opens one fresh MQTT.js client (options from `buildClientOptions`) and resolves once the broker
 * sent CONNACK. Rejects with OUTPUT_REJECTED / OUTPUT_UNAVAILABLE (`classifyConnectError`), with
 * OUTPUT_UNAVAILABLE when no CONNACK came within the connect timeout, and with ABORTED at once when
 * `ctx.signal` aborts; a failed client is ended with force. The client always has an 'error'
 * listener (MQTT.js would crash the process on an 'error' event without one).
 */
export async function openClient(
  cfg: MqttOutputConfig,
  will: MqttWill,
  timing: MqttTiming,
  where: string,
  ctx: OutputContext,
): Promise<OpenClient> {
  const aborted = (): FloorgateError =>
    new FloorgateError("ABORTED", `${where}: connect aborted`, { cause: ctx.signal.reason });
  if (ctx.signal.aborted) throw aborted();
  const opts = await buildClientOptions(cfg, will, timing);
  if (ctx.signal.aborted) throw aborted();

  const client = mqtt.connect(cfg.url, opts);
  skipStoreCopy(client);
  const errors: { last: Error | undefined } = { last: undefined };
  client.on("error", (err) => { errors.last = err; });

  await new Promise<void>((resolve, reject) => {
    let settled = false;
    const finish = (err?: FloorgateError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ctx.signal.removeEventListener("abort", onAbort);
      client.removeListener("connect", onConnect);
      client.removeListener("close", onClose);
      if (err) {
        endClientLater(client); // finish may run inside MQTT.js's 'close' emit
        reject(err);
      } else resolve();
    };
    const onConnect = (): void => finish();
    const onClose = (): void =>
      finish(classifyConnectError(errors.last ?? new Error("connection closed before CONNACK"), where));
    const onAbort = (): void => finish(aborted());
    // MQTT.js's connectTimeout covers CONNACK; this also bounds DNS and anything it might miss.
    const timer = setTimeout(
      () => finish(new FloorgateError("OUTPUT_UNAVAILABLE", `${where}: no CONNACK within ${timing.connectTimeoutMs} ms`, { cause: errors.last })),
      timing.connectTimeoutMs + 1000,
    );
    client.on("connect", onConnect);
    client.on("close", onClose);
    ctx.signal.addEventListener("abort", onAbort, { once: true });
  });
  return { client, errors };
}

/**
 * Ends `client` with force (its outgoing store dropped with the socket, so MQTT.js resends and keeps
 * nothing) and destroys its socket — on the next turn of the event loop, never synchronously.
 * Sessions end from inside MQTT.js's own callbacks (a publish callback with an error, 'close',
 * 'error'), and MQTT.js is not re-entrant there: on a keepalive timeout its `_cleanUp` runs `_flush`,
 * which calls every in-flight publish's callback and deletes its entry after the callback returns;
 * an `end(true)` from inside that callback runs `_flush` again, deletes every entry, and the outer
 * loop then throws on the next one (mqtt 5.16 client.js `_flush`, uncaught: the process exits).
 * Everything the caller owns (writes rejected, `lost` resolved) is settled at once; only the calls
 * into MQTT.js wait. A graceful end still waiting on a silent broker makes `end()` a no-op, so the
 * socket is destroyed directly too.
 */
export function endClientLater(client: MqttClient): void {
  setImmediate(() => {
    client.end(true);
    client.stream?.destroy();
  });
}

/** CONNACK return codes (3.1.1) and reason codes (5.0) that no retry can fix soon. */
const REFUSED_FOR_GOOD = new Set([1, 2, 4, 5, 0x80, 0x81, 0x82, 0x84, 0x85, 0x86, 0x87, 0x8c, 0x90, 0x95, 0x9a]);

/** TLS verification failures: a config problem (wrong CA, wrong host name), not a network blip. */
const TLS_TRUST_CODES = new Set([
  "DEPTH_ZERO_SELF_SIGNED_CERT", "SELF_SIGNED_CERT_IN_CHAIN", "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY", "UNABLE_TO_GET_ISSUER_CERT", "CERT_HAS_EXPIRED", "CERT_NOT_YET_VALID",
  "ERR_TLS_CERT_ALTNAME_INVALID", "CERT_UNTRUSTED", "CERT_REJECTED", "ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN",
]);

/**
 * Maps a failed connect to the runtime's two outcomes: OUTPUT_REJECTED (credentials, identity or
 * TLS trust refused: retried at the longest backoff) or OUTPUT_UNAVAILABLE (anything else).
 */
export function classifyConnectError(err: unknown, where: string): FloorgateError {
  if (err instanceof FloorgateError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  const msg = err instanceof Error ? err.message : String(err);
  if (typeof code === "number" && REFUSED_FOR_GOOD.has(code)) {
    return new FloorgateError("OUTPUT_REJECTED", `${where}: broker refused the connection (${msg})`, { cause: err });
  }
  if (typeof code === "string" && (TLS_TRUST_CODES.has(code) || /CERT|SSL_.*ALERT/.test(code))) {
    return new FloorgateError("OUTPUT_REJECTED", `${where}: TLS handshake refused (${code}: ${msg})`, { cause: err });
  }
  return new FloorgateError("OUTPUT_UNAVAILABLE", `${where}: ${msg}`, { cause: err });
}

function noop(): void {}

const MAX_PACKET_ID = 65_535;

/** MQTT.js's id provider contract (its type is not exported from the package root). */
type IdProvider = NonNullable<IClientOptions["messageIdProvider"]>;

/**
 * Packet ids for one client: round-robin like MQTT.js's default provider (so an id is reused as
 * late as possible), but skipping ids still awaiting their PUBACK. MQTT.js's default hands out
 * 1–65535 blindly: past 65,535 unacknowledged publishes, or one PUBACK withheld while 65,535 others
 * come back, a PUBACK would complete the wrong message. Its `UniqueMessageIdProvider` checks, but
 * scans every id in use on each allocation once the lowest id is freed (O(window) per publish).
 * Here a skip only happens when an id is really in use, which the session's window keeps rare.
 * `allocate` returns null only with all 65,535 ids in use; MQTT.js then drops the publish without a
 * callback, so the session's window must stay below that (it is 10,000).
 */
export class PacketIdProvider implements IdProvider {
  private readonly used = new Uint8Array(MAX_PACKET_ID + 1);
  private inUse = 0;
  private nextId = 1;
  private last: number | null = null;

  allocate(): number | null {
    if (this.inUse >= MAX_PACKET_ID) return null;
    for (;;) {
      const id = this.nextId;
      this.nextId = id === MAX_PACKET_ID ? 1 : id + 1;
      if (this.used[id] === 0) {
        this.used[id] = 1;
        this.inUse++;
        this.last = id;
        return id;
      }
    }
  }

  getLastAllocated(): number | null {
    return this.last;
  }

  register(id: number): boolean {
    if (id < 1 || id > MAX_PACKET_ID || this.used[id] === 1) return false;
    this.used[id] = 1;
    this.inUse++;
    return true;
  }

  deallocate(id: number): void {
    if (id < 1 || id > MAX_PACKET_ID || this.used[id] === 0) return;
    this.used[id] = 0;
    this.inUse--;
  }

  clear(): void {
    this.used.fill(0);
    this.inUse = 0;
  }

  /** Ids handed out and not yet freed (for tests). */
  get size(): number {
    return this.inUse;
  }
}
