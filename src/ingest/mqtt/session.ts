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
}

/** Most QoS 1 publishes in flight per connection before the socket stops being read (MQTT 5: Receive Maximum). */
export const RECEIVE_MAXIMUM = 64;

interface Pending {
  done: boolean;
  /** what to write once every earlier publish is answered: a PUBACK, or null for nothing (QoS 0) */
  out: Buffer | null;
  /** close after writing `out`: a refusal that ends the connection */
  refusal?: Refusal;
}

export class Session {
  device: string | undefined;
  version: 3 | 4 | 5 = 4;
  /** gateway clock of the last packet received (keep-alive) */
  lastSeen: number;
  /** seconds; 0: none */
  keepalive = 0;
  readonly openedAt: number;
  private readonly parser = mqttPacket.parser({});
  private topic = "";
  private cmdTopic = "";
  private closed = false;
  /** a refusal is on its way out: read nothing more */
  private ending = false;
  private readonly pending: Pending[] = [];
  private paused = false;
  private willSent = false;

  constructor(readonly socket: Socket, private readonly host: SessionHost, now: number) {
    this.openedAt = now;
    this.lastSeen = now;
    this.parser.on("packet", (p: Packet) => this.onPacket(p));
    this.parser.on("error", (err: Error) => this.protocolError(err.message));
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
    this.lastSeen = Date.now();
    this.parser.parse(chunk);
    // The parser buffers a packet until it is whole: refuse a too large one as soon as its length is known.
    const announced = (this.parser as unknown as { packet: { length: number } }).packet.length;
    if (!this.ending && announced > this.host.maxPacketBytes) {
      this.refuse({ reason: "too_large", code: REASON.packetTooLarge, message: `packet of ${announced} bytes is over the limit (ingest.maxPayloadBytes)` });
    }
  }

  private onPacket(p: Packet): void {
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
  }

  private refuseConnect(v5: number, v3: number): void {
    const connack: IConnackPacket = { cmd: "connack", sessionPresent: false };
    if (this.version === 5) connack.reasonCode = v5;
    else connack.returnCode = v3;
    this.ending = true;
    this.socket.end(mqttPacket.generate(connack, this.opts()));
    this.close("refused", "connection refused");
  }

  private onPublish(p: IPublishPacket): void {
    const device = this.device!;
    if (p.qos === 2) {
      return this.refuse({ reason: "protocol", code: REASON.qosNotSupported, message: "QoS 2 is not supported: publish at QoS 0 or 1" });
    }
    if (p.properties?.topicAlias !== undefined) {
      return this.refuse({ reason: "protocol", code: REASON.topicAliasInvalid, message: "topic aliases are not supported" });
    }
    if (p.topic !== this.topic) {
      const refusal: Refusal = { reason: "topic_forbidden", code: REASON.notAuthorized, message: `publish to ${JSON.stringify(p.topic)}: a device publishes only to ${this.topic}` };
      // MQTT 5 can refuse one QoS 1 publish and keep the connection; MQTT 3.1.1 cannot say no.
      if (this.version === 5 && p.qos === 1) {
        this.host.refused(device, refusal.reason, refusal.message);
        return this.answer(Promise.resolve(this.puback(p.messageId!, REASON.notAuthorized)));
      }
      return this.refuse(refusal);
    }
    const payload = typeof p.payload === "string" ? Buffer.from(p.payload) : p.payload;
    const stored = this.host.ingest.accept(device, payload).then((reply) => this.afterStore(reply, p));
    this.answer(stored);
  }

  /** What a store's answer becomes: a PUBACK (or nothing at QoS 0), or a refusal that ends the connection. */
  private afterStore(reply: IngestReply, p: IPublishPacket): Buffer | null | Refusal {
    if (reply.status === 202) return p.qos === 1 ? this.puback(p.messageId!, 0) : null;
    const refusal = refusalOf(reply);
    // An invalid body cannot become valid by resending: MQTT 5 says so on the PUBACK. At QoS 0 it
    // is dropped (counted by the ingest); MQTT 3.1.1 at QoS 1 has no "no" but a disconnect.
    if (reply.status === 400) {
      if (p.qos === 0) return null;
      if (this.version === 5) return this.puback(p.messageId!, REASON.payloadFormatInvalid);
    }
    if (reply.status === 503 && p.qos === 0) return null;
    return refusal;
  }

  /** Queues an answer in arrival order; stops reading while too many are in flight. */
  private answer(result: Promise<Buffer | null | Refusal>): void {
    const slot: Pending = { done: false, out: null };
    this.pending.push(slot);
    if (this.pending.length >= RECEIVE_MAXIMUM && !this.paused) {
      this.paused = true;
      this.socket.pause();
    }
    result.then((r) => {
      slot.done = true;
      if (r === null || Buffer.isBuffer(r)) slot.out = r;
      else slot.refusal = r;
      this.flush();
    }, (err: unknown) => {
      // accept never rejects (its contract); a bug here must still not leave the device waiting
      slot.done = true;
      slot.refusal = { reason: "journal_error", code: REASON.unspecified, message: `store failed: ${String(err)}` };
      this.flush();
    });
  }

  private flush(): void {
    const q = this.pending;
    let n = 0;
    while (n < q.length && q[n]!.done) {
      const s = q[n++]!;
      if (this.closed) continue;
      if (s.out) this.write(s.out);
      if (s.refusal) this.refuse(s.refusal);
    }
    if (n > 0) q.splice(0, n);
    if (this.paused && q.length < RECEIVE_MAXIMUM / 2 && !this.closed) {
      this.paused = false;
      this.socket.resume();
    }
  }

  private puback(messageId: number, reasonCode: number): Buffer {
    // 4 bytes: an MQTT 5 PUBACK without reason code means success, so both versions share it.
    if (reasonCode === 0 || this.version !== 5) return Buffer.from([0x40, 0x02, messageId >> 8, messageId & 0xff]);
    return Buffer.from([0x40, 0x03, messageId >> 8, messageId & 0xff, reasonCode]);
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
    // end() lets a final CONNACK/DISCONNECT leave; a peer that never reads it cannot hold the socket
    if (!this.socket.destroyed) {
      this.socket.end();
      setTimeout(() => this.socket.destroy(), 2000).unref();
    }
    this.host.detach(this, reason, why);
  }
}
