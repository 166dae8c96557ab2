import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Aedes } from "aedes";
import { WebSocketServer, createWebSocketStream } from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MqttOutputConfig } from "../../src/outputs/mqtt/config.js";
import { isFloorgateError } from "../../src/core/errors.js";
import { createLogger } from "../../src/core/logger.js";
import type { JournaledSample } from "../../src/core/sample.js";
import { SampleBatch } from "../../src/core/sample-columns.js";
import { createMqttJsonOutput, type MqttJsonOutputOptions } from "../../src/outputs/mqtt/json-output.js";
import type { OutputContext, OutputSession } from "../../src/core/output.js";
import { makeTestPki, type TestPki } from "../helpers/certs.js";
import { startMosquitto, type MosquittoBroker } from "../helpers/mosquitto.js";
import { collect, parseJson, type Collector, type ReceivedMessage } from "../helpers/mqtt-sub.js";
import { freePort } from "../helpers/ports.js";
import { outputConformance, type ReceivedSample } from "./output-conformance.js";
import { startTcpProxy, type TcpProxy } from "./tcp-proxy.js";

const log = createLogger({ level: process.env.FLOORGATE_TEST_LOG ?? "silent" });
const ctx = (): OutputContext => ({ signal: new AbortController().signal, log });
let clientSeq = 0;

function cfgFor(url: string, over: Partial<MqttOutputConfig> = {}): MqttOutputConfig {
  return {
    type: "mqtt",
    name: "cloud",
    url,
    clientId: `fg-test-${process.pid}-${clientSeq++}`,
    format: "json",
    topicPrefix: "fg/gw1",
    qos: 1,
    maxBatch: 500,
    ...over,
  };
}

const FAST: MqttJsonOutputOptions = { connectTimeoutMs: 1500, writeTimeoutMs: 1500, closeTimeoutMs: 1500 };

interface Payload {
  gateway: string;
  device: string;
  batch: number;
  samples: { tag: string; value: unknown; quality: string; ts: string; unit?: string }[];
}

const payloadOf = (m: ReceivedMessage): Payload => parseJson(m) as Payload;

let pos = 1_000;
function samples(device: string, n: number, first = 0): JournaledSample[] {
  return Array.from({ length: n }, (_, i) => ({
    device, tag: `tag${i}`, value: first + i, quality: "good" as const, ts: Date.UTC(2026, 10, 21, 8) + i, pos: pos++,
  }));
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(() => new Error("expected a rejection"), (e: unknown) => e);
}

// ---------------------------------------------------------------------------------------------
outputConformance("mqtt json (Mosquitto)", async () => {
  const broker = await startMosquitto();
  const prefix = "conf/gw";
  let sub = await collect(broker.url, `${prefix}/+/telemetry`);
  const deadPort = await freePort();
  return {
    output: () => createMqttJsonOutput(cfgFor(broker.url, { topicPrefix: prefix }), { id: "gw" }, FAST),
    deadOutput: () => createMqttJsonOutput(cfgFor(`mqtt://127.0.0.1:${deadPort}`, { topicPrefix: prefix }), { id: "gw" }, FAST),
    connectTimeoutMs: FAST.connectTimeoutMs!,
    writeTimeoutMs: FAST.writeTimeoutMs!,
    stop: () => broker.kill(),
    start: async () => { await broker.start(); await sub.reconnect(); },
    pause: () => broker.pause(),
    resume: () => broker.resume(),
    received: async (device) => {
      const out: ReceivedSample[] = [];
      for (const m of sub.on(`${prefix}/${device}/telemetry`)) {
        for (const s of payloadOf(m).samples) {
          const r: ReceivedSample = { device, tag: s.tag, value: s.value as ReceivedSample["value"], quality: s.quality as ReceivedSample["quality"], ts: Date.parse(s.ts) };
          if (s.unit !== undefined) r.unit = s.unit;
          out.push(r);
        }
      }
      return out;
    },
    teardown: async () => { await sub.close(); await broker.dispose(); },
  };
});

// ---------------------------------------------------------------------------------------------
describe("mqtt json output: payloads and topics", () => {
  let broker: MosquittoBroker;
  let sub: Collector;
  const open: OutputSession[] = [];
  const connect = async (over: Partial<MqttOutputConfig> = {}, opts: MqttJsonOutputOptions = FAST): Promise<OutputSession> => {
    const s = await createMqttJsonOutput(cfgFor(broker.url, over), { id: "line3-edge" }, opts).connect(ctx());
    open.push(s);
    return s;
  };

  beforeAll(async () => {
    broker = await startMosquitto();
    sub = await collect(broker.url, "fg/#");
  });
  afterAll(async () => {
    await Promise.allSettled(open.map((s) => s.close()));
    await sub?.close();
    await broker?.dispose();
  });

  it("publishes the spec payload exactly, on {topicPrefix}/{deviceId}/telemetry at the configured QoS", async () => {
    const s = await connect({ topicPrefix: "fg/shape" });
    const ts = Date.UTC(2026, 10, 21, 8, 0, 0, 120);
    const batch: JournaledSample[] = [
      { device: "press-1", tag: "spindle_rpm", value: 1234.5, quality: "good", ts, unit: "rpm", pos: 18230 },
      { device: "press-1", tag: "door_open", value: true, quality: "good", ts, pos: 18231 },
      { device: "press-1", tag: "recipe", value: 'A "quoted" \\ näme\n', quality: "uncertain", ts: ts + 1, pos: 18232 },
      { device: "press-1", tag: "temp_c", value: null, quality: "bad", ts: ts + 2, unit: "degC", reason: "modbus exception 2", pos: 18233 },
      { device: "press-1", tag: "nan", value: Number.NaN, quality: "bad", ts: ts + 3, pos: 18234 },
    ];
    await expect(s.write(SampleBatch.of(batch))).resolves.toEqual({ dropped: [] });
    const m = await sub.waitFor((x) => x.topic === "fg/shape/press-1/telemetry");
    expect(m.qos).toBe(1);
    expect(m.retain).toBe(false);
    expect(parseJson(m)).toEqual({
      gateway: "line3-edge",
      device: "press-1",
      batch: 18234,
      samples: [
        { tag: "spindle_rpm", value: 1234.5, quality: "good", ts: "2026-11-21T08:00:00.120Z", unit: "rpm" },
        { tag: "door_open", value: true, quality: "good", ts: "2026-11-21T08:00:00.120Z" },
        { tag: "recipe", value: 'A "quoted" \\ näme\n', quality: "uncertain", ts: "2026-11-21T08:00:00.121Z" },
        { tag: "temp_c", value: null, quality: "bad", ts: "2026-11-21T08:00:00.122Z", unit: "degC" },
        { tag: "nan", value: null, quality: "bad", ts: "2026-11-21T08:00:00.123Z" },
      ],
    });
    // Key order as in the spec, for human readers of the raw payload.
    expect(m.payload.toString().startsWith('{"gateway":"line3-edge","device":"press-1","batch":18234,"samples":[{"tag":')).toBe(true);
  });

  it("splits by device and maxBatch, one message per chunk, batch = last position, strictly increasing", async () => {
    const s = await connect({ topicPrefix: "fg/split", maxBatch: 3 });
    const a = samples("dev-a", 7);
    const b = samples("dev-b", 2);
    const c = samples("dev-c", 1);
    // Interleave as a journal would: a0 b0 a1 c0 a2 b1 a3..a6
    const batch = [a[0]!, b[0]!, a[1]!, c[0]!, a[2]!, b[1]!, ...a.slice(3)].map((x, i) => ({ ...x, pos: 5000 + i }));
    await s.write(SampleBatch.of(batch));
    const second = samples("dev-b", 4).map((x, i) => ({ ...x, pos: 6000 + i }));
    await s.write(SampleBatch.of(second));
    const isSplit = (m: ReceivedMessage): boolean => m.topic.startsWith("fg/split/") && m.topic.endsWith("/telemetry");
    await sub.until(() => sub.messages.filter(isSplit).length >= 7);
    const msgs = sub.messages.filter(isSplit);
    expect(msgs).toHaveLength(7);
    const seen = msgs.map((m) => ({ topic: m.topic, ...payloadOf(m) }));
    // positions: a0=5000 b0=5001 a1=5002 c0=5003 a2=5004 b1=5005 a3..a6=5006..5009
    expect(seen.map((p) => [p.device, p.batch, p.samples.length])).toEqual([
      ["dev-c", 5003, 1],
      ["dev-a", 5004, 3],
      ["dev-b", 5005, 2],
      ["dev-a", 5008, 3],
      ["dev-a", 5009, 1],
      ["dev-b", 6002, 3],
      ["dev-b", 6003, 1],
    ]);
    for (const p of seen) {
      expect(p.topic).toBe(`fg/split/${p.device}/telemetry`);
      expect(p.samples.length).toBeLessThanOrEqual(3);
    }
    const batches = seen.map((p) => p.batch);
    for (let i = 1; i < batches.length; i++) expect(batches[i]!).toBeGreaterThan(batches[i - 1]!);
    // Every sample exactly once, journal order kept per device.
    const devA = seen.filter((p) => p.device === "dev-a").flatMap((p) => p.samples.map((x) => x.value));
    expect(devA).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  it("announces a retained online status and replaces it with offline on close", async () => {
    const s = await connect({ topicPrefix: "fg/life" });
    const late = await collect(broker.url, "fg/life/status");
    try {
      const online = await late.waitFor((m) => m.retain);
      const p = parseJson(online) as { online: boolean; ts: string };
      expect(p.online).toBe(true);
      expect(p.ts).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(Object.keys(p)).toEqual(["online", "ts"]);
      await s.close();
      const off = await late.waitFor((m) => (parseJson(m) as { online: boolean }).online === false);
      expect(Object.keys(parseJson(off) as object)).toEqual(["online", "ts"]);
    } finally {
      await late.close();
    }
    const after = await collect(broker.url, "fg/life/status");
    try {
      const retained = await after.waitFor((m) => m.retain);
      expect((parseJson(retained) as { online: boolean }).online).toBe(false);
    } finally {
      await after.close();
    }
  });

  it("publishes retained device status, best effort, never queued while disconnected", async () => {
    const s = await connect({ topicPrefix: "fg/dev" });
    const ts = Date.UTC(2026, 10, 21, 8, 0, 1, 5);
    s.deviceStatus!("press-1", "offline", "timeout after 1000 ms", ts);
    s.deviceStatus!("oven-2", "online", null, ts);
    await sub.until(() => sub.on("fg/dev/oven-2/status").length === 1);
    const late = await collect(broker.url, "fg/dev/+/status");
    try {
      await late.until(() => late.messages.length >= 2);
      const byTopic = Object.fromEntries(late.messages.map((m) => [m.topic, { retain: m.retain, body: parseJson(m) }]));
      expect(byTopic["fg/dev/press-1/status"]).toEqual({
        retain: true, body: { state: "offline", ts: "2026-11-21T08:00:01.005Z", error: "timeout after 1000 ms" },
      });
      expect(byTopic["fg/dev/oven-2/status"]).toEqual({
        retain: true, body: { state: "online", ts: "2026-11-21T08:00:01.005Z", error: null },
      });
    } finally {
      await late.close();
    }
    await s.close();
    expect(() => s.deviceStatus!("press-1", "online", null, ts)).not.toThrow();
    // A later session proves nothing was queued from the closed one.
    const s2 = await connect({ topicPrefix: "fg/dev" });
    await s2.write(SampleBatch.of(samples("press-1", 1)));
    await sub.until(() => sub.on("fg/dev/press-1/telemetry").length === 1);
    expect(sub.on("fg/dev/press-1/status")).toHaveLength(1);
  });

  it("QoS 0 writes resolve once written and arrive at QoS 0", async () => {
    const s = await connect({ topicPrefix: "fg/q0", qos: 0 });
    await s.write(SampleBatch.of(samples("q0dev", 3)));
    const m = await sub.waitFor((x) => x.topic === "fg/q0/q0dev/telemetry");
    expect(m.qos).toBe(0);
    expect(payloadOf(m).samples).toHaveLength(3);
  });
});

// ---------------------------------------------------------------------------------------------
describe("mqtt json output: faults", () => {
  let broker: MosquittoBroker;
  let proxy: TcpProxy;
  let sub: Collector;
  const viaProxy = (prefix: string): ReturnType<typeof createMqttJsonOutput> =>
    createMqttJsonOutput(cfgFor(`mqtt://127.0.0.1:${proxy.port}`, { topicPrefix: prefix }), { id: "gw" }, FAST);

  beforeAll(async () => {
    broker = await startMosquitto();
    proxy = await startTcpProxy(broker.port);
    sub = await collect(broker.url, "fault/#");
  });
  afterAll(async () => {
    await sub?.close();
    await proxy?.close();
    await broker?.dispose();
  });

  it("an abrupt connection loss fires the retained will {online:false} and resolves lost", async () => {
    const s = await viaProxy("fault/will").connect(ctx());
    await sub.waitFor((m) => m.topic === "fault/will/status" && (parseJson(m) as { online: boolean }).online);
    proxy.cut();
    const reason = await s.lost;
    expect(isFloorgateError(reason, "OUTPUT_UNAVAILABLE")).toBe(true);
    const will = await sub.waitFor((m) => m.topic === "fault/will/status" && !(parseJson(m) as { online: boolean }).online);
    expect(parseJson(will)).toEqual({ online: false });
    const late = await collect(broker.url, "fault/will/status");
    try {
      const retained = await late.waitFor((m) => m.retain);
      expect(parseJson(retained)).toEqual({ online: false });
    } finally {
      await late.close();
    }
    expect(isFloorgateError(await rejection(s.write(SampleBatch.of(samples("x", 1)))), "OUTPUT_UNAVAILABLE")).toBe(true);
    await s.close();
  });

  it("never resends a lost session's in-flight messages: a new session sends only what it is given", async () => {
    const s1 = await viaProxy("fault/resend").connect(ctx());
    await s1.write(SampleBatch.of(samples("r", 2, 0))); // acked, delivered once
    proxy.blackhole(true);
    const lostWrites = [s1.write(SampleBatch.of(samples("r", 3, 100))), s1.write(SampleBatch.of(samples("r", 3, 200)))];
    const outcomes = Promise.all(lostWrites.map(rejection));
    proxy.cut();
    proxy.blackhole(false);
    for (const e of await outcomes) expect(isFloorgateError(e, "OUTPUT_UNAVAILABLE"), String(e)).toBe(true);
    await s1.lost;
    const s2 = await viaProxy("fault/resend").connect(ctx());
    await s2.write(SampleBatch.of(samples("r", 2, 300)));
    await s2.write(SampleBatch.of(samples("r", 1, 400)));
    await sub.until(() => sub.on("fault/resend/r/telemetry").length >= 3);
    await s2.close();
    // Close is a DISCONNECT after everything before it was acked, so nothing can still be on the way.
    const values = sub.on("fault/resend/r/telemetry").flatMap((m) => payloadOf(m).samples.map((x) => x.value));
    expect(values).toEqual([0, 1, 300, 301, 400]);
  });

  it("broker killed mid-stream: every outstanding write rejects with OUTPUT_UNAVAILABLE, lost resolves, no unhandled errors", async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (r: unknown): void => { unhandled.push(r); };
    process.on("unhandledRejection", onUnhandled);
    try {
      const s = await createMqttJsonOutput(cfgFor(broker.url, { topicPrefix: "fault/kill" }), { id: "gw" }, FAST).connect(ctx());
      const window = 32;
      let acked = 0;
      const outstanding = new Set<Promise<unknown>>();
      const failures: unknown[] = [];
      const issue = (): void => {
        const p: Promise<unknown> = s.write(SampleBatch.of(samples("k", 20))).then(
          () => { acked++; },
          (e: unknown) => { failures.push(e); },
        ).finally(() => outstanding.delete(p));
        outstanding.add(p);
      };
      const killAt = 200;
      // Stream with a full window until enough was acknowledged...
      while (acked < killAt) {
        while (outstanding.size < window) issue();
        await Promise.race(outstanding);
      }
      // ...then freeze the broker so a full window is certainly unacknowledged, and kill it.
      broker.pause();
      const ackedBeforeKill = acked;
      while (outstanding.size < window) issue();
      const inFlightAtKill = outstanding.size;
      await broker.kill();
      await Promise.all([...outstanding]);
      // Acks already on the wire when SIGSTOP landed still count; every other write must reject.
      expect(failures.length + (acked - ackedBeforeKill)).toBe(inFlightAtKill);
      expect(failures.length).toBeGreaterThan(0);
      expect(acked).toBeGreaterThanOrEqual(killAt);
      expect(failures.length).toBeGreaterThan(0);
      for (const f of failures) expect(isFloorgateError(f, "OUTPUT_UNAVAILABLE"), String(f)).toBe(true);
      await expect(s.lost).resolves.toBeInstanceOf(Error);
      expect(isFloorgateError(await rejection(s.write(SampleBatch.of(samples("k", 1)))), "OUTPUT_UNAVAILABLE")).toBe(true);
      await s.close();
    } finally {
      await broker.kill();
      await broker.start();
      await sub.reconnect();
      process.off("unhandledRejection", onUnhandled);
    }
    expect(unhandled).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
describe("mqtt json output: TLS and authentication", () => {
  let pki: TestPki;
  let tlsBroker: MosquittoBroker;
  let mtlsBroker: MosquittoBroker;
  let authBroker: MosquittoBroker;

  beforeAll(async () => {
    pki = await makeTestPki();
    const tls = { ca: pki.ca, cert: pki.serverCert, key: pki.serverKey };
    // Assigned one by one so afterAll disposes whichever started even if another failed.
    await Promise.all([
      startMosquitto({ tls }).then((b) => { tlsBroker = b; }),
      startMosquitto({ tls: { ...tls, requireCertificate: true } }).then((b) => { mtlsBroker = b; }),
      startMosquitto({ auth: { username: "edge", password: "s3cret" } }).then((b) => { authBroker = b; }),
    ]);
  });
  afterAll(async () => {
    await Promise.allSettled([tlsBroker?.dispose(), mtlsBroker?.dispose(), authBroker?.dispose()]);
    await pki?.cleanup();
  });

  it("connects over mqtts trusting the configured CA and delivers", async () => {
    const sub = await collect(tlsBroker.url, "tls/#", { ca: [await readFile(pki.ca)] });
    try {
      const s = await createMqttJsonOutput(cfgFor(tlsBroker.url, { topicPrefix: "tls/gw", ca: pki.ca }), { id: "gw" }, FAST).connect(ctx());
      await s.write(SampleBatch.of(samples("tlsdev", 2)));
      const m = await sub.waitFor((x) => x.topic === "tls/gw/tlsdev/telemetry");
      expect(payloadOf(m).samples).toHaveLength(2);
      await s.close();
    } finally {
      await sub.close();
    }
  });

  it("an untrusted server certificate is OUTPUT_REJECTED", async () => {
    const err = await rejection(createMqttJsonOutput(cfgFor(tlsBroker.url), { id: "gw" }, FAST).connect(ctx()));
    expect(isFloorgateError(err, "OUTPUT_REJECTED"), String(err)).toBe(true);
  });

  it("a missing CA file is OUTPUT_REJECTED naming the file", async () => {
    const err = await rejection(
      createMqttJsonOutput(cfgFor(tlsBroker.url, { ca: "/nonexistent/ca.pem" }), { id: "gw" }, FAST).connect(ctx()),
    );
    expect(isFloorgateError(err, "OUTPUT_REJECTED")).toBe(true);
    expect((err as Error).message).toContain("/nonexistent/ca.pem");
  });

  it("presents a client certificate from cert/key", async () => {
    const s = await createMqttJsonOutput(
      cfgFor(mtlsBroker.url, { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey }), { id: "gw" }, FAST,
    ).connect(ctx());
    await s.write(SampleBatch.of(samples("mtls", 1)));
    await s.close();
    const err = await rejection(createMqttJsonOutput(cfgFor(mtlsBroker.url, { ca: pki.ca }), { id: "gw" }, FAST).connect(ctx()));
    expect(isFloorgateError(err), String(err)).toBe(true);
  });

  it("bad credentials are OUTPUT_REJECTED; good ones connect", async () => {
    for (const over of [{ username: "edge", password: "wrong" }, {}]) {
      const start = Date.now();
      const err = await rejection(createMqttJsonOutput(cfgFor(authBroker.url, over), { id: "gw" }, FAST).connect(ctx()));
      expect(isFloorgateError(err, "OUTPUT_REJECTED"), String(err)).toBe(true);
      expect((err as Error).message).not.toContain("wrong");
      expect(Date.now() - start).toBeLessThan(2000);
    }
    const s = await createMqttJsonOutput(cfgFor(authBroker.url, { username: "edge", password: "s3cret" }), { id: "gw" }, FAST).connect(ctx());
    await s.write(SampleBatch.of(samples("authdev", 1)));
    await s.close();
  });
});

// ---------------------------------------------------------------------------------------------
// Debian's Mosquitto 2.0.11 cannot open a websockets listener here, so ws:// runs against aedes.
describe("mqtt json output over ws://", () => {
  let aedes: Aedes;
  let http: Server;
  let wss: WebSocketServer;
  let url: string;
  const got: { topic: string; payload: Buffer; retain: boolean }[] = [];

  beforeAll(async () => {
    aedes = await Aedes.createBroker();
    aedes.on("publish", (packet, client) => {
      if (client) got.push({ topic: packet.topic, payload: Buffer.from(packet.payload), retain: packet.retain });
    });
    http = createServer();
    wss = new WebSocketServer({ server: http });
    wss.on("connection", (ws, req) => {
      const stream = createWebSocketStream(ws);
      stream.on("error", () => {});
      aedes.handle(stream, req);
    });
    await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
    url = `ws://127.0.0.1:${(http.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    for (const c of wss?.clients ?? []) c.terminate();
    await new Promise<void>((resolve) => wss ? wss.close(() => resolve()) : resolve());
    await new Promise<void>((resolve) => http ? http.close(() => resolve()) : resolve());
    await new Promise<void>((resolve) => aedes ? aedes.close(() => resolve()) : resolve());
  });

  it("delivers telemetry and status over WebSockets", async () => {
    const s = await createMqttJsonOutput(cfgFor(url, { topicPrefix: "ws/gw" }), { id: "gw" }, FAST).connect(ctx());
    await s.write(SampleBatch.of(samples("wsdev", 3)));
    await s.close();
    const tel = got.filter((m) => m.topic === "ws/gw/wsdev/telemetry");
    expect(tel).toHaveLength(1);
    expect((JSON.parse(tel[0]!.payload.toString()) as Payload).samples.map((x) => x.value)).toEqual([0, 1, 2]);
    const status = got.filter((m) => m.topic === "ws/gw/status").map((m) => [m.retain, (JSON.parse(m.payload.toString()) as { online: boolean }).online]);
    expect(status).toEqual([[true, true], [true, false]]);
  });
});
