/**
 * The bytes of an MQTT 3.1.1 PUBLISH before its payload (fixed header, remaining length, topic,
 * packet id), in one buffer. mqtt-packet's `writeToStream` writes the same packet as six
 * `stream.write` calls (header, length, topic length, topic as a string, id, payload): at 10
 * samples a message, those writes (a Writable request each, the topic re-encoded to UTF-8 each
 * time) cost more than the payload's encoding. With this the socket gets two writes per publish.
 * test/unit/publish-frame.test.ts checks the bytes against mqtt-packet's `generate`.
 */

/** The fields of MQTT.js's publish packet this reads. */
export interface PublishPacket {
  topic: string;
  qos: 0 | 1 | 2;
  retain?: boolean;
  dup?: boolean;
  messageId?: number;
  payload: { length: number };
}

/** MQTT's largest remaining length (4 bytes of variable byte integer). */
const MAX_REMAINING = 268_435_455;

/**
 * Caches the UTF-8 topic with its 2-byte length prefix: a session publishes to one topic per
 * device, over and over. Bounded by clearing, like the encoder's caches.
 */
export class TopicBytes {
  private readonly map = new Map<string, Buffer>();
  constructor(private readonly limit = 50_000) {}

  /** The topic's length prefix and UTF-8 bytes; null for a topic over 65,535 bytes (no MQTT packet can carry it). */
  of(topic: string): Buffer | null {
    let b = this.map.get(topic);
    if (b === undefined) {
      const len = Buffer.byteLength(topic);
      if (len > 0xffff) return null;
      b = Buffer.allocUnsafe(2 + len);
      b.writeUInt16BE(len, 0);
      b.write(topic, 2, "utf8");
      if (this.map.size >= this.limit) this.map.clear();
      this.map.set(topic, b);
    }
    return b;
  }
}

/**
 * The PUBLISH packet's bytes up to its payload, or null when this cannot frame it (a topic over
 * 65,535 bytes, a packet over MQTT's size limit, QoS > 0 without a numeric packet id): the caller
 * then leaves the packet to mqtt-packet, which reports the error its own way.
 */
export function publishHead(packet: PublishPacket, topics: TopicBytes): Buffer | null {
  const qos = packet.qos;
  const topic = topics.of(packet.topic);
  if (topic === null) return null;
  if (qos > 0 && typeof packet.messageId !== "number") return null;
  const remaining = topic.length + (qos > 0 ? 2 : 0) + packet.payload.length;
  if (remaining > MAX_REMAINING) return null;
  const lenBytes = remaining < 128 ? 1 : remaining < 16_384 ? 2 : remaining < 2_097_152 ? 3 : 4;
  const head = Buffer.allocUnsafe(1 + lenBytes + topic.length + (qos > 0 ? 2 : 0));
  head[0] = 0x30 | (packet.dup ? 0x08 : 0) | (qos << 1) | (packet.retain ? 0x01 : 0);
  let at = 1;
  let r = remaining;
  do {
    let digit = r % 128;
    r = Math.floor(r / 128);
    if (r > 0) digit |= 0x80;
    head[at++] = digit;
  } while (r > 0);
  head.set(topic, at);
  at += topic.length;
  if (qos > 0) head.writeUInt16BE(packet.messageId!, at);
  return head;
}
