// The listener's packet framer (src/ingest/mqtt/framer.ts) against mqtt-packet's parser, the
// authority: any stream of packets, cut into chunks anywhere, gives the same packets in the same
// order whether the framer reads a PUBLISH itself or hands the packet to mqtt-packet.
import fc from "fast-check";
import mqttPacket, { type Packet } from "mqtt-packet";
import { describe, expect, it } from "vitest";
import { type FastPublish, PacketFramer } from "../../src/ingest/mqtt/framer.js";

const OWN = "devices/dev-1/telemetry";

/** The fields the session reads, comparable across both parsers. */
function view(p: Packet | FastPublish): Record<string, unknown> {
  if (p.cmd !== "publish") return { cmd: p.cmd, id: "messageId" in p ? p.messageId : undefined };
  const props = "properties" in p ? p.properties : undefined;
  return {
    cmd: "publish", topic: p.topic, qos: p.qos, messageId: p.qos > 0 ? p.messageId : undefined,
    payload: Buffer.from(p.payload).toString("hex"), dup: p.dup ?? false, retain: p.retain ?? false,
    topicAlias: props?.topicAlias,
  };
}

function viaParser(stream: Buffer, version: number): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const parser = mqttPacket.parser({ protocolVersion: version });
  parser.on("packet", (p: Packet) => out.push(view(p)));
  parser.on("error", (e: Error) => out.push({ error: e.message }));
  parser.parse(stream);
  return out;
}

function viaFramer(chunks: Buffer[], version: number, counts = { fast: 0 }): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const parser = mqttPacket.parser({ protocolVersion: version });
  parser.on("packet", (p: Packet) => out.push(view(p)));
  parser.on("error", (e: Error) => out.push({ error: e.message }));
  const framer = new PacketFramer({
    publish: (p) => { counts.fast++; out.push(view(p)); },
    other: (b) => parser.parse(b),
    announced: () => true,
    malformed: (m) => out.push({ error: m }),
  });
  framer.connected(OWN, version);
  for (const c of chunks) framer.push(c);
  expect(framer.partial).toBe(false);
  return out;
}

const payload = fc.oneof(
  { weight: 8, arbitrary: fc.uint8Array({ maxLength: 300 }) },
  { weight: 1, arbitrary: fc.integer({ min: 16_000, max: 70_000 }).map((n) => new Uint8Array(n).fill(0x7b)) },
);

function packetArb(version: number): fc.Arbitrary<Packet> {
  const publish = fc.record({
    topic: fc.constantFrom(OWN, OWN, OWN, "devices/dev-2/telemetry", "devices/dev-1/telemetr", "x"),
    qos: fc.constantFrom(0, 0, 1, 1, 1),
    messageId: fc.integer({ min: 1, max: 65_535 }),
    payload,
    dup: fc.boolean(),
    retain: fc.boolean(),
    props: version === 5 ? fc.constantFrom<"none" | "format" | "alias">("none", "none", "format", "alias") : fc.constant<"none">("none"),
  }).map(({ topic, qos, messageId, payload: pl, dup, retain, props }): Packet => ({
    cmd: "publish", topic, qos: qos as 0 | 1, ...(qos > 0 ? { messageId } : {}), payload: Buffer.from(pl), dup: qos > 0 && dup, retain,
    ...(props === "format" ? { properties: { payloadFormatIndicator: true } } : props === "alias" ? { properties: { topicAlias: 3 } } : {}),
  }));
  const others = fc.constantFrom<Packet>(
    { cmd: "pingreq" },
    { cmd: "puback", messageId: 7 },
    { cmd: "subscribe", messageId: 3, subscriptions: [{ topic: "devices/dev-1/cmd", qos: 1 }] },
    { cmd: "unsubscribe", messageId: 4, unsubscriptions: ["devices/dev-1/cmd"] },
    { cmd: "disconnect" },
  );
  return fc.oneof({ weight: 5, arbitrary: publish }, { weight: 1, arbitrary: others });
}

/** Cuts `stream` at the given fractions (duplicates and ends allowed: empty chunks too). */
function cut(stream: Buffer, at: number[]): Buffer[] {
  const points = [...new Set(at.map((f) => Math.floor(f * stream.length)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const p of points) { chunks.push(stream.subarray(from, p)); from = p; }
  chunks.push(stream.subarray(from));
  return chunks;
}

describe("MQTT packet framer", () => {
  for (const version of [4, 5]) {
    it(`MQTT ${version === 5 ? "5" : "3.1.1"}: same packets as mqtt-packet, however the stream is cut (property)`, () => {
      let fast = 0;
      fc.assert(fc.property(
        fc.array(packetArb(version), { minLength: 1, maxLength: 30 }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 40 }),
        (packets, at) => {
          const stream = Buffer.concat(packets.map((p) => mqttPacket.generate(p, { protocolVersion: version })));
          const counts = { fast: 0 };
          expect(viaFramer(cut(stream, at), version, counts)).toEqual(viaParser(stream, version));
          fast += counts.fast;
        },
      ), { numRuns: 300 });
      // the fast path was taken, not only the fallback
      expect(fast).toBeGreaterThan(100);
    });
  }

  it("reports each packet's whole size as soon as its header is in, and stops at a refusal", () => {
    const big = mqttPacket.generate({ cmd: "publish", topic: OWN, qos: 1, messageId: 9, payload: Buffer.alloc(200_000), dup: false, retain: false }, { protocolVersion: 4 });
    const small = mqttPacket.generate({ cmd: "pingreq" }, { protocolVersion: 4 });
    const announced: number[] = [];
    const got: string[] = [];
    const framer = new PacketFramer({
      publish: () => got.push("publish"),
      other: () => got.push("other"),
      announced: (total) => { announced.push(total); return total < 100_000; },
      malformed: () => got.push("malformed"),
    });
    framer.connected(OWN, 4);
    framer.push(small);
    framer.push(big.subarray(0, 10)); // header only: refused before the payload is buffered
    framer.push(big.subarray(10));
    framer.push(small);
    expect(announced).toEqual([2, big.length]);
    expect(got).toEqual(["other"]);
    expect(framer.partial).toBe(false);
  });

  it("a remaining length of more than 4 bytes is malformed", () => {
    const got: string[] = [];
    const framer = new PacketFramer({ publish: () => got.push("publish"), other: () => got.push("other"), announced: () => true, malformed: (m) => got.push(m) });
    framer.push(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]));
    expect(got).toEqual(["Invalid length"]);
  });

  it("a header cut after its first byte waits for the rest", () => {
    const p = mqttPacket.generate({ cmd: "publish", topic: OWN, qos: 0, payload: Buffer.from("{}"), dup: false, retain: false }, { protocolVersion: 4 });
    const got: FastPublish[] = [];
    const framer = new PacketFramer({ publish: (x) => got.push(x), other: () => undefined, announced: () => true, malformed: () => undefined });
    framer.connected(OWN, 4);
    for (let i = 0; i < p.length; i++) framer.push(p.subarray(i, i + 1));
    expect(got.map((x) => x.payload.toString())).toEqual(["{}"]);
    expect(framer.partial).toBe(false);
  });
});
