/**
 * The driver supervisor, through a whole in-process gateway with a real HTTP listener: a driver
 * whose `run` rejects is restarted with backoff, each restart counted (the device's `restarts`
 * counter and floorgate_driver_restarts_total{device}), the failure logged once, and the stop is
 * not held up by a restart wait. The failing driver is a test-only driver module given to the
 * gateway through its seams (GatewayOptions.createDriver on the main thread, the driver module of
 * the driver threads), not a mock of the runtime. The driver-thread case runs the built worker:
 * `npm run build` first.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfigText } from "../../src/config/load.js";
import type { DeviceConfig } from "../../src/config/types.js";
import type { Driver } from "../../src/core/driver.js";
import { createLogger } from "../../src/core/logger.js";
import { Gateway, type GatewayOptions } from "../../src/runtime/gateway.js";

const DRIVER_MODULE = new URL("./fixtures/failing-driver.mjs", import.meta.url);
const WORKER = new URL("../../dist/src/runtime/threads/driver-worker.js", import.meta.url);
const testDriver = (await import(DRIVER_MODULE.href)) as { createDriver(cfg: DeviceConfig): Driver; runsOf(id: string): number };

interface DeviceRow { id: string; state: string; error: string | null; counters: Record<string, number> }

function setup(threads: number, opts: GatewayOptions) {
  const ctx = { gw: undefined as Gateway | undefined, dir: "", base: "", lines: [] as Record<string, unknown>[] };
  beforeAll(async () => {
    ctx.dir = await mkdtemp(join(tmpdir(), "floorgate-supervisor-"));
    const device = (id: string) => `
  - id: ${id}
    driver: modbus
    connection: { transport: tcp, host: 127.0.0.1, port: 1, unitId: 1, timeoutMs: 100 }
    tags: [{ name: level, area: holding, address: 0, type: uint16 }]`;
    const r = parseConfigText(`
gateway: { id: supervisor, group: test, dataDir: "${ctx.dir}", driverThreads: ${threads} }
http: { listen: "127.0.0.1:0" }
devices:${device("flaky-1")}${device("broken-1")}
`, join(ctx.dir, "floorgate.yaml"), {});
    if (!r.ok) throw new Error(r.problems.map((p) => p.message).join("\n"));
    const log = createLogger({ level: "debug", destination: { write: (line: string) => { ctx.lines.push(JSON.parse(line) as Record<string, unknown>); } } });
    ctx.gw = await Gateway.start(r.config, log, { driverRestartBackoff: { initialMs: 40, maxMs: 80 }, ...opts });
    ctx.base = `http://127.0.0.1:${ctx.gw.httpPort}`;
  });
  afterAll(async () => {
    await ctx.gw?.stop();
    await rm(ctx.dir, { recursive: true, force: true });
  });
  return ctx;
}

async function device(base: string, id: string): Promise<DeviceRow | undefined> {
  const body = await (await fetch(`${base}/api/v1/devices`)).json() as { devices: DeviceRow[] };
  return body.devices.find((d) => d.id === id);
}

function restartsMetric(text: string, id: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`floorgate_driver_restarts_total{device="${id}"}`));
  return line === undefined ? 0 : Number(line.split(" ").at(-1));
}

function checks(ctx: ReturnType<typeof setup>, runsOf?: (id: string) => number) {
  it("restarts a driver whose run failed, counting each restart, until it runs: then online with samples", async () => {
    await expect.poll(async () => (await device(ctx.base, "flaky-1"))?.state, { timeout: 10_000, interval: 20 }).toBe("online");
    const d = (await device(ctx.base, "flaky-1"))!;
    expect(d.error).toBeNull();
    expect(d.counters.restarts).toBe(2);
    await expect.poll(async () => (await device(ctx.base, "flaky-1"))?.counters.samples_in ?? 0, { timeout: 5_000, interval: 20 }).toBeGreaterThan(0);
    const metrics = await (await fetch(`${ctx.base}/metrics`)).text();
    expect(restartsMetric(metrics, "flaky-1")).toBe(2);
    if (runsOf) expect(runsOf("flaky-1")).toBe(3);
    // Its way back is logged as one state change: online.
    expect(ctx.lines.filter((l) => l.device === "flaky-1" && typeof l.msg === "string" && (l.msg as string).startsWith("device flaky-1")).map((l) => l.msg))
      .toEqual(["device flaky-1 online"]);
  });

  it("a driver that keeps failing shows error with the reason, keeps being restarted with backoff, and is logged once", async () => {
    await expect.poll(async () => (await device(ctx.base, "broken-1"))?.counters.restarts ?? 0, { timeout: 10_000, interval: 20 }).toBeGreaterThanOrEqual(4);
    const d = (await device(ctx.base, "broken-1"))!;
    // Between a restart and the next failure the driver itself says `connecting`.
    expect(["error", "connecting"]).toContain(d.state);
    await expect.poll(async () => (await device(ctx.base, "broken-1"))?.error ?? "", { timeout: 5_000, interval: 10 }).toContain("test driver bug: broken");
    const metrics = await (await fetch(`${ctx.base}/metrics`)).text();
    expect(restartsMetric(metrics, "broken-1")).toBeGreaterThanOrEqual(4);
    const failed = ctx.lines.filter((l) => l.device === "broken-1" && l.msg === "driver failed; restarting it");
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ level: 50, err: "test driver bug: broken" });
    expect(ctx.lines.filter((l) => l.device === "broken-1" && l.msg === "driver failed again; restarting it").length).toBeGreaterThanOrEqual(3);
    // No state-change line per attempt: the restarts' `connecting` is shown, not logged.
    expect(ctx.lines.filter((l) => l.device === "broken-1" && l.level === 30)).toEqual([]);
    // Health shows the failed device.
    const health = await (await fetch(`${ctx.base}/healthz`)).json() as { status: string };
    expect(health.status).toBe("degraded");
  });

  it("stops cleanly, also while a restart waits: no run after stop", async () => {
    const t0 = Date.now();
    await ctx.gw!.stop();
    expect(Date.now() - t0).toBeLessThan(3_000);
    const restarts = ctx.lines.filter((l) => l.device === "broken-1" && typeof l.msg === "string" && (l.msg as string).startsWith("driver failed")).length;
    await new Promise((r) => setTimeout(r, 300));
    expect(ctx.lines.filter((l) => l.device === "broken-1" && typeof l.msg === "string" && (l.msg as string).startsWith("driver failed")).length).toBe(restarts);
    expect(ctx.lines.some((l) => l.msg === "floorgate stopped")).toBe(true);
  });
}

describe("driver supervisor on the main thread", () => {
  const ctx = setup(0, { createDriver: testDriver.createDriver });
  checks(ctx, testDriver.runsOf);
});

describe("driver supervisor with the driver on a driver thread", () => {
  const ctx = setup(1, { driverThreads: { workerUrl: WORKER, driverModule: DRIVER_MODULE.href } });
  checks(ctx);
});
