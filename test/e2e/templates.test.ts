import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startMosquitto, type MosquittoBroker } from "../helpers/mosquitto.js";
import { collect, type Collector } from "../helpers/mqtt-sub.js";
import { freePort } from "../helpers/ports.js";
import { startServerTcp, type RunningServer } from "../helpers/modbus-servers.js";
import { getJson, startGateway, writeConfig, type GatewayProcess } from "../helpers/gateway-process.js";
import type { TelemetryMessage } from "../helpers/pusher.js";

interface DeviceRow { id: string; driver: string; state: string; lastSampleTs: string | null }

/**
 * Device templates end to end: `floorgate run` on a config whose presses are made from one
 * template, polling two real Modbus TCP servers (modbus-serial ServerTCP, every unit id), and
 * publishing each press's samples to Mosquitto. Each server holds a different register image, so
 * a sample shows which connection its device really used.
 */
describe("device templates, end to end", () => {
  let broker: MosquittoBroker;
  let collector: Collector;
  let lineA: RunningServer;
  let lineB: RunningServer;
  let gw: GatewayProcess;
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "floorgate-e2e-templates-"));
    broker = await startMosquitto();
    collector = await collect(broker.url, "floorgate/e2e-templates/+/telemetry");
    lineA = await startServerTcp({ holding: { 0: 1111, 1: 250 } });
    lineB = await startServerTcp({ holding: { 0: 2222, 1: 300 } });
    const httpPort = await freePort();
    const file = await writeConfig(dir, `
gateway: { id: e2e-templates, group: e2e, dataDir: ./data }
http: { listen: "127.0.0.1:${httpPort}" }
templates:
  press:
    driver: modbus
    connection: { port: ${lineA.port}, timeoutMs: 500 }
    pollMs: 200
    tags:
      - { name: strokes, area: holding, address: 0, type: uint16 }
      - { name: temp_c, area: holding, address: 1, type: int16, scale: 0.1, unit: degC }
devices:
  - { id: press-a1, template: press, connection: { host: 127.0.0.1, unitId: 1 } }
  - { id: press-a2, template: press, connection: { host: 127.0.0.1, unitId: 2 }, pollMs: 300 }
  - { id: press-b1, template: press, connection: { host: 127.0.0.1, port: ${lineB.port} } }
outputs:
  - { type: mqtt, name: cloud, url: "${broker.url}" }
`);
    gw = await startGateway(file, httpPort);
  });

  afterAll(async () => {
    await gw?.stop();
    await lineA?.stop();
    await lineB?.stop();
    await collector?.close();
    await broker?.dispose();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("publishes samples of every device made from the template, each from its own connection", async () => {
    const ids = ["press-a1", "press-a2", "press-b1"];
    const samplesOf = (id: string): TelemetryMessage["samples"] =>
      collector.on(`floorgate/e2e-templates/${id}/telemetry`).flatMap((m) => (JSON.parse(m.payload.toString()) as TelemetryMessage).samples);
    await collector.until(() => ids.every((id) => new Set(samplesOf(id).map((s) => s.tag)).size === 2), 20_000);
    const expected: Record<string, number> = { "press-a1": 1111, "press-a2": 1111, "press-b1": 2222 };
    for (const id of ids) {
      const byTag = new Map(samplesOf(id).map((s) => [s.tag, s]));
      expect(byTag.get("strokes"), id).toMatchObject({ value: expected[id], quality: "good" });
      const temp = byTag.get("temp_c")!;
      expect(temp.unit).toBe("degC");
      expect(temp.value).toBeCloseTo(id === "press-b1" ? 30 : 25, 6);
    }
  });

  it("lists every templated device online with the template's driver", async () => {
    const body = await getJson<{ devices: DeviceRow[] }>(`${gw.base}/api/v1/devices`);
    expect(body.devices.map((d) => d.id).sort()).toEqual(["press-a1", "press-a2", "press-b1"]);
    for (const d of body.devices) {
      expect(d.driver).toBe("modbus");
      expect(d.state).toBe("online");
      expect(d.lastSampleTs).not.toBeNull();
    }
  });
});
