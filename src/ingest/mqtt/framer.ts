/**
 * Splits a device connection's byte stream into MQTT packets, and reads the one packet that
 * matters for speed — a PUBLISH of telemetry to the device's own topic — itself. Every other
 * packet (CONNECT, SUBSCRIBE, PINGREQ, a PUBLISH with MQTT 5 properties or to another topic…) is
 * handed whole to mqtt-packet's parser, which stays the authority on what a packet means.
 *
 * Why: mqtt-packet reads every field through a BufferList copy, calls `debug()` (an arguments
 * array each time, even when disabled) at each step and copies the payload; at 20,000+ publishes/s
 * that was a fifth of the listener's allocations. Framing ourselves also tells the session how
 * long a packet will be as soon as its header is in (the too-large check) and whether part of one
 * is buffered, without reading mqtt-packet's private state.
 */

/** A PUBLISH read by the fast path: the fields the session uses, in mqtt-packet's names. */
export interface FastPublish {
  cmd: "publish";
  qos: 0 | 1;
  /** QoS 1 only */
  messageId: number | undefined;
  topic: string;
  /** a view of the received bytes (not a copy): valid until the store's synchronous part is done */
  payload: Buffer;
  dup: boolean;
  retain: boolean;
}

export interface FramerSink {
  /** A PUBLISH to `topic` at QoS 0 or 1 without MQTT 5 properties (or with none set). */
  publish(p: FastPublish): void;
  /** Any other whole packet, fixed header included: for mqtt-packet's parser. */
  other(packet: Buffer): void;
  /** The remaining length of the packet whose header just arrived; false stops framing (too large). */
  announced(total: number): boolean;
  /** The stream cannot be framed (a remaining length over 4 bytes). */
  malformed(message: string): void;
}

export class PacketFramer {
  /** bytes of a packet not yet whole, in arrival order */
  private parts: Buffer[] = [];
  private partsLen = 0;
  /** the whole size of the packet in `parts` once its header is in; -1 before */
  private need = -1;
  private topicBytes: Buffer = Buffer.alloc(0);
  private topic = "";
  private v5 = false;
  private stopped = false;

  constructor(private readonly sink: FramerSink) {}

  /** The device's telemetry topic (the fast path's only topic) and its protocol version, once connected. */
  connected(topic: string, version: number): void {
    this.topic = topic;
    this.topicBytes = Buffer.from(topic, "utf8");
    this.v5 = version === 5;
  }

  /** Part of a packet is buffered: what follows may still complete it. */
  get partial(): boolean {
    return this.partsLen > 0;
  }

  /** Frames a chunk; every whole packet in it goes to the sink before this returns. */
  push(chunk: Buffer): void {
    if (this.stopped) return;
    let buf = chunk;
    if (this.partsLen > 0) {
      this.parts.push(chunk);
      this.partsLen += chunk.length;
      // a large packet arrives in many chunks: join them once, when it is whole
      if (this.need >= 0 && this.partsLen < this.need) return;
      buf = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.partsLen);
      this.parts = [];
      this.partsLen = 0;
      this.need = -1;
    }
    let off = 0;
    const end = buf.length;
    while (off < end && !this.stopped) {
      // fixed header: type byte, then the remaining length in 1–4 bytes of 7 bits
      let len = 0;
      let mul = 1;
      let i = off + 1;
      let whole = false;
      for (let k = 0; k < 4 && i < end; k++) {
        const b = buf[i++]!;
        len += (b & 0x7f) * mul;
        mul *= 128;
        if ((b & 0x80) === 0) { whole = true; break; }
      }
      if (!whole) {
        if (i - off - 1 >= 4) { this.stop(); this.sink.malformed("Invalid length"); return; }
        break; // the header itself is cut: wait for more
      }
      const total = i - off + len;
      if (!this.sink.announced(total)) { this.stop(); return; }
      if (end - off < total) {
        this.need = total;
        break;
      }
      this.frame(buf, off, i, off + total);
      off += total;
    }
    if (off < end && !this.stopped) {
      const rest = buf.subarray(off);
      this.parts.push(rest);
      this.partsLen = rest.length;
    }
  }

  private stop(): void {
    this.stopped = true;
    this.parts = [];
    this.partsLen = 0;
  }

  /** One whole packet: `buf[start]` its type byte, `body` where its variable header begins. */
  private frame(buf: Buffer, start: number, body: number, end: number): void {
    const b0 = buf[start]!;
    const qos = (b0 >> 1) & 3;
    if (b0 >> 4 === 3 && qos < 2 && this.topicBytes.length > 0) {
      const t = this.topicBytes;
      const n = t.length;
      let p = body;
      if (end - p >= 2 + n && buf[p] === n >> 8 && buf[p + 1] === (n & 0xff)) {
        p += 2;
        let k = 0;
        while (k < n && buf[p + k] === t[k]) k++;
        if (k === n) {
          p += n;
          let messageId: number | undefined;
          let ok = true;
          if (qos === 1) {
            if (end - p >= 2) {
              messageId = (buf[p]! << 8) | buf[p + 1]!;
              p += 2;
              if (messageId === 0) ok = false; // invalid: let mqtt-packet say so
            } else ok = false;
          }
          // MQTT 5: only an empty property list is read here (a topic alias and the rest go the long way)
          if (ok && this.v5) {
            if (p < end && buf[p] === 0) p++;
            else ok = false;
          }
          if (ok) {
            this.sink.publish({
              cmd: "publish", qos: qos as 0 | 1, messageId, topic: this.topic, payload: buf.subarray(p, end),
              dup: (b0 & 8) !== 0, retain: (b0 & 1) !== 0,
            });
            return;
          }
        }
      }
    }
    this.sink.other(buf.subarray(start, end));
  }
}
