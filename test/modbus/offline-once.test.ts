/**
 * A Modbus device that never connects (its port is closed) is reported once: one bad sample per
 * tag when it goes offline, one state change, then nothing while it stays unreachable — not a bad
 * sample per tag and poll queued for the cloud, nor an "offline" line every second. Checked on the
 * driver with the test context, and end to end on the real gateway process: its journal counts
 * and its log.
 */
import { describe, it, expect, afterEach } from "vitest";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createModbusDriver } from "../../drivers/modbus/index.js";
import { freePort } from "../helpers/ports.js";
import { getJson, metric, http, startGateway, writeConfig, type GatewayProcess } from "../helpers/gateway-process.js";
import { makeContext, makeDevice, tcp } from "./context.js";

const TAGS = [
  { name: "a", area: "holding" as const, address: 0, type: "uint16" as const },
  { name: "b", area: "holding" as const, address: 10, type: "float32" as const },
  { name: "c", area: "coil" as const, address: 0, type: "bool" as const },
];

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  // freePort released it: nothing listens there, so every connect is refused at once.
  return freePort();
}

describe("a device that never connects", () => {
  it("driver: one bad sample per tag and one offline state over many polls and reconnect attempts", async () => {
    const port = await closedPort();
    // pollMs 50, reconnects backing off to 500 ms, longer than the 100 ms timeout: most polls find
    // the next attempt too far off to wait for (the defect's case), some make the attempt.
    const cfg = makeDevice("dead", tcp(port, 1, 100), TAGS, { pollMs: 50, reconnectMaxMs: 500 });
    const ctx = makeContext();
    const driver = createModbusDriver(cfg);
    const run = driver.run(ctx);
    await ctx.waitState("offline", 5000);
    // Nothing to wait for but time: the defect was what happened on later polls. 40 poll periods,
    // long enough for the backoff to reach its cap and retry several times.
    await new Promise((r) => setTimeout(r, 40 * cfg.pollMs));
    ctx.controller.abort();
    await run;
    expect(ctx.samples.map((s) => s.tag).sort()).toEqual(["a", "b", "c"]);
    for (const s of ctx.samples) {
      expect(s).toMatchObject({ quality: "bad", value: null });
      expect(s.reason).toMatch(/^transport: cannot connect to tcp:\/\/127\.0\.0\.1:\d+: /);
    }
    // The runtime logs every change of state or error text: both must stay put while offline.
    expect(ctx.states.map((s) => s.state)).toEqual(["connecting", "offline"]);
  });

  describe("gateway", () => {
    let gw: GatewayProcess | undefined;
    let dir: string | undefined;
    afterEach(async () => {
      await gw?.kill();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it("journals one bad sample per tag and logs offline once", async () => {
      dir = await mkdtemp(join(tmpdir(), "floorgate-offline-"));
      const [httpPort, dead] = [await freePort(), await closedPort()];
      const configFile = await writeConfig(dir, `
gateway: { id: offline-edge, group: tests, dataDir: ./data }
http: { listen: "127.0.0.1:${httpPort}", operatorTokens: [op-token] }
devices:
  - id: dead-plc
    driver: modbus
    connection: { transport: tcp, host: 127.0.0.1, port: ${dead}, unitId: 1, timeoutMs: 200 }
    pollMs: 100
    reconnectMaxMs: 1000
    tags:
${TAGS.map((t) => `      - { name: ${t.name}, area: ${t.area}, address: ${t.address}, type: ${t.type} }`).join("\n")}
`);
      gw = await startGateway(configFile, httpPort);
      const deadline = Date.now() + 15_000;
      for (;;) {
        const devs = await getJson<{ id: string; state: string }[] | { devices: { id: string; state: string }[] }>(`${gw.base}/api/v1/devices`, "op-token");
        const list = Array.isArray(devs) ? devs : devs.devices;
        if (list.find((d) => d.id === "dead-plc")?.state === "offline") break;
        if (Date.now() > deadline) throw new Error(`dead-plc never went offline:\n${gw.output.join("")}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      // 30 poll periods with the backoff reaching its 1 s cap and retrying.
      await new Promise((r) => setTimeout(r, 3000));
      const text = (await http("GET", `${gw.base}/metrics`)).body;
      const stopped = await gw.stop();
      expect(stopped.code).toBe(0);
      expect(metric(text, "floorgate_samples_in_total", { device: "dead-plc" })).toBe(TAGS.length);
      const log = gw.output.join("").split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>);
      const offline = log.filter((l) => l.msg === "device dead-plc offline");
      expect(offline).toHaveLength(1);
      // no other state line about the device while it stayed offline (the driver's own is relayed once)
      expect(log.filter((l) => l.device === "dead-plc" && l.state === "offline")).toHaveLength(2);
    });
  });
});
