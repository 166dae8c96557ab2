/**
 * OPC UA through the whole spine with real processes: a node-opcua server in the test, `floorgate
 * run` subscribing to it and polling a second device, Mosquitto receiving the contract's JSON; an
 * operator writes back through the HTTP API; `floorgate probe` reads every tag once. The daemon's
 * stdout stays pino JSON lines (node-opcua's console output is routed).
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startMosquitto, type MosquittoBroker } from "../helpers/mosquitto.js";
import { collect, type Collector } from "../helpers/mqtt-sub.js";
import { freePort } from "../helpers/ports.js";
import { http, startGateway, type GatewayProcess, runCli, type CliOutcome } from "../helpers/gateway-process.js";
import type { TelemetryMessage } from "../helpers/pusher.js";
import { startOpcuaServer, type OpcuaTestServer } from "../helpers/opcua-server.js";

const OPERATOR = "op-secret";

function run(args: string[]): Promise<CliOutcome> {
  return runCli(args);
}

describe("OPC UA → journal → MQTT, end to end", () => {
  let server: OpcuaTestServer;
  let broker: MosquittoBroker;
  let collector: Collector;
  let gw: GatewayProcess;
  let dir: string;
  let configFile: string;
  const samplesOf = (device: string) => collector.on(`floorgate/e2e-opcua/${device}/telemetry`).flatMap((m) => (JSON.parse(m.payload.toString()) as TelemetryMessage).samples);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "floorgate-e2e-opcua-"));
    [server, broker] = await Promise.all([startOpcuaServer(), startMosquitto()]);
    collector = await collect(broker.url, "floorgate/e2e-opcua/#");
    const httpPort = await freePort();
    configFile = join(dir, "floorgate.yaml");
    await writeFile(configFile, `
gateway: { id: e2e-opcua, group: e2e, dataDir: ./data }
http: { listen: "127.0.0.1:${httpPort}", operatorTokens: ["${OPERATOR}"] }
devices:
  - id: oven-1
    driver: opcua
    connection: { endpoint: "${server.endpoint}" }
    samplingMs: 100
    timeoutMs: 2000
    tags:
      - { name: counter, nodeId: "ns=1;s=Counter" }
      - { name: temp, nodeId: "ns=1;s=Temperature" }
      - { name: quality, nodeId: "ns=1;s=Quality" }
      - { name: missing, nodeId: "ns=1;s=NoSuchNode" }
      - { name: setpoint, nodeId: "ns=1;s=Setpoint", unit: degC, writable: true, scale: 0.1 }
      - { name: level, nodeId: "ns=1;s=Level", writable: true }
  - id: oven-poll
    driver: opcua
    connection: { endpoint: "${server.endpoint}" }
    mode: poll
    pollMs: 200
    tags:
      - { name: counter, nodeId: "ns=1;s=Counter" }
      - { name: name, nodeId: "ns=1;s=Name" }
outputs:
  - { type: mqtt, name: cloud, url: "${broker.url}" }
`);
    gw = await startGateway(configFile, httpPort);
  });

  afterAll(async () => {
    await gw?.stop();
    await collector?.close();
    await broker?.dispose();
    await server?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it("publishes subscribed values with units from EUInformation, mapped status, a bad NodeId bad beside good tags; polled values too", async () => {
    await collector.until(() => {
      const tags = new Set(samplesOf("oven-1").map((s) => s.tag));
      return tags.size === 6 && samplesOf("oven-1").filter((s) => s.tag === "counter").length >= 3 && samplesOf("oven-poll").some((s) => s.tag === "name");
    }, 20_000);
    const last = (device: string, t: string) => samplesOf(device).filter((s) => s.tag === t).at(-1)!;
    expect(last("oven-1", "temp")).toMatchObject({ quality: "good", unit: "°C" });
    expect(typeof last("oven-1", "temp").value).toBe("number");
    expect(last("oven-1", "quality")).toMatchObject({ quality: "uncertain", value: 1.5 });
    expect(last("oven-1", "missing")).toMatchObject({ quality: "bad", value: null });
    expect(last("oven-1", "setpoint")).toMatchObject({ quality: "good", value: 18, unit: "degC" });
    expect(last("oven-poll", "name")).toMatchObject({ quality: "good", value: "oven-1" });
    // the counter keeps running after the refused tag
    const n = samplesOf("oven-1").filter((s) => s.tag === "counter").length;
    await collector.until(() => samplesOf("oven-1").filter((s) => s.tag === "counter").length > n + 2, 10_000);
    const status = await collector.waitFor((m) => m.topic === "floorgate/e2e-opcua/oven-1/status");
    expect(JSON.parse(status.payload.toString())).toMatchObject({ state: "online" });
  });

  it("writes back through the HTTP API in the node's data type, and refuses what it cannot hold", async () => {
    const url = (t: string) => `${gw.base}/api/v1/devices/oven-1/tags/${t}/write`;
    const auth = { authorization: `Bearer ${OPERATOR}` };
    const ok = await http("POST", url("setpoint"), { body: JSON.stringify({ value: 21.5 }), headers: auth });
    expect(ok.status, ok.body).toBe(200);
    expect(server.value("Setpoint")).toBeCloseTo(215, 6); // inverse-scaled by the runtime
    const lv = await http("POST", url("level"), { body: JSON.stringify({ value: 42 }), headers: auth });
    expect(lv.status, lv.body).toBe(200);
    expect(server.value("Level")).toBe(42);
    const bad = await http("POST", url("level"), { body: JSON.stringify({ value: 70000 }), headers: auth });
    expect(bad.status, bad.body).toBe(400);
    expect(bad.body).toContain("out of range of Int16");
    expect(server.value("Level")).toBe(42);
    const since = collector.messages.length;
    await collector.waitFor((m) => m.seq >= since && m.topic.endsWith("/oven-1/telemetry")
      && (JSON.parse(m.payload.toString()) as TelemetryMessage).samples.some((s) => s.tag === "level" && s.value === 42), 10_000);
  });

  it("probe reads every tag once beside the running daemon", async () => {
    const r = await run(["probe", "--config", configFile, "--device", "oven-1"]);
    expect(r.stderr).toBe("");
    // 2: some rows are not good (the missing node is bad, Quality uncertain)
    expect(r.code).toBe(2);
    const lines = r.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^device\s+tag\s+value\s+unit\s+quality/);
    expect(lines.length).toBe(7);
    expect(r.stdout).toMatch(/oven-1\s+counter\s+\d+\s+.*good/);
    expect(r.stdout).toMatch(/oven-1\s+missing\s+bad\s+OPC UA status BadNodeIdUnknown/);
    expect(r.stdout).toMatch(/oven-1\s+quality\s+1\.5\s+uncertain/);
    expect(r.stdout).toMatch(/oven-1\s+setpoint\s+21\.5\s+degC\s+good/);
  });

  it("keeps the daemon's stdout to JSON lines: node-opcua's console output is routed", () => {
    const lines = gw.output.join("").split("\n").filter((l) => l.trim() !== "");
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) expect(() => JSON.parse(l), l).not.toThrow();
    expect(gw.output.join("")).not.toContain("NODE-OPCUA-W27");
  });
});
