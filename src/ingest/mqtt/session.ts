/**
 * One device connection of the MQTT listener: the protocol (3.1, 3.1.1 and 5, parsed and written
 * with mqtt-packet, the codec MQTT.js and aedes use) and the device's rules. A device publishes its
 * push JSON to `devices/{id}/telemetry` at QoS 0 or 1; the QoS 1 PUBACK goes out only once the
 * shared ingest has the samples durable in the journal, and PUBACKs leave in the order the
 * PUBLISHes came (MQTT-4.6.0-2), whatever order the stores finish in.
 */
import type { Socket } from "node:net";
import mqttPacket, { type IConnackPacket, type IConnectPacket, type IPublishPacket, type ISubscribePacket, type IUnsubscribePacket, type Packet } from "mqtt-packet";
import type { Ingest, IngestReply } from "../ingest.js";
import { DEVICE_ID_RE } from "../../core/sample.js";
import { REASON, type Refusal, refusalOf } from "./codes.js";
import { type FastPublish, PacketFramer } from "./framer.js";

/** Listener-side reasons counted in `floorgate_ingest_rejects_total` (besides the ingest's own). */
export type MqttRejectReason =
  /** a publish or will to a topic not the device's own telemetry topic */
  | "topic_forbidden"
  /** a subscription other than the device's own `devices/{id}/cmd` */
  | "subscribe_refused"
  /** an MQTT 3.1.1 CONNECT asking for a persistent session (clean session 0) */
  | "persistent_session"
  /** malformed packet, QoS 2, topic alias, AUTH, a second CONNECT, an unsupported protocol level */
  | "protocol"
  /** a TCP connection past `ingest.mqtt.maxConnections` */
  | "connection_limit"
  /** a TCP connection past `ingest.mqtt.connectsPerSec` */
  | "connect_rate"
  /** no CONNECT (or TLS handshake) within the connect timeout, or keep-alive exceeded */
  | "timeout"
  /** a TLS handshake failed (no or an untrusted client certificate) */
  | "tls";

/** What a session needs from its listener. */
export interface SessionHost {
  readonly ingest: Ingest;
  /** largest packet accepted (payload cap plus room for the topic and properties) */
  readonly maxPacketBytes: number;
  /** CN of a verified client certificate when the listener requires one */
  clientCertCn(socket: Socket): string | undefined;
  /** A device is connected: takes over an older session of the same id, shows it online. */
  attach(s: Session): void;
  /** The session ended; `why` for the device table when it was attached. */
  detach(s: Session, reason: string, why: string): void;
  /**
   * A refusal: counted in `floorgate_ingest_rejects_total` (unless `counted`: the ingest did) and
   * logged once per device and reason.
   */
  refused(device: string | undefined, reason: string, message: string, counted?: boolean): void;
  /**
   * Listener-wide backpressure: true while `s` must wait for the messages and bytes of all
   * connections awaiting durability to fall. A session reads nothing more while it holds (its
   * socket is paused, TCP slows the device down); the host calls `reading()` when it may change.
   */
  held(s: Session): boolean;
  /** One message of `bytes` payload more awaits durability (called once per publish, before its store starts). */
  began(s: Session, bytes: number): void;
  /** A message's store settled (durable or refused), whether or not its session is still open. */
  settled(bytes: number): void;
  /** `s` has answers ready: they are written (coalesced per socket) once the current turn ends. */
  dirty(s: Session): void;
}

/**
 * Most publishes (QoS 0 and 1) awaiting durability per connection before its socket stops being
 * read; it is read again below half of it. MQTT 5 devices are told so (CONNACK Receive Maximum).
 * A socket chunk already read is parsed whole, so one connection can pass it by a chunk's worth.
 */
export const RECEIVE_MAXIMUM = 64;

/** The smallest PUBLISH: fixed header (2), topic length (2), a one-character topic. */
const MIN_PUBLISH_BYTES = 5;

/** What is written for a publish once every earlier one is answered. */
interface Pending {
  done: boolean;
  /** QoS 1: the packet id to PUBACK; -1: nothing to write (QoS 0, or a refusal without one) */
  mid: number;
  /** PUBACK reason code (MQTT 5; 0: success) */
  code: number;
  /** close after the PUBACK, if any: a refusal that ends the connection */
  refusal?: Refusal;
  /** payload bytes counted in flight until the store settles */
  bytes: number;
}

/** PUBACKs coalesced into one buffer: 4 bytes each on success, 5 with an MQTT 5 reason code. */
function pubacks(slots: readonly Pending[], from: number, to: number, v5: boolean): Buffer | null {
  let size = 0;
  for (let i = from; i < to; i++) {
    const s = slots[i]!;
    if (s.mid >= 0) size += s.code !== 0 && v5 ? 5 : 4;
  }
  if (size === 0) return null;
  const out = Buffer.allocUnsafe(size);
  let o = 0;
  for (let i = from; i < to; i++) {
    const s = slots[i]!;
    if (s.mid < 0) continue;
    // An MQTT 5 PUBACK without reason code means success, so both versions share the 4-byte form.
    const long = s.code !== 0 && v5;
    out[o] = 0x40;
    out[o + 1] = long ? 3 : 2;
    out[o + 2] = s.mid >> 8;
    out[o + 3] = s.mid & 0xff;
    if (long) out[o + 4] = s.code;
    o += long ? 5 : 4;
  }
  return out;
}

/** The ingest's words for a refusal, with its first problem when it has any. */
function problemOf(reply: IngestReply): string {
  if (!("error" in reply.body)) return `refused (${reply.status})`;
  const p = reply.body.problems?.[0];
  return p ? `${reply.body.error}: ${p.path ? `${p.path}: ` : ""}${p.message}` : reply.body.error;
}

export class Session {
  device: string | undefined;
  version: 3 | 4 | 5 = 4;
  /** performance.now() of the last packet received (keep-alive; monotonic, see the listener's sweep) */
  lastSeen: number;
  /** seconds; 0: none */
  keepalive = 0;
  readonly openedAt: number;
  /** every packet but the device's telemetry PUBLISH (framer.ts reads those itself) */
  private readonly parser = mqttPacket.parser({});
  private readonly framer: PacketFramer;
  private topic = "";
  private cmdTopic = "";
  private closed = false;
  /** a refusal is on its way out: read nothing more */
  private ending = false;
  private readonly pending: Pending[] = [];
  /** its own in-flight cap (RECEIVE_MAXIMUM) is reached */
  private full = false;
  /** no new store may start (own cap or the listener's): the socket is paused; keep-alive does not count the wait */
  stalled = false;
  /**
   * Packets of a socket chunk parsed after the session stalled, in arrival order: they wait here,
   * not in the journal's queue, so the caps hold exactly. At most one chunk's worth (the socket is paused).
   */
  private readonly backlog: (Packet | FastPublish)[] = [];
  private draining = false;
  /** a flush is queued with the host */
  queued = false;
  private willSent = false;

  constructor(readonly socket: Socket, private readonly host: SessionHost, now: number) {
    this.openedAt = now;
    this.lastSeen = now;
    this.parser.on("packet", (p: Packet) => this.onArrived(p));
    this.parser.on("error", (err: Error) => this.protocolError(err.message));
    this.framer = new PacketFramer({
      publish: (p) => this.onArrived(p),
      other: (packet) => this.parser.parse(packet),
      // refused as soon as its length is known, before it is buffered
      announced: (total) => {
        if (total <= this.host.maxPacketBytes) return true;
        if (!this.ending) this.refuse({ reason: "too_large", code: REASON.packetTooLarge, message: `packet of ${total} bytes is over the limit (ingest.maxPayloadBytes)` });
        return false;
      },
      malformed: (message) => this.protocolError(message),
    });
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("error", () => this.close("lost", "connection lost"));
    socket.on("close", () => this.close("lost", "connection lost"));
  }

  get connected(): boolean {
    return this.device !== undefined && !this.closed;
  }

  private onData(chunk: Buffer): void {
    if (this.ending || this.closed) return;
    this.lastSeen = performance.now();
    this.framer.push(chunk);
  }

  private onArrived(p: Packet | FastPublish): void {
    if (this.stalled || this.backlog.length > 0) {
      // a ping is answered at once: the device must not time out while the gateway makes it wait
      if (p.cmd === "pingreq" && !this.ending && !this.closed) this.write(mqttPacket.generate({ cmd: "pingresp" }, this.opts()));
      else this.backlog.push(p);
      return;
    }
    this.onPacket(p);
  }

  /** Handles the waiting packets until the session stalls again; reads the socket again once none is left. */
  private drain(): void {
    this.draining = false;
    while (!this.stalled && !this.closed && this.backlog.length > 0) this.onPacket(this.backlog.shift()!);
    if (this.closed) this.backlog.length = 0;
    else if (!this.stalled && this.backlog.length === 0) {
      this.lastSeen = performance.now(); // the wait was ours: keep-alive counts from now
      this.socket.resume();
    }
  }

  private onPacket(p: Packet | FastPublish): void {
    if (this.ending || this.closed) return;
    if (this.device === undefined) {
      if (p.cmd !== "connect") return this.protocolError(`${p.cmd} before CONNECT`);
      return this.onConnect(p);
    }
    switch (p.cmd) {
      case "publish": return this.onPublish(p);
      case "pingreq": return this.write(mqttPacket.generate({ cmd: "pingresp" }, this.opts()));
      case "subscribe": return this.onSubscribe(p);
      case "unsubscribe": return this.onUnsubscribe(p);
      case "disconnect":
        // MQTT 5 reason 0x04: "disconnect with will message" — the device means it is gone unexpectedly
        this.willSent = p.reasonCode === 0x04;
        return this.close("client", this.willSent ? "disconnected (will)" : "disconnected");
      case "puback": case "pubrec": case "pubrel": case "pubcomp":
        return; // nothing is ever published to a device at QoS > 0
      default:
        return this.protocolError(`unexpected ${p.cmd}`);
    }
  }

  private opts(): { protocolVersion: number } {
    return { protocolVersion: this.version };
  }

  private onConnect(p: IConnectPacket): void {
    const v = p.protocolVersion ?? 4;
    this.version = v;
    (this.parser as unknown as { settings: { protocolVersion: number } }).settings.protocolVersion = v;
    const cn = this.host.clientCertCn(this.socket);
    const id = cn ?? p.username ?? "";
    const token = p.password === undefined ? undefined : p.password.toString("utf8");
    const ingest = this.host.ingest;
    let answer: IngestReply | undefined;
    if (cn !== undefined && p.username !== undefined && p.username !== cn) {
      this.host.refused(cn, "forbidden", `username ${JSON.stringify(p.username)} is not the certificate's CN ${cn}`);
      return this.refuseConnect(REASON.notAuthorized, 5);
    }
    if (cn !== undefined) answer = token === undefined ? ingest.authenticateVerified(id) : ingest.authenticate(id, token);
    else answer = ingest.authenticate(id, token);
    if (answer !== undefined) {
      this.host.refused(DEVICE_ID_RE.test(id) ? id : undefined, answer.reason ?? "unauthorized", `connect refused: ${"error" in answer.body ? answer.body.error : answer.status}`, true);
      const [v5, v3] = answer.status === 429 ? [REASON.quotaExceeded, 3] : answer.status === 403 ? [REASON.notAuthorized, 5] : [REASON.badUserOrPassword, 4];
      return this.refuseConnect(v5, v3);
    }
    if (v < 5 && p.clean === false) {
      this.host.refused(id, "persistent_session", "persistent sessions are not kept: connect with clean session");
      return this.refuseConnect(REASON.unspecified, 2);
    }
    if (p.will && !p.will.topic.startsWith(`devices/${id}/`)) {
      this.host.refused(id, "topic_forbidden", `will topic ${JSON.stringify(p.will.topic)} is not one of the device's own (devices/${id}/…)`);
      return this.refuseConnect(REASON.notAuthorized, 5);
    }
    this.device = id;
    this.topic = `devices/${id}/telemetry`;
    this.cmdTopic = `devices/${id}/cmd`;
    this.keepalive = p.keepalive ?? 0;
    this.framer.connected(this.topic, v);
    const connack: IConnackPacket = { cmd: "connack", sessionPresent: false };
    if (v === 5) {
      connack.reasonCode = 0;
      connack.properties = {
        maximumQoS: 1,
        retainAvailable: false,
        maximumPacketSize: this.host.maxPacketBytes,
        receiveMaximum: RECEIVE_MAXIMUM,
        wildcardSubscriptionAvailable: false,
        sharedSubscriptionAvailable: false,
        subscriptionIdentifiersAvailable: false,
        topicAliasMaximum: 0,
      };
      // Clean sessions only: whatever expiry the device asked for, its session ends with the connection.
      if ((p.properties?.sessionExpiryInterval ?? 0) > 0) connack.properties.sessionExpiryInterval = 0;
    } else connack.returnCode = 0;
    this.host.attach(this);
    this.write(mqttPacket.generate(connack, this.opts()));
    this.reading(); // connected while the listener is throttled: wait like the others
  }

  private refuseConnect(v5: number, v3: number): void {
    const connack: IConnackPacket = { cmd: "connack", sessionPresent: false };
    if (this.version === 5) connack.reasonCode = v5;
    else connack.returnCode = v3;
    this.ending = true;
    this.socket.end(mqttPacket.generate(connack, this.opts()));
    this.close("refused", "connection refused");
  }

  private onPublish(p: IPublishPacket | FastPublish): void {
    const device = this.device!;
    if (p.qos === 2) {
      return this.refuse({ reason: "protocol", code: REASON.qosNotSupported, message: "QoS 2 is not supported: publish at QoS 0 or 1" });
    }
    if ("properties" in p && p.properties?.topicAlias !== undefined) {
      return this.refuse({ reason: "protocol", code: REASON.topicAliasInvalid, message: "topic aliases are not supported" });
    }
    if (p.topic !== this.topic) {
      const refusal: Refusal = { reason: "topic_forbidden", code: REASON.notAuthorized, message: `publish to ${JSON.stringify(p.topic)}: a device publishes only to ${this.topic}` };
      // MQTT 5 can refuse one QoS 1 publish and keep the connection; MQTT 3.1.1 cannot say no.
      if (this.version === 5 && p.qos === 1) {
        this.host.refused(device, refusal.reason, refusal.message);
        const slot = this.slot(p.messageId!);
        slot.done = true;
        slot.code = REASON.notAuthorized;
        return this.host.dirty(this);
      }
      return this.refuse(refusal);
    }
    const payload = typeof p.payload === "string" ? Buffer.from(p.payload) : p.payload;
    // The slot, not the packet, is kept until the store settles: the payload can be collected early.
    const slot = this.slot(p.qos === 1 ? p.messageId! : -1);
    slot.bytes = payload.length;
    this.host.began(this, payload.length);
    this.host.ingest.accept(device, payload).then((reply) => this.stored(slot, reply), (err: unknown) => {
      // accept never rejects (its contract); a bug here must still not leave the device waiting
      this.stored(slot, { status: 503, body: { error: `store failed: ${String(err)}` }, reason: "journal_error" });
      if (slot.refusal) slot.refusal.countedByIngest = false;
    });
  }

  /** A queued answer in arrival order; stops reading at RECEIVE_MAXIMUM in flight. */
  private slot(mid: number): Pending {
    const slot: Pending = { done: false, mid, code: 0, bytes: 0 };
    this.pending.push(slot);
    if (this.pending.length >= RECEIVE_MAXIMUM && !this.full) {
      this.full = true;
      this.reading();
    }
    return slot;
  }

  /** What a store's answer becomes: a PUBACK (or nothing at QoS 0), or a refusal that ends the connection. */
  private stored(slot: Pending, reply: IngestReply): void {
    this.host.settled(slot.bytes);
    slot.done = true;
    if (this.closed) return;
    this.host.dirty(this);
    if (reply.status === 202) return;
    const qos0 = slot.mid < 0;
    // A body that can never become valid (not push JSON, an unknown key, a value too long):
    // resending cannot help. MQTT 5 says so on the PUBACK (0x99). MQTT 3.1.1 has no negative
    // PUBACK: it is PUBACKed anyway, since a disconnect would make the device reconnect and resend
    // it forever. Never stored either way, counted (bad_request) and logged once per device.
    if (reply.status === 400) {
      this.host.refused(this.device, reply.reason ?? "bad_request", `publish refused, not stored: ${problemOf(reply)}`, true);
      if (this.version === 5) slot.code = REASON.payloadFormatInvalid;
      return;
    }
    // Journal full under `overflow: reject`: MQTT 5 answers like HTTP's 503 (PUBACK 0x97, resend
    // later) and keeps the connection; MQTT 3.1.1 gets no PUBACK but a disconnect (below), after
    // which the device resends. QoS 0 is dropped, counted by the ingest.
    if (reply.status === 503 && (qos0 || (this.version === 5 && reply.reason === "journal_full"))) {
      this.host.refused(this.device, reply.reason ?? "journal_error", `publish refused, not stored: ${problemOf(reply)}`, true);
      if (!qos0) slot.code = REASON.quotaExceeded;
      return;
    }
    slot.mid = -1;
    slot.refusal = refusalOf(reply);
  }

  /**
   * Writes every answer whose turn has come, the PUBACKs in one buffer (one write per socket for
   * all that one journal commit released). The host calls it once the turn that settled them ends.
   */
  flush(): void {
    this.queued = false;
    const q = this.pending;
    let n = 0;
    // up to the first not yet settled, or the first refusal (it ends the connection)
    while (n < q.length && q[n]!.done) if (q[n++]!.refusal !== undefined) break;
    if (n === 0 || this.closed) return;
    const out = pubacks(q, 0, n, this.version === 5);
    if (out) this.write(out);
    const last = q[n - 1]!.refusal;
    q.splice(0, n);
    if (last) return this.refuse(last);
    if (this.full && q.length < RECEIVE_MAXIMUM / 2) {
      this.full = false;
      this.reading();
    }
  }

  /**
   * The device closed its side while the gateway held its socket: its FIN waits behind the paused
   * stream (Node emits 'end' only once the buffer is read), so it would show online until reading
   * resumed. When nothing it sent can still be a publish (none waiting in the backlog, fewer bytes
   * unread than the smallest PUBLISH), the rest (its DISCONNECT) is handled now and the connection
   * ends. Otherwise its publishes are stored first, when its turn comes: nothing it sent is dropped.
   * A reset socket needs none of this: 'close' comes at once, paused or not.
   */
  peerEnded(): void {
    if (!this.stalled || this.closed || this.ending) return;
    // Node keeps no public flag for an EOF received but not yet emitted
    const state = (this.socket as unknown as { _readableState?: { ended?: boolean } })._readableState;
    if (state?.ended !== true || this.socket.readableLength >= MIN_PUBLISH_BYTES) return;
    // part of a packet buffered (mqtt-packet is only ever handed whole ones): it may be a publish
    if (this.backlog.some((p) => p.cmd === "publish") || this.framer.partial) return;
    // read() hands what is left to the 'data' handler: parsed into the backlog (the session is stalled)
    while (!this.closed && this.socket.read() !== null);
    const rest = this.backlog.splice(0);
    for (const p of rest) this.onPacket(p);
    if (!this.closed) this.close("lost", "connection lost");
  }

  /** Pauses or resumes reading the socket from the per-connection cap and the listener's throttle. */
  reading(): void {
    // before its CONNECT a connection is read on (it would time out waiting); its CONNACK stalls it
    if (this.closed || this.device === undefined) return;
    const stop = this.full || this.host.held(this);
    if (stop === this.stalled) return;
    this.stalled = stop;
    if (stop) this.socket.pause();
    else if (!this.draining) {
      // not from inside the caller's loop over sessions: the backlog may stall the listener again
      this.draining = true;
      process.nextTick(() => this.drain());
    }
  }

  private onSubscribe(p: ISubscribePacket): void {
    const refused = this.version === 5 ? REASON.notAuthorized : 0x80;
    const granted = p.subscriptions.map((s) => {
      if (s.topic === this.cmdTopic) return Math.min(s.qos, 1);
      this.host.refused(this.device, "subscribe_refused", `subscription to ${JSON.stringify(s.topic)} refused: a device may subscribe only to ${this.cmdTopic}`);
      return refused;
    });
    this.write(mqttPacket.generate({ cmd: "suback", messageId: p.messageId!, granted }, this.opts()));
  }

  private onUnsubscribe(p: IUnsubscribePacket): void {
    const packet = { cmd: "unsuback" as const, messageId: p.messageId!, granted: p.unsubscriptions.map(() => 0) };
    this.write(mqttPacket.generate(this.version === 5 ? packet : { cmd: "unsuback", messageId: p.messageId! } as Packet, this.opts()));
  }

  private protocolError(message: string): void {
    this.refuse({ reason: "protocol", code: REASON.malformed, message });
  }

  /**
   * Ends the connection for `r`: counted (unless the ingest already counted it), MQTT 5 gets a
   * DISCONNECT with the reason code first, MQTT 3.1.1 just the close.
   */
  refuse(r: Refusal): void {
    if (this.closed) return;
    this.host.refused(this.device, r.reason, r.message, r.countedByIngest === true);
    this.ending = true;
    if (this.version === 5 && this.device !== undefined) {
      this.socket.end(mqttPacket.generate({ cmd: "disconnect", reasonCode: r.code, properties: { reasonString: r.message.slice(0, 200) } }, this.opts()));
    } else this.socket.end();
    this.close(r.reason, `disconnected by the gateway: ${r.message}`);
  }

  /** Closes for the listener (takeover, timeout, shutdown); MQTT 5 devices get the reason code. */
  kick(reason: string, code: number, why: string): void {
    if (this.closed) return;
    this.ending = true;
    if (this.version === 5 && this.device !== undefined) this.socket.end(mqttPacket.generate({ cmd: "disconnect", reasonCode: code }, this.opts()));
    else this.socket.end();
    this.close(reason, why);
  }

  private write(buf: Buffer): void {
    if (!this.closed && this.socket.writable) this.socket.write(buf);
  }

  private close(reason: string, why: string): void {
    if (this.closed) return;
    this.closed = true;
    this.pending.length = 0;
    this.backlog.length = 0;
    // end() lets a final CONNACK/DISCONNECT leave; a peer that never reads it cannot hold the socket
    if (!this.socket.destroyed) {
      this.socket.end();
      setTimeout(() => this.socket.destroy(), 2000).unref();
    }
    this.host.detach(this, reason, why);
  }
}
