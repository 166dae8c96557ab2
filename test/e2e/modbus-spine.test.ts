import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startMosquitto, type MosquittoBroker } from "../helpers/mosquitto.js";
import { collect, type Collector } from "../helpers/mqtt-sub.js";
import { freePort } from "../helpers/ports.js";
import { http, startGateway, type GatewayProcess, runCli, type CliOutcome } from "../helpers/gateway-process.js";
import type { TelemetryMessage } from "../helpers/pusher.js";

const BIN = join(import.meta.dirname, "..", "..", "bin", "floorgate");
const OPERATOR = "op-secret";

function run(args: string[]): Promise<CliOutcome> {
  return runCli(args);
}

/**
 * Modbus through the whole spine with real processes: `floorgate simulate` serves a press,
 * `floorgate run` polls it, Mosquitto receives the contract's JSON, and an operator writes back.
 */
describe("Modbus → journal → MQTT, end to end", () => {
  let broker: MosquittoBroker;
  let collector: Collector;
  let sim: ChildProcess;
  let gw: GatewayProcess;
  let dir: string;
  let configFile: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "floorgate-e2e-modbus-"));
    broker = await startMosquitto();
    collector = await collect(broker.url, "floorgate/e2e-modbus/#");
    const pressPort = await freePort();
    const httpPort = await freePort();
    configFile = join(dir, "floorgate.yaml");
    await writeFile(configFile, `
gateway: { id: e2e-modbus, group: e2e, dataDir: ./data }
http: { listen: "127.0.0.1:${httpPort}", operatorTokens: ["${OPERATOR}"] }
devices:
  - id: press-1
    driver: modbus
    connection: { transport: tcp, host: 127.0.0.1, port: ${pressPort}, unitId: 1, timeoutMs: 500 }
    pollMs: 200
    tags:
      - { name: spindle_rpm, area: holding, address: 0, type: float32, byteOrder: ABCD, unit: rpm }
      - { name: temp_c, area: holding, address: 2, type: int16, scale: 0.1, unit: degC }
      - { name: part_count, area: input, address: 10, type: uint32, byteOrder: CDAB }
      - { name: energy_kwh, area: holding, address: 20, type: float64, byteOrder: DCBA, unit: kWh }
      - { name: model, area: holding, address: 30, type: string, length: 8 }
      - { name: door_open, area: discrete, address: 3, type: bool }
      - { name: lamp, area: coil, address: 0, type: bool, writable: true }
      - { name: temp_ro, area: holding, address: 2, type: int16 }
outputs:
  - { type: mqtt, name: cloud, url: "${broker.url}" }
`);
    sim = spawn(process.execPath, [BIN, "simulate", "--config", configFile], { stdio: ["ignore", "pipe", "pipe"] });
    await new Promise<void>((resolve, reject) => {
      let out = "";
      sim.stdout!.on("data", (d: Buffer) => { out += d.toString(); if (out.includes("simulated press")) resolve(); });
      sim.on("exit", (code) => reject(new Error(`simulate exited ${code}`)));
    });
    gw = await startGateway(configFile, httpPort);
  });

  afterAll(async () => {
    await gw?.stop();
    sim?.kill("SIGTERM");
    await collector?.close();
    await broker?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it("publishes polled, decoded and scaled values as the contract's JSON", async () => {
    const topic = "floorgate/e2e-modbus/press-1/telemetry";
    await collector.until(() => {
      const tags = new Set(collector.on(topic).flatMap((m) => (JSON.parse(m.payload.toString()) as TelemetryMessage).samples.map((s) => s.tag)));
      return tags.size === 8;
    }, 20_000);
    const msgs = collector.on(topic).map((m) => JSON.parse(m.payload.toString()) as TelemetryMessage);
    const first = msgs[0]!;
    expect(Object.keys(first)).toEqual(["gateway", "device", "batch", "samples"]);
    expect(first.gateway).toBe("e2e-modbus");
    expect(first.device).toBe("press-1");
    const all = msgs.flatMap((m) => m.samples);
    const byTag = new Map(all.map((s) => [s.tag, s]));
    expect(byTag.get("model")!.value).toBe("PRESS-1");
    const temp = byTag.get("temp_c")!;
    expect(temp.unit).toBe("degC");
    expect(temp.quality).toBe("good");
    // The same register read raw and scaled by 0.1.
    const pairs = all.filter((s) => s.tag === "temp_ro").flatMap((raw) => all.filter((s) => s.tag === "temp_c" && s.ts === raw.ts).map((scaled) => ({ raw, scaled })));
    expect(pairs.length).toBeGreaterThan(0);
    for (const { raw, scaled } of pairs) expect(scaled.value).toBeCloseTo((raw.value as number) * 0.1, 6);
    expect(typeof byTag.get("part_count")!.value).toBe("number");
    expect(typeof byTag.get("door_open")!.value).toBe("boolean");
    expect(byTag.get("spindle_rpm")!.ts).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    for (let i = 1; i < msgs.length; i++) expect(msgs[i]!.batch).toBeGreaterThan(msgs[i - 1]!.batch);
    const status = await collector.waitFor((m) => m.topic === "floorgate/e2e-modbus/press-1/status");
    expect(JSON.parse(status.payload.toString())).toMatchObject({ state: "online" });
  });

  it("writes back to a writable coil with an operator token, and refuses the rest", async () => {
    const url = `${gw.base}/api/v1/devices/press-1/tags/lamp/write`;
    expect((await http("POST", url, { body: JSON.stringify({ value: true }) })).status).toBe(401);
    const ro = await http("POST", `${gw.base}/api/v1/devices/press-1/tags/temp_ro/write`, { body: JSON.stringify({ value: 1 }), headers: { authorization: `Bearer ${OPERATOR}` } });
    expect(ro.status).toBe(403);
    expect(ro.body).toContain("writable");
    const ok = await http("POST", url, { body: JSON.stringify({ value: true }), headers: { authorization: `Bearer ${OPERATOR}` } });
    expect(ok.status).toBe(200);
    const since = collector.messages.length;
    await collector.waitFor((m) => m.seq >= since && m.topic.endsWith("/press-1/telemetry")
      && (JSON.parse(m.payload.toString()) as TelemetryMessage).samples.some((s) => s.tag === "lamp" && s.value === true), 10_000);
  });

  it("probe reads every tag once beside the running daemon", async () => {
    const r = await run(["probe", "--config", configFile, "--device", "press-1"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^device\s+tag\s+value\s+unit\s+quality/);
    expect(lines.length).toBe(9);
    expect(r.stdout).toMatch(/press-1\s+model\s+PRESS-1/);
    expect(r.stdout).toMatch(/press-1\s+temp_c\s+\d+(\.\d)?\s+degC\s+good/);
  });
});
