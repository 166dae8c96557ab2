// Issue 14 item 3: each output's state, lag and drops are seen in /healthz and /metrics (the
// dashboard's health panel reads the same `health` report). The real daemon with three outputs
// from one journal — MQTT json and Sparkplug B to Mosquitto, InfluxDB 1.x to influxd — fed by HTTP
// pushes. influxd is killed: only the historian shows offline with a growing lag while the other
// two stay online and drained; a field-type conflict is counted as a drop of the historian alone.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getJson, http, metric, startGateway, writeConfig, type GatewayProcess } from "../helpers/gateway-process.js";
import { startInfluxd, type InfluxServer } from "../helpers/influxdb.js";
import { startMosquitto, type MosquittoBroker } from "../helpers/mosquitto.js";
import { freePort } from "../helpers/ports.js";

const TOKEN = "agv-token-3out";
type OutputView = { type: string; state: string; lag: number; sent: number; dropped: number; refused: Record<string, number> };
/** The three outputs this config names: a missing one fails the test at its first read. */
type Health = { status: string; outputs: Record<"cloud" | "spb" | "historian", OutputView> };

describe("three outputs from one journal: state, lag and drops in /healthz and /metrics", () => {
  let dir: string;
  let broker: MosquittoBroker;
  let influx: InfluxServer;
  let gw: GatewayProcess;
  let base: string;

  beforeAll(async () => {
    [broker, influx] = await Promise.all([startMosquitto(), startInfluxd()]);
    dir = await mkdtemp(join(tmpdir(), "fg-3out-"));
    const port = await freePort();
    const config = await writeConfig(dir, `
gateway: { id: three-out, group: test, dataDir: "${join(dir, "data")}" }
http: { listen: "127.0.0.1:${port}" }
ingest:
  devices: [{ id: "agv-*", token: "${TOKEN}" }]
outputs:
  - { type: mqtt, name: cloud, url: "${broker.url}", format: json, topicPrefix: fg/three }
  - { type: mqtt, name: spb, url: "${broker.url}", clientId: three-out-spb, format: sparkplug-b }
  - { type: influx, name: historian, url: "${influx.url}", database: three }
`);
    gw = await startGateway(config, port);
    base = `http://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    await gw?.stop();
    await Promise.allSettled([broker?.dispose(), influx?.dispose()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const push = async (values: Record<string, unknown>): Promise<number> =>
    (await http("POST", `${base}/api/v1/ingest/agv-1`, {
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ values }),
    })).status;
  const health = (): Promise<Health> => getJson<Health>(`${base}/healthz`);
  const metrics = async (): Promise<string> => (await http("GET", `${base}/metrics`)).body;

  it("shows all three online and drained, each with what it sent", async () => {
    for (let i = 0; i < 20; i++) expect(await push({ speed: i + 0.5 })).toBe(202);
    await expect.poll(async () => {
      const h = await health();
      return Object.entries(h.outputs).map(([n, o]) => `${n}:${o.type}:${o.state}:${o.lag}:${o.sent >= 20}`).sort();
    }, { timeout: 15_000, interval: 100 }).toEqual(["cloud:mqtt:online:0:true", "historian:influx:online:0:true", "spb:mqtt:online:0:true"]);
    const m = await metrics();
    for (const output of ["cloud", "spb", "historian"]) {
      expect(metric(m, "floorgate_output_up", { output })).toBe(1);
      expect(metric(m, "floorgate_samples_out_total", { output })).toBeGreaterThanOrEqual(20);
      expect(metric(m, "floorgate_journal_lag_samples", { output })).toBe(0);
    }
  });

  it("InfluxDB down: only the historian goes offline and its lag grows; back: it drains", async () => {
    await influx.kill();
    for (let i = 0; i < 30; i++) expect(await push({ speed: 100 + i })).toBe(202);
    await expect.poll(async () => {
      const o = (await health()).outputs;
      return `${o.historian.state}:${o.historian.lag >= 30}|${o.cloud.state}:${o.cloud.lag}|${o.spb.state}:${o.spb.lag}`;
    }, { timeout: 20_000, interval: 100 }).toBe("offline:true|online:0|online:0");
    const h = await health();
    expect(h.status).toBe("degraded");
    const m = await metrics();
    expect(metric(m, "floorgate_output_up", { output: "historian" })).toBe(0);
    expect(metric(m, "floorgate_journal_lag_samples", { output: "historian" })).toBeGreaterThanOrEqual(30);
    expect(metric(m, "floorgate_output_up", { output: "cloud" })).toBe(1);

    await influx.start();
    await expect.poll(async () => {
      const o = (await health()).outputs.historian;
      return `${o.state}:${o.lag}`;
    }, { timeout: 30_000, interval: 200 }).toBe("online:0");
  });

  it("a field-type conflict is dropped by the historian alone, counted with its reason in both places", async () => {
    expect(await push({ speed: "fast" })).toBe(202);
    expect(await push({ speed: 7.5 })).toBe(202);
    await expect.poll(async () => {
      const o = (await health()).outputs;
      return `${o.historian.lag}:${o.historian.refused.type_conflict ?? 0}|${o.cloud.lag}:${o.cloud.dropped}|${o.spb.lag}:${o.spb.dropped}`;
    }, { timeout: 15_000, interval: 100 }).toBe("0:1|0:0|0:0");
    const m = await metrics();
    expect(metric(m, "floorgate_drops_total", { reason: "type_conflict", output: "historian" })).toBe(1);
  });
});
