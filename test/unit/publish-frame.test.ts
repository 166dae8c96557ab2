import fc from "fast-check";
import mqttPacket from "mqtt-packet";
import { describe, expect, it } from "vitest";
import { TopicBytes, publishHead, type PublishPacket } from "../../src/outputs/mqtt/publish-frame.js";

/** mqtt-packet's bytes for the packet (what MQTT.js writes without the framed path). */
const reference = (p: PublishPacket & { payload: Buffer }): Buffer =>
  mqttPacket.generate({ cmd: "publish", topic: p.topic, payload: p.payload, qos: p.qos, retain: p.retain ?? false, dup: p.dup ?? false, ...(p.qos > 0 ? { messageId: p.messageId! } : {}) });

describe("publishHead: head + payload are mqtt-packet's bytes (MQTT 3.1.1 PUBLISH)", () => {
  it("any topic (unicode), payload length, qos, flags and packet id", () => {
    const topics = new TopicBytes(8); // small, so the cache is cleared and refilled during the run
    fc.assert(
      fc.property(
        fc.oneof(fc.constantFrom("floorgate/gw/press-1/telemetry", "a", "t/ü/€/😀"), fc.string({ minLength: 1, maxLength: 40, unit: "grapheme" })),
        fc.oneof(fc.integer({ min: 0, max: 300 }), fc.constantFrom(125, 126, 127, 128, 16_380, 16_383, 16_384, 20_000)),
        fc.constantFrom<0 | 1>(0, 1),
        fc.boolean(),
        fc.boolean(),
        fc.integer({ min: 1, max: 65_535 }),
        (topic, n, qos, retain, dup, messageId) => {
          const payload = Buffer.alloc(n, 0x61);
          const p = { topic, payload, qos, retain, dup, messageId };
          const head = publishHead(p, topics);
          expect(head).not.toBeNull();
          expect(Buffer.concat([head!, payload]).equals(reference(p))).toBe(true);
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it("remaining lengths at the 3- and 4-byte edges", () => {
    const topics = new TopicBytes();
    for (const n of [2_097_152 - 40, 2_097_152 - 39, 2_097_152, 2_500_000]) {
      const payload = Buffer.alloc(n, 0x62);
      const p = { topic: "floorgate/gw/d/telemetry", payload, qos: 1 as const, messageId: 7 };
      expect(Buffer.concat([publishHead(p, topics)!, payload]).equals(reference(p))).toBe(true);
    }
  });

  it("leaves to mqtt-packet what it cannot frame: no packet id at QoS 1, a topic over 65,535 bytes", () => {
    const topics = new TopicBytes();
    expect(publishHead({ topic: "t", qos: 1, payload: Buffer.alloc(1) }, topics)).toBeNull();
    expect(publishHead({ topic: "x".repeat(70_000), qos: 0, payload: Buffer.alloc(1) }, topics)).toBeNull();
  });
});
