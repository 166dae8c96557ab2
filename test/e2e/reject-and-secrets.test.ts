import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startMosquitto, type MosquittoBroker } from "../helpers/mosquitto.js";
import { freePort } from "../helpers/ports.js";
import { getJson, http, metric, startGateway, type GatewayProcess } from "../helpers/gateway-process.js";

const DEVICE_TOKEN = "dev-tok-8c1f2a";
const OPERATOR_TOKEN = "op-tok-5e9d77";
const BROKER_PASSWORD = "brk-pw-a41b09";

describe("overflow: reject, end to end", () => {
  let broker: MosquittoBroker;
  let gw: GatewayProcess;
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "floorgate-e2e-reject-"));
    broker = await startMosquitto({ auth: { username: "edge", password: BROKER_PASSWORD } });
    const port = await freePort();
    const file = join(dir, "floorgate.yaml");
    await writeFile(file, `
gateway: { id: e2e-reject, group: e2e, dataDir: ./data }
http: { listen: "127.0.0.1:${port}", operatorTokens: ["\${env:OP_TOKEN}"] }
journal: { maxBytes: 1MiB, overflow: reject, fsyncIntervalMs: 5 }
ingest:
  ratePerDevice: 100000
  devices: [{ id: "agv-*", token: "\${env:DEV_TOKEN}" }]
outputs:
  - { type: mqtt, name: cloud, url: "${broker.url}", username: edge, password: "\${env:BROKER_PW}" }
`);
    await broker.stop();
    gw = await startGateway(file, port, { OP_TOKEN: OPERATOR_TOKEN, DEV_TOKEN: DEVICE_TOKEN, BROKER_PW: BROKER_PASSWORD });
  });

  afterAll(async () => {
    await gw?.kill();
    await broker?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it("answers 503 when full, /healthz 503, counts it, and accepts again once the output drains", async () => {
    const headers = { authorization: `Bearer ${DEVICE_TOKEN}` };
    const values: Record<string, number> = {};
    for (let i = 0; i < 50; i++) values[`t${i}`] = i;
    let status = 202;
    let pushes = 0;
    while (status === 202 && pushes < 5000) {
      const r = await http("POST", `${gw.base}/api/v1/ingest/agv-${pushes % 8}`, { body: JSON.stringify({ values }), headers });
      status = r.status;
      pushes++;
    }
    expect(status).toBe(503);
    const health = await http("GET", `${gw.base}/healthz`);
    expect(health.status).toBe(503);
    expect(JSON.parse(health.body).journal.full).toBe(true);
    const text = (await http("GET", `${gw.base}/metrics`)).body;
    expect(metric(text, "floorgate_ingest_rejects_total", { reason: "journal_full" })).toBeGreaterThanOrEqual(1);

    await broker.start();
    await expect.poll(async () => (await getJson<{ outputs: Record<string, { lag: number; state: string }> }>(`${gw.base}/healthz`)).outputs.cloud!.lag, { timeout: 60_000, interval: 100 }).toBe(0);
    await expect.poll(async () => (await http("POST", `${gw.base}/api/v1/ingest/agv-1`, { body: JSON.stringify({ values }), headers })).status, { timeout: 30_000, interval: 100 }).toBe(202);
    expect((await http("GET", `${gw.base}/healthz`)).status).toBe(200);
  });

  it("never writes a token or password to its logs", async () => {
    // Exercise the paths that log: auth failures, an operator request, an output reconnect.
    await http("POST", `${gw.base}/api/v1/ingest/agv-1`, { body: "{}", headers: { authorization: `Bearer ${DEVICE_TOKEN}x` } });
    await http("GET", `${gw.base}/api/v1/devices?token=${OPERATOR_TOKEN}`, { headers: { authorization: `Bearer ${OPERATOR_TOKEN}` } });
    await broker.stop();
    await expect.poll(async () => (await getJson<{ outputs: Record<string, { state: string }> }>(`${gw.base}/healthz`)).outputs.cloud!.state, { timeout: 30_000, interval: 100 }).not.toBe("online");
    await broker.start();
    const { code } = await gw.stop();
    expect(code).toBe(0);
    const logs = gw.output.join("");
    expect(logs.length).toBeGreaterThan(200);
    for (const secret of [DEVICE_TOKEN, OPERATOR_TOKEN, BROKER_PASSWORD]) expect(logs).not.toContain(secret);
    // Logs are pino JSON lines by default.
    const first = logs.split("\n").find((l) => l.startsWith("{"));
    expect(JSON.parse(first!)).toHaveProperty("level");
  });
});

describe("--pretty", () => {
  it("prints human-readable log lines instead of JSON", async () => {
    const dir = await mkdtemp(join(tmpdir(), "floorgate-pretty-"));
    const port = await freePort();
    const file = join(dir, "floorgate.yaml");
    await writeFile(file, `gateway: { id: pretty, group: g, dataDir: ./data }\nhttp: { listen: "127.0.0.1:${port}" }\n`);
    const child = spawn(process.execPath, [join(import.meta.dirname, "..", "..", "bin", "floorgate"), "run", "--config", file, "--pretty"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    await new Promise<void>((resolve, reject) => {
      child.stdout.on("data", (d: Buffer) => { out += d.toString(); if (out.includes("floorgate running")) resolve(); });
      child.on("exit", (code) => reject(new Error(`exited ${code}: ${out}`)));
    });
    const exited = new Promise<number | null>((r) => child.once("exit", (c) => r(c)));
    child.kill("SIGINT");
    expect(await exited).toBe(0);
    await rm(dir, { recursive: true, force: true });
    const line = out.split("\n").find((l) => l.includes("floorgate running"))!;
    expect(line.trim().startsWith("{")).toBe(false);
    expect(line).toMatch(/INFO/);
  });
});
