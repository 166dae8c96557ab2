import { createHash } from "node:crypto";
import mqtt, { MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mqttJsVersion, skipStoreCopy, storeCopyMismatch } from "../../src/outputs/mqtt/store-copy.js";
import { startMosquitto, type MosquittoBroker } from "../helpers/mosquitto.js";
import { collect, type Collector } from "../helpers/mqtt-sub.js";

/*
 * src/outputs/mqtt/store-copy.ts replaces a private method of MQTT.js. These tests fail, naming the
 * installed MQTT.js version, as soon as that method is not the one the adapter was written against:
 * by its shape and source, and by what it does with a real Mosquitto.
 */

const VERSION = mqttJsVersion();
/** The MQTT.js release whose `_storeAndSend` store-copy.ts was checked against, and that method's source. */
const CHECKED_VERSION = "5.16.0";
const CHECKED_SOURCE_SHA256 = "7b51dd9b88665263761ed0ddeeda9aa3c3c521826e541174dd0cc3baa48e5ed3";
const CHANGED = `MQTT.js ${VERSION} (store-copy.ts was checked against ${CHECKED_VERSION}) changed MqttClient#_storeAndSend`;
const REDO = "re-read it against the contract in src/outputs/mqtt/store-copy.ts, then update the pins in this test";

type Proto = { _storeAndSend?: (...a: unknown[]) => unknown; _writePacket?: (...a: unknown[]) => unknown };

describe(`MQTT.js ${VERSION}: the private _storeAndSend that store-copy.ts replaces`, () => {
  it("is the method the adapter was written against (shape and source)", () => {
    const proto = MqttClient.prototype as unknown as Proto;
    expect(typeof proto._storeAndSend, `${CHANGED}: it is gone; ${REDO}`).toBe("function");
    expect(proto._storeAndSend!.length, `${CHANGED}: its parameters are not (packet, cb, cbStorePut); ${REDO}`).toBe(3);
    expect(typeof proto._writePacket, `MQTT.js ${VERSION} has no _writePacket, which the replacement calls; ${REDO}`).toBe("function");
    const src = proto._storeAndSend!.toString().replace(/\s+/g, " ");
    // What the replacement reproduces: store first, then cbStorePut, then write the original packet.
    for (const part of ["this.outgoingStore.put(", "cbStorePut()", "this._writePacket(packet, cb)", "_removeTopicAliasAndRecoverTopicName"]) {
      expect(src.includes(part), `${CHANGED}: its source no longer has ${JSON.stringify(part)}; ${REDO}`).toBe(true);
    }
    const digest = createHash("sha256").update(src).digest("hex");
    expect(digest, `${CHANGED}: its source differs (sha256 ${digest}); ${REDO}`).toBe(CHECKED_SOURCE_SHA256);
    // What the framed write reproduces of _writePacket: packetsend, the packet written, then cb or 'drain'.
    const write = proto._writePacket!.toString().replace(/\s+/g, " ");
    for (const part of ["this.emit('packetsend', packet)", "writeToStream(packet, this.stream, this.options)", "this.stream.once('drain', cb)", "cb !== this.noop"]) {
      expect(write.includes(part), `MQTT.js ${VERSION} changed _writePacket: its source no longer has ${JSON.stringify(part)}; check store-copy.ts framedWriter`).toBe(true);
    }
  });

  it("a fresh client has every internal the adapter needs; topic aliases turn it off", () => {
    // manualConnect: no socket is opened (and none needs closing).
    const client = mqtt.connect("mqtt://127.0.0.1:1", { manualConnect: true, reconnectPeriod: 0 });
    expect(storeCopyMismatch(client), `MQTT.js ${VERSION}: ${REDO}`).toBeNull();
    const aliased = mqtt.connect("mqtt://127.0.0.1:1", { manualConnect: true, reconnectPeriod: 0, protocolVersion: 5, autoUseTopicAlias: true });
    expect(storeCopyMismatch(aliased)).toMatch(/topic alias/);
    expect(skipStoreCopy(aliased)).toBe(false);
    expect(storeCopyMismatch({})).toBe("no _storeAndSend method");
    expect(skipStoreCopy({})).toBe(false);
  });
});

describe(`MQTT.js ${VERSION} with the store copy skipped, against Mosquitto`, () => {
  let broker: MosquittoBroker;
  let sub: Collector;

  beforeAll(async () => {
    broker = await startMosquitto();
    sub = await collect(broker.url, "fg/copy/#");
  });
  afterAll(async () => {
    await sub?.close();
    await broker?.dispose();
  });

  /** A connected client, and the packets its outgoing store is handed. */
  async function client(id: string): Promise<{ c: MqttClient; stored: { payload?: unknown }[] }> {
    const c = mqtt.connect(broker.url, { clientId: `fg-test-${id}-${process.pid}`, reconnectPeriod: 0 });
    await new Promise<void>((resolve, reject) => { c.once("connect", () => resolve()); c.once("error", reject); });
    const stored: { payload?: unknown }[] = [];
    const store = c.outgoingStore as unknown as { put(p: { payload?: unknown }, cb: () => void): unknown };
    const put = store.put.bind(store);
    store.put = (p, cb) => { stored.push(p); return put(p, cb); };
    return { c, stored };
  }

  it("skips MQTT.js's deep copy of QoS 1 publishes: the stored packet is ours, PUBACK still completes it", async () => {
    const { c, stored } = await client("copy");
    try {
      // false would mean MQTT.js internals changed: the gateway then pays the copy again
      expect(skipStoreCopy(c), `MQTT.js ${VERSION}: ${storeCopyMismatch(c)}; ${REDO}`).toBe(true);
      const payload = Buffer.from('{"x":1}');
      const acked = c.publishAsync("fg/copy/t", payload, { qos: 1 });
      await acked;
      expect(stored.map((p) => p.payload), `MQTT.js ${VERSION} stored a copy despite the patch; ${REDO}`).toEqual([payload]);
      expect(stored[0]!.payload).toBe(payload);
      expect(Object.keys(c.outgoing)).toHaveLength(0);
      const m = await sub.waitFor((x) => x.topic === "fg/copy/t");
      expect(m.payload.toString()).toBe('{"x":1}');
    } finally {
      await c.endAsync(true);
    }
  });

  it("unpatched, MQTT.js still stores a copy: the patch removes a real cost", async () => {
    const { c, stored } = await client("stock");
    try {
      const payload = Buffer.from('{"y":2}');
      await c.publishAsync("fg/copy/stock", payload, { qos: 1 });
      expect(stored).toHaveLength(1);
      expect(stored[0]!.payload, `MQTT.js ${VERSION} no longer copies QoS 1 publishes: store-copy.ts may be dropped`).not.toBe(payload);
      expect(Buffer.from(stored[0]!.payload as Buffer).equals(payload)).toBe(true);
    } finally {
      await c.endAsync(true);
    }
  });

  it("a patched client writes each QoS 1 publish as head + payload (two writes, not mqtt-packet's six), and the broker gets it intact", async () => {
    const { c } = await client("framed");
    try {
      expect(skipStoreCopy(c)).toBe(true);
      const stream = c.stream as unknown as { write(chunk: unknown, ...rest: unknown[]): boolean };
      const write = stream.write.bind(stream);
      let writes = 0;
      stream.write = (chunk: unknown, ...rest: unknown[]) => { writes++; return write(chunk, ...rest); };
      const payload = Buffer.from(JSON.stringify({ v: "ü€😀", n: 1.5 }));
      await Promise.all(Array.from({ length: 10 }, () => c.publishAsync("fg/copy/fränkisch", payload, { qos: 1 })));
      expect(writes).toBe(20);
      await sub.until(() => sub.on("fg/copy/fränkisch").length === 10);
      for (const m of sub.on("fg/copy/fränkisch")) expect(m.payload.equals(payload)).toBe(true);
    } finally {
      await c.endAsync(true);
    }
  });

  it("many QoS 1 publishes through the patched client all arrive, in order, and leave nothing in the store", async () => {
    const { c } = await client("many");
    try {
      expect(skipStoreCopy(c)).toBe(true);
      await Promise.all(Array.from({ length: 200 }, (_, i) => c.publishAsync("fg/copy/many", Buffer.from(String(i)), { qos: 1 })));
      expect(Object.keys(c.outgoing)).toHaveLength(0);
      await sub.until(() => sub.on("fg/copy/many").length === 200);
      expect(sub.on("fg/copy/many").map((m) => Number(m.payload.toString()))).toEqual(Array.from({ length: 200 }, (_, i) => i));
    } finally {
      await c.endAsync(true);
    }
  });
});
