import { createRequire } from "node:module";
import type { Writable } from "node:stream";
import { TopicBytes, publishHead, type PublishPacket } from "./publish-frame.js";

/**
 * The one place Floorgate touches MQTT.js internals: `MqttClient#_storeAndSend`, a private method
 * of MQTT.js 5 (checked against 5.16.0, pinned in package-lock.json).
 *
 * What MQTT.js does there: every QoS 1/2 PUBLISH is deep-copied (payload included) before it goes
 * into the client's outgoing store, so that it could be resent after a reconnect, and the copy has
 * any topic alias undone; then the original is written to the socket once the store accepted the
 * copy.
 *
 * Why we replace it: our sessions never reconnect or resend (each is a fresh client ended with
 * force) and our payloads are never modified after encoding, so that copy is pure garbage: 15 MB/s
 * of Buffers at 2,000 messages/s.
 *
 * Contract of `skipStoreCopy(client)`:
 * - it replaces the client's own `_storeAndSend` (never the prototype) with one that puts the
 *   packet itself into the outgoing store, then calls `cbStorePut` and writes the packet, in
 *   MQTT.js's order; a store error goes to the publish callback, as in MQTT.js;
 * - it changes nothing and returns false when the client is not shaped as expected
 *   (`storeCopyMismatch` says why) or may send topic aliases (the copy also undoes the alias, which
 *   a resend would need; our publishes never set one themselves);
 * - it returns true when the copy is skipped. A false is never an error: the client then pays the
 *   copy, as stock MQTT.js does.
 * - a stored MQTT 3.1.1 PUBLISH with a Buffer payload is then written by `framedWriter` (the same
 *   bytes as mqtt-packet, in two writes instead of six); any other packet through `_writePacket`.
 * test/outputs/mqtt-store-copy.test.ts checks the installed MQTT.js against this contract, by
 * shape and against a real Mosquitto, and names the MQTT.js version when it no longer holds.
 */

/** The part of MQTT.js's client that `skipStoreCopy` reads and replaces. */
interface StoreAndSendClient {
  _storeAndSend?: (packet: { cmd: string }, cb: unknown, cbStorePut: (() => void) | undefined) => void;
  _writePacket?: (packet: unknown, cb: unknown) => void;
  outgoingStore?: { put(packet: unknown, cb: (err?: Error) => void): unknown };
  options?: { topicAliasMaximum?: number; autoUseTopicAlias?: boolean; autoAssignTopicAlias?: boolean };
}

/** The installed MQTT.js version, for messages. */
export function mqttJsVersion(): string {
  try {
    const require = createRequire(import.meta.url);
    return (require("mqtt/package.json") as { version: string }).version;
  } catch {
    return "unknown";
  }
}

/**
 * Why `skipStoreCopy` would leave `client` unchanged: the internal it needs that is missing or
 * different, or topic aliases; null when it can apply.
 */
export function storeCopyMismatch(client: object): string | null {
  const c = client as StoreAndSendClient;
  if (typeof c._storeAndSend !== "function") return "no _storeAndSend method";
  if (c._storeAndSend.length !== 3) return `_storeAndSend takes ${c._storeAndSend.length} parameters, not 3 (packet, cb, cbStorePut)`;
  if (typeof c._writePacket !== "function") return "no _writePacket method";
  if (!c.outgoingStore || typeof c.outgoingStore.put !== "function") return "no outgoingStore.put";
  const o = c.options;
  if (o?.topicAliasMaximum || o?.autoUseTopicAlias || o?.autoAssignTopicAlias) return "topic aliases are on (the copy also undoes the alias)";
  return null;
}

/** Makes `client` store QoS 1/2 publishes without MQTT.js's deep copy; see the contract above. */
export function skipStoreCopy(client: object): boolean {
  if (storeCopyMismatch(client) !== null) return false;
  const c = client as Required<Pick<StoreAndSendClient, "_storeAndSend" | "_writePacket" | "outgoingStore">> & FramingClient;
  const store = c.outgoingStore;
  const write = c._writePacket;
  const framed = framedWriter(c);
  c._storeAndSend = function (packet, cb, cbStorePut) {
    store.put(packet, (err) => {
      if (err) { if (typeof cb === "function") (cb as (e: Error) => void)(err); return; }
      cbStorePut?.();
      if (!framed(packet, cb)) write.call(client, packet, cb);
    });
  };
  return true;
}

/** What the framed write reads of MQTT.js's client (all public or long-stable fields). */
interface FramingClient {
  stream?: Writable;
  noop?: unknown;
  options?: { protocolVersion?: number };
  emit(event: string, ...args: unknown[]): boolean;
}

/**
 * MQTT.js's `_writePacket` for the one packet we send by the thousand — an MQTT 3.1.1 PUBLISH of a
 * Buffer payload: `packetsend` emitted, then the head (publish-frame.ts) and the payload as two
 * writes, where mqtt-packet makes six, then the write callback as `_writePacket` calls it (QoS 1
 * hands MQTT.js's no-op: the PUBACK completes the publish). The stream is corked until the next
 * tick as mqtt-packet does, but once per tick rather than once per packet, so a burst of publishes
 * still leaves in one writev. Returns false, having done nothing, for any other packet.
 */
function framedWriter(c: FramingClient): (packet: { cmd: string }, cb: unknown) => boolean {
  const topics = new TopicBytes();
  let corked: Writable | null = null;
  const uncork = (): void => {
    const s = corked;
    corked = null;
    s?.uncork();
  };
  return (packet, cb) => {
    if (packet.cmd !== "publish" || c.options?.protocolVersion === 5) return false;
    const p = packet as unknown as PublishPacket & { payload: unknown };
    if (typeof p.topic !== "string" || !Buffer.isBuffer(p.payload)) return false;
    const stream = c.stream;
    if (!stream) return false;
    const head = publishHead(p, topics);
    if (head === null) return false;
    c.emit("packetsend", packet);
    if (corked !== stream) {
      if (corked !== null) uncork();
      corked = stream;
      stream.cork();
      process.nextTick(uncork);
    }
    stream.write(head);
    const ok = stream.write(p.payload);
    // As `_writePacket` ends: a real callback waits for 'drain' when the stream is full.
    if (typeof cb === "function") {
      if (!ok && cb !== c.noop) stream.once("drain", cb as () => void);
      else (cb as () => void)();
    }
    return true;
  };
}
