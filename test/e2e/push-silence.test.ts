import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfigText } from "../../src/config/load.js";
import { createLogger } from "../../src/core/logger.js";
import { Gateway } from "../../src/runtime/gateway.js";

const TOKEN = "agv-token-71c2";

/**
 * A 5G device that stops pushing is shown `offline` once it has been silent for the push-silence
 * time (spec §1: unreachable), and `online` again at its next push. The gateway runs in-process
 * with a real HTTP listener; the silence time is shortened through GatewayOptions (default 60 s).
 */
describe("push silence", () => {
  let dir: string;
  let gw: Gateway;
  let base: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "floorgate-push-silence-"));
    const r = parseConfigText(`
gateway: { id: silence, group: test, dataDir: "${dir}" }
http: { listen: "127.0.0.1:0" }
ingest:
  devices: [{ id: "agv-*", token: "${TOKEN}" }]
`, join(dir, "floorgate.yaml"), {});
    if (!r.ok) throw new Error(r.problems.map((p) => p.message).join("\n"));
    gw = await Gateway.start(r.config, createLogger({ level: "silent" }), { pushSilenceMs: 400, pushSweepMs: 50 });
    base = `http://127.0.0.1:${gw.httpPort}`;
  });

  afterAll(async () => {
    await gw?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const push = async (device: string): Promise<number> =>
    (await fetch(`${base}/api/v1/ingest/${device}`, {
      method: "POST", headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ values: { speed_mps: 1.5 } }),
    })).status;
  const stateOf = async (device: string): Promise<{ state: string; error: string | null } | undefined> => {
    const body = await (await fetch(`${base}/api/v1/devices`)).json() as { devices: { id: string; state: string; error: string | null }[] };
    return body.devices.find((d) => d.id === device);
  };

  it("goes offline after the silence time, naming it, and online again at the next push", async () => {
    expect(await push("agv-1")).toBe(202);
    expect((await stateOf("agv-1"))?.state).toBe("online");
    const t0 = Date.now();
    await expect.poll(async () => (await stateOf("agv-1"))?.state, { timeout: 5000, interval: 20 }).toBe("offline");
    expect(Date.now() - t0).toBeGreaterThanOrEqual(350);
    expect((await stateOf("agv-1"))?.error).toBe("no push for 0.4 s");
    expect(await push("agv-1")).toBe(202);
    expect(await stateOf("agv-1")).toMatchObject({ state: "online", error: null });
  });

  it("a device that keeps pushing stays online", async () => {
    const until = Date.now() + 1000;
    while (Date.now() < until) {
      expect(await push("agv-2")).toBe(202);
      expect((await stateOf("agv-2"))?.state).toBe("online");
      await new Promise((r) => setTimeout(r, 100));
    }
  });
});
