/**
 * The MQTT output's Sparkplug B format against a real Mosquitto: the output conformance suite
 * (at `qos: 1`, where "acknowledged" means PUBACK; the QoS 0 default confirms a write once it left
 * the socket, which a paused broker cannot hold back), and payload details as a host application
 * decodes them with Eclipse Tahu's sparkplug-payload. Session behaviour over time (outages, STATE,
 * rebirth, seq wrap) is in mqtt-sparkplug-session.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MqttOutputConfig } from "../../src/outputs/mqtt/config.js";
import { createLogger } from "../../src/core/logger.js";
import type { JournaledSample } from "../../src/core/sample.js";
import { SampleBatch } from "../../src/core/sample-columns.js";
import type { OutputContext, OutputSession } from "../../src/core/output.js";
import { createMqttSparkplugOutput, type MqttSparkplugOutputOptions } from "../../src/outputs/mqtt/sparkplug-output.js";
import { startMosquitto, type MosquittoBroker } from "../helpers/mosquitto.js";
import { freePort } from "../helpers/ports.js";
import { SparkplugHost, bdSeqOf, seqViolations } from "../helpers/sparkplug-host.js";
import { outputConformance, type ReceivedSample } from "./output-conformance.js";

const log = createLogger({ level: process.env.FLOORGATE_TEST_LOG ?? "silent" });
const FAST: MqttSparkplugOutputOptions = { connectTimeoutMs: 1500, writeTimeoutMs: 1500, closeTimeoutMs: 1500 };
let clientSeq = 0;

function cfgFor(url: string, over: Partial<MqttOutputConfig> = {}): MqttOutputConfig {
  return {
    type: "mqtt", name: "spb", url, clientId: `fg-spb-${process.pid}-${clientSeq++}`,
    format: "sparkplug-b", topicPrefix: "unused", qos: 0, maxBatch: 500, ...over,
  };
}

// ---------------------------------------------------------------------------------------------
outputConformance("mqtt sparkplug-b (Mosquitto, qos 1)", async () => {
  const broker = await startMosquitto();
  const host = await SparkplugHost.start(broker.url);
  const deadPort = await freePort();
  // One edge node id per output: each is a node of its own, with its own births.
  let n = 0;
  const gw = (): { id: string; group: string } => ({ id: `conf-${n++}`, group: "conf" });
  return {
    output: () => createMqttSparkplugOutput(cfgFor(broker.url, { qos: 1 }), gw(), FAST),
    deadOutput: () => createMqttSparkplugOutput(cfgFor(`mqtt://127.0.0.1:${deadPort}`, { qos: 1 }), gw(), FAST),
    connectTimeoutMs: FAST.connectTimeoutMs!,
    writeTimeoutMs: FAST.writeTimeoutMs!,
    stop: () => broker.kill(),
    start: async () => { await broker.start(); await host.reconnect(); },
    pause: () => broker.pause(),
    resume: () => broker.resume(),
    received: async (device) => host.samples(device).map((s) => {
      const r: ReceivedSample = { device, tag: s.tag, value: s.value as ReceivedSample["value"], quality: s.quality, ts: s.ts };
      if (s.unit !== undefined) r.unit = s.unit;
      return r;
    }),
    teardown: async () => { await host.close(); await broker.dispose(); },
  };
});

// ---------------------------------------------------------------------------------------------
describe("mqtt sparkplug-b output: births, aliases, payloads", () => {
  let broker: MosquittoBroker;
  let host: SparkplugHost;
  const open: OutputSession[] = [];
  const ctx = (): OutputContext => ({ signal: new AbortController().signal, log });
  let pos = 1000;
  const samples = (device: string, rows: [string, JournaledSample["value"], JournaledSample["quality"]?, string?][], ts0 = Date.UTC(2026, 10, 21, 8)): JournaledSample[] =>
    rows.map(([tag, value, quality = "good", unit], i) => ({ device, tag, value, quality, ts: ts0 + i, pos: pos++, ...(unit ? { unit } : {}) }));

  beforeAll(async () => {
    broker = await startMosquitto();
    host = await SparkplugHost.start(broker.url);
  });
  afterAll(async () => {
    await Promise.allSettled(open.map((s) => s.close()));
    await host?.close();
    await broker?.dispose();
  });

  it("NBIRTH (seq 0, bdSeq, Node Control/Rebirth), a DBIRTH per device with every tag, datatype, alias and unit, then DDATA by alias only", async () => {
    const s = await createMqttSparkplugOutput(cfgFor(broker.url), { id: "edge-a", group: "plant" }, FAST).connect(ctx());
    open.push(s);
    const batch = [
      ...samples("press-1", [["spindle_rpm", 1234.5, "good", "rpm"], ["door_open", true], ["recipe", "Störung ⚠"], ["temp_c", null, "bad", "degC"], ["count", 7, "uncertain"]]),
      ...samples("oven-2", [["zone1_temp", 200.25, "good", "degC"]]),
    ];
    await expect(s.write(SampleBatch.of(batch))).resolves.toEqual({ dropped: [] });
    const msgs = await host.until((m) => m.filter((x) => x.node === "edge-a" && x.verb === "DDATA").length >= 2);
    const node = msgs.filter((m) => m.node === "edge-a");
    expect(node.map((m) => `${m.verb}${m.device ? ":" + m.device : ""}`)).toEqual(["NBIRTH", "DBIRTH:press-1", "DDATA:press-1", "DBIRTH:oven-2", "DDATA:oven-2"]);
    expect(node.every((m) => m.topic.startsWith("spBv1.0/plant/") && m.qos === 0)).toBe(true);
    const nb = node[0]!;
    expect(nb.topic).toBe("spBv1.0/plant/NBIRTH/edge-a");
    expect(nb.seq).toBe(0);
    expect(bdSeqOf(nb)).toBe(0);
    expect(nb.metrics.find((x) => x.name === "bdSeq")?.type).toBe("Int64");
    expect(nb.metrics.find((x) => x.name === "Node Control/Rebirth")).toMatchObject({ type: "Boolean", value: false });
    const db = node[1]!;
    expect(db.topic).toBe("spBv1.0/plant/DBIRTH/edge-a/press-1");
    expect(db.metrics.map((x) => [x.name, x.type, x.properties.engUnit])).toEqual([
      ["spindle_rpm", "Double", "rpm"], ["door_open", "Boolean", undefined], ["recipe", "String", undefined], ["temp_c", "Double", "degC"], ["count", "Double", undefined],
    ]);
    // every metric but bdSeq has an alias, unique across the whole node (the rebirth metric's is 0)
    const aliases = node.filter((m) => m.verb.endsWith("BIRTH")).flatMap((m) => m.metrics.filter((x) => x.name !== "bdSeq").map((x) => x.alias));
    expect(new Set(aliases).size).toBe(aliases.length);
    expect(aliases.every((a) => typeof a === "number")).toBe(true);
    expect(seqViolations(node)).toEqual([]);
    const got = host.samples("press-1");
    expect(got.map(({ tag, value, quality, ts, unit }) => ({ tag, value, quality, ts, unit }))).toEqual(batch.slice(0, 5).map(({ tag, value, quality, ts, unit }) => ({ tag, value, quality, ts, unit })));
    expect(got.every((x) => !x.historical)).toBe(true);
  });

  it("a new tag, a datatype change or a unit change brings a fresh DBIRTH of the device before its data", async () => {
    const s = await createMqttSparkplugOutput(cfgFor(broker.url), { id: "edge-b", group: "plant" }, FAST).connect(ctx());
    open.push(s);
    await s.write(SampleBatch.of(samples("m1", [["a", 1], ["b", 2]])));
    await s.write(SampleBatch.of(samples("m1", [["a", 3]]))); // same metrics: no birth
    await s.write(SampleBatch.of(samples("m1", [["c", 4]]))); // new tag
    await s.write(SampleBatch.of(samples("m1", [["a", "text"]]))); // datatype change
    await s.write(SampleBatch.of(samples("m1", [["b", 5, "good", "bar"]]))); // unit change
    await s.write(SampleBatch.of(samples("m1", [["a", null, "bad"]]))); // null keeps String
    const msgs = await host.until((m) => m.filter((x) => x.node === "edge-b" && x.verb === "DDATA").length >= 6);
    const node = msgs.filter((m) => m.node === "edge-b");
    expect(node.map((m) => m.verb)).toEqual(["NBIRTH", "DBIRTH", "DDATA", "DDATA", "DBIRTH", "DDATA", "DBIRTH", "DDATA", "DBIRTH", "DDATA", "DDATA"]);
    const births = node.filter((m) => m.verb === "DBIRTH");
    expect(births[1]!.metrics.map((x) => x.name)).toEqual(["a", "b", "c"]);
    // aliases stay what they were across births
    const aliasOf = (b: typeof births[number], name: string): number | undefined => b.metrics.find((x) => x.name === name)?.alias;
    for (const b of births.slice(1)) for (const t of ["a", "b"]) expect(aliasOf(b, t)).toBe(aliasOf(births[0]!, t));
    expect(births[2]!.metrics.find((x) => x.name === "a")).toMatchObject({ type: "String", value: "text" });
    // a birth carries the latest value of every metric
    expect(births[2]!.metrics.find((x) => x.name === "b")?.value).toBe(2);
    expect(births[3]!.metrics.find((x) => x.name === "b")?.properties.engUnit).toBe("bar");
    const last = node[node.length - 1]!;
    expect(last.metrics).toEqual([expect.objectContaining({ type: "String", value: null, properties: { Quality: 0 } })]);
    expect(seqViolations(node)).toEqual([]);
    expect(host.samples("m1").map((x) => x.value)).toEqual([1, 2, 3, 4, "text", 5, null]);
  });

  it("close publishes the NDEATH with the connection's bdSeq, and the next connection takes a fresh bdSeq", async () => {
    const out = createMqttSparkplugOutput(cfgFor(broker.url), { id: "edge-c", group: "plant" }, FAST);
    for (let i = 0; i < 3; i++) {
      const s = await out.connect(ctx());
      await s.write(SampleBatch.of(samples("d", [["x", i]])));
      await s.close();
    }
    const msgs = await host.until((m) => m.filter((x) => x.node === "edge-c" && x.verb === "NDEATH").length >= 3);
    const life = msgs.filter((m) => m.node === "edge-c" && m.verb.startsWith("N"));
    expect(life.map((m) => `${m.verb}:${bdSeqOf(m)}`)).toEqual(["NBIRTH:0", "NDEATH:0", "NBIRTH:1", "NDEATH:1", "NBIRTH:2", "NDEATH:2"]);
  });

  it("NaN and infinities travel as doubles; an NCMD that is not Sparkplug is ignored", async () => {
    const s = await createMqttSparkplugOutput(cfgFor(broker.url), { id: "edge-d", group: "plant" }, FAST).connect(ctx());
    open.push(s);
    await host.raw("spBv1.0/plant/NCMD/edge-d", "not protobuf at all");
    await s.write(SampleBatch.of(samples("f", [["nan", Number.NaN, "bad"], ["inf", Number.POSITIVE_INFINITY], ["ninf", Number.NEGATIVE_INFINITY]])));
    await host.until((m) => m.some((x) => x.node === "edge-d" && x.verb === "DDATA"));
    const v = host.samples("f").map((x) => x.value);
    expect(Number.isNaN(v[0])).toBe(true);
    expect(v.slice(1)).toEqual([Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]);
  });
});
