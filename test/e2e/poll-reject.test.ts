import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startModbusSimulator, type ModbusSimulator } from "../../drivers/modbus/index.js";
import { startMosquitto, type MosquittoBroker } from "../helpers/mosquitto.js";
import { freePort } from "../helpers/ports.js";
import { getJson, http, metric, startGateway, type GatewayProcess } from "../helpers/gateway-process.js";

/**
 * Polled samples that a full journal (overflow: reject) refuses: nobody can be answered 503, so
 * they are counted as dropped with their reason, the device keeps polling and stays online, and
 * samples are journaled again once the output has drained. (The poller hands samples over without
 * waiting for their fsync; this guards the path where the journal refuses them.)
 */
describe("overflow: reject with a polled Modbus device, end to end", () => {
  let broker: MosquittoBroker;
  let sim: ModbusSimulator;
  let gw: GatewayProcess;
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "floorgate-e2e-poll-reject-"));
    broker = await startMosquitto();
    sim = await startModbusSimulator({ presses: 1, tickMs: 50 });
    const port = await freePort();
    const tags = Array.from({ length: 100 }, (_, a) => `      - { name: r${a}, area: holding, address: ${a}, type: uint16 }`).join("\n");
    const file = join(dir, "floorgate.yaml");
    await writeFile(file, `
gateway: { id: e2e-poll-reject, group: e2e, dataDir: ./data }
http: { listen: "127.0.0.1:${port}" }
journal: { maxBytes: 1MiB, overflow: reject, fsyncIntervalMs: 5 }
outputs:
  - { type: mqtt, name: cloud, url: "${broker.url}" }
devices:
  - id: press
    driver: modbus
    connection: { transport: tcp, host: 127.0.0.1, port: ${sim.ports[0]}, unitId: 1, timeoutMs: 1000 }
    pollMs: 20
    tags:
${tags}
`);
    await broker.stop();
    gw = await startGateway(file, port, {});
  });

  afterAll(async () => {
    await gw?.kill();
    await sim?.stop();
    await broker?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it("counts refused polled samples as dropped (journal_full), keeps polling, and journals again after the drain", async () => {
    const metrics = async (): Promise<string> => (await http("GET", `${gw.base}/metrics`)).body;
    const dropped = async (): Promise<number> => metric(await metrics(), "floorgate_drops_total", { reason: "journal_full" });
    await expect.poll(dropped, { timeout: 60_000, interval: 100 }).toBeGreaterThan(0);
    // refused in whole polls, and the poller carries on: the count keeps growing
    const first = await dropped();
    expect(first % 100).toBe(0);
    await expect.poll(dropped, { timeout: 10_000, interval: 50 }).toBeGreaterThan(first);
    const devices = await getJson<{ devices: { id: string; state: string; counters: Record<string, number> }[] }>(`${gw.base}/api/v1/devices`);
    const press = devices.devices.find((d) => d.id === "press")!;
    expect(press.state).toBe("online");
    expect(press.counters["dropped_journal_full"]).toBeGreaterThan(0);

    await broker.start();
    await expect.poll(async () => (await getJson<{ outputs: Record<string, { lag: number }> }>(`${gw.base}/healthz`)).outputs.cloud!.lag, { timeout: 60_000, interval: 100 }).toBeLessThan(1000);
    const inAfterDrain = metric(await metrics(), "floorgate_samples_in_total", { device: "press" });
    await expect.poll(async () => metric(await metrics(), "floorgate_samples_in_total", { device: "press" }), { timeout: 10_000, interval: 50 }).toBeGreaterThan(inAfterDrain);
  });
});
