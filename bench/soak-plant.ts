/**
 * The soak's machinery around the gateway: a tmpfs of its own for the data dir (so "disk full" is
 * real and harms nobody else), the filler that makes it full, Modbus TCP simulators whose values
 * name the poll they answered, and the gateway as a process that can be SIGKILLed and started again.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { appendFile, mkdir, open, rm } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { http } from "../test/helpers/gateway-process.js";
import { startFaultServer, type FaultServer } from "../test/helpers/modbus-servers.js";

const run = promisify(execFile);

/** bin/floorgate from the source tree (tsx runs bench/) or from dist/bench (the compiled soak). */
function floorgateBin(): string {
  const here = import.meta.dirname;
  const fromSource = join(here, "..", "bin", "floorgate");
  return existsSync(fromSource) ? fromSource : join(here, "..", "..", "bin", "floorgate");
}

// ---------------------------------------------------------------------------------------------
// tmpfs

/** A tmpfs mounted by the soak; `unmount` is idempotent and retries while the gateway lets go. */
export interface Tmpfs { dir: string; unmount(): Promise<void> }

export async function mountTmpfs(dir: string, size: string): Promise<Tmpfs> {
  await mkdir(dir, { recursive: true });
  try {
    await run("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir]);
  } catch (err) {
    throw new Error(`cannot mount a tmpfs on ${dir} (the soak must run as root): ${(err as Error).message}`, { cause: err });
  }
  let mounted = true;
  return {
    dir,
    async unmount() {
      if (!mounted) return;
      for (let i = 0; ; i++) {
        try {
          await run("umount", [dir]);
          mounted = false;
          return;
        } catch (err) {
          if (i >= 20) {
            // Something still holds a file: detach it now, the kernel frees it when released.
            await run("umount", ["-l", dir]).catch(() => {});
            mounted = false;
            throw new Error(`umount ${dir} failed, detached lazily: ${(err as Error).message}`, { cause: err });
          }
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    },
  };
}

/**
 * Writes `file` until the filesystem answers ENOSPC (big chunks, then 4 KiB ones, so the disk is
 * really full, not merely short of a megabyte). Resolves with the bytes written.
 */
export async function fillDisk(file: string): Promise<number> {
  const fh = await open(file, "w");
  let bytes = 0;
  try {
    for (const size of [1 << 20, 4096, 512]) {
      const chunk = Buffer.alloc(size, 0x5a);
      for (;;) {
        try {
          const { bytesWritten } = await fh.write(chunk);
          bytes += bytesWritten;
          if (bytesWritten < size) break;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === "ENOSPC") break;
          throw err;
        }
      }
    }
  } finally {
    await fh.close().catch(() => {});
  }
  return bytes;
}

// ---------------------------------------------------------------------------------------------
// Modbus

export const MODBUS_TAGS = 10;

/**
 * One simulated PLC: holding registers 0..19 are ten uint32 (ABCD) tags; tag k of the reply to
 * request n (counted per server, across restarts) holds n·16 + k, so a consumer can count
 * distinct polled samples and see that every value sits under the right tag.
 */
export interface SoakPlc {
  id: string;
  pollMs: number;
  server: FaultServer;
  /** requests answered with data, and the tag samples those answers carried */
  answered: number;
  samplesServed: number;
  up: boolean;
  stop(): Promise<void>;
  start(): Promise<void>;
}

export async function startPlc(id: string, pollMs: number): Promise<SoakPlc> {
  let current = 0;
  const plc = {} as SoakPlc;
  const server = await startFaultServer({
    register: (_unit, _area, address) => {
      const value = current * 16 + (address >> 1);
      return address % 2 === 0 ? (value >>> 16) & 0xffff : value & 0xffff;
    },
    behave: (req) => {
      current = req.n;
      if (req.fc === 3 && req.start + req.count <= MODBUS_TAGS * 2) {
        plc.answered++;
        plc.samplesServed += Math.floor(req.count / 2);
      }
      return "answer";
    },
  });
  Object.assign(plc, {
    id, pollMs, server, answered: 0, samplesServed: 0, up: true,
    async stop() { plc.up = false; await server.stop(); },
    // restart() closes (a no-op on a stopped server) and listens again on the same port.
    async start() { await server.restart(); plc.up = true; },
  });
  return plc;
}

// ---------------------------------------------------------------------------------------------
// Gateway

export const GATEWAY_ID = "soak-edge";
export const PUSH_TOKEN = "soak-device-token";

export function gatewayConfig(o: { dataDir: string; httpPort: number; brokerUrl: string; journalMax: string; plcs: readonly SoakPlc[] }): string {
  const tags = Array.from({ length: MODBUS_TAGS }, (_, k) => `      - { name: r${k}, area: holding, address: ${2 * k}, type: uint32, byteOrder: ABCD }`).join("\n");
  const devices = o.plcs.map((p) => `  - id: ${p.id}
    driver: modbus
    connection: { transport: tcp, host: 127.0.0.1, port: ${p.server.port}, unitId: 1, timeoutMs: 1000 }
    pollMs: ${p.pollMs}
    reconnectMaxMs: 2000
    tags:
${tags}`).join("\n");
  return `gateway: { id: ${GATEWAY_ID}, group: soak, dataDir: "${o.dataDir}" }
http: { listen: "127.0.0.1:${o.httpPort}" }
journal: { maxBytes: ${o.journalMax}, overflow: drop-oldest, fsync: batch, fsyncIntervalMs: 20 }
devices:
${devices || "  []"}
ingest:
  http: true
  ratePerDevice: 100000
  devices:
    - { id: "push-*", token: "${PUSH_TOKEN}" }
outputs:
  - { type: mqtt, name: cloud, url: "${o.brokerUrl}", qos: 1, maxBatch: 200 }
`;
}

/**
 * A journal drop as the gateway logs it: one JSON line per dropped segment (`dropped-oldest`, reason
 * drop_oldest or disk_full) or corrupt stretch skipped at recovery (`corrupt`), samples per output.
 */
interface DropLine { kind?: string; reason?: string; perOutput?: Record<string, number>; level?: number }

/**
 * The daemon as a process. Every start is an *incarnation*; its stdout goes to `logFile`, and the
 * drop-oldest events it logs are summed per incarnation (they reach the pipe before a SIGKILL
 * could lose them, unlike counters scraped from /metrics once a second).
 */
export class GatewayProc {
  child: ChildProcess | null = null;
  incarnation = 0;
  /** journal drops per "reason|output", per incarnation (index = incarnation - 1), from the log */
  readonly loggedDrops: Map<string, number>[] = [];
  errorLines = 0;
  readonly tail: string[] = [];
  readonly base: string;

  constructor(private readonly configFile: string, readonly port: number, private readonly logFile: string) {
    this.base = `http://127.0.0.1:${port}`;
  }

  /** Spawns the daemon and waits until /healthz answers (200, or 503 while the journal refuses data). */
  async start(timeoutMs = 30_000): Promise<void> {
    const child = spawn(process.execPath, [floorgateBin(), "run", "--config", this.configFile], {
      env: { ...process.env, FLOORGATE_LOG_LEVEL: "info" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child = child;
    this.incarnation++;
    const drops = new Map<string, number>();
    this.loggedDrops.push(drops);
    let partial = "";
    const onData = (d: Buffer): void => {
      const text = partial + d.toString();
      const lines = text.split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) this.line(line, drops);
      void appendFile(this.logFile, lines.map((l) => `${l}\n`).join("")).catch(() => {});
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`gateway exited at start (${child.exitCode ?? child.signalCode}):\n${this.tail.join("\n")}`);
      const status = await http("GET", `${this.base}/healthz`).then((r) => r.status, () => 0);
      if (status === 200 || status === 503) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`gateway not healthy within ${timeoutMs} ms:\n${this.tail.join("\n")}`);
  }

  private line(line: string, drops: Map<string, number>): void {
    if (!line) return;
    this.tail.push(line);
    if (this.tail.length > 200) this.tail.shift();
    if (!line.startsWith("{")) return;
    try {
      const j = JSON.parse(line) as DropLine;
      if ((j.level ?? 0) >= 50) this.errorLines++;
      if ((j.kind === "dropped-oldest" || j.kind === "corrupt") && j.perOutput) {
        const reason = j.kind === "corrupt" ? "corrupt" : (j.reason ?? "drop_oldest");
        for (const [o, n] of Object.entries(j.perOutput)) drops.set(`${reason}|${o}`, (drops.get(`${reason}|${o}`) ?? 0) + n);
      }
    } catch { /* a non-JSON line (a crash trace) stays in the tail */ }
  }

  get alive(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  async kill(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((r) => c.once("exit", () => r()));
    c.kill("SIGKILL");
    await exited;
  }

  /** SIGTERM; after `graceMs` SIGKILL. Resolves with how it ended. */
  async stop(graceMs = 15_000): Promise<{ code: number | null; signal: string | null; ms: number }> {
    const c = this.child;
    const t0 = Date.now();
    if (!c) return { code: null, signal: "never started", ms: 0 };
    if (c.exitCode !== null || c.signalCode !== null) return { code: c.exitCode, signal: c.signalCode, ms: 0 };
    const exited = new Promise<{ code: number | null; signal: string | null }>((r) => c.once("exit", (code, signal) => r({ code, signal })));
    c.kill("SIGTERM");
    const timer = setTimeout(() => c.kill("SIGKILL"), graceMs);
    const end = await exited;
    clearTimeout(timer);
    return { ...end, ms: Date.now() - t0 };
  }
}

export async function removeQuietly(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true }).catch(() => {});
}
