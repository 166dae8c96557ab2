/**
 * Sparkplug B sessions over time, as the gateway runs them: a real journal, the runtime's
 * Forwarder, Mosquitto (behind a TCP proxy where the connection must die without a goodbye), and a
 * host application (test/helpers/sparkplug-host.ts) decoding with Eclipse Tahu's sparkplug-payload.
 * Birth/death order and bdSeq across reconnects, seq continuity over 300+ messages (wrapping),
 * DDEATH/DBIRTH from device states, rebirth on NCMD, STATE gating (Sparkplug 3.0 JSON and legacy
 * strings) and `is_historical` after outages. One broker for the file; one edge node id per test.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MqttOutputConfig } from "../../src/outputs/mqtt/config.js";
import { createLogger } from "../../src/core/logger.js";
import type { Sample } from "../../src/core/sample.js";
import { createMqttSparkplugOutput } from "../../src/outputs/mqtt/sparkplug-output.js";
import { openJournal } from "../../src/journal/segment-journal.js";
import type { Journal } from "../../src/journal/journal.js";
import { Forwarder } from "../../src/runtime/forwarding/forwarder.js";
import { Metrics } from "../../src/runtime/status/metrics.js";
import { startMosquitto, type MosquittoBroker } from "../helpers/mosquitto.js";
import { startTcpProxy, type TcpProxy } from "../helpers/tcp-proxy.js";
import { SparkplugHost, bdSeqOf, seqViolations, type SpMessage } from "../helpers/sparkplug-host.js";

const log = createLogger({ level: process.env.FLOORGATE_TEST_LOG ?? "silent" });
const GROUP = "works";

interface Node {
  id: string;
  journal: Journal;
  fwd: Forwarder;
  append(samples: Sample[]): Promise<number>;
  stop(): Promise<void>;
}

/** Polls a condition of the gateway's own state (health, lag) until it holds; fails after `ms`. */
async function until(what: string, cond: () => boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`not reached within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

let tsBase = Date.UTC(2026, 10, 21, 8);
function rows(device: string, n: number, first = 0, tag = (i: number) => `t${i % 3}`): Sample[] {
  return Array.from({ length: n }, (_, i) => ({ device, tag: tag(first + i), value: first + i, quality: "good" as const, ts: tsBase++ }));
}

describe("sparkplug-b sessions driven from the journal", () => {
  let broker: MosquittoBroker;
  let proxy: TcpProxy;
  let host: SparkplugHost;
  const nodes: Node[] = [];
  const dirs: string[] = [];

  async function startNode(id: string, over: Partial<MqttOutputConfig> = {}, viaProxy = false): Promise<Node> {
    const dir = await mkdtemp(join(tmpdir(), "fg-spb-"));
    dirs.push(dir);
    const journal = await openJournal({ dir, maxBytes: 64 * 1024 * 1024, overflow: "drop-oldest", fsync: "batch", fsyncIntervalMs: 1, outputs: ["spb"] });
    const cfg: MqttOutputConfig = {
      type: "mqtt", name: "spb", url: viaProxy ? `mqtt://127.0.0.1:${proxy.port}` : broker.url, clientId: `fg-${id}-${process.pid}`,
      format: "sparkplug-b", topicPrefix: "unused", qos: 0, maxBatch: 500, ...over,
    };
    const out = createMqttSparkplugOutput(cfg, { id, group: GROUP }, { connectTimeoutMs: 1000, writeTimeoutMs: 2000, closeTimeoutMs: 1000 });
    const metrics = new Metrics({ deviceStates: () => [], journal: () => ({ bytes: 0, records: 0, segments: 0, lag: {}, torn: 0, writable: true }), outputsUp: () => ({}), samplesIn: () => [] });
    const fwd = new Forwarder(out, journal, metrics, log, { initialBackoffMs: 20, maxBackoffMs: 200, drainMs: 500 });
    const abort = new AbortController();
    const running = fwd.run(abort.signal);
    const node: Node = {
      id, journal, fwd,
      append: (s) => journal.append(s),
      stop: async () => { abort.abort(); await running; await journal.close(); },
    };
    nodes.push(node);
    return node;
  }

  const of = (id: string): SpMessage[] => host.messages(id);
  const lag = (n: Node): number => n.fwd.health().lag;

  beforeAll(async () => {
    broker = await startMosquitto();
    proxy = await startTcpProxy(broker.port);
    host = await SparkplugHost.start(broker.url);
  });
  afterAll(async () => {
    await Promise.allSettled(nodes.map((n) => n.stop()));
    await host?.close();
    await proxy?.close();
    await broker?.dispose();
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  it("the will carries the bdSeq of the NBIRTH before it; every reconnect takes a fresh one; a graceful stop publishes the last NDEATH", async () => {
    const n = await startNode("gw-will", {}, true);
    await host.until(() => of("gw-will").some((m) => m.verb === "NBIRTH"));
    await n.append([...rows("press-1", 3), ...rows("oven-2", 2)]);
    await host.until(() => host.samples("press-1").length + host.samples("oven-2").length >= 5);
    for (let cut = 1; cut <= 2; cut++) {
      proxy.cut(); // no DISCONNECT: the broker publishes the will
      await host.until(() => of("gw-will").filter((m) => m.verb === "NBIRTH").length === cut + 1);
      await host.until(() => of("gw-will").filter((m) => m.verb === "NDEATH").length === cut);
    }
    // After the reconnect, the known devices are born again, with every metric and its latest value.
    await host.until(() => of("gw-will").filter((m) => m.verb === "DBIRTH").length >= 6);
    await n.stop();
    await host.until(() => of("gw-will").filter((m) => m.verb === "NDEATH").length === 3);
    const life = of("gw-will").filter((m) => m.verb === "NBIRTH" || m.verb === "NDEATH").map((m) => `${m.verb}:${bdSeqOf(m)}`);
    // A will may overtake the NBIRTH of the next connection (the broker sees the cut first, but
    // MQTT orders per topic only): each NDEATH must match one NBIRTH's bdSeq, each bdSeq be new.
    expect(life.filter((x) => x.startsWith("NBIRTH"))).toEqual(["NBIRTH:0", "NBIRTH:1", "NBIRTH:2"]);
    expect(life.filter((x) => x.startsWith("NDEATH"))).toEqual(["NDEATH:0", "NDEATH:1", "NDEATH:2"]);
    const births = of("gw-will").filter((m) => m.verb === "DBIRTH");
    const p1 = births.filter((m) => m.device === "press-1");
    expect(p1.length).toBe(3);
    expect(p1[2]!.metrics.map((x) => [x.name, x.value])).toEqual([["t0", 0], ["t1", 1], ["t2", 2]]);
    expect(p1[2]!.metrics.map((x) => x.alias)).toEqual(p1[0]!.metrics.map((x) => x.alias));
    // seq restarts at each NBIRTH and has no gap within a session
    expect(seqViolations(of("gw-will"))).toEqual([]);
  });

  it("seq runs 0–255 and wraps with no gap over 300+ messages, DDEATH/DBIRTH follow device states, NCMD brings a rebirth", async () => {
    const n = await startNode("gw-seq", { maxBatch: 1 }); // one DDATA per sample
    await host.until(() => of("gw-seq").some((m) => m.verb === "NBIRTH"));
    await n.append(rows("line-1", 150));
    await host.until(() => of("gw-seq").filter((m) => m.verb === "DDATA").length === 150);
    n.fwd.deviceStatus("line-1", "offline", "no reply", Date.now());
    await host.until(() => of("gw-seq").some((m) => m.verb === "DDEATH"));
    n.fwd.deviceStatus("line-1", "online", null, Date.now());
    await host.until(() => of("gw-seq").filter((m) => m.verb === "DBIRTH").length === 2);
    await n.append(rows("line-1", 170, 150));
    await host.until(() => of("gw-seq").filter((m) => m.verb === "DDATA").length === 320);
    await host.rebirth(GROUP, "gw-seq");
    await host.until(() => of("gw-seq").filter((m) => m.verb === "NBIRTH").length === 2);
    await n.append(rows("line-1", 5, 320));
    await host.until(() => of("gw-seq").filter((m) => m.verb === "DDATA").length === 325);

    const msgs = of("gw-seq");
    expect(seqViolations(msgs)).toEqual([]);
    const seqs = msgs.map((m) => m.seq);
    const wrap = seqs.findIndex((s, i) => s === 255 && seqs[i + 1] === 0 && msgs[i + 1]!.verb !== "NBIRTH");
    expect(wrap, "seq wrapped from 255 to 0 inside one session").toBeGreaterThan(0);
    expect(msgs.map((m) => m.verb).filter((v) => v !== "DDATA")).toEqual(["NBIRTH", "DBIRTH", "DDEATH", "DBIRTH", "NBIRTH", "DBIRTH"]);
    const nbirths = msgs.filter((m) => m.verb === "NBIRTH");
    expect(bdSeqOf(nbirths[1]!)).toBe(bdSeqOf(nbirths[0]!)); // a rebirth keeps the connection's bdSeq
    const rebirth = msgs.filter((m) => m.verb === "DBIRTH")[2]!;
    expect(rebirth.metrics.map((x) => [x.name, x.value])).toEqual([["t0", 318], ["t1", 319], ["t2", 317]]);
    expect(host.samples("line-1").map((s) => s.value)).toEqual(Array.from({ length: 325 }, (_, i) => i));
    await n.stop();
  });

  it("with primaryHostId nothing is published while the host's STATE is offline; data waits in the journal and arrives is_historical", async () => {
    const n = await startNode("gw-state", { primaryHostId: "scada-1" });
    await n.append(rows("agv-1", 5));
    await until("forwarder waiting for the primary host", () => n.fwd.health().state === "waiting");
    expect(n.fwd.health().error).toMatch(/waiting/);
    expect(lag(n)).toBe(5);
    // A payload no host sends is ignored, not taken for offline or online.
    await host.raw("spBv1.0/STATE/scada-1", "maybe?", true);
    await host.state("scada-1", JSON.stringify({ online: true, timestamp: Date.now() }));
    await host.until(() => host.samples("agv-1").length === 5);
    await until("cursor past the backlog", () => lag(n) === 0);
    await n.append(rows("agv-1", 3, 5));
    await host.until(() => host.samples("agv-1").length === 8);
    expect(host.samples("agv-1").map((s) => s.historical)).toEqual([true, true, true, true, true, false, false, false]);

    // The legacy string form: OFFLINE ends the session (NDEATH, disconnect), data waits again.
    await host.state("scada-1", "OFFLINE");
    await host.until(() => of("gw-state").some((m) => m.verb === "NDEATH"));
    await until("waiting again", () => n.fwd.health().state === "waiting");
    await n.append(rows("agv-1", 4, 8));
    await until("journaled", () => lag(n) === 4);
    expect(host.samples("agv-1").length).toBe(8);
    await host.state("scada-1", "ONLINE");
    await host.until(() => host.samples("agv-1").length === 12);
    await n.append(rows("agv-1", 1, 12));
    await host.until(() => host.samples("agv-1").length === 13);
    expect(host.samples("agv-1").slice(8).map((s) => s.historical)).toEqual([true, true, true, true, false]);
    const life = of("gw-state").filter((m) => m.verb === "NBIRTH" || m.verb === "NDEATH").map((m) => `${m.verb}:${bdSeqOf(m)}`);
    expect(life[0]).toBe("NBIRTH:0");
    expect(life[1]).toBe("NDEATH:0");
    expect(life[2]).toMatch(/^NBIRTH:[1-9]/); // waiting connections took bdSeqs of their own
    expect(seqViolations(of("gw-state"))).toEqual([]);
    expect(host.samples("agv-1").map((s) => s.value)).toEqual(Array.from({ length: 13 }, (_, i) => i));

    // A stale Sparkplug 3.0 STATE (older than one already seen) changes nothing: the rebirth asked
    // for after it is answered by the same live session, with no NDEATH between.
    const before = of("gw-state").length;
    await host.state("scada-1", JSON.stringify({ online: false, timestamp: 1 }));
    await host.rebirth(GROUP, "gw-state");
    await host.until(() => of("gw-state").slice(before).some((m) => m.verb === "NBIRTH"));
    const after = of("gw-state").slice(before);
    expect(after.map((m) => m.verb)).toEqual(["NBIRTH", "DBIRTH"]);
    expect(bdSeqOf(after[0]!)).toBe(bdSeqOf(of("gw-state").filter((m) => m.verb === "NBIRTH")[1]!));
    await host.state("scada-1", JSON.stringify({ online: false, timestamp: Date.now() }));
    await host.until(() => of("gw-state").filter((m) => m.verb === "NDEATH").length === 2);
    await until("waiting after the JSON offline", () => n.fwd.health().state === "waiting");
    await n.stop();
  });

  it("samples journaled while the broker was down arrive is_historical after the restart; live ones after that do not", async () => {
    const n = await startNode("gw-outage", {}, true);
    await host.until(() => of("gw-outage").some((m) => m.verb === "NBIRTH"));
    await n.append(rows("press-9", 3));
    await host.until(() => host.samples("press-9").length === 3);
    // The host must be back before the gateway: hold the gateway's reconnects in a black hole.
    proxy.blackhole(true);
    await broker.kill();
    await until("output offline", () => n.fwd.health().state !== "online");
    await n.append(rows("press-9", 6, 3));
    await broker.start();
    await host.reconnect();
    proxy.blackhole(false);
    await host.until(() => host.samples("press-9").length >= 9, 20_000);
    await until("cursor caught up", () => lag(n) === 0);
    await n.append(rows("press-9", 2, 9));
    await host.until(() => host.samples("press-9").length >= 11);
    const got = host.samples("press-9");
    expect(got.map((s) => s.value)).toEqual(Array.from({ length: 11 }, (_, i) => i));
    expect(got.map((s) => s.historical)).toEqual([false, false, false, true, true, true, true, true, true, false, false]);
    expect(seqViolations(of("gw-outage"))).toEqual([]);
    await n.stop();
  });
});
