// A reconnect storm: 1,000 MQTT devices (3.1.1 and 5, in a process of their own) connect at once,
// publish QoS 1 every second, then all lose their connections together (a cell outage) and come
// back. Pass lines: every device back within 10 s (through the listener's connect-rate guard, which
// must have refused some), nothing PUBACKed lost at the cloud, and the Modbus pollers beside them
// (modbus-serial ServerTCPs, polled every 100 ms on the gateway's main thread, the default, sharing
// its event loop with the thousand sockets) keep their timing: interval jitter p99 < 100 ms. The
// figures line printed names what was measured, the pollers alone first.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fork, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import ModbusRTU from "modbus-serial";
import { metric } from "../helpers/gateway-process.js";
import { freePort, waitForPort } from "../helpers/modbus-servers.js";
import { metricsText, startMqttSpine, TOKEN, type MqttSpine } from "./fixture.js";

const DEVICES = 1000;
const PRESSES = 4;
const POLL_MS = 100;

interface Press { port: number; reads: number[]; close(): Promise<void> }

/** A ServerTCP that records when each poll (a read starting at address 0) lands. */
async function startPress(): Promise<Press> {
  const port = await freePort();
  const reads: number[] = [];
  const vector = {
    getHoldingRegister: (addr: number) => {
      if (addr === 0) reads.push(performance.now());
      return addr;
    },
    getInputRegister: () => 0, getCoil: () => false, getDiscreteInput: () => false,
    setRegister: () => undefined, setCoil: () => undefined,
  };
  const server = new ModbusRTU.ServerTCP(vector, { host: "127.0.0.1", port, unitID: 255 });
  server.on("socketError", () => undefined);
  await waitForPort(port, 5000, "(ServerTCP)");
  return { port, reads, close: () => new Promise<void>((r) => server.close(() => r())) };
}

/** |interval − POLL_MS| of consecutive polls landing in [from, to), over every press. */
function jitter(presses: readonly Press[], from: number, to: number): number[] {
  const out: number[] = [];
  for (const p of presses) {
    const r = p.reads.filter((t) => t >= from && t < to);
    for (let i = 1; i < r.length; i++) out.push(Math.abs(r[i]! - r[i - 1]! - POLL_MS));
  }
  return out.sort((a, b) => a - b);
}
const p99 = (xs: readonly number[]): number => xs[Math.min(xs.length - 1, Math.floor(xs.length * 0.99))]!;

type FleetMsg = { type: "ready" } | { type: "connected"; ms: number } | { type: "back"; ms: number } | { type: "acked"; acked: Record<string, number[]>; inflight: number };

describe("reconnect storm: 1,000 MQTT devices", () => {
  const presses: Press[] = [];
  let spine: MqttSpine;
  let fleet: ChildProcess;
  const inbox: FleetMsg[] = [];
  const next = (type: FleetMsg["type"], timeoutMs: number): Promise<FleetMsg> => new Promise((resolve, reject) => {
    const t0 = Date.now();
    const look = (): void => {
      const i = inbox.findIndex((m) => m.type === type);
      if (i >= 0) { resolve(inbox.splice(i, 1)[0]!); return; }
      if (fleet.exitCode !== null) { reject(new Error(`the fleet exited (${fleet.exitCode}) before "${type}"`)); return; }
      if (Date.now() - t0 > timeoutMs) { reject(new Error(`no "${type}" from the fleet within ${timeoutMs} ms`)); return; }
      setTimeout(look, 20);
    };
    look();
  });

  beforeAll(async () => {
    for (let i = 0; i < PRESSES; i++) presses.push(await startPress());
    const devices = presses.map((p, i) => `
  - id: press-${i + 1}
    driver: modbus
    connection: { transport: tcp, host: 127.0.0.1, port: ${p.port}, unitId: 1, timeoutMs: 1000 }
    pollMs: ${POLL_MS}
    tags:
      - { name: a, area: holding, address: 0, type: uint16 }
      - { name: b, area: holding, address: 1, type: uint16 }`).join("");
    spine = await startMqttSpine({
      mqttYaml: "maxConnections: 5000\nconnectsPerSec: 400",
      ingestYaml: `devices:\n  - { id: "fleet-*", token: "${TOKEN}" }`,
      extraYaml: `devices:${devices}`,
      // No gateway.driverThreads: the defaults, as a plant engineer runs them. Beside a device
      // listener the default puts the pollers on a driver thread (src/config/build.ts
      // defaultDriverThreads); the listener also starts connections in slices per event-loop turn
      // (src/ingest/mqtt/listener.ts, STARTS_PER_TURN) and the log summarises state changes.
    });
    fleet = fork(join(import.meta.dirname, "fleet-child.ts"), [spine.mqttUrl, String(DEVICES), TOKEN, "1000"], {
      execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    fleet.on("message", (m: FleetMsg) => inbox.push(m));
    await next("ready", 20_000);
  }, 90_000);

  afterAll(async () => {
    if (fleet && fleet.exitCode === null) fleet.kill("SIGKILL");
    await spine?.close();
    for (const p of presses) await p.close();
  });

  it("every device back within 10 s, nothing PUBACKed lost, poll jitter p99 < 100 ms", async () => {
    // the pollers alone first: what this machine gives them without any device
    const quietFrom = performance.now();
    await new Promise((r) => setTimeout(r, 3000));
    const m0 = await metricsText(spine.gw);
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    const t0 = performance.now();
    fleet.send({ cmd: "start" });
    const connected = await next("connected", 30_000) as { ms: number };
    const connectedAt = performance.now();
    // a quiet stretch for comparison, then the storm
    await new Promise((r) => setTimeout(r, 2000));
    const stormAt = performance.now();
    fleet.send({ cmd: "cut" });
    const back = await next("back", 30_000) as { ms: number };
    const backAt = performance.now();
    await new Promise((r) => setTimeout(r, 1500));
    const m = await metricsText(spine.gw);
    fleet.send({ cmd: "stop" });
    const result = await next("acked", 40_000) as { acked: Record<string, number[]>; inflight: number };
    const endAt = performance.now();

    const quiet = jitter(presses, quietFrom, t0);
    const before = jitter(presses, t0, stormAt);
    // the fleet connected and publishing, before the storm: what the steady traffic alone costs the pollers
    const steady = jitter(presses, connectedAt, stormAt);
    const storm = jitter(presses, stormAt, endAt);
    const figures = {
      connect_all_ms: connected.ms, reconnect_all_ms: back.ms, jitter_p99_quiet_ms: Math.round(p99(quiet)), polls_quiet: quiet.length,
      jitter_p99_before_ms: Math.round(p99(before)), jitter_p99_steady_ms: Math.round(p99(steady)), jitter_p99_storm_ms: Math.round(p99(storm)), jitter_max_storm_ms: Math.round(storm[storm.length - 1]!),
      polls_in_storm: storm.length, test_loop_p99_ms: Math.round(loop.percentile(99) / 1e6),
      gateway_cpu_pct: Math.round((metric(m, "floorgate_process_cpu_seconds_total") - metric(m0, "floorgate_process_cpu_seconds_total")) / ((performance.now() - t0) / 1000) * 100),
      gateway_loop_lag_p99_ms: Math.round(metric(m, "floorgate_nodejs_eventloop_lag_p99_seconds") * 1000),
      skipped_polls: metric(m, "floorgate_driver_events_total", { event: "skipped_poll" }), connect_rate_refusals: metric(m, "floorgate_ingest_rejects_total", { reason: "connect_rate" }),
    };
    console.log(`[reconnect-storm] ${JSON.stringify(figures)}`);
    expect(back.ms, "every device back within 10 s").toBeLessThan(10_000);
    expect(figures.connect_rate_refusals, "the connect-rate guard spread the storm").toBeGreaterThan(0);
    expect(metric(m, "floorgate_ingest_connections")).toBe(DEVICES);
    // the presses kept polling all along (about 10 per second each), on time
    expect(storm.length).toBeGreaterThan(PRESSES * ((endAt - stormAt) / POLL_MS) * 0.8);
    expect(p99(storm), "poll jitter p99 during the storm").toBeLessThan(100);
    expect(backAt - stormAt).toBeLessThan(12_000);

    // nothing PUBACKed lost: every acknowledged value of every device at the cloud
    expect(result.inflight, "publishes still unacknowledged at the end").toBe(0);
    const total = Object.values(result.acked).reduce((n, l) => n + l.length, 0);
    expect(total).toBeGreaterThan(DEVICES * 3);
    const seen = new Map<string, Set<number>>();
    let parsed = 0;
    const missing = (): number => {
      for (; parsed < spine.collector.messages.length; parsed++) {
        const msg = spine.collector.messages[parsed]!;
        const body = JSON.parse(msg.payload.toString()) as { device: string; samples: { value: number }[] };
        let set = seen.get(body.device);
        if (!set) seen.set(body.device, (set = new Set()));
        for (const s of body.samples) set.add(s.value);
      }
      let n = 0;
      for (const [id, values] of Object.entries(result.acked)) for (const v of values) if (!seen.get(id)?.has(v)) n++;
      return n;
    };
    const deadline = Date.now() + 30_000;
    while (missing() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
    expect(missing(), "PUBACKed values never at the cloud").toBe(0);
  }, 120_000);
});
