/**
 * A fast simulated Modbus TCP plant for the scale bench, run as a child process (forked with IPC)
 * so its CPU is not counted as the gateway's and its event loop does not share the bench's.
 *
 * One listening port per device on 127.0.0.1 (the driver keeps one request in flight per
 * host:port, so devices sharing a port would be serialised). Each port answers FC3 reads of up to
 * 125 registers after `replyDelayMs`; anything else gets exception 1 (illegal function).
 *
 * Register content, so the subscriber can measure latency without a shared clock problem:
 *   0..2  the ms wall-clock time the request ARRIVED (≈ poll time), 48 bits, high word first
 *   3     per-device request sequence (uint16)
 *   4..   values derived from the sequence, so every poll changes them
 *
 * Poll jitter is measured here, where the requests land: per device, |interval between two
 * consecutive requests − pollMs|, with performance.now().
 *
 * IPC: parent → child `{type:"reset"}` (start of measurement) and `{type:"stats"}`;
 * child → parent `{type:"ready", ports}` once listening, `{type:"stats", ...}` on request.
 */
import net from "node:net";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { readFileSync } from "node:fs";
import { onMbapRequests } from "../test/helpers/mbap.js";
import { Histogram } from "./modbus-scale-hist.js";

export interface SimReady { type: "ready"; ports: number[] }
export interface SimStats {
  type: "stats";
  requests: number;
  connections: number;
  jitterP50: number;
  jitterP99: number;
  jitterMax: number;
  intervals: number;
  /** CPU ms (user+system) the simulator used since the last reset */
  cpuMs: number;
  /** requests answered with an exception or dropped as malformed */
  rejected: number;
  /**
   * Per second of the window (index = whole seconds since the reset): how many poll intervals were
   * off by more than 100 ms. Tells an episode (a few bad seconds) from a steady overload.
   */
  lateBySecond: number[];
  /**
   * Per second of the window: the simulator's own longest event-loop delay, ms. A stall here
   * delays the arrival of requests the gateway sent on time, and so shows as poll jitter.
   */
  loopMaxBySecond: number[];
  /** wall-clock ms of the last reset and of this answer: `requests` arrived between the two */
  since: number;
  at: number;
}
export type SimRequest = { type: "reset" } | { type: "stats" } | { type: "stop" };

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}

/** The soft open-files limit; Node cannot raise it itself (no setrlimit), so we check it instead. */
function openFilesLimit(): number {
  try {
    const m = /Max open files\s+(\d+)/.exec(readFileSync("/proc/self/limits", "utf8"));
    return m ? Number(m[1]) : Number.POSITIVE_INFINITY;
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}

function main(): void {
  const devices = arg("devices", 10);
  const replyDelayMs = arg("delay", 5);
  const pollMs = arg("poll", 1000);
  const need = devices * 2 + 64; // a listener and an accepted socket per device
  const limit = openFilesLimit();
  if (need > limit) {
    process.stderr.write(`modbus-sim-server: ${devices} devices need ~${need} file descriptors, soft limit is ${limit} (raise with ulimit -n)\n`);
    process.exit(3);
  }

  const jitter = new Histogram(0.1, 60_000);
  const last = new Float64Array(devices); // performance.now() of each device's last request
  const seq = new Uint16Array(devices);
  let requests = 0;
  let rejected = 0;
  let connections = 0;
  let cpuBase = process.cpuUsage();
  let resetAt = performance.now();
  let resetWall = Date.now();
  let lateBySecond: number[] = [];
  let loopMaxBySecond: number[] = [];
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  setInterval(() => {
    const sec = Math.floor((performance.now() - resetAt) / 1000);
    if (sec >= 0 && sec < 3600) loopMaxBySecond[sec] = Math.max(loopMaxBySecond[sec] ?? 0, loopDelay.max / 1e6);
    loopDelay.reset();
  }, 1000).unref();

  function reply(sock: net.Socket, dev: number, tid: number, unit: number, start: number, count: number, arrivedMs: number): void {
    if (sock.destroyed) return;
    const s = seq[dev] = (seq[dev]! + 1) & 0xffff;
    const bytes = count * 2;
    const out = Buffer.allocUnsafe(9 + bytes);
    out.writeUInt16BE(tid, 0);
    out.writeUInt16BE(0, 2);
    out.writeUInt16BE(3 + bytes, 4);
    out[6] = unit;
    out[7] = 3;
    out[8] = bytes;
    const hi = Math.floor(arrivedMs / 0x100000000);
    const lo = arrivedMs >>> 0;
    for (let k = 0; k < count; k++) {
      const a = start + k;
      let v: number;
      if (a === 0) v = hi & 0xffff;
      else if (a === 1) v = lo >>> 16;
      else if (a === 2) v = lo & 0xffff;
      else if (a === 3) v = s;
      else v = (s * 7 + a * 13) & 0xffff;
      out.writeUInt16BE(v, 9 + k * 2);
    }
    sock.write(out);
  }

  function exception(sock: net.Socket, tid: number, unit: number, fc: number, code: number): void {
    rejected++;
    const out = Buffer.from([tid >> 8, tid & 0xff, 0, 0, 0, 3, unit, fc | 0x80, code]);
    sock.write(out);
  }

  function onConnection(dev: number, sock: net.Socket): void {
    connections++;
    sock.setNoDelay(true);
    sock.on("error", () => {});
    sock.on("close", () => { connections--; });
    onMbapRequests(sock, ({ tid, unitId: unit, pdu }) => {
      const fc = pdu[0]!;
      const now = performance.now();
      const arrivedMs = Date.now();
      requests++;
      const prev = last[dev]!;
      if (prev > 0) {
        const off = Math.abs(now - prev - pollMs);
        jitter.record(off);
        if (off > 100) {
          const sec = Math.floor((now - resetAt) / 1000);
          if (sec >= 0 && sec < 3600) lateBySecond[sec] = (lateBySecond[sec] ?? 0) + 1;
        }
      }
      last[dev] = now;
      if (fc !== 3 || pdu.length !== 5) {
        exception(sock, tid, unit, fc, 1);
      } else {
        const start = pdu.readUInt16BE(1);
        const count = pdu.readUInt16BE(3);
        if (count < 1 || count > 125 || start + count > 0x10000) exception(sock, tid, unit, fc, 3);
        else if (replyDelayMs > 0) setTimeout(reply, replyDelayMs, sock, dev, tid, unit, start, count, arrivedMs);
        else reply(sock, dev, tid, unit, start, count, arrivedMs);
      }
    }, { strict: true, onBad: () => { rejected++; } });
  }

  const ports: number[] = new Array<number>(devices);
  let listening = 0;
  const servers: net.Server[] = [];
  for (let d = 0; d < devices; d++) {
    const srv = net.createServer((sock) => onConnection(d, sock));
    srv.on("error", (err) => { process.stderr.write(`modbus-sim-server: device ${d}: ${err.message}\n`); process.exit(3); });
    srv.listen({ port: 0, host: "127.0.0.1", backlog: 64 }, () => {
      const a = srv.address();
      ports[d] = typeof a === "object" && a ? a.port : 0;
      if (++listening === devices) process.send?.({ type: "ready", ports } satisfies SimReady);
    });
    servers.push(srv);
  }

  process.on("message", (m: SimRequest) => {
    if (m.type === "reset") {
      jitter.reset();
      requests = 0;
      rejected = 0;
      cpuBase = process.cpuUsage();
      resetAt = performance.now();
      resetWall = Date.now();
      lateBySecond = [];
      loopMaxBySecond = [];
    } else if (m.type === "stats") {
      const j = jitter.summary();
      const cpu = process.cpuUsage(cpuBase);
      process.send?.({
        type: "stats", requests, connections, rejected, since: resetWall, at: Date.now(),
        jitterP50: j.p50, jitterP99: j.p99, jitterMax: j.max, intervals: j.count,
        cpuMs: (cpu.user + cpu.system) / 1000,
        lateBySecond: Array.from(lateBySecond, (x) => x ?? 0),
        loopMaxBySecond: Array.from(loopMaxBySecond, (x) => Math.round(x ?? 0)),
      } satisfies SimStats);
    } else if (m.type === "stop") {
      process.exit(0);
    }
  });
  process.on("disconnect", () => process.exit(0));
}

main();
