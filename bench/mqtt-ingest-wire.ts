/**
 * The few MQTT 3.1.1 packets a bench device needs, encoded and decoded by hand: 10,000 devices in
 * two processes leave no room for a full client per device (MQTT.js keeps stores, timers and
 * streams per client). Encodes CONNECT, PUBLISH (QoS 0/1), PINGREQ, DISCONNECT; decodes what a
 * broker sends a publisher (CONNACK, PUBACK, PINGRESP, anything else as its type).
 */

function remainingLength(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}

function str(s: string): Buffer {
  const b = Buffer.from(s, "utf8");
  const out = Buffer.allocUnsafe(2 + b.length);
  out.writeUInt16BE(b.length, 0);
  b.copy(out, 2);
  return out;
}

/** CONNECT, protocol level 4 (3.1.1), clean session, username and password. */
export function encodeConnect(clientId: string, username: string, password: string, keepaliveSec: number): Buffer {
  const vh = Buffer.from([0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x80 | 0x40 | 0x02, keepaliveSec >> 8, keepaliveSec & 0xff]);
  const body = Buffer.concat([vh, str(clientId), str(username), str(password)]);
  return Buffer.concat([Buffer.from([0x10, ...remainingLength(body.length)]), body]);
}

/** PUBLISH with `qos` 0 or 1 (packetId ignored for 0); `dup` on a resend. */
export function encodePublish(topic: Buffer, payload: Buffer, qos: 0 | 1, packetId: number, dup = false): Buffer {
  const len = 2 + topic.length + (qos === 1 ? 2 : 0) + payload.length;
  const rl = remainingLength(len);
  const out = Buffer.allocUnsafe(1 + rl.length + len);
  let o = 0;
  out[o++] = 0x30 | (qos << 1) | (dup ? 0x08 : 0);
  for (const b of rl) out[o++] = b;
  out.writeUInt16BE(topic.length, o); o += 2;
  topic.copy(out, o); o += topic.length;
  if (qos === 1) { out.writeUInt16BE(packetId, o); o += 2; }
  payload.copy(out, o);
  return out;
}

export const PINGREQ = Buffer.from([0xc0, 0x00]);
export const DISCONNECT = Buffer.from([0xe0, 0x00]);

export type Incoming =
  | { type: "connack"; returnCode: number }
  | { type: "puback"; packetId: number }
  | { type: "pingresp" }
  | { type: "other"; code: number };

/**
 * Splits a broker's byte stream into packets. Keeps at most one partial packet between calls;
 * a malformed remaining length is reported by throwing (the caller drops the connection).
 */
export class PacketReader {
  private rest: Buffer | undefined;

  push(chunk: Buffer, onPacket: (p: Incoming) => void): void {
    let buf = this.rest === undefined ? chunk : Buffer.concat([this.rest, chunk]);
    this.rest = undefined;
    let o = 0;
    while (o < buf.length) {
      if (buf.length - o < 2) break;
      let len = 0;
      let mul = 1;
      let i = o + 1;
      let complete = false;
      for (let k = 0; k < 4 && i < buf.length; k++) {
        const b = buf[i++]!;
        len += (b & 0x7f) * mul;
        mul *= 128;
        if ((b & 0x80) === 0) { complete = true; break; }
        if (k === 3) throw new Error("malformed remaining length");
      }
      if (!complete || i + len > buf.length) break;
      const code = buf[o]! >> 4;
      if (code === 2) onPacket({ type: "connack", returnCode: buf[i + 1]! });
      else if (code === 4) onPacket({ type: "puback", packetId: buf.readUInt16BE(i) });
      else if (code === 13) onPacket({ type: "pingresp" });
      else onPacket({ type: "other", code });
      o = i + len;
    }
    if (o < buf.length) this.rest = buf.subarray(o);
    buf = Buffer.alloc(0);
  }
}

/**
 * Latencies in µs, log-linear (16 sub-buckets per power of two, so within ~6 %), mergeable by
 * adding the arrays: the generator processes send theirs to the parent.
 */
export class LatencyHistogram {
  static readonly SUB = 16;
  static readonly SIZE = 32 * LatencyHistogram.SUB;
  counts = new Array<number>(LatencyHistogram.SIZE).fill(0);
  total = 0;

  static index(us: number): number {
    const v = Math.max(1, Math.round(us));
    const e = Math.floor(Math.log2(v));
    if (e < 4) return v; // 1..15 exact
    const sub = Math.floor((v / 2 ** e - 1) * LatencyHistogram.SUB);
    return Math.min(LatencyHistogram.SIZE - 1, e * LatencyHistogram.SUB + sub);
  }

  /** the upper edge of a bucket, µs */
  static upper(i: number): number {
    if (i < 16) return i;
    const e = Math.floor(i / LatencyHistogram.SUB);
    const sub = i % LatencyHistogram.SUB;
    return 2 ** e * (1 + (sub + 1) / LatencyHistogram.SUB);
  }

  record(us: number): void {
    this.counts[LatencyHistogram.index(us)]!++;
    this.total++;
  }

  add(counts: readonly number[]): void {
    for (let i = 0; i < counts.length; i++) {
      this.counts[i]! += counts[i]!;
      this.total += counts[i]!;
    }
  }

  reset(): void {
    this.counts.fill(0);
    this.total = 0;
  }

  /** the latency under which `q` (0..1) of the recorded ones fall, µs; NaN when empty */
  quantile(q: number): number {
    if (this.total === 0) return NaN;
    const want = Math.ceil(q * this.total);
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!;
      if (seen >= want) return LatencyHistogram.upper(i);
    }
    return NaN;
  }
}
