import { mkdtemp, rm } from "node:fs/promises";
import { Agent, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../helpers/ports.js";
import { getJson, http, metric, startGateway, writeConfig, type GatewayProcess } from "../helpers/gateway-process.js";

const TOKEN = "sensor-fleet-token-5d1e";
const IDS = 100_000;
const MAX_DEVICES = 20_000; // the default: the config below does not set it
const CONCURRENCY = 128;

/**
 * Issue 10, point 7: one glob token (`sensor-*`) and 100,000 distinct device ids must not grow
 * the gateway's per-device state past `ingest.maxDevices`. The daemon runs as a real process with
 * the default limit; the pushes go over keep-alive connections, `CONCURRENCY` at a time.
 */
describe("ingest.maxDevices under 100,000 device ids", () => {
  let dir: string;
  let gp: GatewayProcess;
  let port: number;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "floorgate-device-cap-"));
    port = await freePort();
    const file = await writeConfig(dir, `
gateway: { id: cap-edge, group: test, dataDir: "${dir}/data" }
http: { listen: "127.0.0.1:${port}" }
journal: { fsyncIntervalMs: 10 }
ingest:
  devices: [{ id: "sensor-*", token: "${TOKEN}" }]
`);
    gp = await startGateway(file, port);
  });

  afterAll(async () => {
    const stopped = await gp?.stop();
    if (stopped) expect(stopped.code).toBe(0);
    await rm(dir, { recursive: true, force: true });
  });

  it(`admits exactly ${MAX_DEVICES} ids; the other ${IDS - MAX_DEVICES} get 429 with the reason, counted; state stays bounded`, async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
    const body = Buffer.from(JSON.stringify({ values: { temp_c: 21.5 } }));
    const headers = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json", "content-length": String(body.length) };
    const accepted: string[] = [];
    const statuses = new Map<number, number>();
    const errors = new Set<string>();
    let retryAfterMissing = 0;
    const post = (id: string) => new Promise<void>((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port, method: "POST", path: `/api/v1/ingest/${id}`, headers, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const status = res.statusCode ?? 0;
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
          if (status === 202) accepted.push(id);
          else if (status === 429) {
            errors.add((JSON.parse(Buffer.concat(chunks).toString()) as { error: string }).error.replace(/sensor-\d+/, "sensor-N"));
            if (!/^[1-9]\d*$/.test(String(res.headers["retry-after"]))) retryAfterMissing++;
          }
          resolve();
        });
        res.on("error", reject);
      });
      req.on("error", reject);
      req.end(body);
    });

    const t0 = performance.now();
    let next = 0;
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (next < IDS) await post(`sensor-${next++}`);
    }));
    const pushMs = performance.now() - t0;
    agent.destroy();
    console.log(`${IDS} pushes from distinct ids in ${Math.round(pushMs)} ms (${Math.round(IDS / (pushMs / 1000))}/s)`);

    expect(Object.fromEntries(statuses)).toEqual({ 202: MAX_DEVICES, 429: IDS - MAX_DEVICES });
    expect(retryAfterMissing).toBe(0);
    expect([...errors]).toEqual([
      `device limit reached: this gateway accepts pushes from at most ${MAX_DEVICES} devices (ingest.maxDevices) and sensor-N is not one of them`,
    ]);

    const text = (await http("GET", `${gp.base}/metrics`)).body;
    expect(metric(text, "floorgate_ingest_rejects_total", { reason: "too_many_devices" })).toBe(IDS - MAX_DEVICES);
    expect(metric(text, "floorgate_ingest_devices")).toBe(MAX_DEVICES);
    // Every per-device series names an admitted device, and there are no more of them than devices allow.
    const acceptedSet = new Set(accepted);
    const labelled = new Set<string>();
    for (const m of text.matchAll(/device="([^"]*)"/g)) labelled.add(m[1]!);
    expect(labelled.size).toBe(MAX_DEVICES);
    for (const id of labelled) expect(acceptedSet.has(id), id).toBe(true);
    expect(metric(text, "floorgate_samples_in_total")).toBe(MAX_DEVICES);

    const devices = (await getJson<{ devices: { id: string; driver: string }[] }>(`${gp.base}/api/v1/devices`)).devices;
    expect(devices).toHaveLength(MAX_DEVICES);
    expect(new Set(devices.map((d) => d.id))).toEqual(acceptedSet);

    // An admitted device goes on pushing; a refused one stays refused.
    const auth = { authorization: `Bearer ${TOKEN}` };
    expect((await http("POST", `${gp.base}/api/v1/ingest/${accepted[0]}`, { body, headers: auth })).status).toBe(202);
    expect((await http("POST", `${gp.base}/api/v1/ingest/sensor-${IDS + 1}`, { body, headers: auth })).status).toBe(429);
  }, 120_000);
});
