import { createServer, type Socket } from "node:net";
import { listenLoopback } from "../helpers/ports.js";
import { connectPair } from "./tcp-proxy.js";

/**
 * A loopback TCP proxy between an MQTT client and its broker that reads the MQTT packets in both
 * directions: it records every QoS 1/2 PUBLISH the client sends by packet id, and can withhold the
 * broker's PUBACKs (`hold(true)`) until `release()`. What it measures is what the client has in
 * flight as the broker sees it: publishes sent whose PUBACK has not reached the client.
 * MQTT 3.1.1 framing only (fixed header + remaining length); payloads pass through untouched.
 */
export interface AckProxy {
  port: number;
  /** publishes sent by the client whose PUBACK has not been passed back yet */
  readonly inFlight: number;
  /** the most `inFlight` ever was */
  readonly maxInFlight: number;
  /** QoS 1 publishes seen (client → broker) */
  readonly publishes: number;
  /** publishes whose packet id was already in flight (a PUBACK would complete the wrong message) */
  readonly duplicateIds: number;
  /** PUBACKs withheld right now */
  readonly held: number;
  /** when the last PUBLISH came from the client (performance.now()) */
  readonly lastPublishAt: number;
  /** Withhold PUBACKs from now on (true), or pass them again (false; held ones stay held). */
  hold(on: boolean): void;
  /** Passes the next `n` PUBACKs, then holds every later one (e.g. 1: a session's online status). */
  holdAfter(n: number): void;
  /** Stops holding and passes every held PUBACK on, in order. */
  release(): void;
  close(): Promise<void>;
}

/** Splits a byte stream into whole MQTT packets. */
class Framer {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Buffer[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: Buffer[] = [];
    for (;;) {
      const b = this.buf;
      if (b.length < 2) break;
      let len = 0;
      let mult = 1;
      let k = 1;
      let byte: number;
      let complete = true;
      do {
        if (k >= b.length) { complete = false; break; }
        byte = b[k]!;
        len += (byte & 0x7f) * mult;
        mult *= 128;
        k++;
      } while (byte & 0x80);
      if (!complete || b.length < k + len) break;
      out.push(b.subarray(0, k + len));
      this.buf = b.subarray(k + len);
    }
    return out;
  }
}

/** Where the variable header starts (after the fixed header's remaining-length bytes). */
function headerEnd(p: Buffer): number {
  let k = 1;
  while (p[k]! & 0x80) k++;
  return k + 1;
}

export async function startAckProxy(targetPort: number, targetHost = "127.0.0.1"): Promise<AckProxy> {
  const pairs = new Set<[Socket, Socket]>();
  const inFlight = new Set<number>();
  const held: { down: Socket; packet: Buffer; id: number }[] = [];
  let holding = false;
  let passBeforeHold: number | null = null;
  let maxInFlight = 0;
  let publishes = 0;
  let duplicateIds = 0;
  let lastPublishAt = 0;

  const server = createServer((down) => {
    const up = connectPair(down, targetPort, targetHost, pairs);
    const fromClient = new Framer();
    const fromBroker = new Framer();
    down.on("data", (chunk: Buffer) => {
      for (const p of fromClient.push(chunk)) {
        if (p[0]! >> 4 !== 3 || ((p[0]! >> 1) & 3) === 0) continue; // only PUBLISH at QoS > 0
        const h = headerEnd(p);
        const topicLen = p.readUInt16BE(h);
        const id = p.readUInt16BE(h + 2 + topicLen);
        publishes++;
        lastPublishAt = performance.now();
        if (inFlight.has(id)) duplicateIds++;
        inFlight.add(id);
        if (inFlight.size > maxInFlight) maxInFlight = inFlight.size;
      }
      up.write(chunk);
    });
    up.on("data", (chunk: Buffer) => {
      const pass: Buffer[] = [];
      for (const p of fromBroker.push(chunk)) {
        if (p[0]! >> 4 === 4) {
          const id = p.readUInt16BE(headerEnd(p));
          if (passBeforeHold !== null && passBeforeHold-- <= 0) { passBeforeHold = null; holding = true; }
          if (holding) { held.push({ down, packet: p, id }); continue; }
          inFlight.delete(id);
        }
        pass.push(p);
      }
      if (pass.length > 0) down.write(pass.length === 1 ? pass[0]! : Buffer.concat(pass));
    });
  });
  const port = await listenLoopback(server);
  return {
    port,
    get inFlight() { return inFlight.size; },
    get maxInFlight() { return maxInFlight; },
    get publishes() { return publishes; },
    get duplicateIds() { return duplicateIds; },
    get held() { return held.length; },
    get lastPublishAt() { return lastPublishAt; },
    hold: (on) => { holding = on; passBeforeHold = null; },
    holdAfter: (n) => { passBeforeHold = n; },
    release: () => {
      holding = false;
      passBeforeHold = null;
      const byDown = new Map<Socket, Buffer[]>();
      for (const h of held.splice(0)) {
        inFlight.delete(h.id);
        if (h.down.destroyed) continue;
        const list = byDown.get(h.down) ?? [];
        list.push(h.packet);
        byDown.set(h.down, list);
      }
      for (const [down, list] of byDown) down.write(Buffer.concat(list));
    },
    close: () => new Promise<void>((resolve) => {
      for (const [down, up] of pairs) { down.destroy(); up.destroy(); }
      server.close(() => resolve());
    }),
  };
}
