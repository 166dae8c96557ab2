import { constants, openSync, closeSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { STOP_BUDGET_MS, stopWithin } from "../../src/cli/run.js";
import { createLogger } from "../../src/core/logger.js";
import { http, writeConfig } from "../helpers/gateway-process.js";
import { freePort, listenLoopback } from "../helpers/ports.js";
import { spawnDaemon, type Daemon } from "./process-child.js";

const dirs: string[] = [];
const daemons: Daemon[] = [];
const cleanups: (() => void)[] = [];

afterEach(() => {
  for (const c of cleanups.splice(0)) c();
  for (const d of daemons.splice(0)) if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill("SIGKILL");
});
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "floorgate-signals-"));
  dirs.push(d);
  return d;
}

/** A TCP server that accepts connections and never answers a byte (a hung broker or PLC). */
async function blackHole(): Promise<{ port: number; sockets: net.Socket[] }> {
  const sockets: net.Socket[] = [];
  const srv = net.createServer((s) => { sockets.push(s); s.on("error", () => undefined); });
  const port = await listenLoopback(srv);
  cleanups.push(() => { for (const s of sockets) s.destroy(); srv.close(); });
  return { port, sockets };
}

/**
 * Issue 10, point 8: SIGTERM during the start is honoured (the start is abandoned, exit 0), the
 * stop fits in 10 s whatever hangs, and nothing keeps the process alive after it.
 */
describe("daemon signals", () => {
  it("SIGTERM while the start hangs in journal recovery: stops at once, exit 0, and the next start works", async () => {
    const dir = await tempDir();
    const port = await freePort();
    const file = await writeConfig(dir, `
gateway: { id: sig-edge, group: test, dataDir: ./data }
http: { listen: "127.0.0.1:${port}" }
`);
    // The cursor file is a FIFO nobody writes: reading it blocks, as a read from a hung disk or NFS
    // mount would. Recovery reads it after taking the journal lock and before the listener starts.
    const journal = join(dir, "data", "journal");
    await mkdir(journal, { recursive: true });
    const fifo = join(journal, "cursors.json");
    execFileSync("mkfifo", [fifo]);
    const d = spawnDaemon(file, { cwd: dir });
    daemons.push(d);
    // Wait until the daemon is blocked on it: opening the write end without blocking fails (ENXIO)
    // until a reader has it open. The write end is then kept open, so the read stays blocked.
    let writer: number | undefined;
    const deadline = Date.now() + 20_000;
    while (writer === undefined) {
      try {
        writer = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENXIO") throw err;
        if (Date.now() > deadline || d.child.exitCode !== null) throw new Error(`the daemon never read the journal:\n${d.lines.join("\n")}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    cleanups.push(() => closeSync(writer!));
    const t0 = performance.now();
    d.child.kill("SIGTERM");
    // The start is abandoned at once: nothing more starts, and it says so.
    await d.waitFor(/"msg":"stopped during startup"/);
    expect(performance.now() - t0).toBeLessThan(3_000);
    expect(d.lines.join("\n")).not.toContain("floorgate running");
    // A read stuck in the kernel holds a libuv thread that Node joins at exit: the process ends
    // as soon as that read returns (here: when the FIFO's writer goes away), with exit code 0.
    closeSync(writer);
    cleanups.length = 0;
    const { code, signal } = await d.exited(t0);
    expect(signal).toBeNull();
    expect(code).toBe(0);
    expect(d.logs().filter((l) => (l.level as number) >= 50)).toEqual([]);
    // The lock it left behind is free: the next start takes it.
    await rm(fifo);
    const again = spawnDaemon(file, { cwd: dir });
    daemons.push(again);
    await again.waitFor(/"msg":"floorgate running"/);
    again.child.kill("SIGTERM");
    expect((await again.exited()).code).toBe(0);
  });

  it("SIGTERM with a hung broker, a hung PLC, a slowloris client and open keep-alive connections: exits within 10 s", async () => {
    const dir = await tempDir();
    const port = await freePort();
    const broker = await blackHole();
    const plc = await blackHole();
    const file = await writeConfig(dir, `
gateway: { id: sig-edge, group: test, dataDir: ./data }
http: { listen: "127.0.0.1:${port}" }
devices:
  - id: press-1
    driver: modbus
    connection: { host: 127.0.0.1, port: ${plc.port}, timeoutMs: 5000 }
    pollMs: 100
    tags: [{ name: rpm, area: holding, address: 0, type: uint16 }]
ingest:
  devices: [{ id: "agv-*", token: tok-1234 }]
outputs:
  - { type: mqtt, name: cloud, url: "mqtt://127.0.0.1:${broker.port}" }
`);
    const d = spawnDaemon(file, { cwd: dir });
    daemons.push(d);
    await d.waitFor(/"msg":"floorgate running"/);
    // Both hung peers have been reached: the stop has them to deal with.
    await expect.poll(() => broker.sockets.length > 0 && plc.sockets.length > 0, { timeout: 20_000, interval: 50 }).toBe(true);
    expect((await http("POST", `http://127.0.0.1:${port}/api/v1/ingest/agv-1`, { body: '{"values":{"a":1}}', headers: { authorization: "Bearer tok-1234" } })).status).toBe(202);
    // a slowloris client, a request whose body never completes, and an idle connection
    const held: net.Socket[] = [];
    const open = (first: string) => {
      const s = net.connect(port, "127.0.0.1", () => s.write(first));
      s.on("error", () => undefined);
      held.push(s);
    };
    open("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a");
    open("POST /api/v1/ingest/agv-2 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer tok-1234\r\nContent-Length: 100\r\n\r\n{\"values\":");
    open("");
    cleanups.push(() => { for (const s of held) s.destroy(); });
    await new Promise((r) => setTimeout(r, 200)); // let the three connections reach the server
    const t0 = performance.now();
    d.child.kill("SIGTERM");
    // A second signal does not cut the stop short (nor kill the process outright, Node's default).
    await d.waitFor(/"msg":"stopping: draining outputs/);
    d.child.kill("SIGINT");
    const { code, signal, ms, wallMs } = await d.exited(t0);
    console.log(`stop with hung peers: exit ${code} after ${Math.round(ms)} ms`);
    expect(signal).toBeNull();
    expect(ms).toBeLessThan(10_000);
    expect([0, 2]).toContain(code);
    const last = d.logs().find((l) => l.msg === (code === 0 ? "floorgate stopped" : "stop did not finish cleanly in time; exiting anyway"));
    expect(last, d.lines.join("\n")).toBeDefined();
    // Nothing keeps the process alive once the stop is over (the held client sockets would).
    expect(wallMs - (last!.time as number)).toBeLessThan(1_000);
    expect(d.lines.join("\n")).toContain("already stopping");
  });

  it("stopWithin: a stop that never ends is cut off at the budget with exit code 2", async () => {
    const lines: string[] = [];
    const log = createLogger({ level: "info", destination: { write: (l: string) => { lines.push(l); } } });
    const t0 = performance.now();
    expect(await stopWithin({ stop: () => new Promise<void>(() => undefined) }, log, 300)).toBe(2);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(290);
    expect(lines.filter((l) => l.includes("stop did not finish cleanly in time"))).toHaveLength(1);
    expect(await stopWithin({ stop: () => Promise.reject(new Error("journal close failed")) }, log, 300)).toBe(2);
    expect(await stopWithin({ stop: () => Promise.resolve() }, log, 300)).toBe(0);
    expect(STOP_BUDGET_MS).toBeLessThanOrEqual(9_000);
  });
});
